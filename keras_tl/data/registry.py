"""``load_dataset``: one dispatcher above the readers, which never import it (the model is timm's
``reader_factory``). A spec is read by the first reader that applies to it:

- by name or prefix (:data:`BY_SPEC`): a ``.csv`` or ``.tsv`` table of image paths and labels, or a pandas
  DataFrame (:mod:`keras_tl.data.csv_labels`); ``animal_mnist``, ``fashion_mnist``, ``openclipart`` (installed
  packages, :mod:`keras_tl.data.packaged`); ``tuxpaint_photos`` (photographs from Debian's Tux Paint
  stamps, :mod:`keras_tl.data.photos`); ``tfds:NAME[:TRAIN/TEST]`` (:mod:`keras_tl.data.tfds_datasets`);
  ``NAME:PATH``, a course dataset in its published layout and split (:mod:`keras_tl.data.course_datasets`);
- else by the marker files of a folder (:data:`BY_FOLDER`): Fashion-MNIST's idx files; a course
  dataset's layout (named after it, ``cub200``); MIT-67 style ``TrainImages.txt``/``TestImages.txt``;
  ``train/<class>/`` and ``test/<class>/``; and last, a folder of ``<class>/`` folders
  (:mod:`keras_tl.data.folders`).

Adding a dataset is one reader module (a function ``read(spec, options)`` returning an
:class:`~keras_tl.data.ImageDataset`) and one :class:`Reader` entry here.
"""
import dataclasses
import itertools
import os
import pathlib
from typing import Callable

from keras_tl import messages
from keras_tl.data import course_datasets, csv_labels, folders, packaged, photos, tfds_datasets
from keras_tl.data.image_sets import ReadOptions, per_class_subset


@dataclasses.dataclass(frozen=True)
class Reader:
    """One way to find a dataset: its ``name``, whether it ``applies`` to a spec (or a folder), and ``read``."""

    name: str
    applies: Callable
    read: Callable


NAMED_DATASETS = ("animal_mnist", "fashion_mnist", "openclipart", "tuxpaint_photos")
TABLE = Reader("a .csv or .tsv table, or a DataFrame", csv_labels.applies, csv_labels.read)
BY_SPEC = (  # applies(spec: str, or a DataFrame: the table reader first)
    TABLE,
    Reader("animal_mnist", lambda spec: spec == "animal_mnist", packaged.read_animal_mnist),
    Reader("fashion_mnist", lambda spec: spec == "fashion_mnist", packaged.read_fashion_mnist),
    Reader("openclipart", lambda spec: spec == "openclipart", packaged.read_openclipart),
    Reader("tuxpaint_photos", lambda spec: spec == "tuxpaint_photos", photos.read),
    Reader("tfds:NAME", lambda spec: spec.startswith("tfds:"), tfds_datasets.read),
    Reader("NAME:PATH", lambda spec: course_datasets.parse_spec(spec) is not None, course_datasets.read),
)
TABLE_OPTIONS = ("path_column", "label_column", "split_column", "label_delimiter")  # ReadOptions' fields for tables
BY_FOLDER = (  # applies(folder: pathlib.Path), tried in this order
    Reader("fashion_mnist idx files", packaged.is_fashion_mnist_folder, packaged.read_fashion_mnist),
    Reader("a course dataset's layout", lambda root: course_datasets.recognise(root) is not None,
           course_datasets.read),
    Reader("split lists", folders.has_split_lists, folders.read_split_lists),
    Reader("train/ and test/ folders", folders.has_train_test_folders, folders.read_train_test_folders),
    Reader("class folders", lambda root: True, folders.read_class_folders),
)


def find_reader(spec):
    """The :class:`Reader` of ``spec``. It reads no image and needs no TensorFlow, so a job asks it before
    TensorFlow loads: a path that does not exist is a ``FileNotFoundError`` ("no such folder"), a folder
    with the marker files of two layouts a ``ValueError`` naming them (:func:`folder_layouts`)."""
    reader = next((reader for reader in BY_SPEC if reader.applies(spec)), None)
    if reader is not None:
        if reader.name == "NAME:PATH":
            check_course_folder(spec, course_datasets.parse_spec(spec)[1])
        if reader is TABLE:
            csv_labels.check_table(spec)
        return reader
    root = pathlib.Path(spec)
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(f"Dataset {spec!r} is a file, not a folder: expected a folder of images, "
                                 f"a .csv or .tsv table, one of {', '.join(NAMED_DATASETS)}, or NAME:PATH.")
    if not root.exists():
        if looks_like_path(spec):
            raise missing_folder_error(root)
        courses = tuple(f"{name}:PATH" for name in course_datasets.LOADERS)
        raise FileNotFoundError(f"Dataset {spec!r} is neither a folder nor one of {', '.join(NAMED_DATASETS)} "
                                f"(nor NAME:PATH, NAME one of {', '.join(course_datasets.LOADERS)})."
                                + messages.did_you_mean(spec, NAMED_DATASETS + courses))
    layouts = folder_layouts(root)
    if len(layouts) > 1:
        found = "; ".join(f"{', '.join(markers)} ({name})" for name, markers in layouts.items())
        named = [name for name in layouts if name in course_datasets.LOADERS]
        raise ValueError(f"Dataset folder {spec} holds the marker files of {len(layouts)} layouts: {found}. "
                         f"Name the one you mean ({' or '.join(f'{name}:{spec}' for name in named)}), "
                         "or keep one dataset per folder.")
    return next(reader for reader in BY_FOLDER if reader.applies(root))


def looks_like_path(spec):
    """Whether ``spec`` is meant as a path: it holds a path separator, starts with ``.`` or ``~``, or has a
    file suffix (``flowers.zip``)."""
    return (any(separator in spec for separator in (os.sep, os.altsep) if separator)
            or spec.startswith((".", "~")) or bool(pathlib.PurePath(spec).suffix))


def missing_folder_error(path, where=""):
    """The ``FileNotFoundError`` "no such folder: PATH" (``where``: after it), with the close names
    beside the first part of ``path`` that does not exist (one listing, of at most 1000 entries)."""
    path = pathlib.Path(path)
    first = next(part for part in reversed([path, *path.parents]) if not part.exists())
    try:
        names = [child.name for child in itertools.islice(first.parent.iterdir(), 1000) if child.is_dir()]
    except OSError:  # the parent is a file, or cannot be listed
        names = []
    close = [str(first.parent / name / path.relative_to(first))
             for name in messages.close_matches(first.name, names, n=3)]
    return FileNotFoundError(f"no such folder: {path}{where}."
                             + (f" Did you mean {', '.join(close)}?" if close else ""))


def check_course_folder(spec, path):
    """A ``FileNotFoundError`` when neither ``path`` of ``NAME:PATH`` nor, for ``NAME:PATH:N``, its PATH exists."""
    candidates = [path, path.rpartition(":")[0]] if ":" in path else [path]
    if path and not any(pathlib.Path(candidate).expanduser().exists() for candidate in candidates):
        raise missing_folder_error(pathlib.Path(candidates[-1]).expanduser(), f" (dataset={spec!r})")


def folder_layouts(root):
    """``{layout: [its marker files found]}`` for each layout whose marker files ``root`` holds: Fashion-MNIST's
    idx files, a course dataset's (:func:`keras_tl.data.course_datasets.layout_markers`), MIT-67's split lists."""
    layouts = {name: [str(path.relative_to(root)) for path in paths]
               for name, paths in course_datasets.layout_markers(root).items()}
    if packaged.is_fashion_mnist_folder(root):
        layouts["fashion_mnist"] = ["train-images-idx3-ubyte.gz"]
    if folders.has_split_lists(root):
        layouts["mit67"] = ["TrainImages.txt", "TestImages.txt"]
    return layouts


def load_dataset(spec="animal_mnist", *, test_fraction=0.2, seed=0, train_per_class=None, test_per_class=None,
                 min_images_per_class=40, cache_dir=None, verbose=True, tfds_data_dir=None, path_column=None,
                 label_column=None, split_column=None, label_delimiter=None):
    """Find a dataset by name or path (see the module docstring) and return an :class:`~keras_tl.data.ImageDataset`.

    ``train_per_class``/``test_per_class`` keep a seeded subset of each class (quick runs).
    ``min_images_per_class`` applies to the clip-art folders, whose smallest categories hold 3 images.
    Image files are decode-checked first (cached in ``cache_dir``, see
    :func:`~keras_tl.data.images.decode_cache_file`; a progress bar unless ``verbose`` is false):
    unreadable ones are skipped with one warning and listed in ``dataset.skipped``. Before any
    decoding, an empty folder, an empty class folder and a single class are errors that say what
    was expected. ``tfds_data_dir``: where ``tfds:NAME`` datasets are read. ``path_column``, ``label_column``,
    ``split_column``, ``label_delimiter``: a table's (``spec`` a ``.csv`` or ``.tsv`` file, or a DataFrame, see
    :mod:`keras_tl.data.csv_labels`), an error for any other dataset.
    """
    if not csv_labels.is_dataframe(spec):
        spec = os.path.expanduser(os.fspath(spec))
    options = ReadOptions(test_fraction=test_fraction, seed=seed, cache_dir=cache_dir, verbose=verbose,
                          min_images_per_class=min_images_per_class, tfds_data_dir=tfds_data_dir,
                          path_column=path_column, label_column=label_column, split_column=split_column,
                          label_delimiter=label_delimiter)
    reader = find_reader(spec)
    table_options = [f"{name}={getattr(options, name)!r}" for name in TABLE_OPTIONS
                     if getattr(options, name) is not None]
    if table_options and reader is not TABLE:
        raise ValueError(f"{', '.join(table_options)}: only a .csv or .tsv table (or a DataFrame) has columns; "
                         f"dataset={spec!r} is read as {reader.name}.")
    dataset = reader.read(spec, options)
    if train_per_class:
        dataset.train = dataset.train.subset(per_class_subset(dataset.train.labels, train_per_class, seed))
    if test_per_class:
        dataset.test = dataset.test.subset(per_class_subset(dataset.test.labels, test_per_class, seed))
    dataset.warn_degenerate_classes()
    return dataset
