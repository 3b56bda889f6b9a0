"""lr_find on a seeded synthetic problem (a small dense network on Gaussian blobs): the suggestion
trains, a thousandth of it barely moves, 100 times it diverges; the model and its optimizer come back
exactly; the figure; the fine_tune job's --learning-rate find, --schedule one-cycle and --check."""
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_tl.jobs import fine_tune
from keras_tl.training import freezing, lr_finder, optimizers, recipe, schedules


@pytest.fixture(scope="module")
def blobs():
    """Three overlapping Gaussian blobs in 10 dimensions, inputs scaled by 5 (so large rates diverge)."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 10))
    labels = rng.integers(0, 3, 600)
    x = (5 * (centres[labels] + rng.normal(size=(600, 10)))).astype("float32")
    y = np.eye(3, dtype="float32")[labels]
    return tf.data.Dataset.from_tensor_slices((x, y)).shuffle(600, seed=0).batch(32)


def dense_model(learning_rate=1e-3, hidden_factor=None):
    """A seeded dense network with SGD (momentum 0.9), layer-wise when ``hidden_factor`` is given."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(32, activation="relu", name="hidden"),
                              keras.layers.Dropout(0.1), keras.layers.Dense(3, activation="softmax", name="out")])
    multipliers = optimizers.layer_multipliers(model, {"hidden": hidden_factor}) if hidden_factor else None
    model.compile(optimizer=optimizers.make_optimizer("sgd", learning_rate, multipliers),
                  loss="categorical_crossentropy", metrics=["accuracy"], jit_compile=False)
    return model


def state(model):
    return [variable.numpy().copy() for variable in list(model.variables) + list(model.optimizer.variables)]


def test_the_suggestion_trains_a_thousandth_barely_moves_and_100_times_diverges(blobs):
    model = dense_model()
    before = state(model) if model.optimizer.built else None
    result = lr_finder.lr_find(model, blobs, start=1e-7, end=10, steps=100, verbose=False)
    assert result.rule == "steepest" and result.diverged  # the loss blew up before rate 10
    assert len(result.rates) == len(result.losses) == len(result.smoothed) < 100
    assert result.rates[0] == pytest.approx(1e-7) and np.all(np.diff(np.log(result.rates)) > 0)
    assert 1e-5 < result.suggestion < result.rates[np.argmin(result.smoothed)]
    assert before is None  # the optimizer was built by lr_find, before anything changed

    def two_epochs(rate):
        trained = dense_model(rate)
        start = trained.evaluate(blobs, verbose=0)[0]
        trained.fit(blobs, epochs=2, verbose=0, shuffle=False)
        return start, *trained.evaluate(blobs, verbose=0)

    start, loss, accuracy = two_epochs(result.suggestion)
    assert accuracy > 0.9 and loss < 0.2 * start
    start, slow_loss, _ = two_epochs(result.suggestion / 1000)
    assert slow_loss > 0.9 * start  # barely moves
    start, fast_loss, _ = two_epochs(result.suggestion * 100)
    assert not np.isfinite(fast_loss) or fast_loss > start  # diverges

    minimum = lr_finder.suggest(result.rates, result.smoothed, "minimum")
    assert minimum == pytest.approx(result.rates[10:][np.argmin(result.smoothed[10:])] / 10)


def test_every_variable_of_model_and_optimizer_is_restored(blobs):
    """Layer-wise SGD with momentum, a trained state to come back to (moments, step count, rate)."""
    model = dense_model(0.01, hidden_factor=0.1)
    assert set(model.optimizer.multipliers.values()) == {0.1}
    model.fit(blobs.take(3), epochs=1, verbose=0, shuffle=False)
    before = state(model)
    lr_finder.lr_find(model, blobs, steps=30, verbose=False)
    after = state(model)
    assert len(before) == len(after)
    for old, new in zip(before, after):
        np.testing.assert_array_equal(old, new)
    assert int(model.optimizer.iterations.numpy()) == 3 and float(model.optimizer.learning_rate) == pytest.approx(0.01)


def test_the_recipe_head_stage_with_a_frozen_base(blobs):
    """The recipe's first stage: only the head trains; lr_find leaves the frozen base, and everything, as it was."""
    keras.utils.set_random_seed(0)
    base = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Conv2D(8, 1, name="conv"),
                             keras.layers.BatchNormalization(name="bn")], name="base")
    settings = recipe.Recipe(learning_rate=1e-3, jit_compile=False)
    _, model, _ = recipe.build_model(base, 3, settings)
    recipe.compile_stage(model, base, settings.stages()[0], settings)
    assert freezing.parameter_counts(model)["trainable"] == 8 * 3 + 3
    rng = np.random.default_rng(1)
    images = tf.data.Dataset.from_tensor_slices((rng.normal(size=(64, 4, 4, 3)).astype("float32"),
                                                 np.eye(3, dtype="float32")[rng.integers(0, 3, 64)])).batch(16)
    weights = [weight.copy() for weight in model.get_weights()]
    result = lr_finder.lr_find(model, images, steps=20, end=1.0, verbose=False)
    assert len(result.rates) >= lr_finder.MIN_STEPS and result.rates[0] <= result.suggestion <= 1.0
    for old, new in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(old, new)


def test_bad_settings_are_errors_that_name_the_parameter(blobs):
    model = dense_model()
    with pytest.raises(ValueError, match="start=0.1, end=0.01"):
        lr_finder.lr_find(model, blobs, start=0.1, end=0.01)
    with pytest.raises(ValueError, match="rule='valley'"):
        lr_finder.lr_find(model, blobs, rule="valley")
    with pytest.raises(ValueError, match="steps=2"):
        lr_finder.lr_find(model, blobs, steps=2)
    with pytest.raises(ValueError, match="compiled model"):
        lr_finder.lr_find(keras.Sequential([keras.Input((10,)), keras.layers.Dense(3)]), blobs)
    with pytest.raises(ValueError, match="train= yields no batches"):
        lr_finder.lr_find(model, blobs.take(0), verbose=False)
    model.compile(optimizer=optimizers.make_optimizer("sgd", schedules.OneCycle(1e-3, 10)), loss="mse")
    with pytest.raises(ValueError, match="constant learning rate, not a schedule"):
        lr_finder.lr_find(model, blobs)


def test_plot_marks_the_suggestion_on_a_log_axis_and_says_it_is_a_heuristic(tmp_path):
    rates = lr_finder.exponential_rates(1e-6, 1.0, 60)
    losses = 2.0 - np.tanh(np.log10(rates) + 3) + np.where(rates > 0.1, 20 * rates, 0)
    smoothed = lr_finder.smooth(losses, beta=0.0)  # no noise to smooth: the curve itself
    np.testing.assert_allclose(smoothed, losses)
    result = lr_finder.LRFindResult(rates, losses, smoothed, lr_finder.suggest(rates, smoothed), "steepest", True)
    assert 7e-4 < result.suggestion < 1.5e-3  # the steepest point of the tanh, at 1e-3
    figure = lr_finder.plot_lr_find(result, path=tmp_path / "lr_find.png")
    axes = figure.axes[0]
    assert axes.get_xscale() == "log" and (tmp_path / "lr_find.png").stat().st_size > 0
    assert any(line.get_xdata()[0] == result.suggestion for line in axes.get_lines())
    assert any("heuristic" in text.get_text() for text in axes.texts)
    assert result.as_dict()["suggestion"] == result.suggestion and result.as_dict()["rule"] == "steepest"


def test_the_job_finds_the_rate_uses_it_one_cycle_and_a_resumed_run_reads_it(tmp_path, monkeypatch, capsys):
    """``--learning-rate find --schedule one-cycle --check`` at tiny size; killed after lr_find, then resumed."""
    run_dir = tmp_path / "run"
    argv = ["--image-size", "32", "--train-per-class", "5", "--test-per-class", "2", "--batch-size", "8",
            "--epochs", "1", "--min-steps", "0", "--unfreeze", "none", "--learning-rate", "find", "--schedule",
            "one-cycle", "--check",
            "--tta", "none", "--output-dir", str(run_dir)]

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(recipe, "run_stages", killed)
    assert fine_tune.main(argv) == 130
    record = json.loads((run_dir / "lr_find.json").read_text())
    assert record["rule"] == "steepest" and record["stage"] == "head"
    assert record["learning_rate"] == record["suggestion"] and len(record["rates"]) == len(record["losses"])
    assert (run_dir / "figures" / "lr_find.png").read_bytes()[:4] == b"\x89PNG"
    first = capsys.readouterr().out
    assert f"lr_find: suggestion {record['suggestion']:.3g} (steepest rule" in first and "severity  finding" in first
    findings = json.loads((run_dir / "check.json").read_text())["findings"]
    assert [item["severity"] for item in findings if item["severity"] != "info"] == [], findings

    monkeypatch.undo()
    monkeypatch.setattr(lr_finder, "lr_find", killed)  # a resumed run must not test again
    assert fine_tune.main(argv) == 0
    assert "from " + str(run_dir / "lr_find.json") in capsys.readouterr().out
    config = json.loads((run_dir / "config.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert config["settings"]["learning_rate"] == "find" and config["settings"]["schedule"] == "one-cycle"
    assert config["learning_rate"] == metrics["stages"]["head"]["learning_rate"] == record["suggestion"]
    schedule = keras.models.load_model(run_dir / "model.keras").optimizer._learning_rate
    assert isinstance(schedule, schedules.OneCycle)
    assert schedule.lr_max == pytest.approx(record["suggestion"]) and schedule.total_steps == 5  # 40 images / 8


def test_the_job_reads_find_as_a_rate_and_refuses_other_words(capsys):
    assert fine_tune.parse_args(["--lr", "find"]).learning_rate == "find"
    assert fine_tune.parse_args(["--learning-rate", "3e-4"]).learning_rate == 3e-4
    assert fine_tune.recipe_of(fine_tune.parse_args(["--learning-rate", "find"])).learning_rate == 1e-3  # until found
    for argv, message in ((["--learning-rate", "fast"], "expected a number or find; got 'fast'"),
                          (["--learning-rate", "find", "--lora-rank", "2", "--freeze-epochs", "0"],
                           "--learning-rate find runs on the first stage, which adds LoRA here"),
                          (["--schedule", "linear"], "invalid choice: 'linear'")):
        with pytest.raises(SystemExit):
            fine_tune.parse_args(argv)
        assert message in capsys.readouterr().err
