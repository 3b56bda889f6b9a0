"""A look at the data, before and after training: fastai's ``show_batch`` and ``show_results``.

Many pipeline mistakes show at a glance: labels that do not match the pictures, images squashed or
upside down, colours swapped, an augmentation that cuts the object out. :func:`show_batch` draws
images of a pipeline (or a dataset) with their labels, as the network gets them but with the
source's preprocessing undone (:func:`undo_preprocess`), and, given the augmentation layers, the
same images augmented as training sees them. :func:`show_results` draws test images with their
true and predicted classes, the wrong ones in red. Both pick images class by class in turn, so a
grid shows several classes, and follow :mod:`keras_tl.plots`: they return the Figure and save a
PNG only when given ``path``.

>>> train, validation, test = keras_tl.training_pipelines(source, 128, splits, len(class_names))
>>> keras_tl.show_batch(train, class_names, augment=keras_tl.augmentation_layers(), source=source)
>>> keras_tl.show_results("runs/fine_tune-20260101-120000", dataset)   # its test images
"""
import math

import numpy as np

from keras_tl import data, plots, sources

COLUMNS = 8  # images a row
FILE_IMAGE_SIZE = 128  # pixels a side for images read from files, unless image_size= says otherwise
BATCHES_READ = 8  # at most this many batches are read to find images of several classes


def undo_preprocess(images, source):
    """RGB in 0..255 again (float32) from ``images`` that ``source``'s ``preprocess_input`` made.

    Every source's ``preprocess_input`` is an affine map of each pixel: a scale (MobileNet, Inception:
    ``x / 127.5 - 1``), or the channels swapped to BGR and the ImageNet means subtracted (VGG, ResNet,
    SqueezeNet), or nothing (EfficientNet, which rescales inside the model). So the map is read off by
    applying it to a black pixel and to each channel at 255, checked on a random pixel, and inverted.
    """
    source = sources.get_source(source)
    probes = np.zeros((5, 1, 1, 3), dtype="float32")
    probes[[1, 2, 3], 0, 0, [0, 1, 2]] = 255.0
    probes[4, 0, 0] = [37.0, 142.0, 221.0]
    outputs = np.asarray(source.preprocess_input(probes.copy()), dtype="float64")[:, 0, 0]  # a copy: Keras's
    offset = outputs[0]                                                        # preprocess_input works in place
    matrix = (outputs[1:4] - offset) / 255.0  # row c: what channel c at 1 adds to each output channel
    if not np.allclose(probes[4, 0, 0] @ matrix + offset, outputs[4], rtol=1e-4, atol=1e-4):
        raise ValueError(f"{source.name}'s preprocess_input is not an affine map of each pixel, so it cannot be "
                         f"undone; show images in 0..255 (source=None).")
    pixels = (np.asarray(images, dtype="float64") - offset) @ np.linalg.inv(matrix)
    return pixels.astype("float32")


def show_batch(pipeline_or_dataset, class_names=None, n=8, augment=None, source=None, path=None, image_size=None,
               seed=0, title=None):
    """``n`` images of a pipeline or a dataset, each titled with its label; with ``augment``, the same images
    augmented below them. Returns the Figure.

    ``pipeline_or_dataset``: a ``tf.data.Dataset`` of ``(images, labels)`` batches (:func:`keras_tl.make_pipeline`,
    :func:`keras_tl.training_pipelines`; labels as integers, one-hot or mixed, which show both classes and
    their weights), whose first batches are read; or an :class:`~keras_tl.data.ImageDataset` (its train
    split; ``class_names`` default to its own) or an :class:`~keras_tl.data.ImageSet`, read as the pipelines
    read them, files at ``image_size`` px (default :data:`FILE_IMAGE_SIZE`). Images are picked class by class
    in turn, seeded by ``seed``. ``source``: the source whose ``preprocess_input`` the pipeline applied, undone
    for display (:func:`undo_preprocess`); None: the images are RGB in 0..255. ``augment``: the augmentation
    (:func:`keras_tl.augmentation_layers`, or any function of a batch), applied as in training, to the
    pipeline's images; a Keras layer is copied first (same seed), so the caller's random state is not
    used up.
    """
    if isinstance(pipeline_or_dataset, data.ImageDataset):
        class_names = class_names if class_names is not None else pipeline_or_dataset.class_names
        pipeline_or_dataset = pipeline_or_dataset.train
    if class_names is None:
        raise ValueError("class_names=None: give the class names (a dataset's class_names), one per label.")
    _check_count(n)
    if isinstance(pipeline_or_dataset, data.ImageSet):
        images, labels = _read_set(pipeline_or_dataset, n, image_size, seed)
        source = None  # read without preprocessing: nothing to undo
    else:
        images, labels = _read_pipeline(pipeline_or_dataset, n, len(class_names), seed)
    weights = np.eye(len(class_names))[labels] if labels.ndim == 1 else labels
    panels = [("pipeline", _viewable(images, source), [plots.label_text(row, class_names) for row in weights], None)]
    if augment is not None:
        augmented = _augmented(augment, images)
        panels.append(("augmented", _viewable(augmented, source), panels[0][2], None))
    return _draw_grid(panels, title or f"{len(images)} images of the pipeline"
                      + (" (above) and augmented as training sees them (below)" if augment is not None else ""),
                      path)


def show_results(model_or_run, image_set, class_names=None, n=8, path=None, seed=0, title=None):
    """``n`` labelled images with the run's predictions: each titled with its true class and the predicted one
    with its score (calibrated probability where the run has a calibration), the wrong ones in red.
    Returns the Figure.

    ``model_or_run``: a :class:`~keras_tl.analysis.trained.TrainedModel` or a run folder
    (:func:`keras_tl.load_run`); ``image_set``: an :class:`~keras_tl.data.ImageDataset` (its test split; its
    class names) or an :class:`~keras_tl.data.ImageSet` with ``class_names`` (default the run's). Images are
    picked class by class in turn, seeded by ``seed``; a true class is compared with the predicted one by name.
    """
    from keras_tl.analysis import trained

    run = model_or_run if isinstance(model_or_run, trained.TrainedModel) else trained.load_run(model_or_run)
    if isinstance(image_set, data.ImageDataset):
        class_names = class_names if class_names is not None else image_set.class_names
        image_set = image_set.test
    class_names = list(class_names if class_names is not None else run.classes)
    if image_set.multi_label or run.multi_label:
        raise ValueError("show_results draws one true and one predicted class per image, and this is a multi-label "
                         "task: use the run's predict (every class above its threshold) and its metrics.json.")
    _check_count(n)
    chosen = _by_class(image_set.labels, n, seed)
    shown = run.load_images(list(image_set.paths[chosen]) if image_set.paths is not None
                            else image_set.images[chosen])
    scores = run.predict(shown)
    best = scores.argmax(axis=1)  # the model's decision; a calibration changes what its score reads as
    calibrated = run.calibration is not None
    if calibrated:
        scores = run.calibration.probabilities(scores)
    truths = [class_names[label] for label in image_set.labels[chosen]]
    guesses = [run.classes[index] for index in best]
    titles = [f"true: {truth}\npredicted: {guess} ({row[index]:.2f})"
              for truth, guess, row, index in zip(truths, guesses, scores, best)]
    wrong = [truth != guess for truth, guess in zip(truths, guesses)]
    score_name = "calibrated probability" if calibrated else run.score_name
    heading = title or f"{len(chosen) - sum(wrong)} of {len(chosen)} right ({score_name} in brackets; wrong in red)"
    return _draw_grid([("", _viewable(shown, None), titles, wrong)], heading, path)


def _check_count(n):
    if not (isinstance(n, (int, np.integer)) and n >= 1):
        raise ValueError(f"n={n!r}: expected the number of images to show, 1 or more.")


def _by_class(labels, n, seed):
    """Up to ``n`` indices of ``labels`` taken from each class in turn (a seeded order within each class), so
    that a few images show as many classes as they can."""
    rng = np.random.default_rng(seed)
    queues = [list(rng.permutation(np.flatnonzero(labels == label))) for label in np.unique(labels)]
    chosen = []
    while len(chosen) < n and any(queues):
        chosen += [queue.pop(0) for queue in queues if queue][:n - len(chosen)]
    return np.array(chosen, dtype=int)


def _read_set(image_set, n, image_size, seed):
    """``(images, labels)`` of ``n`` images of ``image_set`` picked by :func:`_by_class`, read by the pipeline's
    decoder without preprocessing: RGB in 0..255."""
    chosen = _by_class(image_set.labels, n, seed)
    subset = image_set.subset(chosen)
    size = image_size or (max(subset.images.shape[1:3]) if subset.images is not None else FILE_IMAGE_SIZE)
    images, labels = next(iter(data.make_pipeline(subset, size, batch_size=len(chosen))))
    return np.asarray(images), np.asarray(labels)


def _read_pipeline(pipeline, n, classes, seed):
    """``(images, labels)``: ``n`` images of the pipeline's first batches picked by :func:`_by_class` on each
    label's largest class; batches are read until they hold ``n`` images of ``min(n, classes)`` classes, or
    :data:`BATCHES_READ` of them."""
    images, labels = [], []
    for batch in pipeline.take(BATCHES_READ):
        if not (isinstance(batch, tuple) and len(batch) == 2):
            raise ValueError("Expected a pipeline of (images, labels) batches, as keras_tl.make_pipeline makes.")
        batch_images, batch_labels = (np.asarray(part) for part in batch)
        if batch_images.ndim == 3:  # an unbatched pipeline: one image per element
            batch_images, batch_labels = batch_images[None], batch_labels[None]
        images.append(batch_images)
        labels.append(batch_labels)
        seen = _largest_class(np.concatenate(labels))
        if len(seen) >= n and len(np.unique(seen)) >= min(n, classes):
            break
    if not images:
        raise ValueError("The pipeline is empty: no batch to show.")
    images, labels = np.concatenate(images), np.concatenate(labels)
    chosen = _by_class(_largest_class(labels), n, seed)
    return images[chosen], labels[chosen] if labels.ndim == 2 else labels[chosen].astype(int)


def _largest_class(labels):
    """Each label's class: the integer itself, or the largest weight of a one-hot or mixed label."""
    return labels.argmax(axis=1) if labels.ndim == 2 else labels.astype(int)


def _augmented(augment, images):
    """``images`` through ``augment`` in training mode; a Keras layer is copied from its config first."""
    import keras

    if isinstance(augment, keras.layers.Layer):
        augment = type(augment).from_config(augment.get_config())
        return keras.ops.convert_to_numpy(augment(images, training=True))
    return np.asarray(augment(images))


def _viewable(images, source):
    """``images`` (the model's scale when ``source`` is given, else 0..255) as uint8 RGB for ``imshow``."""
    pixels = undo_preprocess(images, source) if source is not None else np.asarray(images, dtype="float32")
    if pixels.shape[-1] == 1:
        pixels = np.repeat(pixels, 3, axis=-1)
    return np.clip(np.round(pixels), 0, 255).astype(np.uint8)


def _draw_grid(panels, title, path):
    """One grid of :data:`COLUMNS` images a row per panel ``(name, images, titles, wrong)``, the panels one
    below the other, each named at its first row; an image whose ``wrong`` is true gets a red title and
    frame."""
    import matplotlib.pyplot as plt

    columns = min(COLUMNS, max(len(images) for _, images, _, _ in panels))
    rows_of = [math.ceil(len(images) / columns) for _, images, _, _ in panels]
    figure, grid = plt.subplots(sum(rows_of), columns, figsize=(1.9 * columns, 2.3 * sum(rows_of) + 0.4),
                                squeeze=False)
    first_row = 0
    for (name, images, titles, wrong), rows in zip(panels, rows_of):
        cells = grid[first_row:first_row + rows].ravel()
        for cell in cells[len(images):]:
            cell.remove()
        for index, (cell, image, text) in enumerate(zip(cells, images, titles)):
            cell.imshow(image)
            cell.set_xticks([])
            cell.set_yticks([])
            marked = wrong is not None and wrong[index]
            cell.set_title(text, fontsize=8, color="red" if marked else "black")
            if marked:
                for spine in cell.spines.values():
                    spine.set(color="red", linewidth=2.5)
        if name:
            cells[0].set_ylabel(name)
        first_row += rows
    figure.suptitle(title)
    figure.tight_layout()
    return plots.finish_figure(figure, path)
