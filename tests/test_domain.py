"""keras_tl.domain: CORAL matches the target's covariance; the gradient reversal layer."""
import numpy as np
import pytest

import keras
import keras_tl
from keras_tl.domain import coral


def two_domains(seed=0, samples=2000, width=5):
    rng = np.random.default_rng(seed)
    source = rng.normal(size=(samples, width)) @ rng.normal(size=(width, width))
    target = rng.normal(size=(samples, width)) @ rng.normal(size=(width, width)) + 3.0
    return source, target


def test_coral_gives_the_source_the_target_covariance():
    source, target = two_domains()
    aligned = coral(source, target, eps=1e-9)
    assert aligned.shape == source.shape
    np.testing.assert_allclose(np.cov(aligned, rowvar=False), np.cov(target, rowvar=False), rtol=1e-6, atol=1e-6)


def test_coral_without_whitening_would_not_match():
    """Re-colouring alone (skipping the whitening) leaves the source's correlations in: the check above
    must fail for it."""
    source, target = two_domains()
    values, vectors = np.linalg.eigh(np.cov(target, rowvar=False))
    recoloured_only = source @ (vectors * np.sqrt(values)) @ vectors.T
    assert not np.allclose(np.cov(recoloured_only, rowvar=False), np.cov(target, rowvar=False), rtol=1e-3, atol=1e-3)


def test_coral_regulariser_pulls_towards_the_target():
    source, target = two_domains(samples=300, width=8)

    def gap(values):
        return np.linalg.norm(np.cov(values, rowvar=False) - np.cov(target, rowvar=False))

    gaps = [gap(coral(source, target, eps=eps)) for eps in (1e-6, 1.0, 100.0)]
    assert gaps[0] < gaps[1] < gaps[2] < gap(source) * 1.5
    assert gaps[1] < gap(source)


def test_coral_checks_its_inputs():
    with pytest.raises(ValueError, match="same columns.*3 and 4"):
        coral(np.ones((5, 3)), np.ones((5, 4)))
    with pytest.raises(ValueError, match="2-D.*shape \\(5,\\)"):
        coral(np.ones(5), np.ones((5, 1)))
    with pytest.raises(ValueError, match="eps must be >= 0"):
        coral(np.ones((5, 2)), np.ones((5, 2)), eps=-1)


def test_gradient_reversal_is_identity_forward_and_flips_the_gradient(tmp_path):
    import tensorflow as tf

    layer = keras_tl.GradientReversal(strength=0.5)
    x = tf.Variable(np.arange(6, dtype="float32").reshape(2, 3))
    with tf.GradientTape() as tape:
        y = layer(x)
        loss = keras.ops.sum(y * 3.0)
    np.testing.assert_allclose(y.numpy(), x.numpy())
    np.testing.assert_allclose(tape.gradient(loss, x).numpy(), np.full((2, 3), -1.5))
    model = keras.Sequential([keras.Input((3,)), keras_tl.GradientReversal(2.0), keras.layers.Dense(1)])
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert loaded.layers[0].strength == 2.0
