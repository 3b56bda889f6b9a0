"""Nearest neighbours and near-duplicates in a feature space, by cosine similarity.

- :func:`nearest_images`: the ``k`` images most similar to one image (or to any vector);
  :func:`plot_neighbours` draws the query and its neighbours with their similarities.
- :func:`near_duplicates`: the pairs above a cosine threshold, within one set or across two (train
  and test: :func:`keras_tl.check` uses it with :func:`pixel_features` to find resized and
  re-encoded copies, which an exact hash misses).
- :func:`thumbnails`: small RGB images from files, arrays or an :class:`keras_tl.data.ImageSet`,
  for figures; :func:`pixel_features`: those thumbnails as vectors, a feature space that needs no model.

>>> from keras_tl.features import neighbours
>>> features = neighbours.pixel_features(dataset.train)          # or a run's features, one row per image
>>> indices, similarities = neighbours.nearest_images(features, 0, k=5)
>>> neighbours.near_duplicates(features)                        # [(i, j, similarity), ...] most similar first
"""
import os

import numpy as np

from keras_tl import data
from keras_tl.plots import finish_figure

# For pixel_features (16x16 RGB, mean-centred): copies of a photo score at least 0.988 with it, different
# photos at most 0.957 (measured on tuxpaint_photos: see near_duplicates).
DUPLICATE_THRESHOLD = 0.975
CHUNK_ROWS = 1024  # rows of the similarity matrix computed at once: memory stays small for large sets


def unit_rows(features):
    """``features`` (one row per image) scaled to unit length, as float32; zero rows stay zero."""
    features = np.asarray(features, dtype="float32")
    if features.ndim != 2:
        raise ValueError(f"features= should be a 2-D array, one row per image; got shape {features.shape}.")
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


def nearest_images(features, query, k=5):
    """``(indices, similarities)`` of the ``k`` rows of ``features`` most cosine-similar to ``query``, nearest first.

    ``query``: a row index (that row itself is left out) or a feature vector of the same length.
    """
    features = unit_rows(features)
    if np.ndim(query) == 0:
        if not -len(features) <= int(query) < len(features):
            raise ValueError(f"query={query} is not an image index: there are {len(features)} images.")
        index = int(query) % len(features)
        vector, others = features[index], np.arange(len(features)) != index
    else:
        vector, others = unit_rows(np.reshape(query, (1, -1)))[0], np.ones(len(features), dtype=bool)
        if vector.shape[0] != features.shape[1]:
            raise ValueError(f"query= has {vector.shape[0]} values; the features have {features.shape[1]}.")
    if not 1 <= k <= others.sum():
        raise ValueError(f"k={k}: expected between 1 and {others.sum()} neighbours.")
    similarities = features @ vector
    candidates = np.flatnonzero(others)
    order = candidates[np.argsort(-similarities[candidates], kind="stable")[:k]]
    return order, similarities[order]


def near_duplicates(features_a, features_b=None, threshold=DUPLICATE_THRESHOLD):
    """Pairs ``(i, j, similarity)`` whose cosine similarity is at least ``threshold``, most similar first.

    With one set, the pairs ``i < j`` within it; with two, ``i`` indexes ``features_a`` and ``j``
    ``features_b`` (train and test: the leaks). What a threshold means depends on the features. Measured
    on the 211 tuxpaint_photos: the cosine of each photo with its copy re-encoded as JPEG (quality 75),
    resized to half (0.5x, bilinear), or both, and of the 22,155 pairs of different photos:

    =================================  ======================  ==========================================
    features                           copies: lowest (JPEG,   different photos: median, 99th and 99.9th
                                       0.5x, both)             percentiles, highest
    =================================  ======================  ==========================================
    :func:`pixel_features`, 16x16      0.997, 0.990, 0.988     0.27, 0.74, 0.88, 0.957
    :func:`pixel_features`, 32x32      0.994, 0.962, 0.957     0.25, 0.71, 0.85, 0.945
    MobileNet ImageNet, average-pooled 0.841, 0.719, 0.580     0.47, 0.71, 0.80, 0.986
    last layer, 224 px                 (medians 0.97, 0.89,    (the highest: the green and the red apple;
                                       0.85)                   their pixel features: 0.64)
    =================================  ======================  ==========================================

    So the default ``DUPLICATE_THRESHOLD``, 0.975 for 16x16 pixel features, finds every such copy
    and no pair of different photos. Plain silhouettes are alike more often: in Animal-MNIST (28x28),
    257 of the 1,944 test images score above it with a train image, mostly the same silhouette
    again, slightly moved, but a few only alike (a cat and a bear at 0.980). A network's features are made to be alike for alike things: in
    them copies and photos of the same kind of thing overlap, and no threshold separates them.
    """
    a = unit_rows(features_a)
    b = a if features_b is None else unit_rows(features_b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"features_a has {a.shape[1]} values per image, features_b {b.shape[1]}.")
    pairs = []
    for start in range(0, len(a), CHUNK_ROWS):
        similarities = a[start:start + CHUNK_ROWS] @ b.T
        if features_b is None:  # each pair once: only j > i
            similarities[np.tril_indices(len(similarities), start, len(b))] = -np.inf
        rows, columns = np.nonzero(similarities >= threshold)
        pairs += [(int(start + row), int(column), float(similarities[row, column]))
                  for row, column in zip(rows, columns)]
    return sorted(pairs, key=lambda pair: -pair[2])


# ----------------------------------------------------------------------------- images


def thumbnails(images, size=64):
    """``(n, size, size, 3)`` uint8 RGB thumbnails of ``images``: an :class:`keras_tl.data.ImageSet`,
    file paths, or an array of images (grey ``(n, H, W)`` or ``(n, H, W, 1)``, or RGB, in 0..255)."""
    from PIL import Image

    if isinstance(images, data.ImageSet):
        images = images.paths if images.paths is not None else images.images
    small = []
    for image in images:
        if isinstance(image, (str, os.PathLike)):
            small.append(data.load_image(image, size))
            continue
        array = data.images.rgb_array(image)
        if array is None:
            raise ValueError(f"images= should hold file paths or grey or RGB images; got one of shape "
                             f"{np.shape(image)}.")
        picture = Image.fromarray(np.clip(array, 0, 255).astype(np.uint8))
        small.append(np.asarray(picture.resize((size, size), Image.BILINEAR), dtype=np.uint8))
    return np.stack(small) if small else np.zeros((0, size, size, 3), dtype=np.uint8)


def pixel_features(images, size=16):
    """Each image as its ``size`` x ``size`` RGB thumbnail, flattened, less its mean: a feature space
    with no model, in which cosine similarity is the correlation of the pixels (see :func:`near_duplicates`)."""
    vectors = thumbnails(images, size).reshape(-1, size * size * 3).astype("float32")
    return vectors - vectors.mean(axis=1, keepdims=True)


def add_thumbnail(ax, image, position, zoom=1.0, colour=None):
    """Draw ``image`` (a uint8 array) centred at ``position`` in ``ax``'s data coordinates, framed in ``colour``."""
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    box = AnnotationBbox(OffsetImage(image, zoom=zoom), position, frameon=colour is not None, pad=0.15,
                         bboxprops={"edgecolor": colour, "linewidth": 2} if colour is not None else None)
    ax.add_artist(box)
    return box


def plot_neighbours(features, images, query, k=5, labels=None, class_names=None, image_size=64, path=None):
    """The query image and its ``k`` nearest (:func:`nearest_images`) in a row, each with its cosine
    similarity (and class, given ``labels`` and ``class_names``); returns the Figure.

    ``images``: what :func:`thumbnails` takes, one per row of ``features``; ``query``: a row index.
    """
    import matplotlib.pyplot as plt

    indices, similarities = nearest_images(features, query, k)
    shown = [int(query) % len(features)] + list(indices)
    small = thumbnails([image_at(images, index) for index in shown], image_size)
    figure, ax = plt.subplots(figsize=(1.3 * (k + 1), 2.0))
    for place, (index, image) in enumerate(zip(shown, small)):
        add_thumbnail(ax, image, (place, 0), zoom=54 / image_size, colour="black" if place == 0 else None)
        caption = "query" if place == 0 else f"{similarities[place - 1]:.3f}"
        if labels is not None and class_names is not None:
            caption += f"\n{class_names[labels[index]]}"
        ax.text(place, -0.62, caption, ha="center", va="top", fontsize=8)
    ax.set_xlim(-0.6, k + 0.6)
    ax.set_ylim(-1.0, 0.6)
    ax.set_axis_off()
    ax.set_title(f"image {shown[0]} and its {k} nearest (cosine similarity)", fontsize=9)
    return finish_figure(figure, path)


def image_at(images, index):
    """Image ``index`` of ``images`` (an ImageSet, paths or an array), as :func:`thumbnails` takes it."""
    if isinstance(images, data.ImageSet):
        return images.paths[index] if images.paths is not None else images.images[index]
    return images[index]
