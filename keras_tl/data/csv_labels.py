"""Reader: labels from a table, a ``.csv`` or ``.tsv`` file (or, in the library, a pandas ``DataFrame``) with
a column of image paths, a column of labels and, optionally, a split column (fastai's ``ColReader``,
Keras's old ``flow_from_dataframe``).

- **Columns**: ``path_column``, ``label_column`` and ``split_column`` name them; when one is not given,
  the common names are looked for, case aside (:data:`PATH_COLUMNS`, :data:`LABEL_COLUMNS`,
  :data:`SPLIT_COLUMNS`). A column that is not there, or two that could be the one, is an error listing
  the table's columns. ``split_column="none"``: no split column, whatever the table holds.
- **Paths** are relative to the table's folder and may not leave it (no absolute path, no ``..``:
  :func:`keras_tl.data.folders.leaves_folder`, the rule of every list a dataset folder holds), so the
  table and its images move together. A DataFrame has no folder: its paths are used as they are.
- **Splits**: train or training, test or testing, valid, validation or val (case aside); in an
  ``is_valid`` or ``is_test`` column (fastai's), true/false, 1/0 or yes/no. Validation rows are held out:
  they are the test split when the table has no test rows, and join train otherwise, with a warning
  (the jobs hold out their own validation part of train). Any other value is an error naming the row.
  Without a split column, the seeded stratified split of every folder. A ``fold`` column is not looked
  for: it usually holds fold numbers, which are no train/test split.
- **Labels**: a cell is one label; with ``label_delimiter``, it is split into labels on it (a :class:`Row`
  holds its labels as a tuple). When some row has several labels, the table is **multi-label**: each image
  gets all the labels of its rows, as a multi-hot row of ``ImageSet.labels`` (``dataset.multi_label``; see
  :mod:`keras_tl.features.multi_label`), and a split made here is the seeded one of
  :func:`keras_tl.data.stratified_split` for multi-hot labels. Otherwise labels are class indices, as in
  every folder dataset.

A row repeated (same path, label and split) is kept once, and an image in both train and test is left
out of train, each with one warning. Then the files get the checks of every folder dataset
(:func:`keras_tl.data.folders.file_dataset`): an image on two rows with different labels is left out (a
multi-label table joins its labels instead), and a missing or unreadable file is skipped, named in one
warning with the count, and listed in ``dataset.skipped``.
"""
import collections
import csv
import io
import pathlib
import sys
import warnings

from keras_tl import messages
from keras_tl.data import folders

SUFFIXES = (".csv", ".tsv")
PATH_COLUMNS = ("path", "file", "filename", "file_name", "filepath", "file_path", "image", "image_path", "fname")
LABEL_COLUMNS = ("label", "labels", "class", "category", "target", "tags")
SPLIT_COLUMNS = ("split", "set", "subset", "is_valid", "is_test")
SPLITS = {"train": "train", "training": "train", "test": "test", "testing": "test",
          "valid": "valid", "validation": "valid", "val": "valid"}
HELD_OUT_WHEN_TRUE = {"is_valid": "valid", "is_test": "test"}  # true/false columns: the split a true row is in
TRUE, FALSE = ("true", "1", "yes"), ("false", "0", "no")
NO_SPLIT_COLUMN = "none"
SHOWN = 3  # the rows an error shows

Row = collections.namedtuple("Row", "place path labels split")


def is_dataframe(spec):
    """Whether ``spec`` is a pandas DataFrame (pandas is never imported here: a DataFrame means it is)."""
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(spec, pandas.DataFrame)


def applies(spec):
    """Whether ``spec`` names a table: a path ending in ``.csv`` or ``.tsv``, or a DataFrame."""
    return is_dataframe(spec) or (isinstance(spec, str) and pathlib.Path(spec).suffix.lower() in SUFFIXES)


def check_table(spec):
    """A ``FileNotFoundError`` "no such file" (with the close names beside it) when the table ``spec`` names
    does not exist; it reads nothing, so a job asks it before TensorFlow loads."""
    if is_dataframe(spec) or pathlib.Path(spec).is_file():
        return
    path = pathlib.Path(spec)
    if path.is_dir():
        raise IsADirectoryError(f"Dataset {spec} is a folder, not a .csv or .tsv table.")
    try:
        names = [child.name for child in path.parent.iterdir() if child.suffix.lower() in SUFFIXES]
    except OSError:  # the folder does not exist, or cannot be listed
        names = []
    close = [str(path.parent / name) for name in messages.close_matches(path.name, names, n=3)]
    raise FileNotFoundError(f"no such file: {path}." + (f" Did you mean {', '.join(close)}?" if close else ""))


def read(spec, options):
    """The :class:`~keras_tl.data.ImageDataset` of the table ``spec`` (a ``.csv``/``.tsv`` path or a DataFrame),
    its columns and label delimiter as ``options`` say (see the module docstring)."""
    if is_dataframe(spec):
        name, source, root = "DataFrame", "the DataFrame", None
        columns, cells = dataframe_cells(spec)
    else:
        path = pathlib.Path(spec)
        check_table(path)
        name, source, root = f"{path.resolve().parent.name}/{path.name}", str(path), path.parent
        columns, cells = table_cells(path)
    rows = table_rows(source, columns, cells, root, options)
    return folders.file_dataset(name, source, grouped(source, rows), options,
                                multi_label=any(len(row.labels) > 1 for row in rows))


def table_cells(path):
    """``(columns, [(place, cells)])`` of a ``.csv`` or ``.tsv`` file, ``place`` its line (``"line 4"``).

    A ``.tsv`` is tab-separated; a ``.csv`` by the one of ``,``, ``;`` and tab that its header line holds
    most (Excel writes ``;`` in some languages). Blank rows are skipped; a row with another number of
    cells than the header is an error naming its line.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")  # the byte-order mark Excel writes
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not UTF-8 text ({error}); save the table as UTF-8 CSV.") from None
    header = text.lstrip("\r\n").partition("\n")[0]
    separator = "\t" if path.suffix.lower() == ".tsv" else max((",", ";", "\t"), key=header.count)
    lines = csv.reader(io.StringIO(text, newline=""), delimiter=separator)
    try:
        columns = next((row for row in lines if any(cell.strip() for cell in row)), None)
        if columns is None:
            raise ValueError(f"{path} is empty: expected a header line (like path,label) and a row per image.")
        cells = []
        for row in lines:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(columns):
                raise ValueError(f"{path} line {lines.line_num} has {len(row)} cell(s), the header "
                                 f"{len(columns)}: a cell that holds {separator!r} must be in double quotes.")
            cells.append((f"line {lines.line_num}", row))
    except csv.Error as error:
        raise ValueError(f"{path} line {lines.line_num} is not CSV ({error}).") from None
    return [column.strip() for column in columns], cells


def dataframe_cells(frame):
    """``(columns, [(place, cells)])`` of a DataFrame, ``place`` the row's index (``"row 4"``), every cell as text;
    a missing value (NaN, None) is an empty cell."""
    import pandas

    def cell(value):
        return "" if pandas.isna(value) else str(value)

    return ([str(column).strip() for column in frame.columns],
            [(f"row {index}", [cell(value) for value in values])
             for index, values in zip(frame.index, frame.itertuples(index=False, name=None))])


def find_column(source, columns, wanted, common, parameter, required=True):
    """The index in ``columns`` of the column ``wanted`` (a name, case aside) or, when it is None, of the one
    of the ``common`` names the table holds; an error naming ``parameter`` and listing ``columns`` when
    there is none (None when not ``required``) or more than one."""
    listed = ", ".join(map(repr, columns))
    names = [wanted] if wanted is not None else common
    found = [index for index, column in enumerate(columns) if column.lower() in {name.lower() for name in names}]
    if wanted is not None and not found:
        raise ValueError(f"{parameter}={wanted!r}: {source} has no such column; its columns are {listed}."
                         + messages.did_you_mean(wanted, columns))
    if wanted is None and not found and required:
        raise ValueError(f"{source} has no column named one of {', '.join(common)}; its columns are {listed}. "
                         f"Name the column with {parameter}=.")
    if len(found) > 1:
        raise ValueError(f"{source} has {len(found)} columns that could be the one of {parameter}= "
                         f"({', '.join(repr(columns[index]) for index in found)}): name one with {parameter}=.")
    return found[0] if found else None


def table_columns(source, columns, options):
    """``(path, label, split)``: the indices of the table's columns that ``options`` name or that have the common
    names (:func:`find_column`); ``split`` is None without a split column. Each column is a different one."""
    path_at = find_column(source, columns, options.path_column, PATH_COLUMNS, "path_column")
    label_at = find_column(source, columns, options.label_column, LABEL_COLUMNS, "label_column")
    split_at = (None if options.split_column == NO_SPLIT_COLUMN else
                find_column(source, columns, options.split_column, SPLIT_COLUMNS, "split_column", required=False))
    used = [columns[index] for index in (path_at, label_at, split_at) if index is not None]
    if len(set(used)) < len(used):
        raise ValueError(f"path_column=, label_column= and split_column= name the same column of {source}: "
                         f"{', '.join(map(repr, used))}; each needs its own.")
    return path_at, label_at, split_at


def check_delimiter(delimiter):
    """``delimiter`` when it can separate the labels of a cell (None: a cell is one label), else an error."""
    if delimiter is not None and (not isinstance(delimiter, str) or not delimiter or set(delimiter) & set('"\r\n')):
        raise ValueError(f"label_delimiter={delimiter!r}: expected the character(s) between the labels of a cell, "
                         f"such as ' ' or ';' (not empty, no quote, no line break).")
    return delimiter


def table_rows(source, columns, cells, root, options):
    """The table's :class:`Row` s, every cell checked: a path (given, inside ``root``), a label (one, split
    on ``options.label_delimiter``) and a split (:data:`SPLITS`); an error names the count of bad rows and
    the first few."""
    delimiter = check_delimiter(options.label_delimiter)
    if not cells:
        raise ValueError(f"{source} has no rows below its header: expected a row per image.")
    path_at, label_at, split_at = table_columns(source, columns, options)
    rows = [Row(place, row[path_at].strip(), labels_of(row[label_at], delimiter),
                "all" if split_at is None else row[split_at].strip().lower()) for place, row in cells]

    def refuse(bad, problem, expected):
        if bad:
            shown = ", ".join(f"{row.place} ({text!r})" for row, text in bad[:SHOWN])
            more = f" and {len(bad) - SHOWN} more" if len(bad) > SHOWN else ""
            raise ValueError(f"{source}: {len(bad)} row(s) {problem}: {shown}{more}. {expected}")

    refuse([(row, row.path) for row in rows if not row.path], "with no path",
           f"Give every row the path of its image in column {columns[path_at]!r}.")
    if root is not None:
        rows = [row._replace(path=row.path.replace("\\", "/")) for row in rows]
        refuse([(row, row.path) for row in rows if folders.leaves_folder(row.path)],
               "whose path leaves the table's folder",
               f"Write the paths relative to {root.resolve()}, the table's folder, and inside it (no absolute "
               f"paths, no '..'): keep the table beside its images, or pass a DataFrame.")
        rows = [row._replace(path=str(root / row.path)) for row in rows]
    refuse([(row, "") for row in rows if not row.labels], "with no label",
           f"Give every image a label in column {columns[label_at]!r}, or leave its row out.")
    if split_at is not None:
        true_split = HELD_OUT_WHEN_TRUE.get(columns[split_at].lower())
        rows = [row._replace(split=split_of(row.split, true_split)) for row in rows]
        expected = "true or false (1/0, yes/no)" if true_split else ", ".join(SPLITS)
        refuse([(row, cells[index][1][split_at]) for index, row in enumerate(rows) if row.split is None],
               f"whose {columns[split_at]!r} is not a split",
               f"Expected {expected}; or split_column='{NO_SPLIT_COLUMN}' for a seeded split, or name the split "
               f"column with split_column=.")
    return rows


def labels_of(cell, delimiter):
    """The labels of one cell (a tuple, repeats dropped): the cell, or its parts split on ``delimiter``."""
    parts = cell.split(delimiter) if delimiter else [cell]
    return tuple(dict.fromkeys(label for label in (part.strip() for part in parts) if label))


def split_of(value, true_split):
    """``"train"``, ``"test"`` or ``"valid"`` for a split cell (lower case), None for another value; in a
    true/false column, ``true_split`` for true."""
    if true_split:
        return true_split if value in TRUE else "train" if value in FALSE else None
    return SPLITS.get(value)


def grouped(source, rows):
    """``{split: {class: [files]}}`` for :func:`~keras_tl.data.folders.file_dataset`, with the validation rows
    placed (see the module docstring), a repeated row kept once and an image in both splits left out of
    train (one warning each); every class must have rows in every split, and there must be two classes. A row's
    labels are a tuple: an image with several labels is listed in each of its classes."""
    splits = {row.split for row in rows}
    if "valid" in splits:
        if "test" in splits:
            warnings.warn(f"{source}: {sum(row.split == 'valid' for row in rows)} validation row(s) join train, since "
                          f"the table has test rows too (the jobs hold out their own validation part of train).",
                          stacklevel=4)
        rows = [row._replace(split="train" if "test" in splits else "test") if row.split == "valid" else row
                for row in rows]
        splits = {row.split for row in rows}
    unique = list(dict.fromkeys((row.path, row.labels, row.split) for row in rows))
    if len(unique) < len(rows):
        warnings.warn(f"{source}: dropped {len(rows) - len(unique)} repeated row(s) (same path, label and split).",
                      stacklevel=4)
    test = {path for path, _, split in unique if split == "test"}
    both = sorted({path for path, _, split in unique if split == "train"} & test)
    if both:
        warnings.warn(f"{source}: {len(both)} image(s) in both train and test, e.g. {', '.join(both[:SHOWN])}; "
                      f"leaving them out of train, so that no test image is trained on.", stacklevel=4)
        unique = [(path, label, split) for path, label, split in unique if split == "test" or path not in test]
    if splits != {"all"} and splits != {"train", "test"}:
        raise ValueError(f"{source}: every row is in {' '.join(splits)}; expected train and test rows (valid rows "
                         f"count as test when there are none), or split_column='{NO_SPLIT_COLUMN}' for a seeded split.")
    classes = sorted({label for _, labels, _ in unique for label in labels})
    if len(classes) < 2:
        raise ValueError(f"{source} has {len(classes)} class ({', '.join(classes)}); classification needs at least 2.")
    tree = {split: {label: [] for label in classes} for split in sorted(splits)}
    for path, labels, split in unique:
        for label in labels:
            tree[split][label].append(path)
    lacking = [f"{label} (no {split} row)" for split, labels in tree.items() for label, files in labels.items()
               if not files]
    if lacking:
        raise ValueError(f"{source}: every class needs rows in train and in test; {', '.join(lacking)}. Add rows, "
                         f"or split_column='{NO_SPLIT_COLUMN}' for a seeded split.")
    return tree
