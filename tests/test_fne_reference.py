"""FNE as keras_tl defines it and as HPAI-BSC's fne package does (docs/fne.md): the documented values."""
import keras
import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from keras_tl import fne

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
