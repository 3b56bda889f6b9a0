"""Datasets and ``tf.data`` pipelines.

A dataset is a list of classes and two :class:`ImageSet` splits (train, test). An image set
holds either file paths or an in-memory ``uint8`` array, plus integer labels. Where a dataset
comes with no split, a seeded stratified split is made, so every run sees the same one.

Datasets are found by name (see ``datasets/`` for each page) or by path:

- ``animal_mnist``: 10k silhouettes of 10 animals, from the PyPI package ``animal-mnist``;
- ``fashion_mnist``: the Debian package ``dataset-fashion-mnist`` (idx files);
- ``openclipart``: the Debian package ``openclipart-png`` (top-level category folders);
- a folder with ``train/<class>/`` and ``test/<class>/``;
- a folder with ``TrainImages.txt`` and ``TestImages.txt`` (MIT-67 style lists of ``class/file``
  paths, relative to ``Images/`` when that folder exists);
- a folder of ``<class>/`` folders (images found recursively inside each).

:func:`make_pipeline` turns an image set into batches for a source: decode, convert grey, RGBA,
palette and CMYK images to RGB, resize, apply the source's ``preprocess_input``, batch, prefetch.
"""
import dataclasses
import gzip
import hashlib
import importlib.util
import os
import pathlib
import pickle
import struct
import warnings

import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff")
FASHION_MNIST_DIR = pathlib.Path("/usr/share/datasets/fashion-mnist")
OPENCLIPART_DIR = pathlib.Path("/usr/share/openclipart/png")
ANIMAL_MNIST_CLASSES = ["bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra"]
FASHION_MNIST_CLASSES = ["t-shirt/top", "trouser", "pullover", "dress", "coat",
                         "sandal", "shirt", "sneaker", "bag", "ankle boot"]
NAMED_DATASETS = ("animal_mnist", "fashion_mnist", "openclipart")


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
        """A short hash of the contents (file names and sizes, or pixels) and labels, for caches."""
        digest = hashlib.sha1(self.labels.astype(np.int64).tobytes())
        if self.paths is not None:
            for path in self.paths:
                digest.update(f"{path}:{os.path.getsize(path)}\n".encode())
        else:
            digest.update(np.ascontiguousarray(self.images).tobytes())
        return digest.hexdigest()[:12]


@dataclasses.dataclass
class ImageDataset:
    """A named dataset: class names and the ``train`` and ``test`` splits."""

    name: str
    class_names: list
    train: ImageSet
    test: ImageSet

    def summary(self):
        return (f"{self.name}: {len(self.class_names)} classes, "
                f"{len(self.train)} train and {len(self.test)} test images")


# ----------------------------------------------------------------------------- splits


def stratified_split(labels, test_fraction, seed):
    """Seeded stratified split of indices into (train, test): every class keeps its share."""
    from sklearn.model_selection import train_test_split

    labels = np.asarray(labels)
    counts = np.bincount(labels)
    classes = int(np.count_nonzero(counts))
    held_out = int(np.ceil(test_fraction * len(labels)))
    if min(held_out, len(labels) - held_out) < classes:
        raise ValueError(f"Holding out {test_fraction:g} of {len(labels)} images leaves {held_out} held out and "
                         f"{len(labels) - held_out} kept, but each part needs an image of each of the {classes} "
                         f"classes: change the fraction (--validation-fraction for fine-tuning) or use more images.")
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
    train, validation = stratified_split(image_set.labels, fraction, seed)
    return image_set.subset(train), image_set.subset(validation)


# ----------------------------------------------------------------------------- image files


def _looks_truncated_jpeg(path):
    with open(path, "rb") as handle:
        handle.seek(max(os.path.getsize(path) - 2048, 0))
        return b"\xff\xd9" not in handle.read()


def find_unreadable_images(paths):
    """Return ``{path: reason}`` for the files that are not readable images.

    Catches empty files, non-images, corrupt and truncated files, and images too large to decode
    safely (Pillow's decompression-bomb limit). A cheap check: Pillow's ``verify()`` (headers and
    PNG checksums); a JPEG without its end marker near the end of the file is decoded in full to
    tell a truncated file from one with trailing bytes.
    """
    from PIL import Image

    bad = {}
    for path in paths:
        try:
            with Image.open(path) as image:
                image_format = image.format
                image.verify()
            if image_format == "JPEG" and _looks_truncated_jpeg(path):
                with Image.open(path) as image:
                    image.load()
        except Exception as error:  # Pillow raises many types for bad files: all mean "skip it"
            bad[str(path)] = f"{type(error).__name__}: {str(error)[:80]}"
    return bad


def drop_unreadable(*image_sets):
    """Remove unreadable files from the image sets, with one warning that names them all."""
    paths = [path for image_set in image_sets if image_set.paths is not None for path in image_set.paths]
    bad = find_unreadable_images(paths)
    if not bad:
        return image_sets
    listing = "\n  ".join(f"{path} ({reason})" for path, reason in sorted(bad.items()))
    warnings.warn(f"Skipping {len(bad)} unreadable image file(s):\n  {listing}", stacklevel=3)
    return tuple(image_set.subset([index for index, path in enumerate(image_set.paths) if str(path) not in bad])
                 for image_set in image_sets)


def to_rgb(image):
    """A Pillow image as RGB: transparency composited on white, grey, palette and CMYK converted."""
    from PIL import Image

    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, image.convert("RGBA")).convert("RGB")
    return image.convert("RGB")


def load_image(path, size):
    """Read one image file as a ``(size, size, 3)`` uint8 RGB array (upright, as its EXIF says)."""
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        image = to_rgb(ImageOps.exif_transpose(image))
        return np.asarray(image.resize((size, size), Image.BILINEAR), dtype=np.uint8)


def sample_photos(size):
    """scikit-learn's two sample photos (a Chinese temple, a daisy) as ``(2, size, size, 3)`` uint8."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images
    return np.stack([np.asarray(Image.fromarray(photo).resize((size, size), Image.BILINEAR)) for photo in photos])


# ----------------------------------------------------------------------------- datasets


def _image_files(folder):
    return sorted(str(path) for path in pathlib.Path(folder).rglob("*")
                  if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file())


def _class_folders(root):
    return sorted(entry.name for entry in pathlib.Path(root).iterdir() if entry.is_dir() and not entry.name.startswith("."))


def _read_class_tree(root, class_names=None, min_images=1):
    """Paths and labels of a ``root/<class>/...`` tree; an empty class folder is an error."""
    root = pathlib.Path(root)
    found = {name: _image_files(root / name) for name in (class_names or _class_folders(root))}
    if min_images > 1:
        found = {name: files for name, files in found.items() if len(files) >= min_images}
    empty = [name for name, files in found.items() if not files]
    if empty:
        raise ValueError(f"Class folder(s) with no images under {root}: {', '.join(empty)} "
                         f"(looked for {', '.join(IMAGE_EXTENSIONS)}).")
    names = sorted(found)
    paths = [path for name in names for path in found[name]]
    labels = [index for index, name in enumerate(names) for _ in found[name]]
    return names, ImageSet(labels=np.array(labels), paths=np.array(paths))


def _split_tree(name, root, test_fraction, seed, min_images=1):
    class_names, images = _read_class_tree(root, min_images=min_images)
    train, test = stratified_split(images.labels, test_fraction, seed)
    return ImageDataset(name, class_names, images.subset(train), images.subset(test))


def _train_test_trees(root):
    root = pathlib.Path(root)
    train_classes, test_classes = _class_folders(root / "train"), _class_folders(root / "test")
    if train_classes != test_classes:
        only_train = sorted(set(train_classes) - set(test_classes))
        only_test = sorted(set(test_classes) - set(train_classes))
        raise ValueError(f"train/ and test/ under {root} have different classes: only in train: "
                         f"{only_train or 'none'}; only in test: {only_test or 'none'}.")
    class_names, train = _read_class_tree(root / "train", train_classes)
    _, test = _read_class_tree(root / "test", train_classes)
    return ImageDataset(root.name, class_names, train, test)


def _split_lists(root):
    """MIT-67 style: ``TrainImages.txt`` and ``TestImages.txt`` list ``class/file`` paths."""
    root = pathlib.Path(root)
    image_root = root / "Images" if (root / "Images").is_dir() else root
    lists = {split: [line.strip() for line in (root / f"{split}Images.txt").read_text().splitlines() if line.strip()]
             for split in ("Train", "Test")}
    classes = {split: sorted({entry.split("/")[0] for entry in entries}) for split, entries in lists.items()}
    if classes["Train"] != classes["Test"]:
        raise ValueError(f"TrainImages.txt and TestImages.txt under {root} name different classes: "
                         f"{sorted(set(classes['Train']) ^ set(classes['Test']))}.")
    missing = [entry for entries in lists.values() for entry in entries if not (image_root / entry).is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} listed image(s) not found under {image_root}, e.g. {missing[:3]}.")
    index = {name: position for position, name in enumerate(classes["Train"])}

    def image_set(entries):
        return ImageSet(labels=np.array([index[entry.split("/")[0]] for entry in entries]),
                        paths=np.array([str(image_root / entry) for entry in entries]))

    return ImageDataset(root.name, classes["Train"], image_set(lists["Train"]), image_set(lists["Test"]))


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
                 min_images_per_class=40):
    """Find a dataset by name or path (see the module docstring) and return an :class:`ImageDataset`.

    ``train_per_class``/``test_per_class`` keep a seeded subset of each class (quick runs).
    ``min_images_per_class`` applies to the clip-art folders, whose smallest categories hold 3 images.
    Unreadable files are dropped with one warning. A dataset with fewer than two classes is an error.
    """
    spec = os.fspath(spec)
    if spec == "animal_mnist":
        dataset = _animal_mnist(test_fraction, seed)
    elif spec == "fashion_mnist":
        dataset = _fashion_mnist(FASHION_MNIST_DIR)
    elif spec == "openclipart":
        if not OPENCLIPART_DIR.is_dir():
            raise FileNotFoundError(f"{OPENCLIPART_DIR} not found: apt-get install openclipart-png.")
        dataset = _split_tree("openclipart", OPENCLIPART_DIR, test_fraction, seed, min_images_per_class)
    else:
        root = pathlib.Path(spec)
        if not root.is_dir():
            raise FileNotFoundError(f"Dataset {spec!r} is neither a folder nor one of {', '.join(NAMED_DATASETS)}.")
        if (root / "TrainImages.txt").is_file() and (root / "TestImages.txt").is_file():
            dataset = _split_lists(root)
        elif (root / "train").is_dir() and (root / "test").is_dir():
            dataset = _train_test_trees(root)
        elif (root / "train-images-idx3-ubyte.gz").is_file():
            dataset = _fashion_mnist(root)
        else:
            dataset = _split_tree(root.name, root, test_fraction, seed)
    if len(dataset.class_names) < 2:
        raise ValueError(f"{dataset.name} has {len(dataset.class_names)} class ({dataset.class_names}); "
                         f"classification needs at least 2.")
    if train_per_class:
        dataset.train = dataset.train.subset(per_class_subset(dataset.train.labels, train_per_class, seed))
    if test_per_class:
        dataset.test = dataset.test.subset(per_class_subset(dataset.test.labels, test_per_class, seed))
    dataset.train, dataset.test = drop_unreadable(dataset.train, dataset.test)
    return dataset


# ----------------------------------------------------------------------------- pipelines


def make_pipeline(image_set, image_size, preprocess=None, batch_size=32, shuffle=False, seed=0):
    """A ``tf.data.Dataset`` of ``(images, labels)`` batches, ready for a source's model.

    Files are decoded with Pillow in parallel; in-memory arrays are resized in the graph. Images
    become float32 RGB at ``image_size`` pixels; then ``preprocess`` (the source's
    ``preprocess_input``) is applied to whole batches, and the next batches are prefetched.
    """
    import tensorflow as tf

    autotune = tf.data.AUTOTUNE
    labels = image_set.labels.astype(np.int32)
    if image_set.paths is not None:
        dataset = tf.data.Dataset.from_tensor_slices((image_set.paths.astype(str), labels))
        if shuffle:
            dataset = dataset.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)

        def decode(path, label):
            image = tf.numpy_function(lambda name: load_image(name.decode(), image_size), [path], tf.uint8)
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
