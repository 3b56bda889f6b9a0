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


def test_one_call_fine_tune_runs_both_stages_and_returns_their_histories(tmp_path):
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    labels = np.arange(24) % 2
    images = rng.uniform(-1, 1, (24, 32, 32, 3)).astype("float32")
    images[labels == 1, :16] += 1.0  # class 1 is brighter on top
    batches = tf.data.Dataset.from_tensor_slices((images, np.eye(2, dtype="float32")[labels])).batch(8)
    base = keras.applications.MobileNet(weights=None, include_top=False, input_shape=(32, 32, 3), alpha=0.25)
    model, stages = keras_tl.fine_tune_model(base, batches, batches, epochs=2, freeze_epochs=1, learning_rate=1e-3,
                                       unfreeze="4", run_dir=tmp_path, verbose=0)
    assert list(stages) == ["head", "fine_tune"]
    assert [len(stage["history"]) for stage in stages.values()] == [1, 2]
    assert stages["fine_tune"]["learning_rate"] == pytest.approx(1e-4)
    assert stages["head"]["trainable"] < stages["fine_tune"]["trainable"]
    assert (tmp_path / "fine_tune" / "done.json").is_file() and not (tmp_path / "fine_tune" / "backup").exists()
    assert model.output_shape == (None, 2)
