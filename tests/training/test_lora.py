"""LoRA: what trains, how many parameters the rank implies, and training after a save and load."""
import keras
import numpy as np
import pytest

from keras_tl.training import freezing, lora


def base_and_classifier():
    """A small base (Conv2D, DepthwiseConv2D, BN, Conv2D) nested in a classifier with a Dense head."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(6, 3, name="conv1")(inputs)
    x = keras.layers.DepthwiseConv2D(3, name="conv_dw")(x)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Conv2D(10, 1, name="conv_pw")(x)
    base = keras.Model(inputs, x, name="base")
    outer_inputs = keras.Input((8, 8, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(base(outer_inputs, training=False))
    model = keras.Model(outer_inputs, keras.layers.Dense(3, name="head")(pooled))
    return base, model


def data(count=16):
    rng = np.random.default_rng(1)
    return rng.normal(size=(count, 8, 8, 3)).astype("float32"), rng.normal(size=(count, 3)).astype("float32")


def test_which_layers_support_lora():
    assert lora.supports_lora(keras.layers.Dense(2))
    assert lora.supports_lora(keras.layers.Conv2D(2, 3))
    assert lora.supports_lora(keras.layers.Embedding(10, 2))
    assert lora.supports_lora(keras.layers.EinsumDense("ab,bc->ac", output_shape=2))
    assert not lora.supports_lora(keras.layers.BatchNormalization())


def test_trainable_count_is_what_the_rank_implies():
    base, model = base_and_classifier()
    rank = 2
    adapted = lora.add_lora(base, rank)
    assert adapted == ["conv1", "conv_pw"]  # the depthwise convolution has no LoRA
    # A is (kh * kw * in) x r and B is r x out: conv1 3x3x3 -> 6, conv_pw 1x1x6 -> 10; head 10 x 3 + 3.
    expected = (3 * 3 * 3 * rank + rank * 6) + (1 * 1 * 6 * rank + rank * 10) + (10 * 3 + 3)
    assert freezing.parameter_counts(model)["trainable"] == expected
    assert {weight.name for weight in base.trainable_weights} == {"lora_kernel_a", "lora_kernel_b"}


def test_only_the_lora_factors_move():
    base, model = base_and_classifier()
    lora.add_lora(base, 2, ["conv_pw"])
    layer = base.get_layer("conv_pw")
    frozen_before = [layer._kernel.numpy().copy(), layer.bias.numpy().copy(),
                     base.get_layer("conv1").kernel.numpy().copy()]
    start = model.predict(data()[0], verbose=0)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    model.fit(*data(), epochs=3, verbose=0)
    for old, new in zip(frozen_before, [layer._kernel, layer.bias, base.get_layer("conv1").kernel]):
        np.testing.assert_array_equal(old, new.numpy())
    assert np.any(layer.lora_kernel_b.numpy())
    assert not np.allclose(start, model.predict(data()[0], verbose=0))


def test_restart_lora_after_loading_keeps_outputs_and_can_train(tmp_path):
    base, model = base_and_classifier()
    lora.add_lora(base, 2, ["conv_pw"])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    model.fit(*data(), epochs=2, verbose=0)
    trained = model.predict(data()[0], verbose=0)
    model.save_weights(tmp_path / "backup.weights.h5")
    model.load_weights(tmp_path / "backup.weights.h5")
    layer = base.get_layer("conv_pw")
    assert not np.any(layer.lora_kernel_a.numpy()) and not np.any(layer.lora_kernel_b.numpy())  # Keras merged them
    np.testing.assert_allclose(model.predict(data()[0], verbose=0), trained, atol=1e-5)
    assert lora.restart_lora(model, seed=0) == ["conv_pw"]
    assert np.any(layer.lora_kernel_a.numpy())
    np.testing.assert_allclose(model.predict(data()[0], verbose=0), trained, atol=1e-5)  # B is still 0
    model.fit(*data(), epochs=1, verbose=0)
    assert np.any(layer.lora_kernel_b.numpy())  # with A = B = 0 this would stay 0 for ever
    assert lora.restart_lora(model) == []  # nothing to do when the factors are live


def test_bad_lora_requests():
    base, _ = base_and_classifier()
    with pytest.raises(ValueError, match="positive integer"):
        lora.add_lora(base, 0)
    with pytest.raises(ValueError, match="DepthwiseConv2D, which has no LoRA"):
        lora.add_lora(base, 2, ["conv_dw"])
    with pytest.raises(ValueError, match="Unknown layer 'conv_p'.*conv_pw"):
        lora.add_lora(base, 2, ["conv_p"])
