"""LoRA: low-rank adaptation of frozen layers, with Keras 3's ``layer.enable_lora(rank)``.

Hu et al. (2021), "LoRA: Low-Rank Adaptation of Large Language Models": keep a pretrained weight
matrix W (``in x out``) frozen and learn a low-rank change, ``W + (alpha / r) A B`` with A of
shape ``in x r`` and B of shape ``r x out``. B starts at zero, so training starts from exactly the
pretrained model, and a layer trains ``r (in + out)`` numbers instead of ``in x out``.
For a convolution, ``in`` is ``kernel height x kernel width x input channels``.

Which layers support it: those with an ``enable_lora`` method. In Keras 3.15 that is Dense,
EinsumDense, Embedding and the plain convolutions Conv1D/Conv2D/Conv3D; DepthwiseConv2D,
SeparableConv2D and the transposed convolutions do not. In MobileNet, the 1x1 pointwise
convolutions (``conv_pw_*``) and the first convolution can be adapted, the depthwise ones not.

Saving: Keras stores a LoRA layer merged (``W + (alpha / r) A B`` as its kernel) and sets A and B
to zero when it loads it back. The model computes the same outputs, but with A = B = 0 neither
factor gets a gradient; :func:`restart_lora` draws a fresh A after a load, so training goes on.
"""
import keras
import numpy as np

from keras_tl.messages import unknown_layer_error
from keras_tl.training.freezing import nested_layers, set_trainable, unfreeze_all


def supports_lora(layer):
    """Whether Keras can add LoRA factors to ``layer`` (it has ``enable_lora``)."""
    return hasattr(layer, "enable_lora")


def lora_targets(base, unfreeze="all", freeze_bn=False):
    """The layers that get LoRA factors: those that ``unfreeze`` (a :func:`keras_tl.training.freezing.set_trainable`
    choice) trains and that support LoRA (an error if none)."""
    tuned = set_trainable(base, unfreeze, freeze_bn)
    targets = [name for name in tuned if supports_lora(base.get_layer(name))]
    if not targets:
        raise ValueError(f"None of the {len(tuned)} layers that train supports LoRA; unfreeze some Conv2D or "
                         f"Dense layers.")
    return targets


def lora_layers(model):
    """The layers of ``model`` (nested models included) that have LoRA enabled."""
    return [layer for layer in nested_layers(model) if getattr(layer, "lora_enabled", False)]


def add_lora(model, rank, layer_names=None, alpha=None):
    """Enable LoRA of ``rank`` on ``layer_names`` (default: every layer that supports it); freeze the rest.

    Afterwards only the LoRA factors train in ``model``: every other weight, the adapted layers'
    kernels and biases included, is frozen. Don't set ``trainable`` on the model again: Keras
    would unfreeze the kernels too. Returns the names of the adapted layers.
    """
    if not (isinstance(rank, (int, np.integer)) and rank >= 1):
        raise ValueError(f"The LoRA rank must be a positive integer; got {rank!r}.")
    layers = {layer.name: layer for layer in nested_layers(model)}
    if layer_names is None:
        layer_names = [name for name, layer in layers.items() if supports_lora(layer)]
    for name in layer_names:
        if name not in layers:
            raise unknown_layer_error(name, layers, model.name)
        if not supports_lora(layers[name]):
            raise ValueError(f"Layer {name!r} is a {type(layers[name]).__name__}, which has no LoRA in Keras "
                             f"{keras.__version__}; LoRA works on Dense, EinsumDense, Embedding and Conv1D/2D/3D.")
    if not layer_names:
        raise ValueError(f"{model.name} has no layer that supports LoRA.")
    unfreeze_all(model)
    for layer in layers.values():
        if not hasattr(layer, "layers"):  # leaves only: a nested model must stay trainable to reach its layers
            layer.trainable = layer.name in layer_names
    for name in layer_names:
        layer = layers[name]
        layer.enable_lora(int(rank), lora_alpha=alpha)
        if getattr(layer, "bias", None) is not None:
            layer.bias.trainable = False
    return list(layer_names)


def restart_lora(model, seed=None):
    """Draw a fresh A for every LoRA layer whose factors are both zero (after loading saved weights).

    The loaded kernel already holds the learned change, and B stays zero, so the model's outputs
    do not move; training then learns a further low-rank change on top.
    """
    restarted = []
    for layer in lora_layers(model):
        a, b = layer.lora_kernel_a, layer.lora_kernel_b
        if not (np.any(a.numpy()) or np.any(b.numpy())):
            a.assign(keras.initializers.HeUniform(seed=seed)(a.shape, dtype=a.dtype))
            restarted.append(layer.name)
    return restarted
