"""Freezing utilities on small models: which layers train, and that frozen weights really stay put."""
import keras
import numpy as np
import pytest

from keras_tl.training import freezing


def small_cnn(seed=0):
    """conv -> BN -> relu -> conv -> BN -> relu -> pool -> dense, with block-style names."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((16, 16, 3))
    x = inputs
    for block in (1, 2):
        x = keras.layers.Conv2D(4, 3, padding="same", name=f"block{block}_conv")(x)
        x = keras.layers.BatchNormalization(name=f"block{block}_bn")(x)
        x = keras.layers.ReLU(name=f"block{block}_relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="dense")(x)
    return keras.Model(inputs, outputs, name="small_cnn")


def trainable_names(model):
    return [layer.name for layer in model.layers if layer.trainable and layer.weights]


def fit_briefly(model, epochs=2):
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, size=(16, 16, 16, 3)).astype("float32")  # far from BN's initial statistics
    y = rng.integers(0, 3, size=16)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=8, epochs=epochs, verbose=0)


def snapshot(layer):
    return [weight.numpy().copy() for weight in layer.weights]


def test_freeze_all_and_unfreeze_all():
    model = small_cnn()
    freezing.freeze_all(model)
    assert freezing.parameter_counts(model)["trainable"] == 0
    freezing.unfreeze_all(model)
    counts = freezing.parameter_counts(model)
    # Everything but the BN moving mean and variance (2 x 4 per BN layer) trains.
    assert counts["trainable"] == counts["total"] - 2 * 2 * 4


def test_unfreeze_all_after_per_layer_freezing():
    # With the TF backend, `model.trainable = True` is skipped when already True: the helper must not rely on it.
    model = small_cnn()
    freezing.freeze_up_to(model, "dense")
    assert trainable_names(model) == ["dense"]
    freezing.unfreeze_all(model)
    assert all(layer.trainable for layer in model.layers)


def test_freeze_up_to_by_name_and_index_is_like_slicing():
    model = small_cnn()
    freezing.freeze_up_to(model, "block2_conv")
    assert trainable_names(model) == ["block2_conv", "block2_bn", "dense"]
    index = [layer.name for layer in model.layers].index("block2_conv")
    freezing.freeze_up_to(model, index)
    assert trainable_names(model) == ["block2_conv", "block2_bn", "dense"]
    freezing.freeze_up_to(model, -1)
    assert trainable_names(model) == ["dense"]


def test_unfreeze_top_counts_layers_with_weights():
    model = small_cnn()
    freezing.unfreeze_top(model, 2)
    assert trainable_names(model) == ["block2_bn", "dense"]
    freezing.unfreeze_top(model, 0)
    assert trainable_names(model) == []
    with pytest.raises(ValueError, match="has 5 layers with weights"):
        freezing.unfreeze_top(model, 6)


def test_unfreeze_blocks_matches_whole_name_parts():
    model = small_cnn()
    freezing.unfreeze_blocks(model, ["block2"])
    assert trainable_names(model) == ["block2_conv", "block2_bn"]
    assert model.get_layer("block2_relu").trainable
    assert not model.get_layer("block1_conv").trainable
    assert "block1" in freezing.block_names(model) and "block1_conv" in freezing.block_names(model)


def test_block_prefix_does_not_match_longer_numbers():
    inputs = keras.Input((4,))
    x = keras.layers.Dense(2, name="conv_pw_1")(inputs)
    x = keras.layers.Dense(2, name="conv_pw_13")(x)
    model = keras.Model(inputs, x)
    freezing.unfreeze_blocks(model, "conv_pw_1")
    assert trainable_names(model) == ["conv_pw_1"]


def test_unknown_names_list_the_closest():
    model = small_cnn()
    with pytest.raises(ValueError, match="Unknown layer 'block2_cnv'.*block2_conv"):
        freezing.freeze_up_to(model, "block2_cnv")
    with pytest.raises(ValueError, match="Unknown block 'blok2'.*block2"):
        freezing.unfreeze_blocks(model, ["blok2"])
    with pytest.raises(ValueError, match="out of range"):
        freezing.freeze_up_to(model, 40)


def test_frozen_layers_keep_their_weights_after_fit():
    model = small_cnn()
    freezing.freeze_up_to(model, "block2_conv")
    before = {layer.name: snapshot(layer) for layer in model.layers if layer.weights}
    fit_briefly(model)
    for name in ("block1_conv", "block1_bn"):
        for old, new in zip(before[name], snapshot(model.get_layer(name))):
            np.testing.assert_array_equal(old, new)
    assert not np.allclose(before["block2_conv"][0], model.get_layer("block2_conv").kernel.numpy())


def test_frozen_batchnorm_keeps_its_statistics_and_scale():
    model = small_cnn()
    freezing.unfreeze_all(model)
    freezing.freeze_batchnorm(model)
    bn = model.get_layer("block1_bn")
    before = snapshot(bn)
    conv_before = model.get_layer("block1_conv").kernel.numpy().copy()
    fit_briefly(model)
    for old, new in zip(before, snapshot(bn)):  # gamma, beta, moving mean, moving variance
        np.testing.assert_array_equal(old, new)
    assert not np.allclose(conv_before, model.get_layer("block1_conv").kernel.numpy())


def test_trainable_batchnorm_does_update_its_statistics():
    # The control for the test above: without freezing, the same fit moves the moving mean.
    model = small_cnn()
    moving_mean = model.get_layer("block1_bn").moving_mean.numpy().copy()
    fit_briefly(model)
    assert not np.allclose(moving_mean, model.get_layer("block1_bn").moving_mean.numpy())


def test_a_short_batchnorm_memory_catches_up_with_the_data_in_a_few_steps():
    # Inputs of mean 5 and variance 4: after 8 steps, Keras's momentum 0.99 still holds mostly the initial
    # mean 0 and variance 1, so inference mode would normalise wrongly; momentum 0.5 has caught up.
    x = np.random.default_rng(0).normal(5.0, 2.0, size=(64, 4)).astype("float32")
    layers = {momentum: keras.layers.BatchNormalization() for momentum in (0.99, 0.5)}
    model = keras.Sequential([keras.Input((4,)), layers[0.5], keras.layers.Dense(2)])
    assert freezing.shorten_batchnorm_memory(model) == 1  # the BN layer only
    assert layers[0.5].momentum == freezing.FRESH_BATCHNORM_MOMENTUM == 0.5 and layers[0.99].momentum == 0.99
    for layer in layers.values():
        for batch in np.split(x, 8):
            layer(batch, training=True)
    np.testing.assert_allclose(layers[0.5].moving_mean.numpy(), x.mean(0), atol=0.6)
    np.testing.assert_allclose(layers[0.5].moving_variance.numpy(), x.var(0), rtol=0.5)
    assert np.all(layers[0.99].moving_mean.numpy() < 0.5) and np.all(layers[0.99].moving_variance.numpy() < 1.3)


def test_freeze_batchnorm_reaches_into_nested_models():
    base = small_cnn()
    inputs = keras.Input((16, 16, 3))
    outer = keras.Model(inputs, keras.layers.Dense(2)(base(inputs)))
    freezing.freeze_batchnorm(outer)
    assert not base.get_layer("block1_bn").trainable and not base.get_layer("block2_bn").trainable
    assert base.get_layer("block1_conv").trainable


def test_trainable_report_rows_and_totals():
    model = small_cnn()
    freezing.freeze_up_to(model, "dense")
    report = freezing.trainable_report(model)
    lines = report.splitlines()
    assert lines[0].split() == ["layer", "type", "trainable", "params", "trainable", "params"]
    dense_row = next(line for line in lines if line.startswith("dense")).split()
    assert dense_row == ["dense", "Dense", "yes", "15", "15"]  # 4 x 3 kernel + 3 biases
    conv_row = next(line for line in lines if line.startswith("block1_conv")).split()
    assert conv_row == ["block1_conv", "Conv2D", "no", "112", "0"]  # 3 x 3 x 3 x 4 + 4
    total = lines[-1].split()
    assert total == ["total", str(model.count_params()), "15"]


def test_trainable_report_expands_nested_models():
    base = small_cnn()
    inputs = keras.Input((16, 16, 3))
    outer = keras.Model(inputs, keras.layers.Dense(2, name="head")(base(inputs)))
    assert "  block1_conv" not in freezing.trainable_report(outer)
    assert "  block1_conv" in freezing.trainable_report(outer, expand_nested=True)


def classifier_around(base, wrap):
    """A new head on ``base``, called in inference mode the InferenceMode way or the Keras-guide way."""
    inputs = keras.Input((16, 16, 3))
    features = freezing.InferenceMode(base)(inputs) if wrap else base(inputs, training=False)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(features))


def test_inference_mode_keeps_unfrozen_batchnorm_statistics():
    base = small_cnn()
    model = classifier_around(base, wrap=True)
    bn = base.get_layer("block1_bn")
    moving_mean, gamma = bn.moving_mean.numpy().copy(), bn.gamma.numpy().copy()
    fit_briefly(model)
    np.testing.assert_array_equal(moving_mean, bn.moving_mean.numpy())
    assert not np.allclose(gamma, bn.gamma.numpy())  # unfrozen: its scale trains


def test_keras_3_overrides_training_false_in_a_functional_call():
    # Why InferenceMode exists (keras-team/keras#20285). If this fails, Keras now respects
    # `base(x, training=False)` inside fit and the InferenceMode docstring should say so.
    base = small_cnn()
    model = classifier_around(base, wrap=False)
    moving_mean = base.get_layer("block1_bn").moving_mean.numpy().copy()
    fit_briefly(model)
    assert not np.allclose(moving_mean, base.get_layer("block1_bn").moving_mean.numpy())


def test_inference_mode_saves_and_loads(tmp_path):
    model = classifier_around(small_cnn(), wrap=True)
    model.save(tmp_path / "model.keras")
    images = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype("float32")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-6)
    wrapper = next(layer for layer in loaded.layers if isinstance(layer, freezing.InferenceMode))
    assert wrapper.layers[0].name == "small_cnn"
    assert "block1_bn" in [layer.name for layer in freezing.nested_layers(loaded)]
