"""Maps of images: one thumbnail per point on the map and under the dendrogram, cluster purity by hand."""
import importlib.util

import numpy as np
import pytest
from matplotlib.offsetbox import AnnotationBbox, OffsetImage

from keras_tl.analysis import image_maps

CLASSES = ["red", "green", "blue"]


@pytest.fixture(scope="module")
def planted():
    """12 tiny images of 3 classes whose features form 3 tight groups."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 4)
    features = np.eye(3)[labels] * 5 + rng.normal(scale=0.1, size=(12, 3))
    images = rng.integers(0, 256, (12, 10, 10, 3), dtype=np.uint8)
    return features, images, labels


def thumbnails_drawn(figure):
    boxes = [artist for artist in figure.axes[0].artists if isinstance(artist, AnnotationBbox)]
    assert all(isinstance(box.offsetbox, OffsetImage) for box in boxes)
    return boxes


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_the_map_has_one_thumbnail_per_image_framed_in_its_class_colour(planted, method, tmp_path):
    features, images, labels = planted
    figure = image_maps.plot_image_map(features, images, labels, CLASSES, method=method, path=tmp_path / "map.png")
    boxes = thumbnails_drawn(figure)
    assert len(boxes) == 12 and (tmp_path / "map.png").stat().st_size > 0
    assert [box.patch.get_edgecolor()[:3] for box in boxes] == [image_maps.class_colour(label)[:3] for label in labels]
    assert [text.get_text() for text in figure.axes[0].get_legend().get_texts()] == CLASSES


@pytest.mark.skipif(importlib.util.find_spec("umap") is not None, reason="umap-learn is installed")
def test_umap_without_umap_learn_says_what_to_install(planted):
    features, images, labels = planted
    with pytest.raises(ModuleNotFoundError, match="pip install umap-learn"):
        image_maps.plot_image_map(features, images, labels, CLASSES, method="umap")


def test_a_wrong_method_or_length_is_a_clear_error(planted):
    features, images, labels = planted
    with pytest.raises(ValueError, match="Unknown projection 'mds'"):
        image_maps.plot_image_map(features, images, labels, CLASSES, method="mds")
    with pytest.raises(ValueError, match="got 12, 11 and 12"):
        image_maps.plot_image_map(features, images[:11], labels, CLASSES)


def test_the_dendrogram_has_one_thumbnail_under_each_leaf_and_joins_each_group_first(planted):
    features, images, labels = planted
    figure = image_maps.plot_dendrogram(features, images, labels, CLASSES)
    boxes = thumbnails_drawn(figure)
    assert len(boxes) == 12
    assert sorted(box.xy[0] for box in boxes) == [5 + 10 * place for place in range(12)]
    leaf_colours = [box.patch.get_edgecolor()[:3] for box in sorted(boxes, key=lambda box: box.xy[0])]
    groups = [leaf_colours[start:start + 4] for start in range(0, 12, 4)]
    assert all(len(set(group)) == 1 for group in groups) and len({group[0] for group in groups}) == 3


def test_cluster_purity_is_the_hand_computed_share():
    labels = [0, 0, 0, 1, 1, 2, 2, 2]
    clusters = [0, 0, 1, 1, 1, 2, 2, 0]  # majority classes 0 (2 of 3), 1 (2 of 3), 2 (2 of 2): 6 of 8
    assert image_maps.cluster_purity(labels, clusters) == 0.75
    assert image_maps.cluster_purity(labels, labels) == 1.0
    with pytest.raises(ValueError, match="got 8 and 7"):
        image_maps.cluster_purity(labels, clusters[:7])


def test_kmeans_finds_the_planted_groups(planted):
    features, _, labels = planted
    clusters, purity = image_maps.kmeans_clusters(features, labels)
    assert purity == 1.0 and len(set(clusters)) == 3
    _, one_cluster = image_maps.kmeans_clusters(features, labels, n_clusters=1)
    assert one_cluster == pytest.approx(4 / 12)
