import gzip
import struct

import numpy as np
import pytest
from PIL import Image

from keras_tl import data


def _save(path, colour=(200, 30, 30), mode="RGB", size=(20, 16), fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour).save(path, format=fmt)
    return path


def _class_tree(root, classes=("cat", "dog"), per_class=4):
    for index, name in enumerate(classes):
        for image in range(per_class):
            _save(root / name / f"{image}.png", colour=(index * 100, 50, image * 10))
    return root


def test_bad_files_are_skipped_with_one_warning_naming_them(tmp_path):
    root = _class_tree(tmp_path / "photos", per_class=4)
    (root / "cat" / "empty.jpg").write_bytes(b"")
    (root / "cat" / "notes.png").write_text("not an image at all")
    good_jpeg = _save(tmp_path / "good.jpg", fmt="JPEG", size=(64, 64)).read_bytes()
    (root / "dog" / "truncated.jpg").write_bytes(good_jpeg[: len(good_jpeg) // 2])
    good_png = (root / "dog" / "0.png").read_bytes()
    (root / "dog" / "corrupt.png").write_bytes(good_png[:40] + b"\x00" * 20 + good_png[60:])
    with pytest.warns(UserWarning, match="Skipping 4 unreadable") as caught:
        dataset = data.load_dataset(root, test_fraction=0.5, seed=1)
    assert len(caught) == 1
    message = str(caught[0].message)
    for name in ("empty.jpg", "notes.png", "truncated.jpg", "corrupt.png"):
        assert name in message
    assert len(dataset.train) + len(dataset.test) == 8
    assert dataset.class_names == ["cat", "dog"]


def test_empty_class_folder_is_an_error_before_any_work(tmp_path):
    root = _class_tree(tmp_path / "photos")
    (root / "zebra").mkdir()
    with pytest.raises(ValueError, match="no images under .*zebra"):
        data.load_dataset(root)


def test_train_and_test_with_different_classes_are_refused(tmp_path):
    _class_tree(tmp_path / "set" / "train", classes=("cat", "dog"))
    _class_tree(tmp_path / "set" / "test", classes=("cat", "cow"))
    with pytest.raises(ValueError, match=r"only in train: \['dog'\]; only in test: \['cow'\]"):
        data.load_dataset(tmp_path / "set")


def test_a_single_class_is_refused(tmp_path):
    root = _class_tree(tmp_path / "one", classes=("cat",))
    with pytest.raises(ValueError, match="at least 2"):
        data.load_dataset(root)


def test_train_test_folders_keep_their_split(tmp_path):
    _class_tree(tmp_path / "set" / "train", per_class=3)
    _class_tree(tmp_path / "set" / "test", per_class=2)
    dataset = data.load_dataset(tmp_path / "set")
    assert (len(dataset.train), len(dataset.test)) == (6, 4)
    assert list(dataset.test.labels) == [0, 0, 1, 1]


def test_mit67_style_split_lists(tmp_path):
    root = tmp_path / "mit"
    _class_tree(root / "Images", classes=("bar", "kitchen"), per_class=3)
    (root / "TrainImages.txt").write_text("bar/0.png\nbar/1.png\nkitchen/0.png\nkitchen/1.png\n")
    (root / "TestImages.txt").write_text("bar/2.png\nkitchen/2.png\n")
    dataset = data.load_dataset(root)
    assert dataset.class_names == ["bar", "kitchen"]
    assert list(dataset.train.labels) == [0, 0, 1, 1] and list(dataset.test.labels) == [0, 1]
    assert dataset.test.paths[1].endswith("Images/kitchen/2.png")


def test_seeded_stratified_split_is_repeatable_and_balanced(tmp_path):
    root = _class_tree(tmp_path / "photos", per_class=10)
    first = data.load_dataset(root, test_fraction=0.3, seed=7)
    again = data.load_dataset(root, test_fraction=0.3, seed=7)
    assert list(first.test.paths) == list(again.test.paths)
    assert np.bincount(first.test.labels).tolist() == [3, 3]


def test_grey_rgba_palette_and_cmyk_become_rgb(tmp_path):
    grey = _save(tmp_path / "grey.png", colour=128, mode="L")
    transparent = _save(tmp_path / "clear.png", colour=(10, 20, 30, 0), mode="RGBA")
    cmyk = _save(tmp_path / "cmyk.jpg", colour=(0, 255, 255, 0), mode="CMYK", fmt="JPEG")
    palette = Image.new("P", (8, 8), 0)
    palette.putpalette([0, 0, 255] + [0] * 765)
    palette.save(tmp_path / "palette.gif")
    assert data.load_image(grey, 12).shape == (12, 12, 3)
    np.testing.assert_array_equal(data.load_image(grey, 4)[0, 0], [128, 128, 128])
    np.testing.assert_array_equal(data.load_image(transparent, 4)[0, 0], [255, 255, 255])  # on white
    red = data.load_image(cmyk, 4)[2, 2]
    assert red[0] > 200 and red[1] < 60 and red[2] < 60
    np.testing.assert_array_equal(data.load_image(tmp_path / "palette.gif", 4)[1, 1], [0, 0, 255])


def test_idx_reader(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / "images-idx3-ubyte.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(struct.pack(">HBB3I", 0, 8, 3, 2, 3, 4) + images.tobytes())
    np.testing.assert_array_equal(data.read_idx(path), images)
    bad = tmp_path / "short-idx1-ubyte"
    bad.write_bytes(struct.pack(">HBB1I", 0, 8, 1, 5) + b"\x01\x02")
    with pytest.raises(ValueError, match="holds 2 values"):
        data.read_idx(bad)


def test_pipeline_from_files_resizes_preprocesses_and_keeps_order(tmp_path):
    root = _class_tree(tmp_path / "photos", per_class=3)
    dataset = data.load_dataset(root, test_fraction=0.5, seed=0)
    batches = list(data.make_pipeline(dataset.train, 32, preprocess=lambda x: x / 255.0, batch_size=2))
    images = np.concatenate([np.asarray(batch[0]) for batch in batches])
    labels = np.concatenate([np.asarray(batch[1]) for batch in batches])
    assert images.shape == (len(dataset.train), 32, 32, 3) and images.dtype == np.float32
    assert labels.tolist() == dataset.train.labels.tolist()
    assert 0.0 <= images.min() and images.max() <= 1.0
    expected = data.load_image(dataset.train.paths[0], 32) / 255.0
    np.testing.assert_allclose(images[0], expected, atol=1e-6)


def test_pipeline_from_grey_arrays_gives_rgb():
    image_set = data.ImageSet(labels=np.array([0, 1, 1]), images=np.full((3, 28, 28), 255, dtype=np.uint8))
    images, labels = next(iter(data.make_pipeline(image_set, 40, batch_size=8)))
    assert tuple(images.shape) == (3, 40, 40, 3)
    np.testing.assert_allclose(np.asarray(images), 255.0, atol=1e-3)
    assert np.asarray(labels).tolist() == [0, 1, 1]


def test_animal_mnist_default_dataset_and_per_class_subsets():
    dataset = data.load_dataset("animal_mnist", train_per_class=5, test_per_class=2, seed=3)
    assert dataset.class_names[:3] == ["bear", "bird", "cat"] and len(dataset.class_names) == 10
    assert np.bincount(dataset.train.labels).tolist() == [5] * 10
    assert dataset.test.images.shape == (20, 28, 28)
    full = data.load_dataset("animal_mnist")
    assert len(full.train) + len(full.test) == 9716  # 10,000 less 284 exact duplicates
    assert not set(map(bytes, full.train.images[:50])) & set(map(bytes, full.test.images))


def test_unknown_dataset_names_the_choices():
    with pytest.raises(FileNotFoundError, match="animal_mnist, fashion_mnist, openclipart"):
        data.load_dataset("imagenet_tiny")
