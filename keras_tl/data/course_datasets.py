"""The course's datasets, read in the layouts they are published in: ``load_dataset("NAME:PATH")``.

PATH is the folder as the dataset is distributed, unpacked and untouched (each page in ``datasets/``
shows its tree); where an archive unpacks into one top folder, that folder and the folder holding
it both work. Every loader keeps the published train/test split:

- ``mit67``: MIT Indoor-67 (Quattoni & Torralba 2009), ``TrainImages.txt``/``TestImages.txt``;
- ``cub200``: CUB-200-2011 (Wah et al. 2011), ``train_test_split.txt``;
- ``flowers102``: Oxford Flowers-102 (Nilsback & Zisserman 2008), ``setid.mat``: train = ``trnid`` +
  ``valid``, test = ``tstid``, as the Full-Network Embedding paper uses it;
- ``oxford_pets``: Oxford-IIIT Pets (Parkhi et al. 2012), ``annotations/trainval.txt`` and ``test.txt``;
- ``stanford_dogs``: Stanford Dogs (Khosla et al. 2011), ``train_list.mat`` and ``test_list.mat``;
- ``caltech101``: Caltech-101 (Fei-Fei et al. 2004), no published split: 30 seeded train images per
  class, the rest test (the FNE paper's protocol), ``BACKGROUND_Google`` left out;
- ``food101``: Food-101 (Bossard et al. 2014), ``meta/train.txt`` and ``meta/test.txt``;
- ``dtd``: Describable Textures (Cimpoi et al. 2014), ``dtd:PATH:N`` takes split N (1..10, default 1),
  its train and val lists as train;
- ``cats_vs_dogs``: Kaggle's Dogs vs. Cats ``train/`` folder (``cat.0.jpg``, ``dog.0.jpg``), a seeded
  stratified split (``test_fraction``).

Every list and metadata file is checked before any image is read: an entry that leaves the dataset
folder (absolute, or with ``..``), a malformed line or ``.mat`` field (an id that is no whole number or
is out of range, a class id that ``classes.txt`` lacks, a CUB split flag other than 0 or 1, an HTML page
saved in a file's place) is one :class:`DatasetListError` naming the file and the field. An image listed
in both train and test is left out of train, with one warning that gives the count, so that no test
image is trained on. Every file a split names must exist (one ``FileNotFoundError`` says how many are
missing and shows the first few); then the files get the decode check of every folder dataset
(:func:`keras_tl.data.folders.file_dataset`). :func:`recognise` tells a published layout by its marker
files, so ``load_dataset(PATH)`` without the name works too.
"""
import pathlib
import re
import warnings

import numpy as np

from keras_tl import messages
from keras_tl.data import folders
from keras_tl.data.image_sets import per_class_subset
from keras_tl.data.images import image_files

CALTECH101_TRAIN_PER_CLASS = 30  # Fei-Fei et al. 2004, and the FNE paper
DTD_SPLITS = range(1, 11)
# the files that tell a layout, looked for in the folder and in the sub-folders that are accepted for it
MARKERS = {"cub200": ("images.txt", "train_test_split.txt"), "flowers102": ("imagelabels.mat", "setid.mat"),
           "oxford_pets": ("annotations/trainval.txt",), "stanford_dogs": ("train_list.mat",),
           "food101": ("meta/train.txt",), "dtd": ("labels/train1.txt",), "caltech101": ("BACKGROUND_Google",),
           "cats_vs_dogs": ("cat.*.jpg", "dog.*.jpg")}
ACCEPTED_SUBFOLDERS = {"cub200": ("CUB_200_2011",), "flowers102": ("flowers-102",), "food101": ("food-101",),
                       "oxford_pets": ("oxford-iiit-pet",), "dtd": ("dtd",), "caltech101": ("101_ObjectCategories", "caltech-101/101_ObjectCategories"),
                       "cats_vs_dogs": ("train",)}


class DatasetListError(ValueError):
    """A list or metadata file of a published layout that does not read as published; the message names
    the file and the field."""


def parse_spec(spec):
    """``(NAME, PATH)`` when ``spec`` reads ``NAME:PATH`` (and is not itself a path), else None.

    A one-letter NAME is a Windows drive (``C:\\data``), not a dataset name.
    """
    name, colon, path = str(spec).partition(":")
    if colon and len(name) > 1 and name.isidentifier() and not pathlib.Path(spec).exists():
        return name, path
    return None


def recognise(folder):
    """The NAME of the published layout that ``folder`` (or an accepted sub-folder) has, or None."""
    return next(iter(layout_markers(folder)), None)


def layout_markers(folder):
    """``{NAME: [the marker files found]}`` for each published layout whose marker files are all in ``folder``
    (or an accepted sub-folder): more than one means the folder mixes two datasets."""
    folder, found = pathlib.Path(folder), {}
    for name, markers in MARKERS.items():
        for candidate in [folder] + [folder / child for child in ACCEPTED_SUBFOLDERS.get(name, ())]:
            paths = [next(candidate.glob(marker), None) for marker in markers]
            if all(paths):
                found[name] = paths
                break
    return found


def read(spec, options):
    """The course dataset of ``spec``, ``"NAME:PATH"`` or a folder in a published layout (:func:`recognise`),
    as an :class:`~keras_tl.data.ImageDataset` named NAME.

    ``options.seed`` draws Caltech-101's train images and the cats-vs-dogs split (with
    ``options.test_fraction``); ``options.cache_dir`` and ``options.verbose`` are the decode check's.
    """
    name, path = parse_spec(spec) or (recognise(spec), spec)
    if name not in LOADERS:
        raise ValueError(f"Unknown dataset name {name!r} in dataset='{name}:{path}': expected NAME:PATH with NAME "
                         f"one of {', '.join(LOADERS)}." + messages.did_you_mean(name, LOADERS))
    root, splits = LOADERS[name](path, options.seed)
    return folders.file_dataset(name, root, splits, options)


# ----------------------------------------------------------------------------- shared steps


def _find_folder(path, name, required):
    """The folder of dataset ``name``: ``path``, or an accepted sub-folder, that holds every ``required`` file."""
    path = pathlib.Path(path).expanduser()
    candidates = [path] + [path / child for child in ACCEPTED_SUBFOLDERS.get(name, ())]
    for folder in candidates:
        if all((folder / entry).exists() for entry in required):
            return folder
    if not path.is_dir():
        raise FileNotFoundError(f"dataset='{name}:{path}': {path} is not a folder.")
    folder = next((folder for folder in candidates if any((folder / entry).exists() for entry in required)), path)
    missing = [entry for entry in required if not (folder / entry).exists()]
    inside = ACCEPTED_SUBFOLDERS.get(name)
    raise FileNotFoundError(f"dataset='{name}:{path}': {folder} lacks {', '.join(missing)}; expected the folder as "
                            f"published (see datasets/{name}.md)"
                            + (f", or the one holding {' or '.join(inside)}." if inside else "."))


def _grouped(entries):
    """``{split: {class: [files]}}`` from ``{split: [(class, file)]}``, every class present in every split."""
    classes = sorted({label for pairs in entries.values() for label, _ in pairs})
    splits = {split: {label: [] for label in classes} for split in entries}
    for split, pairs in entries.items():
        for label, path in pairs:
            splits[split][label].append(str(path))
    return splits


def _check_listed(splits, listing):
    """``splits`` when every file exists, else one ``FileNotFoundError`` naming the count and the first few."""
    missing = [path for classes in splits.values() for files in classes.values() for path in files
               if not pathlib.Path(path).is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} image(s) listed in {listing} not found, e.g. "
                                f"{', '.join(missing[:3])}. Is the download complete?")
    return splits


def _published(entries, listing):
    """The checked ``{split: {class: [files]}}`` of a published split ``{"train": [(class, file)], "test": [...]}``.

    A file listed in both splits is left out of train, with one warning: the published test set stays
    whole, and no test image is trained on. Every file must exist (:func:`_check_listed`).
    """
    test = {str(path) for _, path in entries["test"]}
    both = sorted({str(path) for _, path in entries["train"]} & test)
    if both:
        warnings.warn(f"{listing}: {len(both)} image(s) listed in both train and test, e.g. {', '.join(both[:3])}; "
                      f"leaving them out of train, so that no test image is trained on.", stacklevel=4)
        entries = {**entries, "train": [(label, path) for label, path in entries["train"] if str(path) not in test]}
    return _check_listed(_grouped(entries), listing)


def _refuse(bad, listing, field, problem, expected):
    """One :class:`DatasetListError` naming ``listing``, its ``field``, the count of ``bad`` values and the first
    few, when there are any."""
    if bad:
        raise DatasetListError(f"{listing}, {field}: {len(bad)} value(s) {problem}, e.g. "
                               f"{', '.join(map(str, bad[:3]))}. Expected {expected}.")


def _inside(entries, listing, field, in_a_folder=False):
    """``entries``, paths relative to the dataset folder, when none leaves it (absolute, or a ``..`` step)
    and, ``in_a_folder``, each is ``class/file``; else a :class:`DatasetListError` naming them."""
    _refuse([repr(entry) for entry in entries if folders.leaves_folder(entry)],
            listing, field, "leave the dataset folder", "paths inside it (no absolute paths, no '..')")
    if in_a_folder:
        _refuse([repr(entry) for entry in entries if not re.search(r".[\\/].", entry)],
                listing, field, "name no class folder", "class/file paths")
    return entries


def _lines(path):
    """``(line number, line)`` of the lines of a text list that are not blank; undecodable text is a
    :class:`DatasetListError` naming the file."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise DatasetListError(f"{path} is not a text file ({error}); download the dataset again.") from error
    return [(number, line.strip()) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]


def _whole(text):
    """``text`` as an int when it is a whole number written in digits, else None."""
    return int(text) if re.fullmatch(r"[0-9]+", text) else None


def _table(path, column):
    """A CUB table of ``<id> <column>`` lines as ``{id: value}``; a line without both, an id that is no whole
    number or a repeated id is a :class:`DatasetListError` naming the line."""
    table = {}
    for number, line in _lines(path):
        fields = line.split(maxsplit=1)
        if len(fields) < 2 or _whole(fields[0]) is None or _whole(fields[0]) in table:
            raise DatasetListError(f"{path} line {number}: expected '<id> <{column}>' with a whole-number id not "
                                   f"used before, not {line[:80]!r}.")
        table[_whole(fields[0])] = fields[1]
    return table


def _mat(path, fields):
    """The ``fields`` of the MATLAB file ``path``; a file scipy cannot read (an HTML page saved in its place)
    or one that lacks a field is a :class:`DatasetListError` naming it."""
    import scipy.io

    with open(path, "rb") as handle:
        html = handle.read(512).lstrip()[:1] == b"<"
    try:
        contents = scipy.io.loadmat(path)
    except Exception as error:  # scipy raises anything from IndexError to MatReadError on a file that is no MAT-file
        looks = ", it starts like an HTML page: a failed download?" if html else ""
        raise DatasetListError(f"{path} is not a MATLAB file scipy can read ({type(error).__name__}: {error}{looks}); "
                               f"download it again.") from error
    missing = [field for field in fields if field not in contents]
    if missing:
        found = [key for key in contents if not key.startswith("__")]
        raise DatasetListError(f"{path} has no field {', '.join(map(repr, missing))}; expected {', '.join(fields)} "
                               f"(it has {', '.join(found) or 'none'}).")
    return [contents[field] for field in fields]


def _numbers(values, listing, field, highest=None, meaning="numbers"):
    """The values of a ``.mat`` field as whole numbers 1..``highest`` (any from 1 without it), else a
    :class:`DatasetListError` naming the field."""
    values = np.ravel(values)
    if values.dtype.kind not in "iuf" or not values.size:
        raise DatasetListError(f"{listing}, {field}: expected {meaning}, found {values.size} value(s) of type "
                               f"{values.dtype}.")
    numbers = values.astype(float)
    limit = np.inf if highest is None else highest
    bad = values[~np.isfinite(numbers) | (numbers != np.round(numbers)) | (numbers < 1) | (numbers > limit)]
    _refuse(bad.tolist(), listing, field, f"not a whole number in 1..{highest or 'N'}", meaning)
    return numbers.astype(int)


# ----------------------------------------------------------------------------- one loader per layout


def _mit67(path, seed):
    root = _find_folder(path, "mit67", ("TrainImages.txt", "TestImages.txt", "Images"))
    entries = {split: [(label, file) for label, files in classes.items() for file in files]
               for split, classes in folders.split_lists(root).items()}
    return root, _published(entries, f"{root}/TrainImages.txt and TestImages.txt")


def _cub200(path, seed):
    tables = {"images": "image path", "image_class_labels": "class id", "train_test_split": "is_training_image",
              "classes": "class name"}
    root = _find_folder(path, "cub200", [f"{table}.txt" for table in tables] + ["images"])
    images, labels, is_train, classes = (_table(root / f"{table}.txt", column) for table, column in tables.items())
    unmatched = sorted((set(images) - set(labels)) | (set(images) - set(is_train)))
    if unmatched:
        raise DatasetListError(f"{root}: image_class_labels.txt or train_test_split.txt lacks {len(unmatched)} image "
                               f"id(s) of images.txt, e.g. {unmatched[:3]}.")
    _inside(list(images.values()), root / "images.txt", "image path", in_a_folder=True)
    _refuse([f"image {image_id}: {labels[image_id]!r}" for image_id in images
             if _whole(labels[image_id]) not in classes],
            root / "image_class_labels.txt", "class id", "missing from classes.txt",
            f"the ids of classes.txt ({len(classes)} classes)")
    _refuse([f"image {image_id}: {is_train[image_id]!r}" for image_id in images
             if is_train[image_id] not in ("0", "1")],
            root / "train_test_split.txt", "is_training_image", "not 0 or 1", "1 (train) or 0 (test)")
    entries = {"train": [], "test": []}
    for image_id, relative in images.items():
        entries["train" if is_train[image_id] == "1" else "test"].append(
            (classes[_whole(labels[image_id])], root / "images" / relative))
    return root, _published(entries, root / "images.txt")


def _flowers102(path, seed):
    root = _find_folder(path, "flowers102", ("jpg", "imagelabels.mat", "setid.mat"))
    (labels,) = _mat(root / "imagelabels.mat", ["labels"])
    labels = _numbers(labels, root / "imagelabels.mat", "labels", meaning="class numbers from 1")
    # labels[i - 1] is the label of image_{i:05d}.jpg; setid.mat lists the image numbers i of each part
    parts = dict(zip(("trnid", "valid", "tstid"), _mat(root / "setid.mat", ["trnid", "valid", "tstid"])))
    image_numbers = {key: _numbers(ids, root / "setid.mat", key, len(labels),
                                   f"image numbers 1..{len(labels)}, as imagelabels.mat labels {len(labels)} images")
                     for key, ids in parts.items()}
    entries = {split: [(f"class_{labels[number - 1]:03d}", root / "jpg" / f"image_{number:05d}.jpg")
                       for key in keys for number in image_numbers[key]]
               for split, keys in (("train", ("trnid", "valid")), ("test", ("tstid",)))}
    return root, _published(entries, root / "setid.mat")


def _oxford_pets(path, seed):
    root = _find_folder(path, "oxford_pets", ("images", "annotations/trainval.txt", "annotations/test.txt"))
    entries = {}
    for split, listing in (("train", "trainval.txt"), ("test", "test.txt")):
        images = []
        for number, line in _lines(root / "annotations" / listing):
            if line.startswith("#"):
                continue
            fields = line.split()
            if len(fields) != 4 or not all(field.isdigit() for field in fields[1:]):
                raise DatasetListError(f"{root / 'annotations' / listing} line {number}: expected 'Image CLASS-ID "
                                       f"SPECIES BREED-ID' (a name and three whole numbers), not {line[:80]!r}.")
            images.append(fields[0])
        _inside(images, root / "annotations" / listing, "Image")
        # the breed is the image name without its number
        entries[split] = [(image.rsplit("_", 1)[0], root / "images" / f"{image}.jpg") for image in images]
    return root, _published(entries, f"{root / 'annotations'}/trainval.txt and test.txt")


def _stanford_dogs(path, seed):
    root = _find_folder(path, "stanford_dogs", ("Images", "train_list.mat", "test_list.mat"))
    entries = {}
    for split in ("train", "test"):
        # file_list: a cell array of "n02085620-Chihuahua/n02085620_5927.jpg"; the breed follows the synset id
        listing = root / f"{split}_list.mat"
        (file_list,) = _mat(listing, ["file_list"])
        texts = [np.ravel(cell) if isinstance(cell, np.ndarray) else None for cell in np.ravel(file_list)]
        _refuse([f"entry {number}" for number, text in enumerate(texts, start=1)
                 if text is None or text.dtype.kind != "U" or text.size != 1],
                listing, "file_list", "not a string", "a cell array of breed/file paths")
        relatives = _inside([str(text[0]) for text in texts], listing, "file_list", in_a_folder=True)
        entries[split] = [(relative.split("/")[0].split("-", 1)[-1], root / "Images" / relative)
                          for relative in relatives]
    return root, _published(entries, f"{root}/train_list.mat and test_list.mat")


def _caltech101(path, seed):
    path = pathlib.Path(path).expanduser()
    folder = next((path / child for child in ACCEPTED_SUBFOLDERS["caltech101"] if (path / child).is_dir()), path)
    if not folder.is_dir():
        raise FileNotFoundError(f"dataset='caltech101:{path}': {path} is not a folder.")
    files = folders.class_files(folder)
    files.pop("BACKGROUND_Google", None)  # clutter, not a category: the FNE paper's protocol leaves it out
    small = [f"{label} ({len(paths)})" for label, paths in files.items() if len(paths) <= CALTECH101_TRAIN_PER_CLASS]
    if small:
        raise ValueError(f"caltech101 takes {CALTECH101_TRAIN_PER_CLASS} train images a class and tests on the rest, "
                         f"so each class needs at least {CALTECH101_TRAIN_PER_CLASS + 1} images; {folder} has "
                         f"{len(small)} class(es) with fewer: {', '.join(small[:5])}"
                         f"{', ...' if len(small) > 5 else ''}. Is the download complete?")
    pairs = [(label, file) for label, paths in files.items() for file in paths]
    in_train = np.zeros(len(pairs), dtype=bool)
    labels = np.repeat(np.arange(len(files)), [len(paths) for paths in files.values()])
    in_train[per_class_subset(labels, CALTECH101_TRAIN_PER_CLASS, seed)] = True
    entries = {"train": [pair for pair, chosen in zip(pairs, in_train) if chosen],
               "test": [pair for pair, chosen in zip(pairs, in_train) if not chosen]}
    return folder, _grouped(entries)


def _food101(path, seed):
    root = _find_folder(path, "food101", ("images", "meta/train.txt", "meta/test.txt"))
    entries = {split: [(entry.split("/")[0], root / "images" / f"{entry}.jpg")
                       for entry in folders.read_split_list(root / "meta" / f"{split}.txt")]
               for split in ("train", "test")}
    return root, _published(entries, f"{root / 'meta'}/train.txt and test.txt")


def _dtd(path, seed):
    folder, colon, text = str(path).rpartition(":")
    if not colon or pathlib.Path(path).expanduser().exists():  # no ":N", or a folder whose name has a colon
        folder, number = path, 1
    elif text.isdigit() and int(text) in DTD_SPLITS:
        number = int(text)
    else:
        raise ValueError(f"dataset='dtd:{path}': expected dtd:PATH:N with N, the split, one of 1..10 "
                         f"(or dtd:PATH for split 1), not {text!r}.")
    lists = {"train": (f"train{number}.txt", f"val{number}.txt"), "test": (f"test{number}.txt",)}
    root = _find_folder(folder, "dtd", ["images"] + [f"labels/{name}" for names in lists.values() for name in names])
    entries = {split: [(entry.split("/")[0], root / "images" / entry)
                       for name in names for entry in folders.read_split_list(root / "labels" / name)]
               for split, names in lists.items()}
    listing = f"{root / 'labels'}/train{number}.txt, val{number}.txt and test{number}.txt"
    return root, _published(entries, listing)


def _cats_vs_dogs(path, seed):
    path = pathlib.Path(path).expanduser()
    folder = path / "train" if (path / "train").is_dir() else path
    pairs = [(pathlib.Path(file).name.split(".")[0].lower(), file) for file in image_files(folder)]
    pairs = [(label, file) for label, file in pairs if label in ("cat", "dog")]
    if not pairs:
        raise FileNotFoundError(f"dataset='cats_vs_dogs:{path}': no cat.N.jpg or dog.N.jpg in {folder}; expected "
                                f"Kaggle's train/ folder or the one holding it (see datasets/cats_vs_dogs.md).")
    return folder, _grouped({"all": pairs})


LOADERS = {"mit67": _mit67, "cub200": _cub200, "flowers102": _flowers102, "oxford_pets": _oxford_pets,
           "stanford_dogs": _stanford_dogs, "caltech101": _caltech101, "food101": _food101, "dtd": _dtd,
           "cats_vs_dogs": _cats_vs_dogs}
