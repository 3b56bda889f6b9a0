"""``load_dataset``: one dispatcher above the readers, which never import it (the model is timm's
``reader_factory``). A spec is read by the first reader that applies to it:

- by name or prefix (:data:`BY_SPEC`): ``animal_mnist``, ``fashion_mnist``, ``openclipart`` (installed
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
import os
import pathlib
from typing import Callable

from keras_tl import messages
from keras_tl.data import course_datasets, folders, packaged, photos, tfds_datasets
from keras_tl.data.image_sets import ReadOptions, per_class_subset


@dataclasses.dataclass(frozen=True)
class Reader:
    """One way to find a dataset: its ``name``, whether it ``applies`` to a spec (or a folder), and ``read``."""

    name: str
    applies: Callable
    read: Callable


NAMED_DATASETS = ("animal_mnist", "fashion_mnist", "openclipart", "tuxpaint_photos")
BY_SPEC = (  # applies(spec: str)
    Reader("animal_mnist", lambda spec: spec == "animal_mnist", packaged.read_animal_mnist),
    Reader("fashion_mnist", lambda spec: spec == "fashion_mnist", packaged.read_fashion_mnist),
    Reader("openclipart", lambda spec: spec == "openclipart", packaged.read_openclipart),
    Reader("tuxpaint_photos", lambda spec: spec == "tuxpaint_photos", photos.read),
    Reader("tfds:NAME", lambda spec: spec.startswith("tfds:"), tfds_datasets.read),
    Reader("NAME:PATH", lambda spec: course_datasets.parse_spec(spec) is not None, course_datasets.read),
)
BY_FOLDER = (  # applies(folder: pathlib.Path), tried in this order
    Reader("fashion_mnist idx files", packaged.is_fashion_mnist_folder, packaged.read_fashion_mnist),
    Reader("a course dataset's layout", lambda root: course_datasets.recognise(root) is not None,
           course_datasets.read),
    Reader("split lists", folders.has_split_lists, folders.read_split_lists),
    Reader("train/ and test/ folders", folders.has_train_test_folders, folders.read_train_test_folders),
    Reader("class folders", lambda root: True, folders.read_class_folders),
)


def find_reader(spec):
    """The :class:`Reader` of ``spec``; a ``FileNotFoundError`` for a spec that is neither a name nor a folder."""
    reader = next((reader for reader in BY_SPEC if reader.applies(spec)), None)
    if reader is not None:
        return reader
    root = pathlib.Path(spec)
    if not root.is_dir():
        courses = tuple(f"{name}:PATH" for name in course_datasets.LOADERS)
        raise FileNotFoundError(f"Dataset {spec!r} is neither a folder nor one of {', '.join(NAMED_DATASETS)} "
                                f"(nor NAME:PATH, NAME one of {', '.join(course_datasets.LOADERS)})."
                                + messages.did_you_mean(spec, NAMED_DATASETS + courses))
    return next(reader for reader in BY_FOLDER if reader.applies(root))


def load_dataset(spec="animal_mnist", *, test_fraction=0.2, seed=0, train_per_class=None, test_per_class=None,
                 min_images_per_class=40, cache_dir=None, verbose=True, tfds_data_dir=None):
    """Find a dataset by name or path (see the module docstring) and return an :class:`~keras_tl.data.ImageDataset`.

    ``train_per_class``/``test_per_class`` keep a seeded subset of each class (quick runs).
    ``min_images_per_class`` applies to the clip-art folders, whose smallest categories hold 3 images.
    Image files are decode-checked first (cached in ``cache_dir``, see
    :func:`~keras_tl.data.images.decode_cache_file`; a progress bar unless ``verbose`` is false):
    unreadable ones are skipped with one warning and listed in ``dataset.skipped``. Before any
    decoding, an empty folder, an empty class folder and a single class are errors that say what
    was expected. ``tfds_data_dir``: where ``tfds:NAME`` datasets are read.
    """
    spec = os.fspath(spec)
    options = ReadOptions(test_fraction=test_fraction, seed=seed, cache_dir=cache_dir, verbose=verbose,
                          min_images_per_class=min_images_per_class, tfds_data_dir=tfds_data_dir)
    dataset = find_reader(spec).read(spec, options)
    if train_per_class:
        dataset.train = dataset.train.subset(per_class_subset(dataset.train.labels, train_per_class, seed))
    if test_per_class:
        dataset.test = dataset.test.subset(per_class_subset(dataset.test.labels, test_per_class, seed))
    dataset.warn_degenerate_classes()
    return dataset
