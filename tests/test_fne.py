import keras
import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from keras_tl import data, extract, fne, sources


def test_fne_layer_standardises_and_discretises_hand_computed_vectors():
    train = np.array([[0.0, 1.0, 2.0], [2.0, 1.0, 4.0], [4.0, 1.0, 0.0]], dtype="float32")
    layer = fne.FullNetworkEmbedding()
    layer.adapt(train)
    std = np.sqrt(8 / 3)  # population std of (0, 2, 4) and of (2, 4, 0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.mean), [2, 1, 2])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.std), [std, 0, std], rtol=1e-6)
    # z = (x - mean) / std: feature 1 has no spread, so it is 0 whatever comes in.
    probe = np.array([[2 + 0.2 * std, 7.0, 2 - 0.2 * std],     # z = 0.2, 0, -0.2
                      [2 - 0.3 * std, 1.0, 2 + 0.1 * std],     # z = -0.3, 0, 0.1
                      [2 + 0.15 * std, 1.0, 2 - 0.25 * std]],  # exactly on the thresholds: 0
                     dtype="float32")
    expected = [[1, 0, 0], [-1, 0, 0], [0, 0, 0]]
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(probe)), expected)
    standardise = fne.FullNetworkEmbedding(discretize=False)
    standardise.adapt(train)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(standardise(probe))[:2],
                               [[0.2, 0, -0.2], [-0.3, 0, 0.1]], atol=1e-5)


def test_thresholds_are_configurable_and_checked():
    layer = fne.FullNetworkEmbedding(lower=-1.0, upper=1.0)
    layer.adapt(np.array([[0.0], [2.0]]))  # mean 1, std 1
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(np.array([[0.5], [2.5], [-0.5]]))), [[0], [1], [-1]])
    with pytest.raises(ValueError, match="lower threshold must be below"):
        fne.FullNetworkEmbedding(lower=0.5, upper=0.1)
    with pytest.raises(ValueError, match="2-D array"):
        fne.FullNetworkEmbedding().adapt(np.zeros((3, 2, 2)))


def test_fne_layer_round_trips_through_a_keras_file(tmp_path):
    rng = np.random.default_rng(0)
    train = rng.normal(size=(50, 6)).astype("float32") * [1, 2, 3, 0, 5, 6]
    layer = fne.FullNetworkEmbedding(lower=-0.3, upper=0.2)
    layer.adapt(train)
    inputs = keras.Input((6,))
    model = keras.Model(inputs, layer(inputs))
    model.save(tmp_path / "fne.keras")
    loaded = keras.saving.load_model(tmp_path / "fne.keras")
    restored = loaded.layers[-1]
    assert isinstance(restored, fne.FullNetworkEmbedding) and restored.is_adapted
    assert (restored.lower, restored.upper, restored.discretize) == (-0.3, 0.2, True)
    probe = rng.normal(size=(20, 6)).astype("float32")
    np.testing.assert_array_equal(loaded.predict(probe, verbose=0), model.predict(probe, verbose=0))
    assert set(np.unique(model.predict(probe, verbose=0))) <= {-1.0, 0.0, 1.0}


def test_sklearn_transformer_adapts_on_fit_and_refuses_before():
    transformer = fne.FNETransformer()
    with pytest.raises(NotFittedError):
        transformer.transform(np.zeros((2, 3)))
    fitted = transformer.fit(np.array([[0.0, 1.0], [2.0, 3.0]]))
    np.testing.assert_array_equal(fitted.transform(np.array([[2.0, 0.0]])), [[1, -1]])
    with pytest.raises(ValueError, match="X has 3 features, but FNETransformer is expecting 2 features"):
        fitted.transform(np.zeros((1, 3)))


@pytest.fixture(scope="module")
def tiny_mobilenet():
    keras.utils.set_random_seed(0)
    return sources.get_source("mobilenet").build(weights=None, image_size=48)


def test_in_graph_pooling_equals_numpy_pooling_of_full_maps(tiny_mobilenet):
    names = sources.layer_names(tiny_mobilenet, "fne")
    images = np.random.default_rng(1).uniform(-1, 1, size=(3, 48, 48, 3)).astype("float32")
    pooled = extract.build_extractor(tiny_mobilenet, names).predict(images, verbose=0)
    maps = keras.Model(tiny_mobilenet.inputs, [tiny_mobilenet.get_layer(name).output for name in names])
    full = maps.predict(images, verbose=0)
    assert len(pooled) == 27 and full[0].shape == (3, 24, 24, 32)
    for in_graph, full_map in zip(pooled, full):
        np.testing.assert_allclose(in_graph, full_map.mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)


def _image_set(count):
    rng = np.random.default_rng(2)
    return data.ImageSet(labels=np.arange(count) % 2, images=rng.integers(0, 255, (count, 28, 28), dtype=np.uint8))


def test_features_are_cached_and_an_interrupted_run_resumes(tiny_mobilenet, tmp_path):
    extractor = extract.build_extractor(tiny_mobilenet, ["conv1_relu", "conv_pw_13_relu"])
    image_set = _image_set(10)
    source = sources.get_source("mobilenet")
    seen = []

    def pipeline(subset):
        seen.append(len(subset))
        return data.make_pipeline(subset, 48, source.preprocess_input, batch_size=3)

    expected, _ = extract.extract_features(extractor, image_set, pipeline, verbose=False)
    assert expected.shape == (10, 32 + 1024)

    def interrupted(subset):
        for number, batch in enumerate(pipeline(subset)):
            if number == 2:
                raise KeyboardInterrupt
            yield batch

    parts = ["mobilenet", "test-set"]
    seen.clear()
    with pytest.raises(KeyboardInterrupt):
        extract.extract_features(extractor, image_set, interrupted, tmp_path, parts, chunk_size=4, verbose=False)
    assert (tmp_path / next(p.name for p in tmp_path.glob("*.done"))).read_text() == "6"  # two batches of 3
    seen.clear()
    resumed, path = extract.extract_features(extractor, image_set, pipeline, tmp_path, parts, chunk_size=4, verbose=False)
    assert seen == [4]  # only the 4 images after the first 6 were extracted again
    np.testing.assert_allclose(resumed, expected, rtol=1e-5, atol=1e-6)
    assert path.suffix == ".npy" and not list(tmp_path.glob("*.partial.npy")) and not list(tmp_path.glob("*.done"))
    seen.clear()
    cached, _ = extract.extract_features(extractor, image_set, pipeline, tmp_path, parts, verbose=False)
    assert seen == [] and np.array_equal(cached, resumed)


def test_ten_crops_are_corners_centre_and_mirrors():
    images = np.arange(2 * 4 * 4 * 1, dtype="float32").reshape(2, 4, 4, 1)
    crops = keras.ops.convert_to_numpy(extract.ten_crops(images, 2))
    assert crops.shape == (10, 2, 2, 2, 1)
    np.testing.assert_array_equal(crops[0, 0, ..., 0], [[0, 1], [4, 5]])       # top left
    np.testing.assert_array_equal(crops[3, 0, ..., 0], [[10, 11], [14, 15]])   # bottom right
    np.testing.assert_array_equal(crops[4, 0, ..., 0], [[5, 6], [9, 10]])      # centre
    np.testing.assert_array_equal(crops[5, 0, ..., 0], [[1, 0], [5, 4]])       # top left, mirrored


def test_ten_crop_features_average_the_crops(tiny_mobilenet):
    extractor = extract.build_extractor(tiny_mobilenet, ["conv_pw_13_relu"])
    image_set = _image_set(2)
    source = sources.get_source("mobilenet")
    features, _ = extract.extract_features(
        extractor, image_set, lambda subset: data.make_pipeline(subset, 56, source.preprocess_input), ten_crop=True,
        verbose=False)
    images = next(iter(data.make_pipeline(image_set, 56, source.preprocess_input)))[0]
    crops = keras.ops.convert_to_numpy(extract.ten_crops(images, 48))
    by_crop = np.stack([extractor.predict(crop, verbose=0) for crop in crops])
    np.testing.assert_allclose(features, by_crop.mean(axis=0), rtol=1e-4, atol=1e-5)
