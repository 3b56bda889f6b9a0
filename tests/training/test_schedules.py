"""Learning-rate schedules: the rates they promise at given steps, serialisation, the layer-wise optimizers,
and each stage of the recipe getting its own schedule."""
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_tl.training import optimizers, recipe, schedules


def rate(schedule, step):
    return float(schedule(step))


def approx(value):
    return pytest.approx(value, rel=1e-5)  # the rates are float32


def test_one_cycle_warms_up_peaks_and_anneals():
    schedule = schedules.OneCycle(lr_max=1e-3, total_steps=100, pct_start=0.25, div=25, div_final=1e5)
    assert schedule.peak_step == 25
    assert rate(schedule, 0) == approx(1e-3 / 25)
    assert rate(schedule, 25) == approx(1e-3)
    assert rate(schedule, 100) == approx(1e-3 / 1e5)
    assert rate(schedule, 500) == approx(1e-3 / 1e5)  # past the end: stays at the end
    # Half-way through each phase the cosine is half-way between its ends.
    assert rate(schedule, 12.5) == pytest.approx((1e-3 / 25 + 1e-3) / 2, rel=1e-5)
    assert rate(schedule, 62.5) == pytest.approx((1e-3 + 1e-8) / 2, rel=1e-5)
    rates = [rate(schedule, step) for step in range(101)]
    assert np.all(np.diff(rates[:26]) > 0) and np.all(np.diff(rates[25:]) < 0)


def test_cosine_matches_keras_cosine_decay_with_and_without_warm_up():
    plain = schedules.Cosine(0.1, total_steps=50, final_learning_rate=0.01)
    reference = keras.optimizers.schedules.CosineDecay(0.1, decay_steps=50, alpha=0.1)
    warm = schedules.Cosine(0.1, total_steps=50, warmup_steps=10)
    warm_reference = keras.optimizers.schedules.CosineDecay(0.0, decay_steps=40, warmup_target=0.1, warmup_steps=10)
    for step in (0, 1, 5, 10, 17, 25, 40, 49, 50, 80):
        assert rate(plain, step) == pytest.approx(float(reference(step)), rel=1e-5, abs=1e-9)
        assert rate(warm, step) == pytest.approx(float(warm_reference(step)), rel=1e-5, abs=1e-9)
    assert rate(warm, 0) == 0.0 and rate(warm, 10) == pytest.approx(0.1) and rate(warm, 50) == pytest.approx(0.0)


@pytest.mark.parametrize("schedule", [schedules.OneCycle(3e-3, 40, pct_start=0.3, div=10, div_final=100),
                                      schedules.Cosine(0.05, 30, warmup_steps=3, final_learning_rate=1e-4)])
def test_schedules_survive_get_config_and_keras_serialisation(schedule):
    copy = type(schedule).from_config(schedule.get_config())
    through_json = keras.saving.deserialize_keras_object(
        json.loads(json.dumps(keras.saving.serialize_keras_object(schedule))))
    assert type(through_json) is type(schedule)
    for step in (0, 3, 12, 29, 40):
        assert rate(copy, step) == rate(schedule, step) == rate(through_json, step)


@pytest.mark.parametrize("arguments, parameter", [
    ({"lr_max": 0, "total_steps": 10}, "lr_max=0"), ({"lr_max": 1e-3, "total_steps": 0}, "total_steps=0"),
    ({"lr_max": 1e-3, "total_steps": 10, "pct_start": 1.0}, "pct_start=1.0"),
    ({"lr_max": 1e-3, "total_steps": 10, "div": 0.5}, "div=0.5")])
def test_bad_one_cycle_settings_name_the_parameter(arguments, parameter):
    with pytest.raises(ValueError, match=parameter):
        schedules.OneCycle(**arguments)


def test_make_schedule_and_unknown_names():
    assert schedules.make_schedule("constant", 1e-3, 10) == 1e-3
    assert isinstance(schedules.make_schedule("one-cycle", 1e-3, 10), schedules.OneCycle)
    cosine = schedules.make_schedule("cosine", 1e-3, 100)
    assert cosine.warmup_steps == 10 and rate(cosine, 10) == pytest.approx(1e-3)
    with pytest.raises(ValueError, match="schedule='linear'.*constant, one-cycle, cosine"):
        schedules.make_schedule("linear", 1e-3, 10)
    with pytest.raises(ValueError, match="schedule='linear'"):
        recipe.Recipe(schedule="linear")


def test_layerwise_optimizer_takes_a_schedule_scales_its_steps_and_saves(tmp_path):
    """With SGD (no momentum) a step is rate x multiplier x gradient: the schedule's rate at each step."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros",
                                                                    name="dense")])
    schedule = schedules.OneCycle(lr_max=0.1, total_steps=4, pct_start=0.5)
    multipliers = optimizers.layer_multipliers(model, {"dense": 0.5})
    model.compile(optimizer=optimizers.make_optimizer("sgd", schedule, multipliers, momentum=0.0), loss="mse")
    x, y = np.array([[1.0, 0.0]], "float32"), np.array([[1.0]], "float32")
    kernels = [model.get_weights()[0][0, 0]]
    for _ in range(3):
        model.train_on_batch(x, y)
        kernels.append(model.get_weights()[0][0, 0])
    for step in range(3):  # mse gradient of w at x = [1, 0]: 2 (w - 1)
        expected = kernels[step] - rate(schedule, step) * 0.5 * 2 * (kernels[step] - 1.0)
        assert kernels[step + 1] == pytest.approx(expected, rel=1e-5)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert isinstance(loaded.optimizer._learning_rate, schedules.OneCycle)
    assert loaded.optimizer._learning_rate.get_config() == schedule.get_config()
    assert loaded.optimizer.multipliers == multipliers


def test_each_stage_of_the_recipe_gets_its_own_schedule(tmp_path):
    """head: one cycle at the rate over its own steps; fine_tune: a new cycle at a tenth of it."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 4, 4, 3)).astype("float32"), np.eye(2, dtype="float32")[rng.integers(0, 2, 40)]
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)  # 5 steps per epoch
    keras.utils.set_random_seed(0)
    base = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Conv2D(4, 1, name="conv")], name="base")
    settings = recipe.Recipe(epochs=2, freeze_epochs=1, learning_rate=1e-2, schedule="one-cycle", jit_compile=False)
    _, model, _ = recipe.build_model(base, 2, settings)
    seen = []

    class Rates(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            optimizer = self.model.optimizer
            seen.append((len(self.model.trainable_weights), int(optimizer.iterations.numpy()),
                         float(optimizer._learning_rate(optimizer.iterations))))

    results = recipe.run_stages(model, base, settings, train, train, tmp_path, callbacks=[Rates()], verbose=0)
    assert [results[name]["learning_rate"] for name in ("head", "fine_tune")] == [1e-2, pytest.approx(1e-3)]
    head = [row for row in seen if row[0] == 2]  # the head alone has 2 weights
    tune = [row for row in seen if row[0] > 2]
    assert [step for _, step, _ in head] == list(range(5)) and [step for _, step, _ in tune] == list(range(10))
    head_cycle, tune_cycle = schedules.OneCycle(1e-2, 5), schedules.OneCycle(1e-3, 10)
    assert [value for *_, value in head] == pytest.approx([rate(head_cycle, step) for step in range(5)])
    assert [value for *_, value in tune] == pytest.approx([rate(tune_cycle, step) for step in range(10)])
    assert max(value for *_, value in tune) == pytest.approx(1e-3)
