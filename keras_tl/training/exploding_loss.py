"""Did the training loss explode? A one-line warning, and a Keras callback.

A learning rate far too large does not always end in NaN, which ``keras.callbacks.TerminateOnNaN``
stops: the loss can jump by orders of magnitude and stay there, finite, while the model ends at
chance. ``python -m keras_tl.fine_tune --learning-rate 1e6`` on Animal-MNIST (32 px, 20 images a
class) went from a first batch's loss of 2.36 (about ln 10: a new head guesses) to 5.9e6 in its
first epoch and 6.9e7 once the whole network trained, and to a test accuracy of 0.10.

The rule (:func:`has_exploded`): an epoch's training loss above :data:`EXPLODED` (1,000) times the
loss of the first batch of the fit, the model as it started. A healthy fit's loss falls below its
start; noise, augmentation or a rate somewhat too large do not multiply it by a thousand.

In any Keras ``fit``::

    model.fit(train, epochs=5, callbacks=[ExplodingLoss()])

The recipe (:func:`keras_tl.training.recipe.run_stages`) adds one to each stage.
"""
import math
import warnings

import keras

EXPLODED = 1000.0  # an epoch's loss this many times the first batch's has exploded


def has_exploded(loss, first_loss, factor=EXPLODED):
    """True when ``loss`` is finite and above ``factor`` times ``first_loss`` (a finite loss > 0); NaN and
    infinity are ``TerminateOnNaN``'s to stop."""
    return bool(math.isfinite(loss) and math.isfinite(first_loss) and first_loss > 0 and loss > factor * first_loss)


class ExplodingLoss(keras.callbacks.Callback):
    """Warn once, at the end of the first epoch whose ``monitor`` (a loss) has exploded (:func:`has_exploded`).

    ``name`` names the training in the warning and ``advice`` says what to do. After ``fit``,
    ``first_loss`` holds the first batch's loss and ``exploded_at`` the epoch (from 1) that exploded,
    or None.
    """

    def __init__(self, name="training", advice="lower the learning rate, or choose it with a range test (lr_find)",
                 monitor="loss", factor=EXPLODED):
        super().__init__()
        self.name, self.advice, self.monitor, self.factor = name, advice, monitor, factor
        self.first_loss, self.exploded_at = None, None

    def on_train_begin(self, logs=None):
        self.first_loss, self.exploded_at = None, None

    def on_train_batch_end(self, batch, logs=None):
        if self.first_loss is None and (logs or {}).get(self.monitor) is not None:
            self.first_loss = float(logs[self.monitor])  # the first batch: its loss before the first update

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get(self.monitor)
        if self.exploded_at is None and loss is not None and self.first_loss is not None \
                and has_exploded(float(loss), self.first_loss, self.factor):
            self.exploded_at = epoch + 1
            warnings.warn(f"{self.name}: the training loss exploded at epoch {self.exploded_at}: {float(loss):.3g}, "
                          f"more than {self.factor:g} times the first batch's {self.first_loss:.3g}; the learning "
                          f"rate is far too large: {self.advice}.", stacklevel=2)
