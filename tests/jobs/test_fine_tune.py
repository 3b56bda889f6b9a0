"""The fine-tuning job: each mode on a tiny run (32x32 images, 5 per class), resuming, bad input.

The ImageNet MobileNet comes from the offline import (keras_tl.offline.mobilenet).
"""
import importlib.util
import json

import keras
import numpy as np
import pytest

from keras_tl import distribute
from keras_tl.features.classifiers import wilson_interval
from keras_tl.jobs import fine_tune
from keras_tl.training import freezing, resumable_fit

TINY = ["--image-size", "32", "--train-per-class", "5", "--test-per-class", "2", "--batch-size", "8",
        "--epochs", "1", "--min-steps", "0", "--quiet"]  # --min-steps 0: 1 epoch, though it is 5 steps
HEAD_PARAMS = 1024 * 10 + 10  # the new classifier: MobileNet's 1024 features -> 10 classes


@pytest.fixture
def imagenet(imagenet_mobilenet_32):
    """The ImageNet MobileNet at 32x32 (shared, conftest.py), to compare trained weights with."""
    return imagenet_mobilenet_32


def base_of(model):
    return next(layer for layer in freezing.nested_layers(model) if layer.name.startswith("mobilenet"))


def load_run(run_dir):
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return metrics, base_of(keras.models.load_model(run_dir / "model.keras"))


def weight(base, layer, index=0):
    return base.get_layer(layer).get_weights()[index]


def test_partial_run_resumes_after_an_interrupt(tmp_path, monkeypatch, imagenet, capsys):
    run_dir = tmp_path / "run"
    argv = TINY + ["--unfreeze", "conv_dw_13", "--epochs", "3", "--freeze-epochs", "1", "--output-dir", str(run_dir)]
    finish_epoch = resumable_fit.TrainingClock.on_epoch_end

    def killed_in_second_fine_tune_epoch(clock, epoch, logs=None):
        finish_epoch(clock, epoch, logs)
        if len(clock.model.trainable_weights) > 2 and epoch == 1:  # the head alone has 2 weights
            raise KeyboardInterrupt

    monkeypatch.setattr(resumable_fit.TrainingClock, "on_epoch_end", killed_in_second_fine_tune_epoch)
    assert fine_tune.main(argv) == 130  # Ctrl-C: one line, exit status 130
    assert capsys.readouterr().err.strip().splitlines() == [
        "interrupted: finished work is kept; run the same command again to resume."]
    assert not (run_dir / "metrics.json").exists()
    assert (run_dir / "fine_tune" / "backup").is_dir()
    monkeypatch.setattr(resumable_fit.TrainingClock, "on_epoch_end", finish_epoch)

    assert fine_tune.main(argv) == 0
    assert "Test accuracy:" in capsys.readouterr().out
    metrics, base = load_run(run_dir)
    stages = metrics["stages"]
    assert stages["head"]["epochs_trained_now"] == 0  # finished before the interrupt: loaded, not redone
    assert stages["fine_tune"]["epochs_trained_now"] == 1  # only the third epoch was left
    assert [int(row["epoch"]) for row in resumable_fit.read_log(run_dir / "fine_tune" / "log.csv")] == [0, 1, 2]
    assert [(row["epoch"], row["stage"]) for row in metrics["history"]] == [
        (1, "head"), (2, "fine_tune"), (3, "fine_tune"), (4, "fine_tune")]
    assert stages["head"]["trainable"] == HEAD_PARAMS
    conv_dw_13_params = 3 * 3 * 1024 + 2 * 1024 + 1024 * 1024 + 2 * 1024  # dw, its BN scale+offset, pw, its BN
    assert stages["fine_tune"]["trainable"] == HEAD_PARAMS + conv_dw_13_params
    for name in ("config.json", "layers.txt", "figures/learning_curves.png", "figures/confusion_matrix.png"):
        assert (run_dir / name).stat().st_size > 0
    assert 0.0 <= metrics["test_accuracy"] <= 1.0 and metrics["test_images"] == 20
    assert metrics["cost"]["total_params"] > metrics["cost"]["trainable_params"] > 0

    # Frozen below conv_dw_13; above it the weights train, but BN keeps its ImageNet statistics.
    np.testing.assert_array_equal(weight(base, "conv1"), weight(imagenet, "conv1"))
    np.testing.assert_array_equal(weight(base, "conv_pw_12_bn", 2), weight(imagenet, "conv_pw_12_bn", 2))
    assert not np.allclose(weight(base, "conv_pw_13"), weight(imagenet, "conv_pw_13"))
    assert not np.allclose(weight(base, "conv_pw_13_bn", 0), weight(imagenet, "conv_pw_13_bn", 0))  # gamma
    for statistic in (2, 3):  # moving mean and variance
        np.testing.assert_array_equal(weight(base, "conv_pw_13_bn", statistic),
                                      weight(imagenet, "conv_pw_13_bn", statistic))


def test_unfreeze_none_changes_no_base_weight(tmp_path, imagenet):
    assert fine_tune.main(TINY + ["--unfreeze", "none", "--output-dir", str(tmp_path / "run")]) == 0
    metrics, base = load_run(tmp_path / "run")
    assert list(metrics["stages"]) == ["head"] and metrics["stages"]["head"]["trainable"] == HEAD_PARAMS
    for trained, original in zip(base.get_weights(), imagenet.get_weights()):
        np.testing.assert_array_equal(trained, original)


def test_lora_trains_the_number_of_parameters_the_rank_implies(tmp_path, imagenet):
    rank = 2
    argv = TINY + ["--unfreeze", "all", "--lora-rank", str(rank), "--freeze-epochs", "0", "--mix", "cutmix",
                   "--output-dir", str(tmp_path / "run")]
    assert fine_tune.main(argv) == 0
    metrics, base = load_run(tmp_path / "run")
    convolutions = [layer for layer in imagenet.layers if type(layer) is keras.layers.Conv2D]
    lora_params = sum(int(np.prod(layer.kernel.shape[:-1])) * rank + rank * layer.kernel.shape[-1]
                      for layer in convolutions)
    assert metrics["stages"]["fine_tune"]["trainable"] == lora_params + HEAD_PARAMS
    assert metrics["cost"]["full_fine_tune_trainable_params"] == 3_217_226
    assert metrics["cost"]["trainable_params"] < 0.05 * metrics["cost"]["full_fine_tune_trainable_params"]
    # Saved merged (W + BA): the 1x1 convolutions changed, the depthwise ones (no LoRA) did not.
    assert not np.allclose(weight(base, "conv_pw_13"), weight(imagenet, "conv_pw_13"))
    np.testing.assert_array_equal(weight(base, "conv_dw_13"), weight(imagenet, "conv_dw_13"))
    np.testing.assert_array_equal(weight(base, "conv_pw_13_bn", 0), weight(imagenet, "conv_pw_13_bn", 0))  # gamma


def test_scratch_trains_batchnorm_statistics_and_uses_layer_rates(tmp_path):
    argv = TINY + ["--from-scratch", "--lr-ratio", "0.01", "--lr-groups", "2", "--mix", "mixup",
                   "--no-augment", "--output-dir", str(tmp_path / "run")]
    assert fine_tune.main(argv) == 0
    metrics, base = load_run(tmp_path / "run")
    assert list(metrics["stages"]) == ["scratch"]
    np.testing.assert_allclose([factor for *_, factor in metrics["stages"]["scratch"]["lr_factors"]],
                               [0.01, 0.1, 1.0])
    assert np.any(weight(base, "conv1_bn", 2) != 0)  # moving mean starts at 0: BN ran in training mode
    optimizer = keras.models.load_model(tmp_path / "run" / "model.keras").optimizer
    assert optimizer.multipliers["conv1/kernel"] == pytest.approx(0.01)
    assert optimizer.multipliers["conv_pw_13/kernel"] == pytest.approx(0.1)
    assert optimizer.multipliers["classifier/kernel"] == pytest.approx(1.0)


def test_fit_stage_resumed_equals_uninterrupted(tmp_path, softmax_problem):
    data, make_model = softmax_problem

    def model():
        return make_model(0.01)

    class Stop(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    class Epochs(keras.callbacks.Callback):
        seen = []

        def on_epoch_begin(self, epoch, logs=None):
            self.seen.append(epoch)

    whole = model()
    resumable_fit.fit_stage(whole, tmp_path / "whole", 4, data, data, patience=10)
    with pytest.raises(KeyboardInterrupt):
        resumable_fit.fit_stage(model(), tmp_path / "resumed", 4, data, data, patience=10, callbacks=[Stop()])
    resumed = model()
    result = resumable_fit.fit_stage(resumed, tmp_path / "resumed", 4, data, data, patience=10, callbacks=[Epochs()])
    assert Epochs.seen == [2, 3]
    assert result["epochs"] == 4 and result["epochs_trained_now"] == 2
    for a, b in zip(whole.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_choose_run_dir_picks_up_the_unfinished_run_with_the_same_settings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    old = tmp_path / "runs" / "fine_tune-20250101-000000"
    old.mkdir(parents=True)
    (old / "config.json").write_text(json.dumps({"settings": {"mode": "head"}}))
    found, resuming = fine_tune.choose_run_dir(None, {"mode": "head"})
    assert found.resolve() == old.resolve() and resuming
    assert fine_tune.choose_run_dir(None, {"mode": "full"})[0].resolve() != old.resolve()
    (old / "metrics.json").write_text("{}")
    assert fine_tune.choose_run_dir(None, {"mode": "head"})[0].resolve() != old.resolve()
    with pytest.raises(ValueError, match="other settings \\(mode: 'head' there, 'full' now\\)"):
        fine_tune.choose_run_dir(str(old), {"mode": "full"})


def test_help_shows_examples(capsys):
    with pytest.raises(SystemExit):
        fine_tune.parse_args(["--help"])
    # --mode head is now --unfreeze none (the library's unfreeze=None); --mode still works, hidden from --help
    assert "python -m keras_tl.fine_tune --unfreeze none" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--lr", "0"], "--learning-rate must be > 0"),  # --lr is the older name of --learning-rate
    (["--learning-rate", "0"], "--learning-rate must be > 0"),
    (["--lr-ratio", "0"], "--lr-ratio must be > 0"),
    (["--mode", "head", "--unfreeze", "4"], "--unfreeze chooses layers for --mode partial"),
    (["--mode", "scratch", "--lora-rank", "2"], "--lora-rank adapts the unfrozen layers"),
    (["--from-scratch", "--lora-rank", "2"], "--lora-rank adapts the unfrozen layers"),
    (["--unfreeze", "none", "--lora-rank", "2"], "--unfreeze none trains the head only"),
    (["--from-scratch", "--unfreeze", "8"], "--from-scratch trains every layer"),
    (["--class-weight", "balanced"], "argument --class-weight: invalid choice: 'balanced'"),
    (["--folds", "1"], "--folds must be at least 2; got 1."),
    (["--folds", "3", "--strategy", "multi-worker"], "--folds trains its folds one after another in this process"),
    (["--balanced-sampling", "--class-weight", "auto"], "--balanced-sampling and --class-weight auto both correct"),
])
def test_bad_options_stop_at_parsing(argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        fine_tune.parse_args(argv)
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert stop.value.code == 2 and len(errors) == 1 and message in errors[0]


def one_class_folder(root):
    from PIL import Image

    for index in range(3):
        (root / "cats").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), (index, 0, 0)).save(root / "cats" / f"{index}.png")
    return str(root)


@pytest.mark.parametrize("extra, message", [
    (["--source", "mobilenet_v3"], "Unknown source 'mobilenet_v3'"),
    (["--image-size", "16"], "below mobilenet's minimum of 32"),
    (["--batch-size", "64"], "larger than the training set (40 images"),
    (["--validation-fraction", "0.1"], "each part needs an image of each of the 10 classes"),
    (["--unfreeze", "conv_dw_99"], "neither a layer nor a block"),
    (["--unfreeze", "conv_pw_13,blok5"], "'blok5' is neither a layer nor a block"),
    (["--unfreeze", "999"], "has 54 layers with weights"),
    (["--mixed-precision"], "no GPU"),
    (["--strategy", "mirrored"], "no GPU"),
    (["--dataset", "ONE_CLASS"], "classification needs at least 2"),
    (["--tensorboard"], "pip install tensorboard"),
])
def test_bad_input_is_a_clear_error_before_training(extra, message, tmp_path, capsys):
    if "no GPU" in message and distribute.has_gpu():
        pytest.skip("this machine has a GPU")
    if extra == ["--strategy", "mirrored"] and keras.backend.backend() != "tensorflow":
        message = "needs the TensorFlow backend"
    if "tensorboard" in message and importlib.util.find_spec("tensorboard"):
        pytest.skip("tensorboard is installed")
    extra = [one_class_folder(tmp_path / "data") if item == "ONE_CLASS" else item for item in extra]
    assert fine_tune.main(TINY + extra + ["--output-dir", str(tmp_path / "run")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # nothing was trained or written


def test_the_test_accuracy_carries_its_wilson_interval_and_the_per_class_counts(fine_tune_run):
    metrics = json.loads((fine_tune_run / "metrics.json").read_text())
    assert metrics["test_images"] == 10 and metrics["tta"] == "flip"
    for key in ("test_accuracy", "test_accuracy_tta"):
        correct = round(metrics[key] * metrics["test_images"])
        assert metrics[f"{key}_interval"] == pytest.approx(wilson_interval(correct, metrics["test_images"]))
    assert {name: row["images"] for name, row in metrics["per_class"].items()} == {"blue": 4, "green": 3, "red": 3}


def test_min_steps_sizes_the_stage_of_a_small_run_and_a_head_still_learning_is_warned(tmp_path, capsys):
    """40 training images in batches of 8 are 5 steps an epoch: --min-steps 10 makes --epochs 1 two epochs.
    Planted: 10 steps at lr 1e-3 leave a new head with its validation loss still falling."""
    import warnings

    run_dir = tmp_path / "run"
    argv = [item for item in TINY if item != "--quiet"] + ["--unfreeze", "none", "--min-steps", "10", "--tta", "none",
                                                           "--output-dir", str(run_dir)]
    with pytest.warns(UserWarning, match=r"stage head ended with its validation loss still falling \(epochs 1-2 of 2: "
                                         r"[0-9.]+, [0-9.]+\); it is likely under-trained: give it more steps, for "
                                         r"example min_steps=20 \(twice its 10\)\.") as caught:
        assert fine_tune.main(argv) == 0
    out = capsys.readouterr().out
    assert "  stages:    head: up to 2 epochs, raised from 1 (x 5 steps = 10 >= min 10) at lr 0.001" in out
    assert out.count("still improving") == 1 and " yes " in out.split("still improving")[1]  # the summary's column
    warned = next(warning for warning in caught if "still falling" in str(warning.message))
    line = warnings.formatwarning(warned.message, UserWarning, "recipe.py", 1)  # as the job's user reads it
    assert line.startswith("warning: stage head ended") and line.count("\n") == 1
    assert line.endswith("give it more steps, for example --min-steps 20 (twice its 10).\n")  # the job's flag
    config = json.loads((run_dir / "config.json").read_text())
    assert config["stages"] == [{"name": "head", "epochs": 2, "learning_rate": 1e-3, "base_trains": False,
                                 "steps_per_epoch": 5, "min_steps": 10, "requested_epochs": 1}]
    head = json.loads((run_dir / "metrics.json").read_text())["stages"]["head"]
    assert (head["epochs"], head["planned_epochs"], head["steps_per_epoch"], head["still_improving"]) == (2, 2, 5, True)


# ----------------------------------------------------------------------------- imbalanced classes, k folds


def test_balanced_accuracy_and_each_class_recall_are_in_the_metrics_and_the_summary(fine_tune_run):
    from sklearn.metrics import balanced_accuracy_score, recall_score

    metrics = json.loads((fine_tune_run / "metrics.json").read_text())
    pairs = [(true, predicted) for true, row in enumerate(metrics["confusion_matrix"])
             for predicted, count in enumerate(row) for _ in range(count)]
    true, predicted = zip(*pairs)
    assert metrics["test_balanced_accuracy"] == pytest.approx(balanced_accuracy_score(true, predicted))
    recalls = recall_score(true, predicted, average=None, labels=[0, 1, 2])
    assert [metrics["per_class"][name]["accuracy"] for name in metrics["class_names"]] == pytest.approx(recalls)
    assert json.loads((fine_tune_run / "config.json").read_text())["class_weight"] is None  # --class-weight none


def overlapping_classes(per_class, seed):
    """Two classes of 1x1-pixel, 2-channel "images" whose centres are 2 apart (noise 1.5): ``(x, labels)``."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(2.0 * label - 1, 1.5, size=(count, 1, 1, 2))
                        for label, count in enumerate(per_class)])
    return x.astype("float32"), np.repeat(np.arange(len(per_class)), per_class)


@pytest.mark.filterwarnings("ignore:stage head ended with its validation loss still falling")
def test_class_weight_auto_raises_the_recall_of_a_class_ten_times_smaller():
    """The recipe on a planted 10:1 imbalance (200 against 20 training images): weighing the loss by
    n / (k x the images of the class) raises the small class's recall on a balanced test set."""
    import tensorflow as tf

    from keras_tl.training import recipe

    def batches(per_class, seed, shuffle=False):
        x, labels = overlapping_classes(per_class, seed)
        dataset = tf.data.Dataset.from_tensor_slices((x, np.eye(2, dtype="float32")[labels]))
        return (dataset.shuffle(len(x), seed=0) if shuffle else dataset).batch(64)

    test_x, test_labels = overlapping_classes((200, 200), seed=2)
    recalls = {}
    for class_weight in (None, "auto"):
        keras.utils.set_random_seed(0)
        base = keras.Sequential([keras.Input((1, 1, 2)), keras.layers.Identity()], name="base")
        model, _ = recipe.fine_tune_model(base, batches((200, 20), 0, shuffle=True), batches((50, 5), 1),
                                          unfreeze=None, epochs=4, learning_rate=0.2, dropout=0, jit_compile=False,
                                          verbose=0, class_weight=class_weight)
        predicted = np.argmax(keras.ops.convert_to_numpy(model(test_x)), axis=-1)
        recalls[class_weight] = np.mean(predicted[test_labels == 1] == 1)
    assert recalls["auto"] > recalls[None] + 0.15


def test_class_weights_are_checked_counted_and_given_for_every_class():
    import tensorflow as tf
    from sklearn.utils.class_weight import compute_class_weight

    from keras_tl.training import recipe

    labels = np.repeat([0, 1, 2], [30, 3, 12])
    expected = compute_class_weight("balanced", classes=np.arange(3), y=labels)  # n / (k x count)
    assert recipe.balanced_class_weight(np.bincount(labels)) == pytest.approx(dict(enumerate(expected)))
    one_hot = tf.data.Dataset.from_tensor_slices((np.zeros((45, 1)), np.eye(3)[labels])).batch(8)
    auto = recipe.stage_class_weight(recipe.Recipe(class_weight="auto"), one_hot, 3)  # one pass over the labels
    assert auto == pytest.approx(dict(enumerate(expected)))
    assert recipe.stage_class_weight(recipe.Recipe(class_weight={1: 4.0}), one_hot, 3) == {0: 1.0, 1: 4.0, 2: 1.0}
    assert recipe.stage_class_weight(recipe.Recipe(), one_hot, 3) is None
    with pytest.raises(ValueError, match="class_weight= names class 5, and the model has 3 classes"):
        recipe.stage_class_weight(recipe.Recipe(class_weight={5: 1.0}), one_hot, 3)
    for bad in ("balanced", {0: 0.0}, {-1: 1.0}, {0: float("nan")}):
        with pytest.raises(ValueError, match="class_weight="):
            recipe.Recipe(class_weight=bad)


def test_balanced_sampling_draws_each_class_about_equally_often_in_epochs_of_the_same_length():
    """Planted 10:1 (200 against 20 images): an epoch of the balanced train pipeline still has 220 images in
    7 batches, about half of them from the small class, whose images each come back as often (5 or 6 times)."""
    from keras_tl import data, sources

    labels = np.repeat([0, 1], [200, 20])
    images = np.arange(220, dtype=np.uint8)[:, None, None] * np.ones((1, 4, 4), np.uint8)  # pixel value = index
    splits = {"train": data.ImageSet(labels=labels, images=images), "test": data.ImageSet(labels=labels[:2],
                                                                                           images=images[:2])}
    train, _, _ = data.training_pipelines(sources.get_source("mobilenet"), 4, splits, 2, batch_size=32, balanced=True)
    assert int(train.cardinality()) == 7
    for _ in range(2):  # two epochs
        batches = list(train)
        drawn = np.concatenate([np.argmax(one_hot, axis=-1) for _, one_hot in batches])
        assert len(drawn) == 220 and 80 <= np.sum(drawn == 1) <= 140  # binomial(220, 1/2): mean 110, sd 7.4
        index = np.concatenate([np.rint((batch[:, 0, 0, 0] + 1) * 127.5) for batch, _ in batches]).astype(int)
        small = np.bincount(index[drawn == 1] - 200, minlength=20)  # cycled through: each 5 or 6 times
        assert small.max() - small.min() <= 1 and small.sum() == np.sum(drawn == 1)
    plain, _, _ = data.training_pipelines(sources.get_source("mobilenet"), 4, splits, 2, batch_size=32)
    assert sum(int(np.sum(np.argmax(one_hot, axis=-1))) for _, one_hot in plain) == 20


def test_more_folds_than_the_smallest_class_is_one_error_line_before_any_folder(colours, tmp_path, capsys):
    """The colours pool (5 train and 2 test images of each colour, as TINY reads them): 8 folds cannot each
    hold a red image."""
    argv = TINY + ["--dataset", str(colours), "--folds", "8", "--output-dir", str(tmp_path / "run")]
    assert fine_tune.main(argv) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: --folds 8 should be at least 2 and at most the images of the smallest class (7): each fold needs "
        "an image of each class."]
    assert not (tmp_path / "run").exists()


def test_folds_run_each_fold_in_its_folder_on_train_and_test_joined_and_report_mean_and_std(colours, tmp_path,
                                                                                           monkeypatch, capsys):
    """Each fold's run (here a stand-in that predicts "blue" for every image) gets its own folder and a test part
    that is a stratified fifth of the 21 pooled images (7 of each colour), never in its train or validation part;
    a rerun reads finished folds back."""
    from keras_tl.features import classifiers

    seen, whole_run = [], fine_tune.run

    def blue_everywhere(args):
        if args.folds:
            return whole_run(args)
        dataset, splits = fine_tune.load_splits(args, distribute.make_strategy("auto"))
        seen.append((args.fold, args.output_dir, splits))
        test = splits["test"].labels
        evaluation = classifiers.evaluate_predictions(test, np.zeros_like(test), dataset.class_names)
        metrics = {"test_accuracy": evaluation["accuracy"], "test_balanced_accuracy": evaluation["balanced_accuracy"],
                   "test_images": len(test), "per_class": evaluation["per_class"]}
        (tmp_path / "run" / f"fold-{args.fold[0]}").mkdir(parents=True)
        (tmp_path / "run" / f"fold-{args.fold[0]}" / "metrics.json").write_text(json.dumps(metrics))
        return metrics

    monkeypatch.setattr(fine_tune, "run", blue_everywhere)
    argv = TINY + ["--dataset", str(colours), "--folds", "5", "--output-dir", str(tmp_path / "run")]
    assert fine_tune.main(argv) == 0
    assert [(fold, output_dir) for fold, output_dir, _ in seen] == [
        ([fold, 5], str(tmp_path / "run" / f"fold-{fold}")) for fold in range(1, 6)]
    tested = np.concatenate([splits["test"].paths for _, _, splits in seen])
    assert len(tested) == len(set(tested)) == 21  # every pooled image tested once
    for _, _, splits in seen:
        assert set(np.bincount(splits["test"].labels, minlength=3)) <= {1, 2}  # 7 images in 5 folds: 1 or 2
        trained = set(splits["train"].paths) | set(splits["validation"].paths)
        assert not trained & set(splits["test"].paths) and len(trained) + len(splits["test"].paths) == 21
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    accuracies = [fold["accuracy"] for fold in metrics["folds"]]
    assert accuracies == [np.mean(splits["test"].labels == 0) for _, _, splits in seen]  # class 0: blue
    assert metrics["accuracy"]["mean"] == pytest.approx(np.mean(accuracies))
    assert metrics["accuracy"]["std"] == pytest.approx(np.std(accuracies))
    assert metrics["balanced_accuracy"]["values"] == pytest.approx([1 / 3] * 5)  # one class of three, always right
    assert [fold["run_dir"] for fold in metrics["folds"]] == [f"fold-{fold}" for fold in range(1, 6)]
    last_row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("mean ± std"))
    assert last_row.split() == ["mean", "±", "std", "21", *classifiers.format_mean_std(metrics["accuracy"]).split(),
                                "0.333", "±", "0.000"]
    seen.clear()
    (tmp_path / "run" / "metrics.json").unlink()  # as if interrupted after the last fold
    assert fine_tune.main(argv) == 0 and seen == []  # finished folds are read back, not run again
