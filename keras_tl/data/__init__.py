"""Datasets and ``tf.data`` pipelines: the data part of keras_tl.

A dataset is a list of classes and two :class:`ImageSet` splits (train, test), an
:class:`ImageDataset`. :func:`load_dataset` finds one by name or path (:mod:`keras_tl.data.registry`
lists what it reads, and ``datasets/`` has a page per dataset); every image file is decode-checked
first, and unreadable files are skipped with one warning.

Modules:

- :mod:`~keras_tl.data.registry`: ``load_dataset``, the dispatcher above the readers;
- readers: :mod:`~keras_tl.data.folders` (class folders, train/test folders, split lists),
  :mod:`~keras_tl.data.packaged` (Animal-MNIST, Fashion-MNIST, openclipart),
  :mod:`~keras_tl.data.photos` (photographs from Tux Paint's stamps),
  :mod:`~keras_tl.data.course_datasets` (the course's datasets in their published layouts),
  :mod:`~keras_tl.data.tfds_datasets` (TensorFlow Datasets), :mod:`~keras_tl.data.csv_labels` (a CSV or
  DataFrame of image paths and labels);
- :mod:`~keras_tl.data.image_sets` (what readers return; seeded splits and subsets),
  :mod:`~keras_tl.data.images` (image files, the one decoder, the decode check);
- :mod:`~keras_tl.data.pipelines` (``tf.data``), :mod:`~keras_tl.data.augment` (augmentation, mixup,
  CutMix), :mod:`~keras_tl.data.crops` (ten crops), :mod:`~keras_tl.data.downloads` (the published files).

The names below are the part's public API (``keras_tl.data.load_dataset``); they import numpy only.
Augmentation and crops import Keras: import them from their modules.
"""
from keras_tl.data.image_sets import (ImageDataset, ImageSet, ReadOptions, per_class_subset, split_validation,
                                      stratified_split)
from keras_tl.data.images import (IMAGE_EXTENSIONS, PAD_VALUE, RESIZE_MODES, check_resize, decode_cache_file,
                                  decode_image, find_unreadable_images, image_files, load_image, resize_image,
                                  sample_photos, to_8bit, to_rgb, warn_unreadable)
from keras_tl.data.packaged import (ANIMAL_MNIST_CLASSES, FASHION_MNIST_CLASSES, FASHION_MNIST_DIR, OPENCLIPART_DIR,
                                    read_idx)
from keras_tl.data.pipelines import (MAX_BATCH_SIZE, MAX_IMAGE_SIZE, check_sizes, make_pipeline, resize_batch,
                                     training_pipelines)
from keras_tl.data.registry import NAMED_DATASETS, load_dataset

__all__ = ["ANIMAL_MNIST_CLASSES", "FASHION_MNIST_CLASSES", "FASHION_MNIST_DIR", "IMAGE_EXTENSIONS", "MAX_BATCH_SIZE",
           "MAX_IMAGE_SIZE", "NAMED_DATASETS", "OPENCLIPART_DIR", "PAD_VALUE", "RESIZE_MODES", "ImageDataset",
           "ImageSet", "ReadOptions", "check_resize", "check_sizes", "decode_cache_file", "decode_image",
           "find_unreadable_images", "image_files", "load_dataset", "load_image", "make_pipeline", "per_class_subset",
           "read_idx", "resize_image", "resize_batch", "sample_photos", "split_validation", "stratified_split",
           "to_8bit", "to_rgb", "training_pipelines", "warn_unreadable"]
