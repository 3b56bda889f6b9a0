"""Layer-wise learning rates: the multiplier scales the step, for SGD and for Adam."""
import keras
import numpy as np
import pytest

from keras_tl.training import optimizers


def two_layer_model():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(5, name="lower"),
                             keras.layers.Dense(2, name="upper")], name="net")


def one_step(optimizer, gradient_scale=1.0):
    """Apply one step of fixed gradients to a copy of the same variable; return the change."""
    variable = keras.Variable(np.zeros((3,), dtype="float32"), name="w")
    gradient = np.array([0.5, -2.0, 0.01], dtype="float32") * gradient_scale
    optimizer.apply([keras.ops.convert_to_tensor(gradient)], [variable])
    return variable.numpy()


def test_adam_ignores_a_scaled_gradient():
    # Why layer-wise rates must scale the step: Adam divides by the gradient's own size.
    plain = one_step(keras.optimizers.Adam(0.01))
    scaled = one_step(keras.optimizers.Adam(0.01), gradient_scale=0.1)
    np.testing.assert_allclose(scaled, plain, rtol=0.01)  # the same step, up to Adam's epsilon
    assert np.all(np.abs(scaled) > 0.5 * np.abs(plain))  # nowhere near a tenth of it


@pytest.mark.parametrize("name", optimizers.OPTIMIZERS)
def test_multiplier_scales_the_step(name):
    plain = one_step(optimizers.make_optimizer(name, 0.01))
    scaled = one_step(optimizers.make_optimizer(name, 0.01, multipliers={"w": 0.1}))
    np.testing.assert_allclose(scaled, 0.1 * plain, rtol=1e-5)
    assert np.all(np.abs(plain) > 0)


def test_rate_zero_leaves_a_group_unchanged_during_fit():
    model = two_layer_model()
    lower_before = [weight.numpy().copy() for weight in model.get_layer("lower").weights]
    upper_before = model.get_layer("upper").kernel.numpy().copy()
    multipliers = optimizers.layer_multipliers(model, {"lower": 0.0})
    assert set(multipliers) == {"net/lower/kernel", "net/lower/bias"}
    model.compile(optimizer=optimizers.make_optimizer("adam", 0.05, multipliers), loss="mse")
    rng = np.random.default_rng(0)
    model.fit(rng.normal(size=(32, 4)), rng.normal(size=(32, 2)), batch_size=8, epochs=2, verbose=0)
    for old, weight in zip(lower_before, model.get_layer("lower").weights):
        np.testing.assert_array_equal(old, weight.numpy())
    assert not np.allclose(upper_before, model.get_layer("upper").kernel.numpy())


def test_saved_model_keeps_the_optimizer_and_its_multipliers(tmp_path):
    model = two_layer_model()
    model.compile(optimizer=optimizers.make_optimizer("sgd", 0.01, optimizers.layer_multipliers(model, {"upper": 0.5})),
                  loss="mse")
    model.fit(np.ones((4, 4)), np.ones((4, 2)), verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert isinstance(loaded.optimizer, optimizers.LayerwiseSGD)
    assert loaded.optimizer.multipliers == {"net/upper/kernel": 0.5, "net/upper/bias": 0.5}


def test_discriminative_factors_rise_geometrically_to_one():
    np.testing.assert_allclose(optimizers.discriminative_factors(3, 0.01), [0.01, 0.1, 1.0])
    assert optimizers.discriminative_factors(1, 0.01) == [1.0]
    with pytest.raises(ValueError, match="at most 1"):
        optimizers.discriminative_factors(3, 2.0)


def test_split_groups_keeps_order_and_sizes():
    assert optimizers.split_groups(list("abcdefg"), 3) == [["a", "b"], ["c", "d", "e"], ["f", "g"]]
    with pytest.raises(ValueError):
        optimizers.split_groups(["a"], 2)


def test_bad_optimizer_input():
    with pytest.raises(ValueError, match="must be > 0"):
        optimizers.make_optimizer("adam", 0.0)
    with pytest.raises(ValueError, match="Unknown optimizer 'adamm'"):
        optimizers.make_optimizer("adamm", 0.1)
    with pytest.raises(ValueError, match="Unknown layer 'lowr'.*lower"):
        optimizers.layer_multipliers(two_layer_model(), {"lowr": 0.1})
