"""Freezing: choose which layers of a Keras model train.

Yosinski et al. (2014), "How transferable are features in deep neural networks?", found that the
first layers of an ImageNet network learn general features (edges, colours, textures) and the
last ones learn features specific to ImageNet. So a new task usually keeps the bottom frozen
and retrains the top: more of it when the target has many images or looks unlike ImageNet.

Every function here works on any Keras model and only sets ``trainable`` flags. Two rules of Keras 3
to keep in mind:

- ``layer.trainable = value`` also sets every sub-layer (a nested model is a layer), so the
  functions below first unfreeze the whole model and then freeze what must stay frozen.
  But with the TensorFlow backend (Keras 3.15), ``model.trainable = True`` does nothing at all
  when ``model.trainable`` is already True: TensorFlow's attribute tracking skips an assignment of
  the value an attribute already holds, so layers frozen one by one earlier stay frozen. The
  functions here therefore set every layer explicitly (:func:`set_trainable_everywhere`).
- A change of ``trainable`` takes effect at the next ``model.compile(...)``: recompile after it.

BatchNormalization is special: a frozen BN layer (``trainable = False``) also runs in inference
mode, using its moving mean and variance instead of the batch's (Ioffe & Szegedy 2015); see
:func:`freeze_batchnorm`. A BN layer trained from its initial statistics on a short run needs a
short memory for those moving averages: :func:`shorten_batchnorm_memory`.

>>> freeze_all(base)                      # feature extraction: only a new head trains
>>> freeze_up_to(base, "conv_dw_12")      # layers before conv_dw_12 frozen, the rest trains
>>> unfreeze_top(base, 8)                 # the top 8 layers that hold weights train
>>> unfreeze_blocks(base, ["conv_pw_13"]) # conv_pw_13, conv_pw_13_bn, conv_pw_13_relu train
>>> set_trainable(base, "8")              # one spec for all of these: None, "all", "N", a layer, blocks
>>> print(trainable_report(base))
"""
import keras
import numpy as np

from keras_tl.messages import close_matches, format_table, unknown_layer_error


def count_params(weights):
    """Number of scalars in a list of weights (variables)."""
    return int(sum(np.prod(weight.shape) for weight in weights))


def nested_layers(model):
    """Every layer of ``model``, looking inside nested models (a base model inside a classifier)."""
    layers = []
    for layer in model.layers:
        layers.append(layer)
        if hasattr(layer, "layers"):
            layers.extend(nested_layers(layer))
    return layers


def find_layer(model, layer):
    """The position of ``layer`` (a name or an index, negative counts from the top) in ``model.layers``.

    An unknown name raises a ``ValueError`` that lists the closest layer names.
    """
    names = [item.name for item in model.layers]
    if isinstance(layer, (int, np.integer)):
        if not -len(names) <= layer < len(names):
            raise ValueError(f"Layer index {layer} is out of range: {model.name} has {len(names)} layers.")
        return int(layer) % len(names)
    if layer in names:
        return names.index(layer)
    raise unknown_layer_error(layer, names, model.name, f" It has {len(names)} layers.")


def set_trainable_everywhere(model, value):
    """Set ``trainable`` on ``model`` and, one by one, on every layer inside it (see the module docstring)."""
    model.trainable = value
    for layer in nested_layers(model):
        layer.trainable = value
    return model


def freeze_all(model):
    """Freeze every layer: nothing in ``model`` trains (feature extraction)."""
    return set_trainable_everywhere(model, False)


def unfreeze_all(model):
    """Unfreeze every layer: the whole model trains (full fine-tuning)."""
    return set_trainable_everywhere(model, True)


def freeze_up_to(model, layer):
    """Freeze the layers before ``layer`` (a name or an index); ``layer`` and those above it train.

    Like slicing: ``freeze_up_to(model, 100)`` freezes ``model.layers[:100]``, the TensorFlow
    tutorial's ``fine_tune_at = 100``.
    """
    stop = find_layer(model, layer)
    unfreeze_all(model)
    for item in model.layers[:stop]:
        item.trainable = False
    return model


def weighted_layers(model):
    """The layers of ``model`` that hold weights, bottom to top (activations and pooling have none)."""
    return [layer for layer in model.layers if layer.weights]


def unfreeze_top(model, count):
    """Freeze everything except the top ``count`` layers that hold weights (activations don't count)."""
    candidates = weighted_layers(model)
    if not 0 <= count <= len(candidates):
        raise ValueError(f"Cannot unfreeze the top {count} layers: {model.name} has {len(candidates)} layers "
                         f"with weights; choose 0 to {len(candidates)}.")
    if count == 0:
        return freeze_all(model)
    return freeze_up_to(model, candidates[-count].name)


def block_names(model):
    """The block names of ``model``: every ``_``-separated prefix of its layer names.

    ``block5_conv1`` gives ``block5`` and ``block5_conv1``; ``conv_pw_13_bn`` gives ``conv``,
    ``conv_pw``, ``conv_pw_13`` and ``conv_pw_13_bn``.
    """
    blocks = []
    for layer in model.layers:
        parts = layer.name.split("_")
        for end in range(1, len(parts) + 1):
            prefix = "_".join(parts[:end])
            if prefix not in blocks:
                blocks.append(prefix)
    return blocks


def block_layers(model, block):
    """The layers named ``block`` or starting with ``block_`` (so ``conv_pw_1`` leaves out ``conv_pw_13``)."""
    chosen = [layer for layer in model.layers if layer.name == block or layer.name.startswith(block + "_")]
    if not chosen:
        suggestions = close_matches(block, block_names(model))
        raise ValueError(f"Unknown block {block!r} in {model.name}: no layer is named {block!r} or starts "
                         f"with {block + '_'!r}. Closest blocks: {', '.join(suggestions) or 'none'}.")
    return chosen


def unfreeze_blocks(model, blocks):
    """Freeze everything except the layers of the named blocks (see :func:`block_layers`)."""
    if isinstance(blocks, str):
        blocks = [blocks]
    chosen = {id(layer) for block in blocks for layer in block_layers(model, block)}
    unfreeze_all(model)
    for layer in model.layers:
        layer.trainable = id(layer) in chosen
    return model


def unfreeze_part(base, spec):
    """Unfreeze part of ``base``: ``"N"`` (the top N layers with weights), a layer name (that layer and
    every layer above it), or comma-separated block names (those blocks only)."""
    spec = str(spec).strip()
    if spec.isdigit():
        return unfreeze_top(base, int(spec))
    names = [layer.name for layer in base.layers]
    if spec in names:
        return freeze_up_to(base, spec)
    blocks = [block.strip() for block in spec.split(",")]
    known = block_names(base)
    for block in blocks:
        if block not in known:
            raise ValueError(f"unfreeze={block!r} is neither a layer nor a block of {base.name}; closest: "
                             f"{', '.join(close_matches(block, known)) or 'none'}. Give a number (the top N layers "
                             f"with weights), one layer name (it and all above it) or block names.")
    return unfreeze_blocks(base, blocks)


def set_trainable(base, unfreeze="all", freeze_bn=False):
    """Set the base's flags: ``unfreeze`` is ``"all"``, ``None`` (all frozen) or an :func:`unfreeze_part`
    choice; return the names of the layers with weights that now train."""
    if unfreeze is None:
        freeze_all(base)
    elif unfreeze == "all":
        unfreeze_all(base)
    else:
        unfreeze_part(base, unfreeze)
    if freeze_bn:
        freeze_batchnorm(base)
    return [layer.name for layer in base.layers if layer.trainable and layer.trainable_weights]


def freeze_batchnorm(model):
    """Freeze every BatchNormalization layer, also inside nested models.

    A frozen BN layer keeps its learned scale and offset and runs in inference mode: it normalises
    with the moving mean and variance learned on ImageNet and never updates them. With small
    batches from a new dataset, batch statistics are noisy and would wreck those estimates.
    """
    for layer in nested_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    return model


# Keras's BatchNormalization averages its statistics with momentum 0.99: a memory of about 100 steps.
# A BN layer trained from its initial mean 0 and variance 1 on a short run (a few steps per epoch,
# weights moving fast) still holds mostly those initial values at the end, so in inference mode
# (validation, test) it normalises with the wrong statistics and every image gets the same class.
FRESH_BATCHNORM_MOMENTUM = 0.5


def shorten_batchnorm_memory(model, momentum=FRESH_BATCHNORM_MOMENTUM):
    """Give every BatchNormalization layer of ``model`` (also inside nested models, as
    :func:`freeze_batchnorm` reaches them) a moving average of ``momentum``, so their inference
    statistics follow the last few batches (Ioffe & Szegedy 2015, section 3.1: inference uses
    population statistics, which the moving average only estimates). A frozen BN layer never updates
    its statistics, so this changes only the ones that train. Call before ``compile``; returns how
    many layers changed."""
    changed = [layer for layer in nested_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in changed:
        layer.momentum = momentum
    return len(changed)


def parameter_counts(model):
    """``{"trainable": ..., "non_trainable": ..., "total": ...}`` parameter counts of ``model``."""
    trainable = count_params(model.trainable_weights)
    total = count_params(model.weights)
    return {"trainable": trainable, "non_trainable": total - trainable, "total": total}


def trainable_report(model, expand_nested=False):
    """A table of every layer: name, type, trainable flag, parameters, trainable parameters; with totals.

    ``expand_nested`` lists the layers inside nested models (indented) instead of one row per model.
    """
    rows = []

    def add_rows(container, depth):
        for layer in container.layers:
            rows.append(["  " * depth + layer.name, type(layer).__name__, "yes" if layer.trainable else "no",
                         count_params(layer.weights), count_params(layer.trainable_weights)])
            if expand_nested and hasattr(layer, "layers"):
                add_rows(layer, depth + 1)

    add_rows(model, 0)
    counts = parameter_counts(model)
    rows.append(["total", "", "", counts["total"], counts["trainable"]])
    return format_table(rows, ["layer", "type", "trainable", "params", "trainable params"])


@keras.saving.register_keras_serializable(package="keras_tl")
class InferenceMode(keras.layers.Layer):
    """Run a wrapped model (a pretrained base) in inference mode always, also inside ``fit``.

    Why: a BatchNormalization layer in training mode normalises with the statistics of the batch
    and updates its moving mean and variance; fine-tuning on small batches of a new dataset would
    overwrite the ImageNet statistics the next layers were trained with (Ioffe & Szegedy 2015).
    In inference mode BN uses the stored statistics and leaves them alone, while its scale and
    offset can still train when the layer is unfrozen.

    Why a layer: the Keras guide writes ``x = base(x, training=False)`` in the functional model,
    but in Keras 3 (checked on 3.15) ``fit`` calls the outer model with ``training=True`` and that
    value replaces the ``training=False`` recorded for the nested call (keras-team/keras#20285),
    so BN layers that are trainable run in training mode after all. This layer makes the
    ``training=False`` call itself, which Keras respects.
    """

    def __init__(self, model, **kwargs):
        super().__init__(**kwargs)
        self.model = model

    @property
    def layers(self):
        """The wrapped model, so that ``nested_layers`` and ``model.summary(expand_nested=True)`` find it."""
        return [self.model]

    def call(self, inputs):
        return self.model(inputs, training=False)

    def compute_output_shape(self, input_shape):
        return self.model.compute_output_shape(input_shape)

    def get_config(self):
        return {**super().get_config(), "model": keras.saving.serialize_keras_object(self.model)}

    @classmethod
    def from_config(cls, config):
        return cls(keras.saving.deserialize_keras_object(config.pop("model")), **config)
