"""The datasets installed as packages, found by name: ``animal_mnist`` (PyPI's ``animal-mnist``: 10k
silhouettes of 10 animals), ``fashion_mnist`` (Debian's ``dataset-fashion-mnist``, idx files; a folder
holding its idx files is read too) and ``openclipart`` (Debian's ``openclipart-png``: top-level
category folders of clip art). Their pages are in ``datasets/``.
"""
import gzip
import importlib.util
import pathlib
import pickle
import struct

import numpy as np

from keras_tl.data.folders import class_files, file_dataset
from keras_tl.data.image_sets import ImageDataset, ImageSet, stratified_split
from keras_tl.safe_pickle import NumpyUnpickler

FASHION_MNIST_DIR = pathlib.Path("/usr/share/datasets/fashion-mnist")
OPENCLIPART_DIR = pathlib.Path("/usr/share/openclipart/png")
ANIMAL_MNIST_FILES = ("animal_data_version_3.gz", "animal_label_version_3.gz")  # images, labels
ANIMAL_MNIST_CLASSES = ["bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra"]
FASHION_MNIST_CLASSES = ["t-shirt/top", "trouser", "pullover", "dress", "coat",
                         "sandal", "shirt", "sneaker", "bag", "ankle boot"]


def animal_mnist_folder():
    """The folder of Animal-MNIST's data files in its installed PyPI package."""
    spec = importlib.util.find_spec("animal_mnist")  # found, not imported: its loader imports TensorFlow
    if spec is None:
        raise ModuleNotFoundError("The animal_mnist dataset needs the PyPI package: pip install animal-mnist "
                                  "(or pip install -e '.[data]').")
    return pathlib.Path(list(spec.submodule_search_locations)[0]) / "data" / "Animal_MNIST"


def _read_array(path):
    """The numpy array pickled in Animal-MNIST's gzip file ``path``, read without running code from it;
    anything else is a ``ValueError`` naming the file."""
    with gzip.open(path, "rb") as handle:
        try:
            array = NumpyUnpickler(handle).load()
            if not isinstance(array, np.ndarray):
                raise pickle.UnpicklingError(f"it holds a value of type {type(array).__name__}, not an array")
        except Exception as error:  # a damaged or planted file fails anywhere in gzip or pickle
            raise ValueError(f"{path} is not Animal-MNIST's data as published ({error}); reinstall it: "
                             f"pip install --force-reinstall animal-mnist.") from error
    return array


def read_animal_mnist(spec, options):
    """Animal-MNIST from its PyPI package, split by ``options`` (one copy of each repeated image)."""
    images, labels = (_read_array(animal_mnist_folder() / name) for name in ANIMAL_MNIST_FILES)
    images, labels = images.astype(np.uint8), labels.astype(int)
    # 284 images appear twice; keep one copy, so that no test image is also a train image.
    _, first = np.unique(images.reshape(len(images), -1), axis=0, return_index=True)
    everything = ImageSet(labels=labels, images=images).subset(np.sort(first))
    train, test = stratified_split(everything.labels, options.test_fraction, options.seed)
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


def is_fashion_mnist_folder(root):
    """Whether ``root`` holds Fashion-MNIST's idx files."""
    return (root / "train-images-idx3-ubyte.gz").is_file()


def read_fashion_mnist(spec, options):
    """Fashion-MNIST, from the Debian package (``spec`` "fashion_mnist") or a folder of its idx files,
    with its own train/test split."""
    root = FASHION_MNIST_DIR if spec == "fashion_mnist" else pathlib.Path(spec)
    if not (root / "train-images-idx3-ubyte.gz").is_file():
        raise FileNotFoundError(f"Fashion-MNIST is not in {root}: apt-get install dataset-fashion-mnist, "
                                f"or pass the folder that holds its idx files.")

    def image_set(prefix):
        return ImageSet(labels=read_idx(root / f"{prefix}-labels-idx1-ubyte.gz").astype(int),
                        images=read_idx(root / f"{prefix}-images-idx3-ubyte.gz"))

    return ImageDataset("fashion_mnist", list(FASHION_MNIST_CLASSES), image_set("train"), image_set("t10k"))


def read_openclipart(spec, options):
    """Debian's clip art: its category folders, those with fewer than ``options.min_images_per_class``
    images left out, split by ``options``."""
    if not OPENCLIPART_DIR.is_dir():
        raise FileNotFoundError(f"{OPENCLIPART_DIR} not found: apt-get install openclipart-png.")
    return file_dataset("openclipart", OPENCLIPART_DIR, {"all": class_files(OPENCLIPART_DIR)}, options,
                        min_images=options.min_images_per_class)
