"""Feature extraction (keras_tl.features.extraction): in-graph pooling, the resumable cache, ten-crop, and the one
FeatureExtractor object with its feature info, pipeline and cache key."""
import os
import pathlib

import keras
import numpy as np
import pytest

from keras_tl import data, sources
from keras_tl.features import extraction


def test_in_graph_pooling_equals_numpy_pooling_of_full_maps(tiny_mobilenet):
    names = sources.layer_names(tiny_mobilenet, "fne")
    images = np.random.default_rng(1).uniform(-1, 1, size=(3, 48, 48, 3)).astype("float32")
    pooled = extraction.build_extractor(tiny_mobilenet, names).predict(images, verbose=0)
    maps = keras.Model(tiny_mobilenet.inputs, [tiny_mobilenet.get_layer(name).output for name in names])
    full = maps.predict(images, verbose=0)
    assert len(pooled) == 27 and full[0].shape == (3, 24, 24, 32)
    for in_graph, full_map in zip(pooled, full):
        np.testing.assert_allclose(in_graph, full_map.mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)




def test_features_are_cached_and_an_interrupted_run_resumes(random_image_set, tiny_mobilenet, tmp_path):
    extractor = extraction.build_extractor(tiny_mobilenet, ["conv1_relu", "conv_pw_13_relu"])
    image_set = random_image_set(10)
    source = sources.get_source("mobilenet")
    seen = []

    def pipeline(subset):
        seen.append(len(subset))
        return data.make_pipeline(subset, 48, source.preprocess_input, batch_size=3)

    expected, _ = extraction.extract_features(extractor, image_set, pipeline, verbose=False)
    assert expected.shape == (10, 32 + 1024)

    def interrupted(subset):
        for number, batch in enumerate(pipeline(subset)):
            if number == 2:
                raise KeyboardInterrupt
            yield batch

    parts = "mobilenet-test-set"  # the cache key
    seen.clear()
    with pytest.raises(KeyboardInterrupt):
        extraction.extract_features(extractor, image_set, interrupted, tmp_path, parts, chunk_size=4, verbose=False)
    assert (tmp_path / next(p.name for p in tmp_path.glob("*.done"))).read_text() == "6"  # two batches of 3
    seen.clear()
    resumed, path = extraction.extract_features(extractor, image_set, pipeline, tmp_path, parts, chunk_size=4,
                                             verbose=False)
    assert seen == [4]  # only the 4 images after the first 6 were extracted again
    np.testing.assert_allclose(resumed, expected, rtol=1e-5, atol=1e-6)
    assert path.suffix == ".npy" and not list(tmp_path.glob("*.partial.npy")) and not list(tmp_path.glob("*.done"))
    seen.clear()
    cached, _ = extraction.extract_features(extractor, image_set, pipeline, tmp_path, parts, verbose=False)
    assert seen == [] and np.array_equal(cached, resumed)


def test_ten_crops_are_corners_centre_and_mirrors():
    images = np.arange(2 * 4 * 4 * 1, dtype="float32").reshape(2, 4, 4, 1)
    crops = keras.ops.convert_to_numpy(extraction.ten_crops(images, 2))
    assert crops.shape == (10, 2, 2, 2, 1)
    np.testing.assert_array_equal(crops[0, 0, ..., 0], [[0, 1], [4, 5]])       # top left
    np.testing.assert_array_equal(crops[3, 0, ..., 0], [[10, 11], [14, 15]])   # bottom right
    np.testing.assert_array_equal(crops[4, 0, ..., 0], [[5, 6], [9, 10]])      # centre
    np.testing.assert_array_equal(crops[5, 0, ..., 0], [[1, 0], [5, 4]])       # top left, mirrored


def test_ten_crop_features_average_the_crops(random_image_set, tiny_mobilenet):
    extractor = extraction.build_extractor(tiny_mobilenet, ["conv_pw_13_relu"])
    image_set = random_image_set(2)
    source = sources.get_source("mobilenet")
    features, _ = extraction.extract_features(
        extractor, image_set, lambda subset: data.make_pipeline(subset, 56, source.preprocess_input), ten_crop=True,
        verbose=False)
    images = next(iter(data.make_pipeline(image_set, 56, source.preprocess_input)))[0]
    crops = keras.ops.convert_to_numpy(extraction.ten_crops(images, 48))
    by_crop = np.stack([extractor.predict(crop, verbose=0) for crop in crops])
    np.testing.assert_allclose(features, by_crop.mean(axis=0), rtol=1e-4, atol=1e-5)


def test_feature_extractor_carries_its_feature_info_and_columns(tiny_mobilenet):
    extractor = extraction.FeatureExtractor("mobilenet", ["conv1_relu", "conv_dw_7_relu", "conv_pw_13_relu"],
                                         image_size=48, weights=None, model=tiny_mobilenet)
    info = extractor.feature_info
    assert [(entry["name"], entry["channels"], entry["reduction"]) for entry in info] == [
        ("conv1_relu", 32, 2), ("conv_dw_7_relu", 512, 16), ("conv_pw_13_relu", 1024, 48)]
    assert [(entry["columns"].start, entry["columns"].stop) for entry in info] == [(0, 32), (32, 544), (544, 1568)]
    depths = [entry["depth"] for entry in info]
    assert depths == sorted(depths) and 0 < depths[0] and depths[-1] == 1.0
    assert extractor.num_features == 1568
    np.testing.assert_array_equal(extractor.columns("last"), np.arange(544, 1568))
    np.testing.assert_array_equal(extractor.columns(["conv1_relu"]), np.arange(32))
    with pytest.raises(ValueError, match="conv_dw_2_relu are not among this extractor's 3 layers"):
        extractor.columns(["conv_dw_2_relu"])


def test_feature_extractor_extracts_what_the_primitives_do_and_keys_its_cache(random_image_set, tiny_mobilenet,
                                                                              tmp_path):
    extractor = extraction.FeatureExtractor("mobilenet", "last", image_size=48, weights=None, model=tiny_mobilenet,
                                         batch_size=4)
    images = random_image_set(5)
    expected = extraction.build_extractor(tiny_mobilenet, ["conv_pw_13_relu"]).predict(
        next(iter(extractor.pipeline(images)))[0], verbose=0)
    features, path = extractor.extract(images, cache_dir=tmp_path, verbose=False)
    np.testing.assert_allclose(features[:4], expected, rtol=1e-5, atol=1e-6)
    assert path.name == extractor.cache_key(images) + ".npy" and features.shape == (5, 1024)
    # the key changes with what the features depend on: the images, ten crops, the layers, the weights
    other_images = data.ImageSet(labels=images.labels, images=255 - images.images)
    keys = {extractor.cache_key(images), extractor.cache_key(other_images), extractor.cache_key(images, ten_crop=True),
            extraction.FeatureExtractor("mobilenet", "conv1_relu", 48, None, model=tiny_mobilenet).cache_key(images),
            extraction.FeatureExtractor("mobilenet", "last", 48, "imagenet", model=tiny_mobilenet).cache_key(images)}
    assert len(keys) == 5
    again, again_path = extractor.extract(images, cache_dir=tmp_path, verbose=False)
    assert again_path == path and np.array_equal(again, features)


def test_an_image_edited_in_place_with_the_same_size_is_extracted_again(tiny_mobilenet, tmp_path):
    from PIL import Image

    folder = tmp_path / "photos"
    for label in ("cat", "dog"):
        for index in range(2):
            (folder / label).mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (16, 16), (200 * index, 100, 50)).save(folder / label / f"{index}.bmp")
    images = data.load_dataset(folder, test_fraction=0.5, verbose=False).train
    extractor = extraction.FeatureExtractor("mobilenet", "conv1_relu", image_size=48, weights=None,
                                            model=tiny_mobilenet)
    before, first_path = extractor.extract(images, cache_dir=tmp_path / "cache", verbose=False)
    before = np.array(before)
    edited = pathlib.Path(images.paths[0])
    size = edited.stat().st_size
    Image.new("RGB", (16, 16), (0, 0, 0)).save(edited)  # a BMP of the same size: only the pixels change
    assert edited.stat().st_size == size
    os.utime(edited, ns=(edited.stat().st_atime_ns, edited.stat().st_mtime_ns + 1_000_000_000))
    after, second_path = extractor.extract(images, cache_dir=tmp_path / "cache", verbose=False)
    assert second_path != first_path and not np.allclose(after[0], before[0])  # extracted again, not reused
    np.testing.assert_allclose(after, extractor.extract(images, verbose=False)[0], rtol=1e-5, atol=1e-6)


def test_a_full_disk_under_the_cache_is_an_error_before_the_memory_map(random_image_set, tiny_mobilenet, tmp_path,
                                                                        monkeypatch):
    import errno
    import shutil

    from keras_tl import runs

    monkeypatch.setattr(runs.shutil, "disk_usage", lambda folder: shutil._ntuple_diskusage(10**9, 10**9 - 100, 100))
    extractor = extraction.FeatureExtractor("mobilenet", "last", image_size=48, weights=None, model=tiny_mobilenet)
    with pytest.raises(OSError) as caught:
        extractor.extract(random_image_set(4), cache_dir=tmp_path / "cache", verbose=False)
    assert caught.value.errno == errno.ENOSPC
    assert f"{tmp_path / 'cache'} needs 20.0 KiB, 100 bytes are free" in str(caught.value)
    assert not list((tmp_path / "cache").glob("*.partial.npy"))


def test_the_extractor_builds_its_step_once_and_reuses_it_across_calls(random_image_set, tiny_mobilenet):
    extractor = extraction.FeatureExtractor("mobilenet", "last", image_size=48, weights=None, model=tiny_mobilenet,
                                         batch_size=4)
    first, _ = extractor.extract(random_image_set(6), verbose=False)
    step = extractor.step()
    second, _ = extractor.extract(random_image_set(6), verbose=False)
    other_size, _ = extractor.extract(random_image_set(3), verbose=False)  # another set: the same pipeline's kind
    assert extractor.step() is step and np.array_equal(first, second)
    np.testing.assert_allclose(other_size, first[:3], rtol=1e-3, atol=1e-6)  # batches of 3, not 4
    if keras.config.backend() == "tensorflow":
        assert step.experimental_get_tracing_count() == 1
    assert extractor.step(ten_crop=True) is not step  # ten crops: a step of their own
