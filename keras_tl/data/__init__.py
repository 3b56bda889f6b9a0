"""Datasets and ``tf.data`` pipelines.

A dataset is a list of classes and two :class:`ImageSet` splits (train, test). An image set
holds either file paths or an in-memory ``uint8`` array, plus integer labels. Where a dataset
comes with no split, a seeded stratified split is made, so every run sees the same one.

Datasets are found by name (see ``datasets/`` for each page) or by path:

- ``animal_mnist``: 10k silhouettes of 10 animals, from the PyPI package ``animal-mnist``;
- ``fashion_mnist``: the Debian package ``dataset-fashion-mnist`` (idx files);
- ``openclipart``: the Debian package ``openclipart-png`` (top-level category folders);
- ``tfds:NAME`` or ``tfds:NAME:TRAIN/TEST``: a TensorFlow Datasets dataset (see :mod:`keras_tl.data.tfds_datasets`);
- ``NAME:PATH``: a course dataset as published (``cub200:~/data/CUB_200_2011``, ``dtd:PATH:N``, ...), with
  its own split; see :mod:`keras_tl.data.course_datasets` for the names. A folder in one of those layouts is
  recognised by its marker files without the NAME too;
- a folder with ``train/<class>/`` and ``test/<class>/``;
- a folder with ``TrainImages.txt`` and ``TestImages.txt`` (MIT-67 style lists of ``class/file``
  paths, relative to ``Images/`` when that folder exists);
- a folder of ``<class>/`` folders (images found recursively inside each).

Hidden files and folders (a name starting with ``.``, such as ``.ipynb_checkpoints/``) are never data.

Decode before you trust: every image file is decoded in full by :func:`decode_image`, the very
function the pipeline uses, before the run starts. Files that fail are skipped with one warning
and listed in :attr:`ImageDataset.skipped`; the verdicts are cached by (path, size, mtime) in
:func:`decode_cache_file`, so a rerun decodes nothing.

:func:`make_pipeline` turns an image set into batches for a source: decode, convert grey, RGBA,
palette, CMYK, 16-bit and float images to 8-bit RGB, resize, apply the source's
``preprocess_input``, batch, prefetch; :func:`training_pipelines` makes the train, validation and
test pipelines of a fine-tuning run from them.
"""
import concurrent.futures
import dataclasses
import gzip
import hashlib
import importlib.util
import json
import os
import pathlib
import pickle
import struct
import warnings

import numpy as np

from keras_tl import messages, runs

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff")
FASHION_MNIST_DIR = pathlib.Path("/usr/share/datasets/fashion-mnist")
OPENCLIPART_DIR = pathlib.Path("/usr/share/openclipart/png")
ANIMAL_MNIST_CLASSES = ["bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra"]
FASHION_MNIST_CLASSES = ["t-shirt/top", "trouser", "pullover", "dress", "coat",
                         "sandal", "shirt", "sneaker", "bag", "ankle boot"]
NAMED_DATASETS = ("animal_mnist", "fashion_mnist", "openclipart")
MAX_IMAGE_SIZE = 4096  # pixels a side: a batch of 32 such float32 images is already 6 GiB
MAX_BATCH_SIZE = 4096  # images per batch


@dataclasses.dataclass
class ImageSet:
    """Images of one split: ``paths`` (files) or ``images`` (uint8 array), and their integer ``labels``."""

    labels: np.ndarray
    paths: np.ndarray = None
    images: np.ndarray = None

    def __len__(self):
        return len(self.labels)

    def subset(self, indices):
        indices = np.asarray(indices, dtype=int)
        return ImageSet(labels=self.labels[indices],
                        paths=None if self.paths is None else self.paths[indices],
                        images=None if self.images is None else self.images[indices])

    def fingerprint(self):
        """A short hash of the contents and labels, for caches: file names, sizes and modification
        times (so a file edited in place, even to the same size, changes it), or the pixels."""
        digest = hashlib.sha1(self.labels.astype(np.int64).tobytes())
        if self.paths is not None:
            for path in self.paths:
                status = os.stat(path)
                digest.update(f"{path}:{status.st_size}:{status.st_mtime_ns}\n".encode())
        else:
            digest.update(np.ascontiguousarray(self.images).tobytes())
        return digest.hexdigest()[:12]


@dataclasses.dataclass
class ImageDataset:
    """A named dataset: class names, the ``train`` and ``test`` splits, and the ``skipped`` files.

    ``skipped`` lists ``(path, reason)`` for every file that failed the decode check (sorted by path).
    """

    name: str
    class_names: list
    train: ImageSet
    test: ImageSet
    skipped: list = dataclasses.field(default_factory=list)

    def class_counts(self):
        """``{class: (train images, test images)}``."""
        counts = [np.bincount(image_set.labels, minlength=len(self.class_names)) for image_set in (self.train,
                                                                                                  self.test)]
        return {name: (int(counts[0][index]), int(counts[1][index])) for index, name in enumerate(self.class_names)}

    def summary(self):
        skipped = f"; {len(self.skipped)} unreadable file(s) skipped" if self.skipped else ""
        train, test = zip(*self.class_counts().values())
        return (f"{self.name}: {len(self.class_names)} classes, {len(self.train)} train and {len(self.test)} test "
                f"images (per class: {_span(train)} train, {_span(test)} test){skipped}")

    def warn_degenerate_classes(self, stacklevel=3):
        """Warn, naming them with their counts, about classes left with no train or no test image.

        A class with no train image is never predicted; one with no test image is left out of
        the accuracy, which is then an accuracy over the other classes only.
        """
        empty = {name: counts for name, counts in self.class_counts().items() if 0 in counts}
        if empty:
            shown = ", ".join(f"{name} ({train} train, {test} test)" for name, (train, test) in empty.items())
            warnings.warn(f"{self.name}: {len(empty)} class(es) with no train or no test image after splitting: "
                          f"{shown}. Accuracy then leaves them out or never predicts them; use more images per "
                          f"class or another split.", stacklevel=stacklevel)


def _span(values):
    """``"3"`` or ``"2-5"``: the smallest and the largest of ``values``."""
    return f"{min(values)}" if min(values) == max(values) else f"{min(values)}-{max(values)}"


# ----------------------------------------------------------------------------- splits


def stratified_split(labels, test_fraction, seed, parameter="test_fraction"):
    """Seeded stratified split of indices into (train, test): every class keeps its share.

    ``parameter``: the name of the fraction where the caller's user set it, for the error message.
    """
    from sklearn.model_selection import train_test_split

    labels = np.asarray(labels)
    counts = np.bincount(labels)
    classes = int(np.count_nonzero(counts))
    held_out = int(np.ceil(test_fraction * len(labels)))
    if min(held_out, len(labels) - held_out) < classes:
        raise ValueError(f"Holding out {test_fraction:g} of {len(labels)} images leaves {held_out} held out and "
                         f"{len(labels) - held_out} kept, but each part needs an image of each of the {classes} "
                         f"classes: change {parameter}= or use more images.")
    if counts[counts > 0].min() < 2:
        raise ValueError(f"A stratified split needs at least 2 images per class; class {int(np.argmin(counts))} "
                         f"has {int(counts[counts > 0].min())}.")
    indices = np.arange(len(labels))
    train, test = train_test_split(indices, test_size=test_fraction, random_state=seed, stratify=labels)
    return np.sort(train), np.sort(test)


def per_class_subset(labels, per_class, seed):
    """Seeded choice of at most ``per_class`` indices of every class, in the original order."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    chosen = [rng.permutation(np.flatnonzero(labels == label))[:per_class] for label in np.unique(labels)]
    return np.sort(np.concatenate(chosen))


def split_validation(image_set, fraction, seed):
    """Hold a stratified ``fraction`` of a train set out for validation: returns (train, validation)."""
    train, validation = stratified_split(image_set.labels, fraction, seed, parameter="validation_fraction")
    return image_set.subset(train), image_set.subset(validation)


# ----------------------------------------------------------------------------- image files


def to_rgb(image):
    """A Pillow image as RGB: transparency composited on white, grey, palette and CMYK converted."""
    from PIL import Image

    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, image.convert("RGBA")).convert("RGB")
    return image.convert("RGB")


def to_8bit(image):
    """Scale a 16-bit or float grey image to 8 bits (``L``) instead of clipping it; other modes pass through.

    Integer images (``I;16``, ``I``: 16-bit PNG and TIFF files) are divided by 257, so 65535 becomes 255.
    Float images (``F``) are taken to hold 0..1, the usual convention, and multiplied by 255; one
    whose values leave 0..1 is stretched from its own minimum (0) to its maximum (255) instead.
    NaN or infinite pixels make the file unreadable.
    """
    from PIL import Image

    if image.mode.startswith("I"):
        values = np.asarray(image, dtype=np.float64) / 257.0
    elif image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        if not np.isfinite(values).all():
            raise ValueError("float image with NaN or infinite pixels")
        low, high = values.min(), values.max()
        if low < 0.0 or high > 1.0:
            values = (values - low) / max(high - low, np.finfo(float).tiny)
        values = values * 255.0
    else:
        return image
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), mode="L")


def decode_image(path):
    """Decode one image file in full as an 8-bit RGB Pillow image, upright as its EXIF says.

    The one decoder: the pipeline reads every image through it, and the decode check runs it on
    every file first, so a file that passes the check does not fail in the pipeline (unless it
    changes in between).
    """
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        image.load()
        return to_rgb(to_8bit(ImageOps.exif_transpose(image)))


def load_image(path, size):
    """Read one image file as a ``(size, size, 3)`` uint8 RGB array (see :func:`decode_image`)."""
    from PIL import Image

    return np.asarray(decode_image(path).resize((size, size), Image.BILINEAR), dtype=np.uint8)


def decode_cache_file(cache_dir=None):
    """Where decode-check verdicts are kept: ``cache_dir``, else ``$KERAS_TL_CACHE``, else ``~/.cache/keras_tl``."""
    folder = cache_dir or os.environ.get("KERAS_TL_CACHE") or (
        pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache") / "keras_tl")
    return pathlib.Path(folder) / "decode_check.json"


def _read_decode_cache(cache_file):
    """The cached ``{path: [size, mtime_ns, reason or None]}``; empty if missing, unreadable or from another Pillow."""
    import PIL

    try:
        cache = json.loads(pathlib.Path(cache_file).read_text())
    except (OSError, ValueError):
        return {}
    return cache.get("files", {}) if cache.get("pillow") == PIL.__version__ else {}


def _check_image(path):
    """None when ``path`` is a sound image (checksums and a full decode), else the reason it is not."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.verify()  # checksums that decoding ignores, such as a PNG chunk's CRC
        decode_image(path)
    except Exception as error:  # Pillow raises many types for bad files: all mean "skip it"
        return f"{type(error).__name__}: {str(error)[:80]}"
    return None


def find_unreadable_images(paths, cache_dir=None, verbose=False):
    """Return ``{path: reason}`` for the files that are not readable images.

    Every file is decoded in full with :func:`decode_image` (after Pillow's ``verify()``), in a
    thread per CPU. That catches empty files, non-images, truncated and damaged files, and images
    too large to decode safely (Pillow's decompression-bomb limit). JPEG has no checksum, so damage
    that still decodes (a smudged block) passes; it cannot break the pipeline either. Verdicts are
    cached by (path, size, mtime) in :func:`decode_cache_file`; files seen before are not decoded again.
    """
    cache_file = decode_cache_file(cache_dir)
    cached = _read_decode_cache(cache_file)
    bad, fresh, todo = {}, {}, []
    for path in map(str, paths):
        try:
            stat = os.stat(path)
        except OSError as error:
            bad[path] = f"{type(error).__name__}: {error.strerror}"
            continue
        key, stamp = os.path.abspath(path), [stat.st_size, stat.st_mtime_ns]
        entry = cached.get(key)
        if entry is None or entry[:2] != stamp:
            todo.append((path, key, stamp))
        elif entry[2]:
            bad[path] = entry[2]
    if not todo:
        return bad
    bar = messages.progress_bar(len(todo), "Checking images", verbose=verbose)
    pool = concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1)  # Pillow decodes without the GIL
    try:
        for (path, key, stamp), reason in zip(todo, pool.map(_check_image, [path for path, _, _ in todo])):
            fresh[key] = stamp + [reason]
            if reason:
                bad[path] = reason
            bar.update()
    finally:  # on Ctrl-C too: drop the queued files, keep the verdicts so far
        pool.shutdown(cancel_futures=True)
        bar.close()
        _write_decode_cache(cache_file, fresh)
    return bad


def _write_decode_cache(cache_file, fresh):
    """Add ``fresh`` verdicts to the cache file (atomically); a cache that cannot be written only costs time."""
    import PIL

    try:
        with runs.atomic_path(cache_file) as tmp:
            files = {**_read_decode_cache(cache_file), **fresh}
            tmp.write_text(json.dumps({"pillow": PIL.__version__, "files": files}))
    except OSError as error:
        warnings.warn(f"Could not write the decode-check cache {cache_file} ({error}); set KERAS_TL_CACHE "
                      f"to a writable folder to skip the check on reruns.", stacklevel=3)


def sample_photos(size):
    """scikit-learn's two sample photos (a Chinese temple, a daisy) as ``(2, size, size, 3)`` uint8."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images
    return np.stack([np.asarray(Image.fromarray(photo).resize((size, size), Image.BILINEAR)) for photo in photos])


# ----------------------------------------------------------------------------- datasets


def warn_unreadable(bad, stacklevel=2):
    """One warning naming every unreadable file (``{path: reason}``) and why: the jobs' single message."""
    listing = "\n  ".join(f"{path} ({reason})" for path, reason in sorted(bad.items()))
    warnings.warn(f"Skipping {len(bad)} unreadable image file(s):\n  {listing}", stacklevel=stacklevel + 1)


def image_files(folder):
    """The image files under ``folder`` (recursively, sorted); hidden files and folders are left out.

    A link that leads nowhere (broken, or a loop) is left out with a warning that names it.
    """
    folder = pathlib.Path(folder)
    candidates = [path for path in folder.rglob("*") if path.suffix.lower() in IMAGE_EXTENSIONS
                  and not any(part.startswith(".") for part in path.relative_to(folder).parts)]
    dangling = sorted(str(path) for path in candidates if path.is_symlink() and not path.exists())
    if dangling:
        warnings.warn(f"Leaving out {len(dangling)} link(s) under {folder} that lead to no file (broken or a loop): "
                      + ", ".join(dangling[:3]) + (", ..." if len(dangling) > 3 else ""), stacklevel=3)
    return sorted(str(path) for path in candidates if path.is_file())


def _class_files(root, class_names=None):
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


def _train_test_trees(root):
    """``train/<class>/`` and ``test/<class>/`` folders, which must hold the same classes."""
    train_classes, test_classes = (set(_class_files(root / split)) for split in ("train", "test"))
    if train_classes != test_classes:
        raise ValueError(f"train/ and test/ under {root} have different classes: only in train: "
                         f"{sorted(train_classes - test_classes) or 'none'}; "
                         f"only in test: {sorted(test_classes - train_classes) or 'none'}.")
    return {split: _class_files(root / split) for split in ("train", "test")}


def _read_split_list(path):
    """The ``class/file`` lines of a split list: ``\\`` read as ``/``, CRLF and blank lines handled, repeats dropped."""
    lines = [line.strip().replace("\\", "/") for line in path.read_text(encoding="utf-8-sig").splitlines()]
    lines = [line for line in lines if line]
    entries = list(dict.fromkeys(lines))  # the first of each repeated line, in order
    if len(entries) < len(lines):
        warnings.warn(f"{path}: dropped {len(lines) - len(entries)} duplicate line(s).", stacklevel=4)
    without_class = [entry for entry in entries if "/" not in entry]
    if without_class:
        raise ValueError(f"{path} has {len(without_class)} line(s) with no class folder, e.g. {without_class[:3]}: "
                         f"expected one class/file path per line, like bar/1.jpg.")
    escaping = [entry for entry in entries if entry.startswith("/") or ".." in entry.split("/")
                or ":" in entry.split("/")[0]]
    if escaping:
        raise ValueError(f"{path} has {len(escaping)} line(s) that leave the dataset folder, e.g. {escaping[:3]}: "
                         f"expected class/file paths inside it, like bar/1.jpg (no absolute paths, no '..').")
    return entries


def _split_lists(root):
    """MIT-67 style: ``TrainImages.txt`` and ``TestImages.txt`` list ``class/file`` paths."""
    image_root = root / "Images" if (root / "Images").is_dir() else root
    lists = {"train": _read_split_list(root / "TrainImages.txt"), "test": _read_split_list(root / "TestImages.txt")}
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


def _drop_ambiguous_files(splits):
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


def _file_dataset(name, root, splits, test_fraction, seed, min_images, cache_dir, verbose):
    """An :class:`ImageDataset` from ``{split: {class: [files]}}``, split ``"all"`` still to be divided.

    Checks run before any decoding: files that are one file in two classes are left out with one
    warning (:func:`_drop_ambiguous_files`), no class may be empty (with ``min_images`` > 1, smaller
    classes are dropped instead) and at least two are needed. Then every file is decode-checked;
    unreadable files are skipped with one warning, and a class left with no images is an error that names it.
    """
    def drop_small(splits):
        if min_images <= 1:
            return splits
        return {split: {label: files for label, files in classes.items() if len(files) >= min_images}
                for split, classes in splits.items()}

    splits, ambiguous = _drop_ambiguous_files(splits)
    if ambiguous:
        shown = "\n  ".join(f"{path} (in {', '.join(labels)})" for path, labels in sorted(ambiguous.items())[:5])
        warnings.warn(f"Leaving out {len(ambiguous)} file(s) that are one file in more than one class (links or "
                      f"repeated paths), so their label is ambiguous:\n  {shown}"
                      + ("\n  ..." if len(ambiguous) > 5 else ""), stacklevel=3)
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
                                 cache_dir, verbose)
    if bad:
        warn_unreadable(bad, stacklevel=3)
        splits = drop_small({split: {label: [path for path in files if path not in bad]
                                     for label, files in classes.items()}
                             for split, classes in splits.items()})
    emptied = sorted(label + ("" if split == "all" else f" ({split})")
                     for split, classes in splits.items() for label, files in classes.items() if not files)
    if emptied:
        raise ValueError(f"No readable images left in class(es) {', '.join(emptied)} under {root}: every file "
                         f"was skipped (see the warning). Replace or remove the damaged files, or the class folder.")
    class_names = sorted(next(iter(splits.values())))
    image_sets = {split: ImageSet(labels=np.array([index for index, label in enumerate(class_names)
                                                    for _ in classes[label]], dtype=int),
                                  paths=np.array([path for label in class_names for path in classes[label]]))
                  for split, classes in splits.items()}
    if "all" in image_sets:
        train, test = stratified_split(image_sets["all"].labels, test_fraction, seed)
        image_sets = {"train": image_sets["all"].subset(train), "test": image_sets["all"].subset(test)}
    return ImageDataset(name, class_names, image_sets["train"], image_sets["test"], skipped=sorted(bad.items()))


def _animal_mnist(test_fraction, seed):
    spec = importlib.util.find_spec("animal_mnist")  # found, not imported: its loader imports TensorFlow
    if spec is None:
        raise ModuleNotFoundError("The animal_mnist dataset needs the PyPI package: pip install animal-mnist "
                                  "(or pip install -e '.[data]').")
    folder = pathlib.Path(list(spec.submodule_search_locations)[0]) / "data" / "Animal_MNIST"
    with gzip.open(folder / "animal_data_version_3.gz", "rb") as handle:
        images = pickle.load(handle)
    with gzip.open(folder / "animal_label_version_3.gz", "rb") as handle:
        labels = np.asarray(pickle.load(handle), dtype=int)
    images = np.asarray(images, dtype=np.uint8)
    # 284 images appear twice; keep one copy, so that no test image is also a train image.
    _, first = np.unique(images.reshape(len(images), -1), axis=0, return_index=True)
    everything = ImageSet(labels=labels, images=images).subset(np.sort(first))
    train, test = stratified_split(everything.labels, test_fraction, seed)
    return ImageDataset("animal_mnist", list(ANIMAL_MNIST_CLASSES), everything.subset(train), everything.subset(test))


def read_idx(path):
    """Read an idx file (the MNIST format; gzip or plain) as a numpy array."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as handle:
        zero, type_code, dimensions = struct.unpack(">HBB", handle.read(4))
        if zero != 0 or type_code != 0x08:
            raise ValueError(f"{path} is not an unsigned-byte idx file (header {zero:#x} {type_code:#x}).")
        shape = struct.unpack(f">{dimensions}I", handle.read(4 * dimensions))
        data = np.frombuffer(handle.read(), dtype=np.uint8)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path} holds {data.size} values; its header says {shape}.")
    return data.reshape(shape)


def _fashion_mnist(root):
    root = pathlib.Path(root)
    if not (root / "train-images-idx3-ubyte.gz").is_file():
        raise FileNotFoundError(f"Fashion-MNIST is not in {root}: apt-get install dataset-fashion-mnist, "
                                f"or pass the folder that holds its idx files.")

    def image_set(prefix):
        return ImageSet(labels=read_idx(root / f"{prefix}-labels-idx1-ubyte.gz").astype(int),
                        images=read_idx(root / f"{prefix}-images-idx3-ubyte.gz"))

    return ImageDataset("fashion_mnist", list(FASHION_MNIST_CLASSES), image_set("train"), image_set("t10k"))


def load_dataset(spec="animal_mnist", *, test_fraction=0.2, seed=0, train_per_class=None, test_per_class=None,
                 min_images_per_class=40, cache_dir=None, verbose=True, tfds_data_dir=None):
    """Find a dataset by name or path (see the module docstring) and return an :class:`ImageDataset`.

    ``train_per_class``/``test_per_class`` keep a seeded subset of each class (quick runs).
    ``min_images_per_class`` applies to the clip-art folders, whose smallest categories hold 3 images.
    Image files are decode-checked first (cached in ``cache_dir``, see :func:`decode_cache_file`;
    a progress bar unless ``verbose`` is false): unreadable ones are skipped with one warning and
    listed in ``dataset.skipped``. Before any decoding, an empty folder, an empty class folder and a
    single class are errors that say what was expected.
    ``"NAME:PATH"`` reads a course dataset in its published layout and split (:mod:`keras_tl.data.course_datasets`);
    a folder in such a layout is recognised, and the dataset is named after its layout (``cub200``).
    ``"tfds:NAME"`` reads TensorFlow Datasets from ``tfds_data_dir`` (:mod:`keras_tl.data.tfds_datasets`).
    """
    from keras_tl.data import course_datasets

    spec = os.fspath(spec)
    root = OPENCLIPART_DIR if spec == "openclipart" else pathlib.Path(spec)
    if spec.startswith("tfds:"):
        from keras_tl.data import tfds_datasets

        dataset = tfds_datasets.load_tfds_dataset(spec, data_dir=tfds_data_dir, test_fraction=test_fraction,
                                                  seed=seed, cache_dir=cache_dir, verbose=verbose)
    elif spec == "animal_mnist":
        dataset = _animal_mnist(test_fraction, seed)
    elif spec == "fashion_mnist":
        dataset = _fashion_mnist(FASHION_MNIST_DIR)
    elif course := course_datasets.parse_spec(spec):
        dataset = course_datasets.load(*course, test_fraction=test_fraction, seed=seed, cache_dir=cache_dir,
                                       verbose=verbose)
    elif not root.is_dir():
        raise FileNotFoundError(f"{OPENCLIPART_DIR} not found: apt-get install openclipart-png."
                                if spec == "openclipart" else
                                f"Dataset {spec!r} is neither a folder nor one of {', '.join(NAMED_DATASETS)} "
                                f"(nor NAME:PATH, NAME one of {', '.join(course_datasets.LOADERS)})."
                                + messages.did_you_mean(spec, NAMED_DATASETS
                                                        + tuple(f"{name}:PATH" for name in course_datasets.LOADERS)))
    elif (root / "train-images-idx3-ubyte.gz").is_file():
        dataset = _fashion_mnist(root)
    elif layout := course_datasets.recognise(root):
        dataset = course_datasets.load(layout, spec, test_fraction=test_fraction, seed=seed, cache_dir=cache_dir,
                                       verbose=verbose)
    else:
        if (root / "TrainImages.txt").is_file() and (root / "TestImages.txt").is_file():
            splits = _split_lists(root)
        elif (root / "train").is_dir() and (root / "test").is_dir():
            splits = _train_test_trees(root)
        else:
            splits = {"all": _class_files(root)}
        dataset = _file_dataset(spec if spec == "openclipart" else root.name, root, splits, test_fraction, seed,
                                min_images_per_class if spec == "openclipart" else 1, cache_dir, verbose)
    if train_per_class:
        dataset.train = dataset.train.subset(per_class_subset(dataset.train.labels, train_per_class, seed))
    if test_per_class:
        dataset.test = dataset.test.subset(per_class_subset(dataset.test.labels, test_per_class, seed))
    dataset.warn_degenerate_classes()
    return dataset


# ----------------------------------------------------------------------------- pipelines


def check_sizes(image_size=None, batch_size=None):
    """A ``ValueError`` for an image or batch size that would exhaust memory (or is below 1), before any work."""
    for name, value, largest in (("image_size", image_size, MAX_IMAGE_SIZE), ("batch_size", batch_size,
                                                                              MAX_BATCH_SIZE)):
        if value is not None and not 1 <= value <= largest:
            raise ValueError(f"{name}={value} is outside 1..{largest}.")


def make_pipeline(image_set, image_size, preprocess=None, batch_size=32, shuffle=False, seed=0):
    """A ``tf.data.Dataset`` of ``(images, labels)`` batches, ready for a source's model.

    Files are decoded in parallel by :func:`load_image` (:func:`decode_image`, the decoder that
    :func:`load_dataset` checked them with); a file that fails anyway stops the pipeline with an error
    that names it. In-memory arrays are resized in the graph. Images become float32 RGB at
    ``image_size`` pixels; then ``preprocess`` (the source's ``preprocess_input``) is applied to whole
    batches, and the next batches are prefetched.
    """
    check_sizes(image_size=image_size, batch_size=batch_size)
    import tensorflow as tf

    autotune = tf.data.AUTOTUNE
    labels = image_set.labels.astype(np.int32)
    if image_set.paths is not None:
        dataset = tf.data.Dataset.from_tensor_slices((image_set.paths.astype(str), labels))
        if shuffle:
            dataset = dataset.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)

        def read(name):
            try:
                return load_image(name.decode(), image_size)
            except Exception as error:  # say which file: TensorFlow's traceback would not
                raise ValueError(f"Cannot decode {name.decode()}: {type(error).__name__}: {error}") from error

        def decode(path, label):
            image = tf.numpy_function(read, [path], tf.uint8)
            return tf.ensure_shape(image, (image_size, image_size, 3)), label

        dataset = dataset.map(decode, num_parallel_calls=autotune).batch(batch_size)
    else:
        images = image_set.images if image_set.images.ndim == 4 else image_set.images[..., None]
        antialias = image_size < max(images.shape[1:3])  # only shrinking needs it, and it is the slow kernel
        dataset = tf.data.Dataset.from_tensor_slices((images, labels))
        if shuffle:
            dataset = dataset.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)

        def resize(batch, label):
            batch = tf.image.resize(batch, (image_size, image_size), antialias=antialias)
            if batch.shape[-1] == 1:
                batch = tf.image.grayscale_to_rgb(batch)
            return batch, label

        dataset = dataset.batch(batch_size).map(resize, num_parallel_calls=autotune)

    def finish(batch, label):
        batch = tf.cast(batch, tf.float32)
        return (preprocess(batch) if preprocess else batch), label

    return dataset.map(finish, num_parallel_calls=autotune).prefetch(autotune)


def training_pipelines(source, image_size, splits, num_classes, batch_size=32, mix="none", mix_alpha=0.0, seed=0,
                       shard=False):
    """tf.data pipelines for train (shuffled, optionally mixed), validation and test of ``splits``;
    labels one-hot for train and validation (mixup and CutMix make soft labels), integers for test.
    Without a ``"validation"`` split (a fixed schedule) the validation pipeline is None.

    ``shard``: split the training data across the workers of a multi-worker strategy.
    """
    import tensorflow as tf

    from keras_tl import distribute
    from keras_tl.data import augment

    def one_hot(images, labels):
        return images, tf.one_hot(labels, num_classes)

    def pipeline(image_set, shuffle=False):
        return make_pipeline(image_set, image_size, source.preprocess_input, batch_size, shuffle=shuffle, seed=seed)

    def for_fit(dataset):  # what fit reads: sharded across workers on request, prefetched
        return (distribute.shard_by_data(dataset) if shard else dataset).prefetch(tf.data.AUTOTUNE)

    train = for_fit(augment.mix_batches(pipeline(splits["train"], shuffle=True).map(one_hot), mix, mix_alpha, seed))
    validation = for_fit(pipeline(splits["validation"]).map(one_hot)) if "validation" in splits else None
    return train, validation, pipeline(splits["test"])
