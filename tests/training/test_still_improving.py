"""The warning when training ends with its validation loss still falling (keras_tl.training.still_improving)."""
import warnings

import keras
import numpy as np
import pytest

import keras_tl
from keras_tl.training.still_improving import StillImproving, is_still_improving


@pytest.mark.parametrize("losses, min_delta, improving", [
    ([1.2, 0.9, 0.7], 1e-4, True),  # falling at every epoch
    ([0.9, 0.95, 0.8], 1e-4, True),  # a bump, then the lowest at the end
    ([2.2792, 2.2755], 1e-4, True),  # a slow fall is a fall
    ([0.6931472, 0.6931470], 1e-4, False),  # stuck at ln 2: moving in the seventh decimal is no fall
    ([0.6931472, 0.6931470], 0.0, True),  # ... unless min_delta=0
    ([0.50, 0.45, 0.452, 0.451], 1e-4, False),  # flattened: the best epoch is not the last
    ([0.5, 0.4, 0.45, 0.47], 1e-4, False),  # rising again (what early stopping ends)
    ([0.50, 0.45, 0.452, 0.4495], 0.001, False),  # the last is the lowest, by less than min_delta
    ([0.8], 1e-4, False),  # one epoch shows no trend
    ([0.9, float("nan")], 1e-4, False),
    ([], 1e-4, False),
])
def test_the_callback_on_a_synthetic_history(losses, min_delta, improving):
    callback = StillImproving("stage head", advice="give it more steps", min_delta=min_delta)
    callback.on_train_begin()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for epoch, loss in enumerate(losses):
            callback.on_epoch_end(epoch, {"loss": 1.0, "val_loss": loss})
        callback.on_train_end()
    assert callback.still_improving is improving is is_still_improving(losses, min_delta)
    assert len(caught) == int(improving)
    if losses == [1.2, 0.9, 0.7]:
        assert str(caught[0].message) == ("stage head ended with its validation loss still falling (epochs 1-3 of 3: "
                                          "1.200, 0.900, 0.700); it is likely under-trained: give it more steps.")


def test_the_warning_quotes_the_last_three_losses():
    callback = StillImproving("fit")
    for epoch, loss in enumerate([2.0, 1.5, 1.2, 1.0, 0.8]):
        callback.on_epoch_end(epoch, {"val_loss": loss})
    with pytest.warns(UserWarning, match=r"\(epochs 3-5 of 5: 1\.200, 1\.000, 0\.800\); .*: train it for more "
                                         r"epochs\.$"):
        callback.on_train_end()


def test_a_fit_stopped_while_its_loss_falls_is_warned():
    """Planted: logistic regression on points split by x > 0, two epochs at lr 0.01: far from its minimum,
    the loss is still falling (a flattened loss: the synthetic histories above)."""
    keras.utils.set_random_seed(0)
    points = np.random.default_rng(0).normal(size=(64, 2)).astype("float32")
    labels = np.eye(2, dtype="float32")[(points[:, 0] > 0).astype(int)]
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="categorical_crossentropy")
    callback = StillImproving("the planted fit")
    with pytest.warns(UserWarning, match=r"^the planted fit ended with its validation loss still falling "
                                         r"\(epochs 1-2 of 2: "):
        model.fit(points, labels, validation_data=(points, labels), epochs=2, batch_size=8, verbose=0,
                  callbacks=[callback])
    assert callback.still_improving and len(callback.losses) == 2
    assert callback.losses[1] < 0.95 * callback.losses[0]


def test_the_callback_is_public():
    assert keras_tl.StillImproving is StillImproving
