"""The folder readers: a folder of ``<class>/`` folders, ``train/`` and ``test/`` folders of classes, or
MIT-67 style split lists (``TrainImages.txt``, ``TestImages.txt`` of ``class/file`` paths, relative to
``Images/`` when that folder exists); and :func:`file_dataset`, which every reader of image files
ends with (links shared by two classes left out, the decode check, the seeded split).
"""
import os
import pathlib
import re
import warnings

import numpy as np

from keras_tl.data.image_sets import ImageDataset, ImageSet, stratified_split
from keras_tl.data.images import IMAGE_EXTENSIONS, find_unreadable_images, image_files, warn_unreadable


def has_split_lists(root):
    """Whether ``root`` holds MIT-67 style split lists."""
    return (root / "TrainImages.txt").is_file() and (root / "TestImages.txt").is_file()


def has_train_test_folders(root):
    """Whether ``root`` holds ``train/`` and ``test/`` folders."""
    return (root / "train").is_dir() and (root / "test").is_dir()


def read_split_lists(spec, options):
    """The dataset of a folder with ``TrainImages.txt`` and ``TestImages.txt``, split as they say."""
    root = pathlib.Path(spec)
    return file_dataset(root.name, root, split_lists(root), options)


def read_train_test_folders(spec, options):
    """The dataset of a folder with ``train/<class>/`` and ``test/<class>/``, split as they are."""
    root = pathlib.Path(spec)
    return file_dataset(root.name, root, train_test_trees(root), options)


def read_class_folders(spec, options):
    """The dataset of a folder of ``<class>/`` folders (images found recursively), split by ``options``."""
    root = pathlib.Path(spec)
    return file_dataset(root.name, root, {"all": class_files(root)}, options)


def class_files(root, class_names=None):
    """``{class: [image files]}`` of a ``root/<class>/...`` tree; no class sub-folder at all is an error."""
    root = pathlib.Path(root)
    if class_names is None:
        class_names = sorted(entry.name for entry in root.iterdir()
                             if entry.is_dir() and not entry.name.startswith("."))
    if not class_names:
        entries = sorted(entry.name for entry in root.iterdir() if not entry.name.startswith("."))
        images = [name for name in entries if pathlib.Path(name).suffix.lower() in IMAGE_EXTENSIONS]
        shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
        found = ("nothing (hidden files and folders do not count)" if not entries else
                 f"{len(images)} image(s) but no sub-folders ({shown}): move each class's images into its own folder"
                 if images else f"no sub-folders and no image files, only: {shown}")
        raise FileNotFoundError(f"Expected class sub-folders of images in {root} (like {root / 'cat'}/1.jpg); "
                                f"found {found}.")
    return {name: image_files(root / name) for name in class_names}


def train_test_trees(root):
    """``train/<class>/`` and ``test/<class>/`` folders, which must hold the same classes."""
    train_classes, test_classes = (set(class_files(root / split)) for split in ("train", "test"))
    if train_classes != test_classes:
        raise ValueError(f"train/ and test/ under {root} have different classes: only in train: "
                         f"{sorted(train_classes - test_classes) or 'none'}; "
                         f"only in test: {sorted(test_classes - train_classes) or 'none'}.")
    return {split: class_files(root / split) for split in ("train", "test")}


def leaves_folder(entry):
    """Whether ``entry``, a path read from a list relative to a dataset folder, leaves it: an absolute path
    (``/x``, ``\\x``, ``C:x``) or a ``..`` step."""
    return bool(re.match(r"[\\/]|[A-Za-z]:", entry)) or ".." in re.split(r"[\\/]", entry)


def read_split_list(path):
    """The ``class/file`` lines of a split list: ``\\`` read as ``/``, CRLF and blank lines handled, repeats dropped."""
    lines = [line.strip().replace("\\", "/") for line in path.read_text(encoding="utf-8-sig").splitlines()]
    lines = [line for line in lines if line]
    entries = list(dict.fromkeys(lines))  # the first of each repeated line, in order
    if len(entries) < len(lines):
        warnings.warn(f"{path}: dropped {len(lines) - len(entries)} duplicate line(s).", stacklevel=5)
    without_class = [entry for entry in entries if "/" not in entry]
    if without_class:
        raise ValueError(f"{path} has {len(without_class)} line(s) with no class folder, e.g. {without_class[:3]}: "
                         f"expected one class/file path per line, like bar/1.jpg.")
    escaping = [entry for entry in entries if leaves_folder(entry)]
    if escaping:
        raise ValueError(f"{path} has {len(escaping)} line(s) that leave the dataset folder, e.g. {escaping[:3]}: "
                         f"expected class/file paths inside it, like bar/1.jpg (no absolute paths, no '..').")
    return entries


def split_lists(root):
    """MIT-67 style: ``TrainImages.txt`` and ``TestImages.txt`` list ``class/file`` paths."""
    image_root = root / "Images" if (root / "Images").is_dir() else root
    lists = {"train": read_split_list(root / "TrainImages.txt"), "test": read_split_list(root / "TestImages.txt")}
    classes = {split: {entry.split("/")[0] for entry in entries} for split, entries in lists.items()}
    if classes["train"] != classes["test"]:
        raise ValueError(f"TrainImages.txt and TestImages.txt under {root} name different classes: "
                         f"{sorted(classes['train'] ^ classes['test'])}.")
    missing = [entry for entries in lists.values() for entry in entries if not (image_root / entry).is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} listed image(s) not found under {image_root}, e.g. {missing[:3]}.")
    return {split: {name: [str(image_root / entry) for entry in entries if entry.split("/")[0] == name]
                    for name in sorted(classes[split])}
            for split, entries in lists.items()}


def drop_ambiguous_files(splits):
    """Leave out every file that is the same file (a link, or a path through one) as a file of another class.

    Its label is ambiguous, and a copy in train and one in test would be a leak. Debian's openclipart-png
    links one picture into several category folders (1,221 links). A file listed twice in one class
    is kept once. Returns ``(splits, {dropped path: its classes})``.
    """
    real = {path: os.path.realpath(path) for classes in splits.values() for files in classes.values() for path in files}
    classes_of = {}
    for classes in splits.values():
        for label, files in classes.items():
            for path in files:
                classes_of.setdefault(real[path], set()).add(label)
    dropped = {path: sorted(classes_of[real[path]]) for path in real if len(classes_of[real[path]]) > 1}

    def one_path_per_picture(files):
        first = {}
        for path in files:
            if path not in dropped:
                first.setdefault(real[path], path)
        return list(first.values())

    kept = {split: {label: one_path_per_picture(files) for label, files in classes.items()}
            for split, classes in splits.items()}
    return kept, dropped


def file_dataset(name, root, splits, options, min_images=1, multi_label=False):
    """An :class:`ImageDataset` from ``{split: {class: [files]}}``, split ``"all"`` still to be divided
    (with ``options.test_fraction`` and ``options.seed``).

    Checks run before any decoding: files that are one file in two classes are left out with one
    warning (:func:`drop_ambiguous_files`), no class may be empty (with ``min_images`` > 1, smaller
    classes are dropped instead) and at least two are needed. Then every file is decode-checked;
    unreadable files are skipped with one warning, and a class left with no images is an error that names it.
    ``multi_label``: a file listed in several classes is one image with several labels instead, and the labels
    are multi-hot rows (:func:`multi_hot_set`).
    """
    def drop_small(splits):
        if min_images <= 1:
            return splits
        return {split: {label: files for label, files in classes.items() if len(files) >= min_images}
                for split, classes in splits.items()}

    splits, ambiguous = (splits, {}) if multi_label else drop_ambiguous_files(splits)
    if ambiguous:
        shown = "\n  ".join(f"{path} (in {', '.join(labels)})" for path, labels in sorted(ambiguous.items())[:5])
        warnings.warn(f"Leaving out {len(ambiguous)} file(s) that are one file in more than one class (links or "
                      f"repeated paths), so their label is ambiguous:\n  {shown}"
                      + ("\n  ..." if len(ambiguous) > 5 else ""), stacklevel=4)
    splits = drop_small(splits)
    empty = sorted({label for classes in splits.values() for label, files in classes.items() if not files})
    if empty:
        raise ValueError(f"Class folder(s) with no images under {root}: {', '.join(empty)} "
                         f"(expected image files, {', '.join(IMAGE_EXTENSIONS)}, in every class folder).")
    class_names = sorted(next(iter(splits.values())))
    if len(class_names) < 2:
        raise ValueError(f"{root} has {len(class_names)} class ({class_names}); classification needs at least 2: "
                         f"one sub-folder of images per class.")
    bad = find_unreadable_images([path for classes in splits.values() for files in classes.values() for path in files],
                                 options.cache_dir, options.verbose)
    if bad:
        warn_unreadable(bad, stacklevel=4)
        splits = drop_small({split: {label: [path for path in files if path not in bad]
                                     for label, files in classes.items()}
                             for split, classes in splits.items()})
    emptied = sorted(label + ("" if split == "all" else f" ({split})")
                     for split, classes in splits.items() for label, files in classes.items() if not files)
    if emptied:
        raise ValueError(f"No readable images left in class(es) {', '.join(emptied)} under {root}: every file "
                         f"was skipped (see the warning). Replace or remove the damaged files, or the class folder.")
    class_names = sorted(next(iter(splits.values())))
    image_sets = {split: multi_hot_set(classes, class_names) if multi_label else
                  ImageSet(labels=np.array([index for index, label in enumerate(class_names)
                                            for _ in classes[label]], dtype=int),
                           paths=np.array([path for label in class_names for path in classes[label]]))
                  for split, classes in splits.items()}
    if "all" in image_sets:
        train, test = stratified_split(image_sets["all"].labels, options.test_fraction, options.seed)
        image_sets = {"train": image_sets["all"].subset(train), "test": image_sets["all"].subset(test)}
    return ImageDataset(name, class_names, image_sets["train"], image_sets["test"], skipped=sorted(bad.items()))


def multi_hot_set(classes, class_names):
    """The :class:`ImageSet` of ``{class: [files]}`` where a file may be in several classes: each file once (in the
    order first listed), its labels a multi-hot row of ``uint8`` (1 for each of its classes, in ``class_names``)."""
    paths = list(dict.fromkeys(path for label in class_names for path in classes[label]))
    row_of = {path: row for row, path in enumerate(paths)}
    labels = np.zeros((len(paths), len(class_names)), dtype=np.uint8)
    for column, label in enumerate(class_names):
        labels[[row_of[path] for path in classes[label]], column] = 1
    return ImageSet(labels=labels, paths=np.array(paths))
