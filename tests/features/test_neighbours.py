"""Nearest neighbours and near-duplicates: planted vectors, and a resized, re-encoded copy found by keras_tl.check."""
import io

import keras
import numpy as np
import pytest
from matplotlib.offsetbox import AnnotationBbox, OffsetImage
from PIL import Image

import keras_tl
from keras_tl import data
from keras_tl.features import neighbours

SIZE = 32


@pytest.fixture(scope="module")
def features():
    """20 random vectors; row 7 points nearly the way of QUERY, row 3 a little less."""
    rng = np.random.default_rng(0)
    features = rng.normal(size=(20, 16))
    features[7] = 3 * QUERY + rng.normal(scale=0.01, size=16)
    features[3] = QUERY + 0.5 * features[3]
    return features


QUERY = np.eye(16)[0] - np.eye(16)[5]


def test_the_nearest_to_a_planted_vector_come_first_with_their_cosine(features):
    indices, similarities = neighbours.nearest_images(features, QUERY, k=2)
    assert list(indices) == [7, 3] and similarities[0] == pytest.approx(1.0, abs=1e-3)
    assert similarities[0] > similarities[1] > 0.5
    indices, _ = neighbours.nearest_images(features, 7, k=3)
    assert 7 not in indices and indices[0] == 3  # an index query leaves itself out
    with pytest.raises(ValueError, match="k=20: expected between 1 and 19"):
        neighbours.nearest_images(features, 7, k=20)
    with pytest.raises(ValueError, match="query= has 3 values; the features have 16"):
        neighbours.nearest_images(features, [1, 2, 3])


def test_near_duplicates_within_one_set_and_across_two(features):
    copies = features.copy()
    copies[12] = 2 * copies[4]  # the same direction: cosine 1
    assert [pair[:2] for pair in neighbours.near_duplicates(copies, threshold=0.99)] == [(4, 12)]
    across = neighbours.near_duplicates(features[:10], features[[15, 7, 2]], threshold=0.99)
    assert sorted(pair[:2] for pair in across) == [(2, 2), (7, 1)]
    assert neighbours.near_duplicates(features, threshold=1.01) == []


def test_the_neighbour_figure_shows_the_query_and_k_thumbnails(features):
    images = np.random.default_rng(1).integers(0, 256, (20, 12, 12), dtype=np.uint8)  # grey images
    figure = neighbours.plot_neighbours(features, images, 7, k=4, labels=np.arange(20) % 2, class_names=["a", "b"])
    boxes = [artist for artist in figure.axes[0].artists if isinstance(artist, AnnotationBbox)]
    assert len(boxes) == 5 and all(isinstance(box.offsetbox, OffsetImage) for box in boxes)
    captions = [text.get_text() for text in figure.axes[0].texts]
    indices, similarities = neighbours.nearest_images(features, 7, k=4)
    assert captions == ["query\nb"] + [f"{similarity:.3f}\n{'ab'[index % 2]}"
                                       for index, similarity in zip(indices, similarities)]


def smooth_image(seed, size=64):
    """A photo-like image: random colours at 6x6, blown up smoothly."""
    coarse = np.random.default_rng(seed).integers(0, 256, (6, 6, 3), dtype=np.uint8)
    return Image.fromarray(coarse).resize((size, size), Image.BICUBIC)


def test_check_finds_a_resized_reencoded_copy_in_test_and_not_an_unrelated_image(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "test").mkdir()
    train_paths = []
    for index in range(6):
        train_paths.append(str(tmp_path / "train" / f"{index}.png"))
        smooth_image(index).save(train_paths[-1])
    copy = smooth_image(4).resize((32, 32), Image.BILINEAR)  # half size, then JPEG quality 75
    buffer = io.BytesIO()
    copy.save(buffer, "JPEG", quality=75)
    (tmp_path / "test" / "copy.jpg").write_bytes(buffer.getvalue())
    smooth_image(99).save(tmp_path / "test" / "new.png")
    train = data.ImageSet(labels=np.array([0, 1] * 3), paths=np.array(train_paths))
    test = data.ImageSet(labels=np.array([0, 1]), paths=np.array([str(tmp_path / "test" / name)
                                                                  for name in ("copy.jpg", "new.png")]))
    model = keras.Sequential([keras.Input((SIZE, SIZE, 3)), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(2)])
    findings = keras_tl.check(model, train, test=test, verbose=False)
    near = [finding for finding in findings if "near-copies" in finding.what]
    assert len(near) == 1 and near[0].severity == "warning", findings
    assert near[0].what.startswith("1 test image(s)")
    assert f"copy.jpg ~ train {train_paths[4]}" in near[0].what and "new.png" not in near[0].what
    assert not any("exact copies" in finding.what for finding in findings)

    unrelated = keras_tl.check(model, train, test=test.subset([1]), verbose=False)
    assert "No test image is a near-copy" in " ".join(finding.what for finding in unrelated)
