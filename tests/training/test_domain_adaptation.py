"""keras_tl.training.domain_adaptation: CORAL matches the target's covariance; the gradient reversal layer."""
import keras
import numpy as np
import pytest

import keras_tl
from keras_tl.training.domain_adaptation import coral


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


def test_adaptation_strength_follows_the_papers_ramp():
    from keras_tl.training.domain_adaptation import adaptation_strength

    values = [float(adaptation_strength(p)) for p in (0.0, 0.5, 1.0)]
    np.testing.assert_allclose(values, [0.0, 2 / (1 + np.exp(-5)) - 1, 2 / (1 + np.exp(-10)) - 1], rtol=1e-6)
    np.testing.assert_allclose(values[1:], [0.98661, 0.99991], atol=1e-5)


def test_coral_loss_is_the_scaled_covariance_distance():
    from keras_tl.training.domain_adaptation import coral_loss

    source, target = two_domains(samples=40, width=6)
    expected = np.sum((np.cov(source, rowvar=False) - np.cov(target, rowvar=False)) ** 2) / (4 * 6 ** 2)
    np.testing.assert_allclose(float(coral_loss(source, target)), expected, rtol=1e-4)
    assert float(coral_loss(source, source)) == 0.0
    assert float(coral_loss(source, source + 5.0)) < 1e-6 * expected   # a shift of the mean is not a covariance gap


def shifted_blobs(seed, samples=256):
    """Two classes as 2-D Gaussian blobs; the target domain is the source rotated by 35 degrees and moved."""
    rng = np.random.default_rng(seed)

    def domain(angle, shift):
        labels = rng.integers(0, 2, samples)
        points = np.array([[-2.0, 0.0], [2.0, 0.0]])[labels] + rng.normal(scale=0.7, size=(samples, 2))
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        return points @ rotation + shift, labels

    return domain(0.0, 0.0), domain(0.6, np.array([1.5, 2.5]))


@pytest.fixture(scope="module")
def trained_dann():
    (source_x, source_y), (target_x, target_y) = shifted_blobs(seed=0)
    keras.utils.set_random_seed(0)
    extractor = keras.Sequential([keras.Input((2,)), keras.layers.Dense(16, activation="relu"),
                                  keras.layers.Dense(8, activation="relu")])
    model = keras_tl.DANN(extractor, num_classes=2, domain_units=16)
    history = model.fit_domains(source_x, source_y, target_x, epochs=25, batch_size=64, learning_rate=1e-2, seed=0)
    return model, history.history, (source_x, source_y, target_x, target_y)


def test_dann_confuses_the_domain_classifier_and_keeps_the_labels(trained_dann):
    """The target's labels are never given (``fit_domains`` takes target inputs only); here they only score."""
    from sklearn.linear_model import LogisticRegression

    model, history, (source_x, source_y, target_x, target_y) = trained_dann
    assert set(history) == {"label_loss", "label_accuracy", "domain_loss", "domain_accuracy", "coral_loss", "strength"}
    assert all(len(values) == 25 for values in history.values())
    assert history["strength"][0] < 0.5 < 0.99 < history["strength"][-1] <= 1.0    # the ramp, epoch means
    assert history["label_accuracy"][-1] > 0.95
    raw = np.vstack([source_x, target_x])
    domains = np.r_[np.zeros(len(source_x)), np.ones(len(target_x))]
    assert LogisticRegression().fit(raw, domains).score(raw, domains) > 0.9     # the raw domains are far apart
    assert abs(np.mean(history["domain_accuracy"][-5:]) - 0.5) < 0.15            # the domain head: near chance
    source_only = LogisticRegression().fit(source_x, source_y).score(target_x, target_y)
    probabilities = keras.ops.convert_to_numpy(model(target_x.astype("float32")))
    assert probabilities.shape == (len(target_x), 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    target_accuracy = np.mean(probabilities.argmax(axis=1) == target_y)
    assert target_accuracy > source_only + 0.08
    evaluated = model.evaluate(target_x, target_y, verbose=0, return_dict=True)
    assert evaluated["label_accuracy"] == pytest.approx(target_accuracy)


def test_dann_checks_its_inputs(trained_dann):
    model, _, (source_x, source_y, target_x, _) = trained_dann
    with pytest.raises(ValueError, match="same length; got 256 and 10"):
        model.fit_domains(source_x, source_y[:10], target_x)
    with pytest.raises(ValueError, match=r"same sample shape; got \(2,\) and \(3,\)"):
        model.fit_domains(source_x, source_y, np.ones((5, 3)))
    with pytest.raises(ValueError, match="num_classes must be at least 2; got 1"):
        keras_tl.DANN(model.feature_extractor, num_classes=1)
    with pytest.raises(ValueError, match="coral_weight=-1"):
        keras_tl.DANN(model.feature_extractor, num_classes=2, coral_weight=-1)


def test_dann_trains_a_conv_extractor_on_images_with_deep_coral():
    rng = np.random.default_rng(0)
    source_x, target_x = rng.uniform(size=(16, 8, 8, 3)), rng.uniform(size=(12, 8, 8, 3)) * 0.5 + 0.5
    extractor = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, activation="relu"),
                                  keras.layers.GlobalAveragePooling2D()])
    before = [weights.copy() for weights in extractor.get_weights()]
    model = keras_tl.DANN(extractor, num_classes=3, domain_units=4, domain_weight=0.0, coral_weight=10.0)
    history = model.fit_domains(source_x, rng.integers(0, 3, 16), target_x, epochs=2, batch_size=8).history
    assert len(history["coral_loss"]) == 2 and history["coral_loss"][0] > 0
    assert history["strength"] == [0.0, 0.0]                                     # domain_weight=0: no reversal
    assert not all(np.allclose(a, b) for a, b in zip(before, extractor.get_weights()))
