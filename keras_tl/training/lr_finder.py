"""The learning-rate range test (``lr_find``): try rates from tiny to huge, one batch each, and watch the loss.

Smith (2015/2017), "Cyclical Learning Rates for Training Neural Networks", section 3.3, and
fastai's ``learn.lr_find()``: train on ``steps`` batches while the rate grows exponentially from
``start`` to ``end``. At first the rate is too small to change anything, then the loss falls, and
past some rate it shoots up. A good rate lies where the loss falls fastest, well before its minimum.

- The loss of one batch is noisy, so the curve is smoothed (an exponential moving average, bias
  corrected as in Adam) and the test stops once the smoothed loss is above ``divergence`` times
  its best value (4, as fastai): training has diverged, larger rates say nothing more.
- The suggestion follows a named rule (``rule=``): ``"steepest"`` (the default) takes the rate
  where the smoothed loss falls fastest against log(rate), measured over a window of steps that
  ends before the minimum; ``"minimum"`` takes a tenth of the rate of the lowest smoothed loss
  (Smith's advice, fastai's ``lr_min``). Both skip the first tenth of the steps, where the moving
  average is still warming up. Both are heuristics: a rule of thumb to start from, to be
  confirmed by a short training run.
- The test changes the weights, so :func:`lr_find` puts every variable of the model (weights, BN
  statistics, random-number states) and of its optimizer (moments, step count, rate) back as they
  were: the model can be trained right afterwards as if the test had never run.

It runs on the model as compiled, so with the optimizer and the frozen layers of the stage it is
for (the recipe's head stage: :func:`keras_tl.training.recipe.compile_stage`), layer-wise rates included:
their multipliers scale each rate tried.

>>> recipe.compile_stage(model, base, recipe_settings.stages()[0], recipe_settings)
>>> result = lr_find(model, train)
>>> result.suggestion, result.rule; plot_lr_find(result)
"""
import dataclasses
import math

import keras
import numpy as np

from keras_tl import plots
from keras_tl.messages import progress_bar

RULES = ("steepest", "minimum")
START, END = 1e-7, 10.0  # the range of rates tried (fastai's)
DIVERGENCE = 4.0  # stop when the smoothed loss is above this many times its best value (fastai's choice)
MIN_STEPS = 5  # fewer points than this say nothing about the curve
HEURISTIC = "The suggestion is a heuristic: confirm it with a short training run."


@dataclasses.dataclass
class LRFindResult:
    """What :func:`lr_find` measured: the rate and the loss of each step, the smoothed loss, the
    suggested rate and the rule that chose it, and whether the test stopped because the loss diverged."""

    rates: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    suggestion: float
    rule: str
    diverged: bool

    def as_dict(self):
        """Plain lists and numbers, for ``runs.write_json``."""
        return {"rates": self.rates.tolist(), "losses": self.losses.tolist(), "smoothed": self.smoothed.tolist(),
                "suggestion": self.suggestion, "rule": self.rule, "diverged": self.diverged}


def exponential_rates(start, end, steps):
    """``steps`` rates growing by the same factor each step, from ``start`` to ``end``."""
    return start * (end / start) ** (np.arange(steps) / max(steps - 1, 1))


def smooth(losses, beta=0.98):
    """The exponential moving average of ``losses``, divided by ``1 - beta**t`` so it starts unbiased."""
    average, smoothed = 0.0, []
    for step, loss in enumerate(losses, 1):
        average = beta * average + (1 - beta) * loss
        smoothed.append(average / (1 - beta ** step))
    return np.asarray(smoothed)


def suggest(rates, smoothed, rule="steepest"):
    """The suggested rate of a range test, by ``rule`` (see the module docstring)."""
    if rule not in RULES:
        raise ValueError(f"rule={rule!r} is not one of {', '.join(RULES)}.")
    skip = len(rates) // 10  # the moving average's warm-up
    rates, smoothed = rates[skip:], smoothed[skip:]
    lowest = int(np.argmin(smoothed))
    if rule == "minimum":
        return float(rates[lowest] / 10)
    window = max(1, len(rates) // 20)  # the slope over +-5 % of the steps: one step's slope is noise
    if lowest < 2 * window:  # no descent before the minimum: the range starts too high
        return float(rates[0])
    centres, logs = np.arange(window, lowest - window + 1), np.log(rates)
    slopes = ((smoothed[centres + window] - smoothed[centres - window])
              / (logs[centres + window] - logs[centres - window]))
    return float(rates[centres[np.argmin(slopes)]])


def _batches(train):
    """The batches of ``train`` (a ``tf.data.Dataset`` or any re-iterable of batches), over and over."""
    while True:
        empty = True
        for batch in train:
            empty = False
            yield batch
        if empty:
            raise ValueError("train= yields no batches.")


def _check_settings(model, start, end, steps, rule, divergence):
    if getattr(model, "optimizer", None) is None:
        raise ValueError("lr_find needs a compiled model: call model.compile(optimizer=..., loss=...) "
                         "(or keras_tl.training.recipe.compile_stage) first.")
    if isinstance(model.optimizer.learning_rate, keras.optimizers.schedules.LearningRateSchedule) or isinstance(
            getattr(model.optimizer, "_learning_rate", None), keras.optimizers.schedules.LearningRateSchedule):
        raise ValueError("lr_find sets the rate step by step: compile the model with a constant learning rate, "
                         "not a schedule.")
    if not (math.isfinite(start) and math.isfinite(end) and 0 < start < end):
        raise ValueError(f"start={start}, end={end}: expected finite rates with 0 < start < end.")
    if not (isinstance(steps, (int, np.integer)) and steps >= MIN_STEPS):
        raise ValueError(f"steps={steps!r}: expected a whole number >= {MIN_STEPS}.")
    if rule not in RULES:
        raise ValueError(f"rule={rule!r} is not one of {', '.join(RULES)}.")
    if not divergence > 1:
        raise ValueError(f"divergence={divergence}: expected a factor > 1.")


def lr_find(model, train, start=START, end=END, steps=100, rule="steepest", beta=0.98, divergence=DIVERGENCE,
            verbose=True):
    """Run the range test on the compiled ``model`` with batches of ``train``; return an :class:`LRFindResult`.

    One batch per rate, ``steps`` rates from ``start`` to ``end`` (``train`` is repeated when it has
    fewer batches); it stops early once the smoothed loss exceeds ``divergence`` times its best value
    or a loss is not finite. Every variable of the model and of its optimizer is restored afterwards,
    also when the test is interrupted.
    """
    _check_settings(model, start, end, steps, rule, divergence)
    optimizer = model.optimizer
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    saved = [(variable, np.array(variable.numpy())) for variable in list(model.variables) + list(optimizer.variables)]
    rates, losses, diverged = exponential_rates(start, end, steps), [], False
    bar = progress_bar(steps, "lr_find", unit="step", verbose=verbose)
    try:
        for rate, batch in zip(rates, _batches(train)):
            optimizer.learning_rate = float(rate)
            loss = float(model.train_on_batch(*batch[:3], return_dict=True)["loss"])
            losses.append(loss)
            bar.update(1)
            smoothed = smooth(losses, beta)
            if not math.isfinite(loss) or smoothed[-1] > divergence * smoothed.min():
                diverged = True
                break
    finally:
        bar.close()
        for variable, value in saved:
            variable.assign(value)
    finite = np.isfinite(losses)
    count = int(np.argmin(finite)) if not finite.all() else len(losses)
    if count < MIN_STEPS:
        raise ValueError(f"The loss diverged after {len(losses)} steps, at rate {rates[len(losses) - 1]:.3g}: "
                         f"start lower (start={start:g}) or check the data and the loss.")
    rates, losses = rates[:count], np.asarray(losses[:count])
    smoothed = smooth(losses, beta)
    return LRFindResult(rates, losses, smoothed, suggest(rates, smoothed, rule), rule, diverged)


def plot_lr_find(result, path=None, ax=None):
    """The loss against the rate (log axis), raw and smoothed, with the suggestion marked; returns the Figure.

    The suggestion is a heuristic, and the figure says so: the curve shows the range where the loss
    falls; confirm the rate with a short training run.
    """
    figure, axes = plots.figure_and_axes(ax, (6, 4))
    axes.plot(result.rates, result.losses, color="C0", alpha=0.3, linewidth=1, label="loss of each batch")
    axes.plot(result.rates, result.smoothed, color="C0", label="smoothed")
    axes.axvline(result.suggestion, color="C3", linestyle="--",
                 label=f"suggestion {result.suggestion:.2g} ({result.rule})")
    axes.set_xscale("log")
    axes.set_xlabel("learning rate (log scale)")
    axes.set_ylabel("training loss")
    low, high = np.min(result.smoothed), np.max(result.smoothed[: max(len(result.smoothed) // 10, 1)])
    axes.set_ylim(low - 0.1 * (high - low), high + 0.5 * (high - low) + 1e-9)
    axes.set_title("Learning-rate range test (lr_find)")
    axes.text(0.01, 0.01, HEURISTIC, transform=axes.transAxes, fontsize=8, color="0.35", va="bottom")
    axes.grid(alpha=0.3, which="both")
    axes.legend(loc="upper left")
    return plots.finish_figure(figure, path)
