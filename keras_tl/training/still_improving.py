"""Was the validation loss still falling when training stopped? A one-line warning, and a Keras callback.

Early stopping ends a stage once its validation loss stops improving. The opposite mistake is
silent: a stage that runs out of epochs while the loss is still going down is under-trained,
and more steps would lower it further. On a small dataset an epoch is a handful of batches, so a
few epochs can be far too few (a new head needs a hundred steps or more at lr 1e-3; see
:data:`keras_tl.training.recipe.MIN_STEPS`).

The rule (:func:`is_still_improving`) is early stopping's own: the last epoch has the lowest
validation loss, lower than every epoch before it by more than ``min_delta``. The epochs ran out
before early stopping saw the loss stop improving; a stage that early stopping ended, or whose
loss has flattened, has its best epoch earlier. One epoch shows no trend, so it never counts.
``min_delta`` is 1e-4, Keras's ``ReduceLROnPlateau`` default for "a significant change": enough
to ignore a loss stuck at ln 2 = 0.693147 that moves in its seventh decimal, and far below the
falls that matter: an under-trained stage can fall slowly (a new head on 40 images at 32 px: from
2.279 to 2.276 in its second 5 steps, near chance, ln 10 = 2.303).

In any Keras ``fit``::

    model.fit(train, validation_data=validation, epochs=5, callbacks=[keras_tl.StillImproving()])

The recipe (:func:`keras_tl.training.recipe.run_stages`) applies the same rule to each stage's
whole history (also after a resume) and records it as ``still_improving`` in the stage's summary.
"""
import warnings

import keras
import numpy as np

MIN_DELTA = 1e-4  # a smaller fall of the loss is no fall (keras.callbacks.ReduceLROnPlateau's default)
SHOWN_LOSSES = 3  # the last losses the warning quotes


def is_still_improving(losses, min_delta=MIN_DELTA):
    """True when the last of ``losses`` (one per epoch) is the lowest, below every one before it by more
    than ``min_delta``; False when it is not, and for fewer than two finite losses."""
    losses = np.asarray(losses, dtype=float)
    earlier = losses[:-1][np.isfinite(losses[:-1])]
    if len(losses) < 2 or not np.isfinite(losses[-1]) or not len(earlier):
        return False
    return bool(losses[-1] < earlier.min() - min_delta)


def warning_line(name, losses, advice):
    """The warning: which training, its last validation losses (with the decimals that tell the last from
    the best before it), and ``advice`` (what to do)."""
    shown = losses[-SHOWN_LOSSES:]
    epochs = f"epochs {len(losses) - len(shown) + 1}-{len(losses)} of {len(losses)}"
    decimals = next((places for places in range(3, 6)
                     if f"{losses[-1]:.{places}f}" != f"{min(losses[:-1], default=np.inf):.{places}f}"), 5)
    return (f"{name} ended with its validation loss still falling ({epochs}: "
            f"{', '.join(f'{loss:.{decimals}f}' for loss in shown)}); it is likely under-trained: {advice}.")


class StillImproving(keras.callbacks.Callback):
    """At the end of ``fit``, warn when ``monitor``, a loss, was still falling (:func:`is_still_improving`).

    ``name`` names the training in the warning and ``advice`` says what to do; ``monitor`` and
    ``min_delta`` mean what they mean in ``keras.callbacks.EarlyStopping``. After ``fit``,
    ``still_improving`` holds the verdict and ``losses`` the value of ``monitor`` at each epoch.
    """

    def __init__(self, name="training", advice="train it for more epochs", monitor="val_loss",
                 min_delta=MIN_DELTA):
        super().__init__()
        self.name, self.advice, self.monitor, self.min_delta = name, advice, monitor, min_delta
        self.losses, self.still_improving = [], None

    def on_train_begin(self, logs=None):
        self.losses, self.still_improving = [], None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is not None:
            self.losses.append(float(value))

    def on_train_end(self, logs=None):
        self.still_improving = is_still_improving(self.losses, self.min_delta)
        if self.still_improving:
            warnings.warn(warning_line(self.name, self.losses, self.advice), stacklevel=2)
