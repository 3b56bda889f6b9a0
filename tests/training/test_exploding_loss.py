"""The warning when the training loss explodes (keras_tl.training.exploding_loss)."""
import warnings

import keras
import pytest

from keras_tl.training import recipe
from keras_tl.training.exploding_loss import ExplodingLoss, has_exploded


@pytest.mark.parametrize("first, epochs, exploded_at", [
    (2.3, [5.9e6, 4.7e6], 1),  # lr 1e6 on a new head: at once, and warned once
    (2.3, [1.9, 2.5e3, 1e14], 2),  # later
    (2.3, [1.9, 1.2, 0.8], None),  # healthy
    (2.3, [2.29e3, 2.2e3], None),  # 996 and 957 times: below the bound
    (2.3, [float("nan")], None),  # NaN and infinity: TerminateOnNaN's
    (2.3, [float("inf")], None),
    (0.0, [5.0], None),  # no bound from a first loss of 0
])
def test_the_callback_on_synthetic_losses(first, epochs, exploded_at):
    callback = ExplodingLoss("stage head", advice="lower learning_rate=")
    callback.on_train_begin()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        callback.on_train_batch_end(0, {"loss": first})
        callback.on_train_batch_end(1, {"loss": 1e20})  # later batches do not move the first loss
        for epoch, loss in enumerate(epochs):
            callback.on_epoch_end(epoch, {"loss": loss, "val_loss": 1.0})
    assert callback.first_loss == first and callback.exploded_at == exploded_at
    assert len(caught) == int(exploded_at is not None)
    if epochs[0] == 5.9e6:
        assert str(caught[0].message) == ("stage head: the training loss exploded at epoch 1: 5.9e+06, more than "
                                          "1000 times the first batch's 2.3; the learning rate is far too large: "
                                          "lower learning_rate=.")
    assert has_exploded(2301.0, 2.3) and not has_exploded(2299.0, 2.3) and not has_exploded(1e9, float("nan"))


def test_the_recipe_warns_a_stage_that_explodes_and_no_later_stage_for_more_steps(tmp_path, softmax_problem):
    """Planted: run_stages at lr 1e6 (the issue's rate) on a tiny base, a Dense layer on 5 features. The head
    stage's warning names it and its rate; the fine_tune stage, which starts from the exploded weights, is
    neither warned again nor said to be under-trained."""
    batches, _ = softmax_problem
    keras.utils.set_random_seed(0)
    inputs = keras.Input((5,))
    base = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4, name="features")], name="base")
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="head")(base(inputs)))
    settings = recipe.Recipe(epochs=2, freeze_epochs=1, learning_rate=1e6, unfreeze="all")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stages = recipe.run_stages(model, base, settings, batches, batches, tmp_path, verbose=0)
    messages = [str(warning.message) for warning in caught if issubclass(warning.category, UserWarning)]
    exploded = [message for message in messages if "exploded" in message]
    assert len(exploded) == 1 and exploded[0].startswith("stage head: the training loss exploded at epoch 1")
    assert exploded[0].endswith("lower learning_rate= (this stage trained at 1e+06), or choose it with the range "
                                "test (lr_find; in the fine_tune job, --learning-rate find).")
    assert stages["fine_tune"]["still_improving"]  # its validation loss fell, from 3.8e11 to 2.3e11 ...
    assert not [message for message in messages if "still falling" in message]  # ... and no more steps mend that
