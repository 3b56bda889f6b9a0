"""The Full-Network Embedding's post-processing (keras_tl.features.full_network_embedding): the Keras layer and the
scikit-learn transformer give the hand-computed values, keep the contracts of both libraries, and follow
keras_tl's and HPAI-BSC's definitions where they differ (docs/fne.md)."""
import keras
import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from keras_tl.features import full_network_embedding as fne


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
    standardise = fne.FullNetworkEmbedding(discretise=False)
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
    assert (restored.lower, restored.upper, restored.discretise) == (-0.3, 0.2, True)
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


@parametrize_with_checks([fne.FNETransformer(), fne.FNETransformer(discretise=False)])
def test_fne_transformer_is_a_scikit_learn_estimator(estimator, check):
    check(estimator)


def test_fne_transformer_statistics_dtypes_and_layer_agree():
    rng = np.random.default_rng(0)
    train = rng.normal(2.0, 3.0, size=(50, 4))
    train[:, 3] = 7.0  # no spread: maps to 0
    transformer = fne.FNETransformer().fit(train)
    np.testing.assert_allclose(transformer.mean_, train.mean(axis=0))
    np.testing.assert_allclose(transformer.std_, train.std(axis=0))  # population std (ddof=0)
    test = rng.normal(2.0, 3.0, size=(10, 4))
    out64 = transformer.transform(test)
    assert out64.dtype == np.float64 and set(np.unique(out64)) <= {-1.0, 0.0, 1.0}
    assert np.all(out64[:, 3] == 0)
    assert fne.FNETransformer().fit(train.astype("float32")).transform(test.astype("float32")).dtype == np.float32
    layer_out = keras.ops.convert_to_numpy(transformer.to_layer()(test.astype("float32")))
    np.testing.assert_array_equal(layer_out, out64.astype("float32"))
    with pytest.raises(ValueError, match="X has 3 features, but FNETransformer is expecting 4 features"):
        transformer.transform(test[:, :3])


def test_fne_layer_adapts_on_a_dataset_of_batches_like_normalization():
    import tensorflow as tf

    features = np.random.default_rng(2).normal(size=(37, 5)).astype("float32")
    from_array, from_batches = fne.FullNetworkEmbedding(discretise=False), fne.FullNetworkEmbedding(discretise=False)
    from_array.adapt(features)
    from_batches.adapt(tf.data.Dataset.from_tensor_slices(features).batch(8))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(from_batches.mean), features.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(from_batches(features)),
                               keras.ops.convert_to_numpy(from_array(features)), atol=1e-5)
    with pytest.raises(ValueError, match=r"shape \(37, 3\).*\(None, 5\)"):
        from_array.adapt(features[:, :3])


# Feature 0 has mean 0 and, in the named setting, std exactly 1; feature 1 is constant (std 0).
TRAIN = {"keras_tl": np.array([[-1.0, 5.0], [1.0, 5.0], [-1.0, 5.0], [1.0, 5.0]]),  # population std 1
         "hpai": np.array([[-1.0, 5.0], [0.0, 5.0], [1.0, 5.0]])}  # unbiased std 1
# So these values are the standardised ones: below, at and above the thresholds -0.25 and 0.15.
TEST = np.array([[-0.5, 5.0], [-0.25, 9.0], [0.0, 5.0], [0.15, 5.0], [0.2, 1.0]])
EXPECTED = {"keras_tl": [-1, 0, 0, 0, 1],  # strict: x < -0.25 -> -1, x > 0.15 -> 1
            "hpai": [-1, -1, 0, 0, 1]}  # torch.bucketize (right=False): x <= -0.25 -> -1, x > 0.15 -> 1


def test_population_or_unbiased_standard_deviation():
    column = TRAIN["hpai"]
    assert fne.FNETransformer().fit(column).std_[0] == pytest.approx(np.sqrt(2 / 3))
    assert fne.FNETransformer(reference="hpai").fit(column).std_[0] == pytest.approx(1.0)
    assert fne.FNETransformer(reference="hpai").fit(column[:1]).std_[0] == 0  # one sample: no unbiased std


@pytest.mark.parametrize("reference", ["keras_tl", "hpai"])
def test_both_references_give_the_documented_values_at_the_thresholds(reference):
    transformer = fne.FNETransformer(reference=reference).fit(TRAIN[reference])
    np.testing.assert_array_equal(transformer.std_, [1.0, 0.0])
    out = transformer.transform(TEST)
    np.testing.assert_array_equal(out[:, 0], EXPECTED[reference])
    np.testing.assert_array_equal(out[:, 1], 0)  # std 0 maps to 0 in both settings
    layer = transformer.to_layer()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(TEST.astype("float32"))), out)
    adapted = fne.FullNetworkEmbedding(reference=reference)
    adapted.adapt(TRAIN[reference])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(adapted.std), [1.0, 0.0])
    assert fne.FullNetworkEmbedding.from_config(layer.get_config()).reference == reference


def test_unknown_reference_names_the_choices():
    with pytest.raises(ValueError, match="keras_tl, hpai"):
        fne.FNETransformer(reference="torch").fit(TRAIN["hpai"])


@parametrize_with_checks([fne.FNETransformer(reference="hpai")])
def test_hpai_setting_is_a_scikit_learn_estimator(estimator, check):
    check(estimator)


@pytest.mark.parametrize("reference, ddof", [("keras_tl", 0), ("hpai", 1)])
def test_adapt_std_stays_exact_when_the_mean_is_far_above_the_spread(reference, ddof):
    import tensorflow as tf

    features = 1e7 + np.random.default_rng(3).normal(size=(1000, 3))  # float64, mean / std = 1e7
    expected = features.std(axis=0, ddof=ddof)
    transformer_std = fne.FNETransformer(reference=reference).fit(features).std_
    for data in (features, tf.data.Dataset.from_tensor_slices(features).batch(64)):
        layer = fne.FullNetworkEmbedding(reference=reference)
        layer.adapt(data)
        std = keras.ops.convert_to_numpy(layer.std)
        # A sum of squares minus the squared mean gave a relative error of 0.6 here.
        np.testing.assert_allclose(std, expected, rtol=1e-6)
        np.testing.assert_allclose(std, transformer_std, rtol=1e-6)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.mean), features.mean(axis=0), rtol=1e-7)


def test_adapt_takes_the_features_of_a_labelled_dataset_and_a_list_of_batches():
    import tensorflow as tf

    rng = np.random.default_rng(4)
    features, labels = rng.normal(3.0, 2.0, size=(50, 4)), rng.integers(0, 2, size=50)
    reference = fne.FullNetworkEmbedding()
    reference.adapt(features)
    labelled = tf.data.Dataset.from_tensor_slices((features, labels)).batch(16)
    weighted = tf.data.Dataset.from_tensor_slices((features, labels, np.ones(50))).batch(16)
    for data in (labelled, weighted, [features[:7], features[7:30], features[30:]], (features[:25], features[25:])):
        layer = fne.FullNetworkEmbedding()
        layer.adapt(data)
        for name in ("mean", "std", "count"):
            np.testing.assert_allclose(keras.ops.convert_to_numpy(getattr(layer, name)),
                                       keras.ops.convert_to_numpy(getattr(reference, name)), rtol=1e-6)


def test_adapt_names_the_shape_of_a_batch_that_is_not_2d():
    import tensorflow as tf

    features = np.zeros((6, 3))
    unbatched = tf.data.Dataset.from_tensor_slices((features, np.zeros(6)))
    with pytest.raises(ValueError, match=r"batch 1 of the tf.data.Dataset has shape \(3,\) \(batch the dataset"):
        fne.FullNetworkEmbedding().adapt(unbatched)
    with pytest.raises(ValueError, match=r"expects 2-D batches .*batch 2 of the list of batches has shape \(6,\)"):
        fne.FullNetworkEmbedding().adapt([features, np.zeros(6)])
    with pytest.raises(ValueError, match=r"a list of 2-D batches or a batched tf.data.Dataset; got an array of "
                                         r"shape \(2, 6, 3\)"):
        fne.FullNetworkEmbedding().adapt(np.stack([features, features]))
