"""L2-SP (keras_tl.training.l2_sp): the penalty's value, its effect on training, and its reference after a resume."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_tl.training import l2_sp, recipe, resumable_fit


def tiny_base(seed=0):
    """A two-conv "pretrained" base (random weights: w0 is whatever the base starts from)."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv_a")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv_b")(x)
    return keras.Model(inputs, x, name="tiny_base")


def batches(seed=0, images=32):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(images, 8, 8, 3)).astype("float32")
    y = keras.utils.to_categorical(np.arange(images) % 3, 3).astype("float32")
    x[:, :, :, 0] += 2 * y[:, :1, None] - 1  # a learnable signal: class 0 brighter in channel 0
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(8)


def distance_and_head_norm(l2_sp_setting, tmp_path):
    base = tiny_base()
    start = [np.array(w) for w in base.get_weights()]
    data = batches()
    model, _ = recipe.fine_tune_model(base, data, data, run_dir=tmp_path, verbose=0, epochs=3, freeze_epochs=1,
                                      learning_rate=0.05, patience=10, l2_sp=l2_sp_setting)
    distance = sum(float(np.sum((w - s) ** 2)) for w, s in zip(base.get_weights(), start))
    return distance, float(np.sum(model.get_layer("classifier").kernel.numpy() ** 2))


def test_penalty_equals_a_hand_computation():
    base = tiny_base()
    model = recipe.build_classifier(base, 3)
    start = {v.path: v.numpy().copy() for v in base.weights}
    l2_sp.add_l2_sp(model, base, alpha=0.3, beta=0.05)
    rng = np.random.default_rng(1)
    for variable in model.weights:  # move every weight away from its start
        variable.assign(variable.numpy() + rng.normal(scale=0.1, size=variable.shape))
    trained = [v for v in base.weights if v.trainable]  # BN's moving statistics never train
    head = [v for v in model.get_layer("classifier").weights]
    expected = (0.3 / 2 * sum(np.sum((v.numpy() - start[v.path]) ** 2) for v in trained)
                + 0.05 / 2 * sum(np.sum(v.numpy() ** 2) for v in head))
    assert float(sum(model.losses)) == pytest.approx(expected, rel=1e-5)
    base.trainable = False  # a frozen base adds nothing: the head's term alone
    assert float(sum(model.losses)) == pytest.approx(0.05 / 2 * sum(np.sum(v.numpy() ** 2) for v in head), rel=1e-5)


def test_alpha_keeps_the_weights_near_their_start_and_beta_shrinks_the_head(tmp_path):
    free_distance, free_norm = distance_and_head_norm(None, tmp_path / "free")
    near_distance, small_norm = distance_and_head_norm((10.0, 10.0), tmp_path / "l2_sp")
    assert free_distance > 0
    assert near_distance < 0.5 * free_distance
    assert small_norm < 0.5 * free_norm


def test_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match=r"l2_sp= must be two numbers >= 0"):
        recipe.Recipe(l2_sp=(0.1, -1))
    with pytest.raises(ValueError, match=r"l2_sp=.*from_scratch"):
        recipe.Recipe(l2_sp=(0.1, 0.01), from_scratch=True)


def test_a_resumed_run_keeps_the_reference_of_its_start(tmp_path, monkeypatch):
    data = batches()
    first = tiny_base(seed=0)
    start = {v.path: v.numpy().copy() for v in first.weights}
    original = resumable_fit.TrainingClock.on_epoch_end
    epochs_seen = []

    def killed_at_the_third_epoch(clock, epoch, logs=None):  # the head's epoch, then two of fine_tune
        original(clock, epoch, logs)
        epochs_seen.append(epoch)
        if len(epochs_seen) == 3:
            raise KeyboardInterrupt

    settings = dict(run_dir=tmp_path, verbose=0, epochs=3, freeze_epochs=1, learning_rate=0.05, patience=10,
                    l2_sp=(1.0, 0.1))
    monkeypatch.setattr(resumable_fit.TrainingClock, "on_epoch_end", killed_at_the_third_epoch)
    with pytest.raises(KeyboardInterrupt):  # killed after the head epoch and two fine_tune epochs
        recipe.fine_tune_model(first, data, data, **settings)
    assert (tmp_path / "fine_tune" / "backup" / "latest.weights.h5").is_file()
    monkeypatch.setattr(resumable_fit.TrainingClock, "on_epoch_end", original)

    again = tiny_base(seed=5)  # other starting weights: the reference must still be the first run's
    model, stages = recipe.fine_tune_model(again, data, data, **settings)
    assert stages["fine_tune"]["epochs"] == 3 and stages["fine_tune"]["epochs_trained_now"] == 1
    for variable in again.weights:
        np.testing.assert_array_equal(variable.regularizer.reference.numpy(), start[variable.path])
