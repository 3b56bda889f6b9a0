"""BatchNorm folded into the convolution before it, for prediction: the same outputs, less work per image.

In inference a BatchNormalization layer is a fixed affine map of each channel, ``y = s * (x - mean) + beta``
with ``s = gamma / sqrt(variance + epsilon)``. When ``x`` is a convolution's output, the map goes into the
convolution itself: kernel ``W * s`` (each output channel scaled) and bias ``(b - mean) * s + beta``
(Jacob et al. 2018, "Quantization and training of neural networks for efficient integer-arithmetic-only
inference", section 3.2; what TensorFlow Lite's and OpenVINO's converters do). The BatchNorm disappears, and
TensorFlow then fuses convolution, bias and activation into one kernel. On MobileNet v1 at 224 px this takes
one image from 19.1 to 15.8 ms on a 2-core CPU (bench/RESULTS.md, 2026-12-08).

:func:`fold_batch_norms` returns a new model for prediction; the model given is left as it is. It folds each
``Conv2D`` or ``DepthwiseConv2D`` (no activation of its own, no LoRA, used once) whose only consumer is a
BatchNormalization over its channels (the last axis), inside nested functional models and
:class:`~keras_tl.training.freezing.InferenceMode` too; every other layer is shared with the model given,
weights included. Training such a model would be wrong: it has no BatchNorm statistics left to keep.
"""
import keras
import numpy as np

from keras_tl.training import freezing

CONVOLUTIONS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)


def fold_batch_norms(model):
    """A model for prediction with the outputs of ``model``, each foldable BatchNorm folded into its convolution;
    ``model`` itself when it is not a functional model, or when neither it nor a model inside it can hold one."""
    if not is_functional(model):
        return model
    pairs = foldable_pairs(model)
    nested = [layer for layer in model.layers if isinstance(layer, (keras.Model, freezing.InferenceMode))]
    if not pairs and not nested:
        return model
    folded_norms = {norm.name for norm in pairs.values()}

    def clone_layer(layer):
        if layer.name in pairs:
            return folded_convolution(layer, pairs[layer.name])
        if isinstance(layer, freezing.InferenceMode):
            return freezing.InferenceMode(fold_batch_norms(layer.model), name=layer.name)
        return fold_batch_norms(layer) if isinstance(layer, keras.Model) else layer  # others: shared, weights too

    def call_layer(layer, *args, **kwargs):
        if layer.name in folded_norms:
            return args[0]  # its affine map is in the convolution before it
        return layer(*args, **kwargs)

    return keras.models.clone_model(model, clone_function=clone_layer, call_function=call_layer)


def is_functional(model):
    """Whether ``model`` is a functional model (a graph of layers), which :func:`fold_batch_norms` can rebuild;
    a ``Sequential`` or subclassed model is kept as it is."""
    return type(model).__name__ == "Functional"


def foldable_pairs(model):
    """``{convolution name: its BatchNormalization}`` for the pairs of ``model`` (not of nested models) whose
    BatchNorm can go into the convolution: see the module docstring."""
    pairs = {}
    for norm in model.layers:
        if type(norm) is not keras.layers.BatchNormalization or len(norm._inbound_nodes) != 1:
            continue
        parents = norm._inbound_nodes[0].parent_nodes
        convolution = parents[0].operation if len(parents) == 1 else None
        if (type(convolution) in CONVOLUTIONS and len(convolution._inbound_nodes) == 1
                and len(convolution._outbound_nodes) == 1 and norm.axis in (-1, len(convolution.output.shape) - 1)
                and convolution.activation is keras.activations.linear
                and not getattr(convolution, "lora_enabled", False)):
            pairs[convolution.name] = norm
    return pairs


def folded_convolution(convolution, norm):
    """A new convolution (with a bias) whose outputs are ``norm``'s outputs on ``convolution``'s, in inference."""
    scale = keras.ops.convert_to_numpy(norm.moving_variance) + norm.epsilon
    scale = 1 / np.sqrt(scale) * (1 if norm.gamma is None else keras.ops.convert_to_numpy(norm.gamma))
    offset = -keras.ops.convert_to_numpy(norm.moving_mean) * scale
    if norm.beta is not None:
        offset = offset + keras.ops.convert_to_numpy(norm.beta)
    kernel = keras.ops.convert_to_numpy(convolution.kernel)
    if isinstance(convolution, keras.layers.DepthwiseConv2D):  # (height, width, channels, multiplier)
        kernel = kernel * scale.reshape(1, 1, *kernel.shape[2:])
    else:  # (height, width, inputs, outputs)
        kernel = kernel * scale
    if convolution.use_bias:
        offset = offset + keras.ops.convert_to_numpy(convolution.bias) * scale
    folded = type(convolution).from_config({**convolution.get_config(), "use_bias": True})
    folded.build(convolution.input.shape)
    folded.set_weights([kernel, offset.astype(kernel.dtype)])
    return folded
