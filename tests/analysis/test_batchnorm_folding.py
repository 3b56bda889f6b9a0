"""BatchNorm folded into the convolution before it: the same outputs, no BatchNorm left where it could go."""
import keras
import numpy as np

from keras_tl.analysis import batchnorm_folding
from keras_tl.training import freezing


def _norms(model):
    """The BatchNormalization layers ``model`` runs, nested models and InferenceMode included."""
    found = []
    for layer in model.layers:
        inner = layer.model if isinstance(layer, freezing.InferenceMode) else layer
        found += _norms(inner) if isinstance(inner, keras.Model) else [layer.name] * isinstance(
            layer, keras.layers.BatchNormalization)
    return found


def _with_statistics(model, seed=0):
    """``model`` with BatchNorm statistics and scales far from their defaults, so that a wrong fold shows."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights([rng.uniform(0.5, 2, weight.shape) if index != 1 else rng.normal(0, 0.5, weight.shape)
                               for index, weight in enumerate(layer.get_weights())])
    return model


def test_every_kind_of_pair_folds_exactly_and_the_rest_stays():
    inputs = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(4, 3, use_bias=False, name="plain")(inputs)
    x = keras.layers.BatchNormalization(name="plain_bn")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, name="depthwise")(x)  # with a bias of its own
    x = keras.layers.BatchNormalization(name="depthwise_bn")(x)
    branch = keras.layers.Conv2D(8, 1, name="shared")(x)  # two consumers: not folded
    x = keras.layers.Add()([keras.layers.BatchNormalization(name="kept_bn")(branch), branch])
    x = keras.layers.Conv2D(8, 1, activation="relu", name="activated")(x)  # BN after the activation: kept
    x = keras.layers.BatchNormalization(name="after_relu_bn")(x)
    base = _with_statistics(keras.Model(inputs, x, name="base"))
    outer_inputs = keras.Input((12, 12, 3))
    outer = keras.Model(outer_inputs, keras.layers.GlobalAveragePooling2D()(freezing.InferenceMode(base)(outer_inputs)))

    folded = batchnorm_folding.fold_batch_norms(outer)
    images = np.random.default_rng(1).normal(size=(3, 12, 12, 3)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(folded(images)),
                               keras.ops.convert_to_numpy(outer(images, training=False)), rtol=1e-5, atol=1e-5)
    assert sorted(_norms(folded)) == ["after_relu_bn", "kept_bn"]
    assert sorted(_norms(outer)) == ["after_relu_bn", "depthwise_bn", "kept_bn", "plain_bn"]  # left as it was


def test_mobilenet_folds_all_27_with_its_imagenet_statistics(imagenet_mobilenet_32):
    model = imagenet_mobilenet_32
    folded = batchnorm_folding.fold_batch_norms(model)
    images = np.random.default_rng(2).uniform(-1, 1, (4, 32, 32, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(model(images, training=False))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(folded(images)), expected, rtol=1e-4, atol=1e-5)
    assert len(_norms(model)) == 27 and _norms(folded) == []
