"""Maps of images in a feature space: where each image sits, which ones cluster, how well clusters match classes.

The image side of "Embedding spaces: let's play around" (and of Orange's image analytics):

- :func:`plot_image_map`: a 2-D projection (PCA, t-SNE, or UMAP where ``umap-learn`` is installed;
  :func:`keras_tl.word_vectors.maps.project_vectors`, the one word maps use) with each image's
  thumbnail at its place, framed in its class's colour;
- :func:`plot_dendrogram`: hierarchical clustering (SciPy, cosine distance) with the thumbnails under the leaves;
- :func:`kmeans_clusters` and :func:`cluster_purity`: k-means clusters and how pure they are in classes.

``features``: one row per image (a run's features, the FNE, :func:`keras_tl.features.neighbours.pixel_features`);
``images``: what :func:`keras_tl.features.neighbours.thumbnails` takes (an ImageSet, file paths or
an array), in the same order. Each function returns the Figure and saves a PNG only given ``path``.
``python -m keras_tl.inspect RUN --map tsne --dendrogram --clusters`` draws them for an fne run folder.

>>> from keras_tl.analysis import image_maps
>>> image_maps.plot_image_map(features, dataset.test, dataset.test.labels, dataset.class_names, method="tsne")
>>> clusters, purity = image_maps.kmeans_clusters(features, dataset.test.labels)
"""
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D

from keras_tl.features.neighbours import add_thumbnail, image_at, thumbnails, unit_rows
from keras_tl.plots import finish_figure
from keras_tl.word_vectors.maps import project_vectors

PROJECTION_NAMES = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}


def class_colour(label):
    """The colour of class ``label``: matplotlib's ``tab10``, then ``tab20``'s lighter shades."""
    if label < 10:
        return plt.get_cmap("tab10")(label)
    return plt.get_cmap("tab20")((2 * label + 1) % 20)


def _check_lengths(features, images, labels):
    if not len(features) == len(images) == len(labels):
        raise ValueError(f"features=, images= and labels= should have one entry per image; got {len(features)}, "
                         f"{len(images)} and {len(labels)}.")


def _class_legend(ax, labels, class_names):
    present = sorted(set(int(label) for label in labels))
    handles = [Line2D([], [], marker="s", linestyle="", markerfacecolor="none", markeredgewidth=2,
                      markeredgecolor=class_colour(label), label=class_names[label]) for label in present]
    ax.legend(handles=handles, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)


def plot_image_map(features, images, labels, class_names, method="pca", image_size=40, seed=0, title=None, path=None):
    """Each image's thumbnail at its 2-D position (``method``: "pca", "tsne" or "umap"), framed in its class colour."""
    labels = np.asarray(labels, dtype=int)
    _check_lengths(features, images, labels)
    points = project_vectors(features, method, seed)
    figure, ax = plt.subplots(figsize=(9, 8))
    ax.scatter(points[:, 0], points[:, 1], s=0)  # sets the limits the thumbnails are placed in
    for point, image, label in zip(points, thumbnails(images, image_size), labels):
        add_thumbnail(ax, image, point, zoom=0.6, colour=class_colour(label))
    ax.margins(0.08)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel(f"{PROJECTION_NAMES[method]} 1")
    ax.set_ylabel(f"{PROJECTION_NAMES[method]} 2")
    ax.set_title(title or f"{PROJECTION_NAMES[method]} map of {len(points)} images")
    _class_legend(ax, labels, class_names)
    return finish_figure(figure, path)


def plot_dendrogram(features, images, labels=None, class_names=None, linkage="average", image_size=40, title=None,
                    path=None):
    """Hierarchical clustering of the images (SciPy's ``linkage``: ``"average"``, ``"complete"`` or
    ``"single"`` on cosine distances, or ``"ward"`` on unit vectors), its dendrogram with each image's
    thumbnail under its leaf, framed in its class colour when ``labels`` are given."""
    from scipy.cluster import hierarchy

    labels = None if labels is None else np.asarray(labels, dtype=int)
    _check_lengths(features, images, labels if labels is not None else images)
    if len(features) < 2:
        raise ValueError(f"A dendrogram needs at least 2 images, got {len(features)}.")
    vectors = unit_rows(features).astype("float64")
    tree = hierarchy.linkage(vectors, method=linkage, metric="euclidean" if linkage == "ward" else "cosine")
    figure, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(vectors)), 5))
    leaves = hierarchy.dendrogram(tree, ax=ax, no_labels=True, color_threshold=0,
                                  above_threshold_color="grey")["leaves"]
    small = thumbnails([image_at(images, leaf) for leaf in leaves], image_size)
    for place, (leaf, image) in enumerate(zip(leaves, small)):
        box = add_thumbnail(ax, image, (5 + 10 * place, 0), zoom=0.45,  # SciPy puts leaf i at x = 5 + 10 i
                            colour=class_colour(labels[leaf]) if labels is not None else None)
        box.xybox, box.boxcoords = (0, -16), "offset points"
    ax.set_ylabel("cosine distance" if linkage != "ward" else "Ward distance")
    ax.set_title(title or f"Hierarchical clustering of {len(vectors)} images ({linkage} linkage)")
    if labels is not None and class_names is not None:
        _class_legend(ax, labels, class_names)
    return finish_figure(figure, path)


def cluster_purity(labels, clusters):
    """The share of images whose class is the most common class of their cluster (1.0: every cluster is one class)."""
    labels, clusters = np.asarray(labels, dtype=int), np.asarray(clusters)
    if len(labels) != len(clusters) or not len(labels):
        raise ValueError(f"labels= and clusters= should have one entry per image; got {len(labels)} and "
                         f"{len(clusters)}.")
    return sum(np.bincount(labels[clusters == cluster]).max() for cluster in np.unique(clusters)) / len(labels)


def kmeans_clusters(features, labels, n_clusters=None, seed=0):
    """``(clusters, purity)``: k-means on the unit feature vectors (``n_clusters`` defaults to the number of
    classes in ``labels``), and the clusters' :func:`cluster_purity` against ``labels``. With more columns than
    images (the FNE's 10,944 of a few hundred images), the vectors are first rotated onto the span of the images
    (a PCA keeping every component), which keeps every distance between them, so the clusters are the same and
    k-means works on a few hundred columns."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    labels = np.asarray(labels, dtype=int)
    n_clusters = n_clusters or len(np.unique(labels))
    if not 1 <= n_clusters <= len(labels):
        raise ValueError(f"n_clusters={n_clusters}: expected between 1 and {len(labels)} for {len(labels)} images.")
    vectors = unit_rows(features)
    if vectors.shape[1] > vectors.shape[0]:
        vectors = PCA(n_components=min(vectors.shape)).fit_transform(vectors)
    clusters = KMeans(n_clusters=n_clusters, n_init=10, random_state=seed).fit_predict(vectors)
    return clusters, cluster_purity(labels, clusters)
