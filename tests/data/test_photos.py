"""``tuxpaint_photos``: the photographs among Debian's Tux Paint stamps, loaded by name: a class per category,
photographs only, a seeded stratified split, transparent backgrounds decoded as white. The tests that read
the package are skipped where it is not installed."""
import math
import pathlib
import re

import numpy as np
import pytest

from keras_tl import data
from keras_tl.data import photos

PAGE = pathlib.Path(__file__).parents[2] / "datasets" / "tuxpaint_photos.md"
INSTALL = "apt-get install tuxpaint-stamps-default"


@pytest.fixture(scope="module")
def decode_check_cache(tmp_path_factory):
    """One decode-check cache for the module: the photographs are decoded once, by the first load."""
    if not photos.STAMPS_DIR.is_dir():
        pytest.skip(f"Debian's Tux Paint stamps are not installed: {INSTALL}")
    return tmp_path_factory.mktemp("decode_check")


@pytest.fixture(scope="module")
def dataset(decode_check_cache):
    return data.load_dataset("tuxpaint_photos", cache_dir=decode_check_cache, verbose=False)


def test_a_class_per_category_with_at_least_the_minimum_of_photographs(dataset):
    assert dataset.name == "tuxpaint_photos" and dataset.skipped == []
    assert dataset.class_names == sorted(photos.PHOTO_CATEGORIES)
    totals = {name: train + test for name, (train, test) in dataset.class_counts().items()}
    assert min(totals.values()) >= photos.MIN_PHOTOS_PER_CLASS
    table = dict(re.findall(r"^\| `(\w+)` \| `[\w/]+` \| (\d+) \|", PAGE.read_text(), flags=re.MULTILINE))
    assert {name: int(count) for name, count in table.items()} == totals  # the page's table is what loads


def test_only_photographs_each_in_its_categorys_folder(dataset):
    for image_set in (dataset.train, dataset.test):
        for path, label in zip(image_set.paths, image_set.labels):
            relative = pathlib.Path(path).relative_to(photos.STAMPS_DIR)
            folder = photos.PHOTO_CATEGORIES[dataset.class_names[label]]
            assert relative.as_posix().startswith(folder + "/") and relative.suffix == ".png"
            assert "cartoon" not in relative.parts and not relative.stem.endswith("_mirror")
            assert relative.as_posix() not in photos.NOT_PHOTOS
    for path in photos.NOT_PHOTOS:  # the drawings left out by name are where the list says
        assert (photos.STAMPS_DIR / path).is_file(), path
    everything = [*dataset.train.paths, *dataset.test.paths]
    assert len(set(everything)) == len(everything)
    cartoons = list(photos.STAMPS_DIR.glob("food/fruit/cartoon/*.png"))
    assert cartoons and not set(map(str, cartoons)) & set(everything)


def test_the_split_is_seeded_and_stratified(dataset, decode_check_cache):
    for train, test in dataset.class_counts().values():
        assert test in (math.floor(0.2 * (train + test)), math.ceil(0.2 * (train + test)))
    assert not set(dataset.train.paths) & set(dataset.test.paths)
    again = data.load_dataset("tuxpaint_photos", cache_dir=decode_check_cache, verbose=False)
    assert list(again.test.paths) == list(dataset.test.paths)
    other = data.load_dataset("tuxpaint_photos", seed=1, cache_dir=decode_check_cache, verbose=False)
    assert set(other.test.paths) != set(dataset.test.paths)
    small = data.load_dataset("tuxpaint_photos", train_per_class=3, test_per_class=1, cache_dir=decode_check_cache,
                              verbose=False)
    assert set(small.class_counts().values()) == {(3, 1)}


def test_transparent_backgrounds_are_decoded_as_white(dataset):
    from PIL import Image

    for label in range(len(dataset.class_names)):
        path = dataset.test.paths[dataset.test.labels == label][0]
        with Image.open(path) as image:
            alpha = np.asarray(image.convert("RGBA"))[..., 3]
        decoded = data.decode_image(path)
        assert decoded.mode == "RGB" and decoded.size == alpha.shape[::-1]
        assert (alpha == 0).any() and (np.asarray(decoded)[alpha == 0] == 255).all(), path
    corners = np.asarray(data.decode_image(photos.STAMPS_DIR / "food/fruit/banana.png"))[[0, 0, -1, -1], [0, -1, 0, -1]]
    assert (corners == 255).all()


def test_without_the_package_one_error_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(photos, "STAMPS_DIR", tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match=re.escape(INSTALL)):
        data.load_dataset("tuxpaint_photos")
