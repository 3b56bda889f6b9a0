"""Layer-wise learning rates: one learning-rate multiplier per group of layers.

Howard & Ruder (2018), "Universal Language Model Fine-tuning" (ULMFiT), call it *discriminative
fine-tuning*: the lower layers hold general features that need only a small nudge, the top
layers and the new head need bigger steps, so each layer group gets its own learning rate.
fastai writes ``learn.fit_one_cycle(3, slice(1e-5, 1e-3))``. Keras has no built-in for it.

Scale the step, not the gradient. Adam and RMSprop divide each gradient by a running estimate
of its own size, so a gradient multiplied by 0.1 gives (almost) the same step as before; only
plain SGD would notice. The multiplier must scale the learning rate of each variable's update.
Every Keras 3 optimizer updates one variable at a time in ``update_step(gradient, variable,
learning_rate)`` with a step proportional to ``learning_rate``; :class:`LayerwiseLearningRates`
multiplies ``learning_rate`` there, so it is right for any of them and needs no copy of their maths.

>>> rates = layer_multipliers(model, {"conv_pw_12": 0.1, "conv_pw_13": 0.3})  # others: 1
>>> model.compile(optimizer=make_optimizer("adam", 1e-3, rates), loss=...)
"""
import keras
from keras import ops

from keras_tl.messages import unknown_layer_error
# the module, not its names: it may still be loading (it imports Keras, whose hook imports this)
from keras_tl.training import freezing

OPTIMIZERS = ("adam", "sgd")


class LayerwiseLearningRates:
    """Mixin for a Keras optimizer: each variable's step is scaled by its multiplier (default 1).

    ``multipliers`` maps variable paths (``variable.path``, e.g. ``"conv1/kernel"``) to factors;
    :func:`layer_multipliers` builds it from layer names. A factor of 0 leaves a variable unchanged.
    """

    def __init__(self, *args, multipliers=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.multipliers = {str(path): float(factor) for path, factor in (multipliers or {}).items()}

    def build(self, variables):
        super().build(variables)
        self._step_multipliers = [self.multipliers.get(variable.path, 1.0) for variable in variables]

    def update_step(self, gradient, variable, learning_rate):
        # _get_variable_index is how every Keras optimizer finds a variable's own state (its moments).
        multiplier = self._step_multipliers[self._get_variable_index(variable)]
        super().update_step(gradient, variable, ops.multiply(learning_rate, multiplier))

    def get_config(self):
        return {**super().get_config(), "multipliers": dict(self.multipliers)}


@keras.saving.register_keras_serializable(package="keras_tl")
class LayerwiseAdam(LayerwiseLearningRates, keras.optimizers.Adam):
    """Adam with a learning-rate multiplier per variable."""


@keras.saving.register_keras_serializable(package="keras_tl")
class LayerwiseSGD(LayerwiseLearningRates, keras.optimizers.SGD):
    """SGD (with optional momentum) with a learning-rate multiplier per variable."""


def make_optimizer(name="adam", learning_rate=1e-3, multipliers=None, **kwargs):
    """An ``adam`` or ``sgd`` optimizer (SGD gets momentum 0.9) with optional layer-wise multipliers.

    ``learning_rate``: a number, or a ``LearningRateSchedule`` (:mod:`keras_tl.training.schedules`) whose rate
    the multipliers scale at every step.
    """
    if not isinstance(learning_rate, keras.optimizers.schedules.LearningRateSchedule):
        if not learning_rate > 0:
            raise ValueError(f"The learning rate must be > 0; got {learning_rate}.")
        learning_rate = float(learning_rate)
    if name == "adam":
        return LayerwiseAdam(learning_rate=learning_rate, multipliers=multipliers, **kwargs)
    if name == "sgd":
        kwargs.setdefault("momentum", 0.9)
        return LayerwiseSGD(learning_rate=learning_rate, multipliers=multipliers, **kwargs)
    raise ValueError(f"Unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}.")


def layer_multipliers(model, factors):
    """Turn ``{layer name: factor}`` into ``{variable path: factor}`` for every weight of those layers.

    Layers are looked up in ``model`` and in the models nested in it; an unknown name is an error
    that lists the closest names.
    """
    layers = {layer.name: layer for layer in freezing.nested_layers(model)}
    multipliers = {}
    for name, factor in factors.items():
        if name not in layers:
            raise unknown_layer_error(name, layers, model.name)
        for weight in layers[name].weights:
            multipliers[weight.path] = float(factor)
    return multipliers


def split_groups(layers, count):
    """Split ``layers`` (bottom to top) into ``count`` consecutive groups of near-equal size."""
    if not 1 <= count <= len(layers):
        raise ValueError(f"Cannot split {len(layers)} layers into {count} groups.")
    bounds = [round(index * len(layers) / count) for index in range(count + 1)]
    return [layers[start:stop] for start, stop in zip(bounds, bounds[1:])]


def discriminative_factors(count, lowest):
    """``count`` factors rising geometrically from ``lowest`` (bottom group) to 1 (top group).

    fastai's ``slice(lr * lowest, lr)``; ULMFiT divides the rate by 2.6 per layer going down.
    """
    if not 0 < lowest <= 1:
        raise ValueError(f"The lowest learning-rate factor must be > 0 and at most 1; got {lowest}.")
    if count == 1:
        return [1.0]
    return [float(lowest ** ((count - 1 - index) / (count - 1))) for index in range(count)]


def layer_groups_multipliers(model, base, groups, lowest):
    """Discriminative rates: the base's training layers in ``groups`` (bottom to top) plus the head,
    with factors rising geometrically from ``lowest`` to 1.

    Returns the optimizer's ``{variable path: factor}`` and, for the report, ``[(layer names, factor)]``.
    """
    training = [layer.name for layer in base.layers if layer.trainable_weights]
    head = [layer.name for layer in model.layers if layer.trainable_weights and not hasattr(layer, "layers")]
    chunks = split_groups(training, min(groups, len(training))) if training else []
    factors = discriminative_factors(len(chunks) + 1, lowest)
    by_layer = {name: factor for chunk, factor in zip(chunks + [head], factors) for name in chunk}
    return layer_multipliers(model, by_layer), list(zip(chunks + [head], factors))
