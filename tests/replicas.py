"""Tiny replicas of the course datasets, in the layouts they are published in (see ``datasets/``).

``write_replica(name, root)`` writes a few 8x8 px images per class with the real file formats
(JPEG files, the split text files, ``.mat`` files laid out as the originals: MATLAB cell arrays of
strings, label columns of doubles) and returns what a loader must find::

    {"path": folder to pass as NAME:PATH, "classes": [sorted class names], "train": n, "test": n,
     "files": {"train": [paths], "test": [paths]}}   # "files" only where the split is published

``caltech101`` and ``cats_vs_dogs`` have no published split (it is seeded), so they have no
``"files"``. ``caltech101`` always has 30 train images per class (the protocol), so its classes get
30 + ``test_per_class`` images and ``train_per_class`` is not used. ``cats_vs_dogs`` always has the
two classes ``cat`` and ``dog`` with ``train_per_class + test_per_class`` images each, and its counts
are those of the default ``test_fraction=0.2``. ``dtd`` writes all ten splits, each a different
seeded choice, and adds ``"splits": {n: {"train": [paths], "test": [paths]}}``; ``"files"`` is split 1.
"""
import math
import pathlib

import numpy as np


def _write_image(path, rng, size):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path, "JPEG")
    return str(path)


def _write_lines(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))


def _cell_column(strings):
    """A MATLAB cell array (column) of strings, as ``scipy.io.savemat`` writes one."""
    cells = np.empty((len(strings), 1), dtype=object)
    for index, text in enumerate(strings):
        cells[index, 0] = text
    return cells


def _mit67(root, rng, classes, n_train, n_test, size):
    names = [f"scene_{index:02d}" for index in range(classes)]
    files, lists = {"train": [], "test": []}, {"train": [], "test": []}
    for name in names:
        for number in range(n_train + n_test):
            entry = f"{name}/{name}_{number:03d}.jpg"
            split = "train" if number < n_train else "test"
            lists[split].append(entry)
            files[split].append(_write_image(root / "Images" / entry, rng, size))
    _write_lines(root / "TrainImages.txt", lists["train"])
    _write_lines(root / "TestImages.txt", lists["test"])
    return root, names, files


def _cub200(root, rng, classes, n_train, n_test, size):
    folder = root / "CUB_200_2011"
    names = [f"{index + 1:03d}.Bird_species_{index + 1}" for index in range(classes)]
    files, images, labels, is_train = {"train": [], "test": []}, [], [], []
    for class_id, name in enumerate(names, start=1):
        # train and test images interleave in the id order, as in the original
        train_numbers = set(np.random.default_rng(class_id).permutation(n_train + n_test)[:n_train].tolist())
        for number in range(n_train + n_test):
            image_id = len(images) + 1
            train = number in train_numbers
            relative = f"{name}/{name.split('.', 1)[1]}_{number:04d}_{image_id}.jpg"
            images.append(f"{image_id} {relative}")
            labels.append(f"{image_id} {class_id}")
            is_train.append(f"{image_id} {int(train)}")
            files["train" if train else "test"].append(_write_image(folder / "images" / relative, rng, size))
    _write_lines(folder / "classes.txt", [f"{class_id} {name}" for class_id, name in enumerate(names, start=1)])
    _write_lines(folder / "images.txt", images)
    _write_lines(folder / "image_class_labels.txt", labels)
    _write_lines(folder / "train_test_split.txt", is_train)
    return folder, names, files


def _flowers102(root, rng, classes, n_train, n_test, size):
    import scipy.io

    labels, split_ids = [], {"trnid": [], "valid": [], "tstid": []}
    files = {"train": [], "test": []}
    for label in range(1, classes + 1):
        for number in range(n_train + n_test):
            image_id = len(labels) + 1
            labels.append(label)
            # train images alternate between trnid and valid, as the originals hold 10 + 10 a class
            part = "tstid" if number >= n_train else ("trnid" if number % 2 == 0 else "valid")
            split_ids[part].append(image_id)
            path = _write_image(root / "jpg" / f"image_{image_id:05d}.jpg", rng, size)
            files["test" if part == "tstid" else "train"].append(path)
    scipy.io.savemat(root / "imagelabels.mat", {"labels": np.array([labels], dtype=np.float64)})
    scipy.io.savemat(root / "setid.mat", {part: np.array([ids], dtype=np.uint16) for part, ids in split_ids.items()})
    return root, [f"class_{label:03d}" for label in range(1, classes + 1)], files


def _oxford_pets(root, rng, classes, n_train, n_test, size):
    # cat breeds are capitalised, dog breeds are not, and breed names hold underscores
    breeds = [f"Cat_breed_{index}" if index % 2 == 0 else f"dog_breed_{index}" for index in range(classes)]
    files, lists = {"train": [], "test": []}, {"train": [], "test": []}
    for class_id, breed in enumerate(sorted(breeds, key=str.lower), start=1):
        species = 1 if breed[0].isupper() else 2
        for number in range(1, n_train + n_test + 1):
            split = "train" if number <= n_train else "test"
            lists[split].append(f"{breed}_{number} {class_id} {species} {class_id}")
            files[split].append(_write_image(root / "images" / f"{breed}_{number}.jpg", rng, size))
    header = ["#Image CLASS-ID SPECIES BREED ID", "#ID: 1:37 Class ids", "#SPECIES: 1:Cat 2:Dog"]
    _write_lines(root / "annotations" / "trainval.txt", header + lists["train"])
    _write_lines(root / "annotations" / "test.txt", header + lists["test"])
    return root, breeds, files


def _stanford_dogs(root, rng, classes, n_train, n_test, size):
    import scipy.io

    folders = [f"n0208{5620 + index}-Dog_breed_{index}" for index in range(classes)]
    files, lists = {"train": [], "test": []}, {"train": [], "test": []}
    for label, folder in enumerate(folders, start=1):
        synset = folder.split("-")[0]
        for number in range(n_train + n_test):
            split = "train" if number < n_train else "test"
            relative = f"{folder}/{synset}_{1000 + number}.jpg"
            lists[split].append((relative, label))
            files[split].append(_write_image(root / "Images" / relative, rng, size))
    for split, entries in lists.items():
        paths = [relative for relative, _ in entries]
        scipy.io.savemat(root / f"{split}_list.mat", {
            "file_list": _cell_column(paths),
            "annotation_list": _cell_column([path[:-len(".jpg")] for path in paths]),
            "labels": np.array([[label] for _, label in entries], dtype=np.float64)})
    return root, [folder.split("-", 1)[1] for folder in folders], files


def _food101(root, rng, classes, n_train, n_test, size):
    folder = root / "food-101"
    names = [f"dish_{index}" for index in range(classes)]
    files, lists = {"train": [], "test": []}, {"train": [], "test": []}
    for name in names:
        for number in range(n_train + n_test):
            split = "train" if number < n_train else "test"
            image_id = 100000 + 37 * number
            lists[split].append(f"{name}/{image_id}")
            files[split].append(_write_image(folder / "images" / name / f"{image_id}.jpg", rng, size))
    _write_lines(folder / "meta" / "classes.txt", names)
    _write_lines(folder / "meta" / "labels.txt", [name.replace("_", " ").capitalize() for name in names])
    _write_lines(folder / "meta" / "train.txt", lists["train"])
    _write_lines(folder / "meta" / "test.txt", lists["test"])
    return folder, names, files


def _dtd(root, rng, classes, n_train, n_test, size):
    folder = root / "dtd"
    names = [f"texture{index}" for index in range(classes)]
    entries = {name: [f"{name}/{name}_{number:04d}.jpg" for number in range(1, n_train + n_test + 1)]
               for name in names}
    for name in names:
        for entry in entries[name]:
            _write_image(folder / "images" / entry, rng, size)
    splits = {}
    for number in range(1, 11):
        parts = {"train": [], "val": [], "test": []}
        for name in names:
            chosen = list(np.random.default_rng(number).permutation(entries[name]))
            validation = n_train // 2
            parts["train"] += chosen[:n_train - validation]
            parts["val"] += chosen[n_train - validation:n_train]
            parts["test"] += chosen[n_train:]
        for part, lines in parts.items():
            _write_lines(folder / "labels" / f"{part}{number}.txt", lines)
        splits[number] = {"train": sorted(str(folder / "images" / entry) for entry in parts["train"] + parts["val"]),
                          "test": sorted(str(folder / "images" / entry) for entry in parts["test"])}
    return folder, names, splits


def _caltech101(root, rng, classes, n_test, size):
    folder = root / "101_ObjectCategories"
    names = [f"category_{index}" for index in range(classes)]
    for name in names + ["BACKGROUND_Google"]:
        for number in range(1, 30 + n_test + 1):
            _write_image(folder / name / f"image_{number:04d}.jpg", rng, size)
    return {"path": str(root), "classes": names, "train": 30 * classes, "test": n_test * classes}


def _cats_vs_dogs(root, rng, per_class, size):
    for name in ("cat", "dog"):
        for number in range(per_class):
            _write_image(root / "train" / f"{name}.{number}.jpg", rng, size)
    test = math.ceil(0.2 * 2 * per_class)
    return {"path": str(root), "classes": ["cat", "dog"], "train": 2 * per_class - test, "test": test}


REPLICAS = {"mit67": _mit67, "cub200": _cub200, "flowers102": _flowers102, "oxford_pets": _oxford_pets,
            "stanford_dogs": _stanford_dogs, "food101": _food101, "dtd": _dtd}
NAMES = sorted(REPLICAS) + ["caltech101", "cats_vs_dogs"]


def write_replica(name, root, classes=3, train_per_class=2, test_per_class=2, image_size=8, seed=0):
    """Write a tiny replica of the published layout ``name`` under ``root``; return the expected split."""
    root, rng = pathlib.Path(root), np.random.default_rng(seed)
    if name == "caltech101":
        return _caltech101(root, rng, classes, test_per_class, image_size)
    if name == "cats_vs_dogs":
        return _cats_vs_dogs(root, rng, train_per_class + test_per_class, image_size)
    path, class_names, files = REPLICAS[name](root, rng, classes, train_per_class, test_per_class, image_size)
    expected = {"path": str(path), "classes": sorted(class_names), "train": classes * train_per_class,
                "test": classes * test_per_class}
    if name == "dtd":
        expected["splits"], files = files, files[1]
    expected["files"] = {split: sorted(paths) for split, paths in files.items()}
    return expected
