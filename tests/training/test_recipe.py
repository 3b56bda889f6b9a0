"""The two-stage recipe (keras_tl.training.recipe): its stages and their rates, and the one call that runs them."""
import keras
import numpy as np
import pytest

import keras_tl
from keras_tl.training import recipe


def test_recipe_stages():
    head, tune = recipe.Recipe(epochs=4, freeze_epochs=2, learning_rate=1e-3, unfreeze="8").stages()
    assert (head.name, head.epochs, head.learning_rate, head.base_trains) == ("head", 2, 1e-3, False)
    assert (tune.name, tune.epochs, tune.base_trains) == ("fine_tune", 4, True)
    assert tune.learning_rate == pytest.approx(1e-4)
    assert [stage.name for stage in recipe.Recipe(4, 0, 1e-3).stages()] == ["fine_tune"]
    assert [stage.name for stage in recipe.Recipe(4, 2, 1e-3, from_scratch=True).stages()] == ["scratch"]
    assert [(stage.name, stage.epochs) for stage in recipe.Recipe(4, 2, 1e-3, unfreeze=None).stages()] == [("head", 4)]
    with pytest.raises(ValueError, match="learning_rate must be a finite number > 0; got inf"):
        recipe.Recipe(learning_rate=float("inf"))


def test_one_call_fine_tune_runs_both_stages_of_at_least_min_steps_and_returns_their_histories(tmp_path):
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    labels = np.arange(24) % 2
    images = rng.uniform(-1, 1, (24, 32, 32, 3)).astype("float32")
    images[labels == 1, :16] += 1.0  # class 1 is brighter on top
    batches = tf.data.Dataset.from_tensor_slices((images, np.eye(2, dtype="float32")[labels])).batch(8)
    base = keras.applications.MobileNet(weights=None, include_top=False, input_shape=(32, 32, 3), alpha=0.25)
    model, stages = keras_tl.fine_tune_model(base, batches, batches, epochs=2, freeze_epochs=1, learning_rate=1e-3,
                                             unfreeze="4", min_steps=6, run_dir=tmp_path, verbose=0)
    assert list(stages) == ["head", "fine_tune"]
    # 24 images in batches of 8: 3 steps an epoch, so min_steps=6 makes the head's 1 epoch 2
    assert [(stage["planned_epochs"], stage["steps_per_epoch"]) for stage in stages.values()] == [(2, 3), (2, 3)]
    assert [len(stage["history"]) for stage in stages.values()] == [2, 2]
    assert all(isinstance(stage["still_improving"], bool) for stage in stages.values())
    assert stages["fine_tune"]["learning_rate"] == pytest.approx(1e-4)
    assert stages["head"]["trainable"] < stages["fine_tune"]["trainable"]
    assert (tmp_path / "fine_tune" / "done.json").is_file() and not (tmp_path / "fine_tune" / "backup").exists()
    assert model.output_shape == (None, 2)


def test_min_steps_raise_the_epochs_of_each_stage_on_a_small_dataset():
    settings = recipe.Recipe(epochs=4, freeze_epochs=2, learning_rate=1e-3, min_steps=100)
    head, tune = settings.stages(steps_per_epoch=9)  # e.g. 270 images in batches of 32
    assert (head.epochs, tune.epochs) == (12, 12)  # ceil(100 / 9)
    assert head.describe() == "head: up to 12 epochs, raised from 2 (x 9 steps = 108 >= min 100) at lr 0.001"
    head, tune = settings.stages(steps_per_epoch=50)  # the default job: 1,600 Animal-MNIST images in batches of 32
    assert (head.epochs, tune.epochs) == (2, 4)
    assert tune.describe() == "fine_tune: up to 4 epochs (x 50 steps = 200 >= min 100) at lr 0.0001"
    assert [stage.epochs for stage in settings.stages()] == [2, 4]  # batches per epoch unknown
    assert "min_steps not applied" in settings.stages()[0].describe()
    assert [stage.epochs for stage in recipe.Recipe(4, 2, min_steps=0).stages(steps_per_epoch=5)] == [2, 4]
    assert [(stage.name, stage.epochs) for stage in recipe.Recipe(4, 2, from_scratch=True, min_steps=100)
            .stages(steps_per_epoch=30)] == [("scratch", 4)]  # 4 x 30 = 120 steps: enough already
    with pytest.raises(ValueError, match="min_steps must be 0 or more; got -1"):
        recipe.Recipe(min_steps=-1)


def test_steps_per_epoch_of_a_dataset():
    import tensorflow as tf

    batches = tf.data.Dataset.range(10).batch(3)
    assert recipe.steps_per_epoch_of(batches) == 4
    assert recipe.steps_per_epoch_of(batches.repeat()) is None  # infinite
    assert recipe.steps_per_epoch_of(batches.filter(lambda batch: True)) is None  # unknown
