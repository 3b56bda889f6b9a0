"""Learning-rate schedules: the rate as a function of the training step, for any Keras optimizer.

- :class:`OneCycle`: Smith & Topin (2018), "Super-Convergence": one cycle per stage, the rate
  warms up from ``lr_max / div`` to ``lr_max`` over the first ``pct_start`` of the steps, then
  anneals to ``lr_max / div_final``. Both halves follow a cosine, as fastai's ``fit_one_cycle``
  does (whose parameter names these are); a high rate in the middle of training acts as a
  regulariser, the low rate at the end settles into a minimum.
- :class:`Cosine`: cosine annealing from ``learning_rate`` to ``final_learning_rate``
  (Loshchilov & Hutter 2017, "SGDR", one period without restarts), after an optional linear
  warm-up from 0 over ``warmup_steps`` (Goyal et al. 2017). Keras's ``CosineDecay`` computes the
  same rates with other names; here the peak rate is the first argument, as in every keras_tl call.

Each stage of the recipe (:mod:`keras_tl.training.recipe`) compiles a new optimizer, so each stage gets its
own schedule over its own steps (stage ``fine_tune`` peaks at a tenth of the head's rate). The
step is the optimizer's ``iterations``, which the resume backup keeps, so a resumed stage goes on
at the right rate. :func:`make_schedule` turns a recipe's ``schedule`` name into the rate to compile with.

>>> schedule = OneCycle(lr_max=1e-3, total_steps=100)
>>> float(schedule(0)), float(schedule(25)), float(schedule(100))   # 4e-05, 0.001, 1e-08
"""
import math
import numbers

import keras
from keras import ops

SCHEDULES = ("constant", "one-cycle", "cosine")
WARMUP_FRACTION = 0.1  # make_schedule("cosine", ...): a tenth of the steps warm up


def _cosine_between(start, end, fraction):
    """The rate a ``fraction`` (0..1) of the way from ``start`` to ``end`` along half a cosine."""
    weight = 0.5 * (1.0 + ops.cos(math.pi * fraction))  # 1 at the start, 0 at the end
    return start * weight + end * (1.0 - weight)


def _check(name, value, test, expected):
    if not (isinstance(value, numbers.Real) and math.isfinite(value) and test(value)):
        raise ValueError(f"{name}={value!r}: expected {expected}.")


@keras.saving.register_keras_serializable(package="keras_tl")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """Smith & Topin's one-cycle policy over ``total_steps`` (fastai's names and defaults).

    Step 0 is at ``lr_max / div``, step ``round(pct_start * total_steps)`` at ``lr_max``, the last
    step (``total_steps``) and beyond at ``lr_max / div_final``.
    """

    def __init__(self, lr_max, total_steps, pct_start=0.25, div=25.0, div_final=1e5, name="one_cycle"):
        _check("lr_max", lr_max, lambda value: value > 0, "a finite number > 0")
        _check("total_steps", total_steps, lambda value: value >= 1 and value == int(value), "a whole number >= 1")
        _check("pct_start", pct_start, lambda value: 0 <= value < 1, "a fraction, at least 0 and below 1")
        _check("div", div, lambda value: value >= 1, "a number >= 1")
        _check("div_final", div_final, lambda value: value >= 1, "a number >= 1")
        self.lr_max, self.total_steps, self.pct_start = float(lr_max), int(total_steps), float(pct_start)
        self.div, self.div_final, self.name = float(div), float(div_final), name

    @property
    def peak_step(self):
        """The step at which the rate reaches ``lr_max``."""
        return round(self.pct_start * self.total_steps)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        peak = float(max(self.peak_step, 1))
        warm = _cosine_between(self.lr_max / self.div, self.lr_max, ops.clip(step / peak, 0.0, 1.0))
        annealing = float(max(self.total_steps - self.peak_step, 1))
        cool = _cosine_between(self.lr_max, self.lr_max / self.div_final,
                               ops.clip((step - self.peak_step) / annealing, 0.0, 1.0))
        return ops.where(step < self.peak_step, warm, cool)

    def get_config(self):
        return {"lr_max": self.lr_max, "total_steps": self.total_steps, "pct_start": self.pct_start,
                "div": self.div, "div_final": self.div_final, "name": self.name}


@keras.saving.register_keras_serializable(package="keras_tl")
class Cosine(keras.optimizers.schedules.LearningRateSchedule):
    """Cosine annealing from ``learning_rate`` to ``final_learning_rate`` over ``total_steps``, after a
    linear warm-up from 0 over the first ``warmup_steps`` of them (0: none)."""

    def __init__(self, learning_rate, total_steps, warmup_steps=0, final_learning_rate=0.0, name="cosine"):
        _check("learning_rate", learning_rate, lambda value: value > 0, "a finite number > 0")
        _check("total_steps", total_steps, lambda value: value >= 1 and value == int(value), "a whole number >= 1")
        _check("warmup_steps", warmup_steps, lambda value: 0 <= value < total_steps and value == int(value),
               f"a whole number, at least 0 and below total_steps={total_steps}")
        _check("final_learning_rate", final_learning_rate, lambda value: 0 <= value <= learning_rate,
               f"a number from 0 to learning_rate={learning_rate}")
        self.learning_rate, self.total_steps = float(learning_rate), int(total_steps)
        self.warmup_steps, self.final_learning_rate, self.name = int(warmup_steps), float(final_learning_rate), name

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warm = self.learning_rate * step / float(max(self.warmup_steps, 1))
        fraction = ops.clip((step - self.warmup_steps) / float(self.total_steps - self.warmup_steps), 0.0, 1.0)
        cool = _cosine_between(self.learning_rate, self.final_learning_rate, fraction)
        return ops.where(step < self.warmup_steps, warm, cool)

    def get_config(self):
        return {"learning_rate": self.learning_rate, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps, "final_learning_rate": self.final_learning_rate, "name": self.name}


def make_schedule(schedule, learning_rate, total_steps):
    """The rate to compile with: ``learning_rate`` itself (``"constant"``), or a :class:`OneCycle` peaking
    at it, or a :class:`Cosine` from it (a tenth of the steps warming up), over ``total_steps``."""
    if schedule == "constant":
        return learning_rate
    if schedule == "one-cycle":
        return OneCycle(lr_max=learning_rate, total_steps=total_steps)
    if schedule == "cosine":
        return Cosine(learning_rate, total_steps, warmup_steps=int(WARMUP_FRACTION * total_steps))
    raise ValueError(f"schedule={schedule!r} is not one of {', '.join(SCHEDULES)}.")
