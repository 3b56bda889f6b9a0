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

Every file a split names must exist (one ``FileNotFoundError`` says how many are missing and shows
the first few); then the files get the decode check of every folder dataset
(:func:`keras_tl.data.folders.file_dataset`). :func:`recognise` tells a published layout by its marker
files, so ``load_dataset(PATH)`` without the name works too.
"""
import pathlib

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
    folder = pathlib.Path(folder)
    for name, markers in MARKERS.items():
        for candidate in [folder] + [folder / child for child in ACCEPTED_SUBFOLDERS.get(name, ())]:
            if all(next(candidate.glob(marker), None) for marker in markers):
                return name
    return None


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


def _columns(path):
    """The ``id value`` lines of a CUB table as ``{id: value}``."""
    rows = (line.split(maxsplit=1) for line in path.read_text().splitlines() if line.strip())
    return {row[0]: row[1].strip() for row in rows}


def _mat(path):
    import scipy.io

    return scipy.io.loadmat(path)


# ----------------------------------------------------------------------------- one loader per layout


def _mit67(path, seed):
    root = _find_folder(path, "mit67", ("TrainImages.txt", "TestImages.txt", "Images"))
    return root, folders.split_lists(root)


def _cub200(path, seed):
    tables = ("images", "image_class_labels", "train_test_split", "classes")
    root = _find_folder(path, "cub200", [f"{table}.txt" for table in tables] + ["images"])
    images, labels, is_train, classes = (_columns(root / f"{table}.txt") for table in tables)
    unmatched = sorted((set(images) - set(labels)) | (set(images) - set(is_train)), key=int)
    if unmatched:
        raise ValueError(f"{root}: image_class_labels.txt or train_test_split.txt lacks {len(unmatched)} image id(s) "
                         f"of images.txt, e.g. {unmatched[:3]}.")
    entries = {"train": [], "test": []}
    for image_id, relative in images.items():
        entries["train" if is_train[image_id] == "1" else "test"].append(
            (classes[labels[image_id]], root / "images" / relative))
    return root, _check_listed(_grouped(entries), root / "images.txt")


def _flowers102(path, seed):
    root = _find_folder(path, "flowers102", ("jpg", "imagelabels.mat", "setid.mat"))
    labels = _mat(root / "imagelabels.mat")["labels"].ravel().astype(int)  # label of image_{i:05d}.jpg at i - 1
    set_ids = _mat(root / "setid.mat")
    entries = {split: [(f"class_{labels[image_id - 1]:03d}", root / "jpg" / f"image_{image_id:05d}.jpg")
                       for key in keys for image_id in set_ids[key].ravel().astype(int)]
               for split, keys in (("train", ("trnid", "valid")), ("test", ("tstid",)))}
    return root, _check_listed(_grouped(entries), root / "setid.mat")


def _oxford_pets(path, seed):
    root = _find_folder(path, "oxford_pets", ("images", "annotations/trainval.txt", "annotations/test.txt"))
    entries = {}
    for split, listing in (("train", "trainval.txt"), ("test", "test.txt")):
        lines = (root / "annotations" / listing).read_text().splitlines()
        images = [line.split()[0] for line in lines if line.strip() and not line.startswith("#")]
        # "Image CLASS-ID SPECIES BREED-ID": the breed is the image name without its number
        entries[split] = [(image.rsplit("_", 1)[0], root / "images" / f"{image}.jpg") for image in images]
    return root, _check_listed(_grouped(entries), f"{root / 'annotations'}/trainval.txt and test.txt")


def _stanford_dogs(path, seed):
    root = _find_folder(path, "stanford_dogs", ("Images", "train_list.mat", "test_list.mat"))
    entries = {}
    for split in ("train", "test"):
        # file_list: a cell array of "n02085620-Chihuahua/n02085620_5927.jpg"; the breed follows the synset id
        relatives = [str(np.ravel(cell)[0]) for cell in _mat(root / f"{split}_list.mat")["file_list"].ravel()]
        entries[split] = [(relative.split("/")[0].split("-", 1)[-1], root / "Images" / relative)
                          for relative in relatives]
    return root, _check_listed(_grouped(entries), f"{root}/train_list.mat and test_list.mat")


def _caltech101(path, seed):
    path = pathlib.Path(path).expanduser()
    folder = next((path / child for child in ACCEPTED_SUBFOLDERS["caltech101"] if (path / child).is_dir()), path)
    if not folder.is_dir():
        raise FileNotFoundError(f"dataset='caltech101:{path}': {path} is not a folder.")
    files = folders.class_files(folder)
    files.pop("BACKGROUND_Google", None)  # clutter, not a category: the FNE paper's protocol leaves it out
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
    return root, _check_listed(_grouped(entries), f"{root / 'meta'}/train.txt and test.txt")


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
    return root, _check_listed(_grouped(entries), listing)


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
