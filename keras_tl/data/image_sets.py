"""What every reader returns: a dataset of named classes and two :class:`ImageSet` splits, and the seeded
splits and subsets made of them.

An image set holds either file paths or an in-memory ``uint8`` array, plus integer labels, or, for a
multi-label dataset (several labels per image, :mod:`keras_tl.data.csv_labels`), a multi-hot ``(images,
classes)`` array of 0 and 1 (:attr:`ImageSet.multi_label`). Where a dataset comes with no split, a seeded
stratified split is made, so every run sees the same one (multi-label: stratified on each image's first label
where every such class has two images, else a seeded random split).
:class:`ReadOptions` is what :func:`keras_tl.data.load_dataset` hands every reader.
"""
import dataclasses
import hashlib
import os
import warnings

import numpy as np


@dataclasses.dataclass(frozen=True)
class ReadOptions:
    """How a reader reads: the seeded split of a dataset without one (``test_fraction``, ``seed``), the
    decode check's cache folder and progress bars (``cache_dir``, ``verbose``), the smallest class a
    clip-art folder keeps (``min_images_per_class``), where tfds datasets are (``tfds_data_dir``), and a
    table's columns and label delimiter (``path_column``, ``label_column``, ``split_column``,
    ``label_delimiter``: :mod:`keras_tl.data.csv_labels`; None: found by their common names)."""

    test_fraction: float = 0.2
    seed: int = 0
    cache_dir: object = None
    verbose: bool = True
    min_images_per_class: int = 1
    tfds_data_dir: object = None
    path_column: str = None
    label_column: str = None
    split_column: str = None
    label_delimiter: str = None


@dataclasses.dataclass
class ImageSet:
    """Images of one split: ``paths`` (files) or ``images`` (uint8 array), and their integer ``labels``
    (multi-label: a multi-hot ``(images, classes)`` array)."""

    labels: np.ndarray
    paths: np.ndarray = None
    images: np.ndarray = None

    def __len__(self):
        return len(self.labels)

    @property
    def multi_label(self):
        """Whether the labels are multi-hot rows (several labels per image) rather than class indices."""
        return np.ndim(self.labels) == 2

    @classmethod
    def concatenate(cls, parts):
        """One image set of ``parts``, in their order (all of files, or all in memory): a dataset's train and
        test images as one pool, for k-fold splits and for looking at every image."""
        def joined(field):
            values = [getattr(part, field) for part in parts]
            return None if values[0] is None else np.concatenate(values)

        return cls(labels=joined("labels"), paths=joined("paths"), images=joined("images"))

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

    @property
    def multi_label(self):
        """Whether an image may have several labels (multi-hot labels, :attr:`ImageSet.multi_label`)."""
        return self.train.multi_label

    def class_counts(self):
        """``{class: (train images, test images)}`` (multi-label: the images that have the class)."""
        counts = [image_set.labels.sum(axis=0) if image_set.multi_label else
                  np.bincount(image_set.labels, minlength=len(self.class_names)) for image_set in (self.train,
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


def stratified_split(labels, test_fraction, seed, parameter="test_fraction"):
    """Seeded stratified split of indices into (train, test): every class keeps its share.

    Multi-hot ``labels`` (several labels per image) are stratified on each image's first label where every
    such class has at least 2 images, else split at random (seeded): a split that keeps the share of every
    label set is seldom possible on a small dataset. ``parameter``: the name of the fraction where the
    caller's user set it, for the error message.
    """
    from sklearn.model_selection import train_test_split

    labels = np.asarray(labels)
    if labels.ndim == 2:
        first = first_labels(labels)
        held_out = int(np.ceil(test_fraction * len(labels)))
        if not 1 <= held_out < len(labels):
            raise ValueError(f"Holding out {test_fraction:g} of {len(labels)} images leaves {held_out} held out and "
                             f"{len(labels) - held_out} kept: change {parameter}= or use more images.")
        counts = np.bincount(first)[np.unique(first)]
        stratify = first if counts.min() >= 2 and min(held_out, len(labels) - held_out) >= len(counts) else None
        train, test = train_test_split(np.arange(len(labels)), test_size=held_out, random_state=seed,
                                       stratify=stratify)
        return np.sort(train), np.sort(test)
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


def first_labels(labels):
    """Each image's class index: itself for class indices, the first class of each multi-hot row."""
    labels = np.asarray(labels)
    return np.argmax(labels, axis=1) if labels.ndim == 2 else labels


def per_class_subset(labels, per_class, seed):
    """Seeded choice of at most ``per_class`` indices of every class, in the original order (multi-label: of
    every first label, :func:`first_labels`)."""
    labels = first_labels(labels)
    rng = np.random.default_rng(seed)
    chosen = [rng.permutation(np.flatnonzero(labels == label))[:per_class] for label in np.unique(labels)]
    return np.sort(np.concatenate(chosen))


def split_validation(image_set, fraction, seed):
    """Hold a stratified ``fraction`` of a train set out for validation: returns (train, validation)."""
    train, validation = stratified_split(image_set.labels, fraction, seed, parameter="validation_fraction")
    return image_set.subset(train), image_set.subset(validation)
