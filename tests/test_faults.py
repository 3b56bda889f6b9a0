"""Faults: damaged caches and checkpoints, shared caches, and one clear line per user error."""
import json
import os
import threading
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_tl import data, runs
from keras_tl.features import extraction
from keras_tl.features.cache import FeatureCache
from keras_tl.jobs import fine_tune, fne, predict
from keras_tl.training import resumable_fit


def _tiny_extractor():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    maps = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    return extraction.build_extractor(keras.Model(inputs, maps), ["conv"])




def _pipeline(subset):
    return data.make_pipeline(subset, 8, None, batch_size=2)


@pytest.fixture(scope="module")
def expected(random_image_set):
    images = random_image_set(6, size=8, seed=3)
    features, _ = extraction.extract_features(_tiny_extractor(), images, _pipeline, verbose=False)
    return np.array(features)


@pytest.mark.parametrize("damage", ["truncated final", "empty marker", "wrong-size partial"])
def test_a_damaged_cache_entry_is_reported_set_aside_and_rebuilt(random_image_set, damage, expected, tmp_path):
    extractor, images = _tiny_extractor(), random_image_set(6, size=8, seed=3)
    _, final = extraction.extract_features(extractor, images, _pipeline, tmp_path, "tiny", verbose=False)
    key = final.name[:-len(".npy")]
    if damage == "truncated final":
        final.write_bytes(final.read_bytes()[:100])
    else:
        final.unlink()
        np.save(tmp_path / f"{key}.partial.npy", np.zeros((2, 3), dtype=np.float32))
        (tmp_path / f"{key}.done").write_text("" if damage == "empty marker" else "2")
    with pytest.warns(UserWarning, match="is damaged"):
        rebuilt, path = extraction.extract_features(extractor, images, _pipeline, tmp_path, "tiny", verbose=False)
    np.testing.assert_allclose(rebuilt, expected, rtol=1e-6)
    assert path == final and list(tmp_path.glob("*.damaged"))


def test_two_runs_on_one_cache_entry_wait_for_each_other_and_share_the_result(random_image_set, expected, tmp_path):
    extractor, images = _tiny_extractor(), random_image_set(6, size=8, seed=3)
    size, dim = expected.shape
    cache = FeatureCache(tmp_path, "tiny", (size, dim))
    results = {}

    def second_run():
        results["features"], _ = extraction.extract_features(extractor, images, lambda subset: pytest.fail(
            "the second run extracted again instead of reusing the first run's file"), tmp_path, "tiny",
            verbose=False)

    with cache.lock():  # the first run holds the entry...
        waiting = threading.Thread(target=second_run)
        waiting.start()
        time.sleep(1.0)
        assert waiting.is_alive()  # ...so the second waits
        np.save(cache.final, expected)  # the first run finishes its file
    waiting.join(timeout=60)
    np.testing.assert_array_equal(results["features"], expected)


def test_a_kill_while_best_keras_is_written_keeps_the_previous_best(tmp_path, monkeypatch, softmax_problem):
    batches, make_model = softmax_problem

    def model():
        return make_model(0.05)

    save, saves = keras.Model.save, []

    def killed_during_the_second_save(self, path, *args, **kwargs):
        saves.append(path)
        if len(saves) == 2:
            with open(path, "wb") as handle:
                handle.write(b"PK\x03\x04 half a zip")
            raise KeyboardInterrupt
        return save(self, path, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "save", killed_during_the_second_save)
    with pytest.raises(KeyboardInterrupt):
        resumable_fit.fit_stage(model(), tmp_path, 4, batches, batches, patience=10)
    best = tmp_path / "best.keras"
    first_best = keras.models.load_model(best)  # intact: the half file was a temporary one
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".best.keras")]
    monkeypatch.setattr(keras.Model, "save", save)
    resumed = model()
    result = resumable_fit.fit_stage(resumed, tmp_path, 4, batches, batches, patience=10)
    assert result["epochs"] == 4 and result["epochs_trained_now"] == 3  # went on after the first epoch
    assert result["best_val_loss"] <= float(first_best.evaluate(batches, verbose=0))
    assert not (tmp_path / "backup").exists() and (tmp_path / "done.json").is_file()


def test_a_damaged_best_keras_of_a_finished_stage_is_set_aside_and_the_stage_trains_again(tmp_path):
    batches = tf.data.Dataset.from_tensor_slices((np.zeros((8, 5), "float32"), np.eye(2, dtype="float32")[
        np.arange(8) % 2])).batch(4)
    net = keras.Sequential([keras.Input((5,)), keras.layers.Dense(2, activation="softmax")])
    net.compile(optimizer="adam", loss="categorical_crossentropy")
    resumable_fit.fit_stage(net, tmp_path, 1, batches, batches)
    (tmp_path / "best.keras").write_bytes(b"")
    with pytest.warns(UserWarning, match="cannot be read"):
        result = resumable_fit.fit_stage(net, tmp_path, 1, batches, batches)
    assert result["epochs_trained_now"] == 1 and (tmp_path / "best.keras.damaged").exists()
    keras.models.load_model(tmp_path / "best.keras")


def test_training_that_diverges_stops_at_once_with_a_clear_error(tmp_path):
    batches = tf.data.Dataset.from_tensor_slices((np.full((16, 5), 1e30, "float32"), np.eye(2, dtype="float32")[
        np.arange(16) % 2])).batch(4)
    net = keras.Sequential([keras.Input((5,)), keras.layers.Dense(2, activation="softmax")])
    net.compile(optimizer=keras.optimizers.SGD(1e30), loss="categorical_crossentropy")
    with pytest.raises(ValueError, match="Training diverged.*Lower the learning rate"):
        resumable_fit.fit_stage(net, tmp_path, 5, batches, batches)
    assert not (tmp_path / "done.json").exists()


def test_metrics_json_is_strict_json(tmp_path):
    path = runs.write_json(tmp_path / "m.json", {"loss": float("nan"), "big": np.float32("inf"), "ok": [1.5]})
    assert json.loads(path.read_text(), parse_constant=lambda name: pytest.fail(name)) == {
        "loss": None, "big": None, "ok": [1.5]}


@pytest.mark.parametrize("main, argv, message", [
    (fine_tune.main, ["--lr", "inf"], "--learning-rate must be > 0; got inf."),  # --lr: the older name
    (fine_tune.main, ["--image-size", "0"], "--image-size must be at least 1; got 0."),
    (fine_tune.main, ["--train-per-class", "-3"], "--train-per-class must be at least 1; got -3."),
    (fne.main, ["--shots", "5", "0"], "--shots must be at least 1; got 0."),
    (fne.main, ["--image-size", "0"], "--image-size must be at least 1; got 0."),
    (fne.main, ["--thresholds", "0.2", "-0.2"], "--thresholds LOW HIGH needs LOW < HIGH"),
    (fine_tune.main, ["--image-size", "1000000"], "--image-size must be at most 4096; got 1000000."),
    (fne.main, ["--image-size", "1000000"], "--image-size must be at most 4096; got 1000000."),
    (fne.main, ["--batch-size", "100000"], "--batch-size must be at most 4096; got 100000."),
    (fne.main, ["--thresholds", "1e300", "1e308"], "--thresholds must lie within -10.0 .. 10.0; got 1e+300."),
    (fine_tune.main, ["--epochs", "100000000"], "--epochs must be at most 1000; got 100000000."),
    (fine_tune.main, ["--freeze-epochs", "5000"], "--freeze-epochs must be at most 1000; got 5000."),
    (fine_tune.main, ["--min-steps", "10000000"], "--min-steps must be at most 100000; got 10000000."),
    (fine_tune.main, ["--lora-rank", "100000000"], "--lora-rank must be at most 1024; got 100000000."),
    (predict.main, ["run", "--interpret", "--top-losses", "100000"], "--top-losses must be at most 100; got 100000."),
])
def test_bad_numbers_stop_before_any_work(main, argv, message, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error


def test_a_run_folder_that_cannot_be_written_is_one_error_line(tmp_path, capsys, monkeypatch):
    def refuse(output_dir, job):  # as root, chmod cannot make a folder unwritable: refuse like the OS would
        raise PermissionError(13, "Permission denied", str(output_dir))

    monkeypatch.setattr(runs, "make_run_dir", refuse)
    code = fne.main(["--train-per-class", "2", "--test-per-class", "1", "--image-size", "32", "--quiet",
                     "--output-dir", str(tmp_path / "locked"), "--cache-dir", str(tmp_path / "cache")])
    error = capsys.readouterr().err
    assert code == 2 and error.startswith("error: [Errno 13] Permission denied") and "Traceback" not in error


def test_weights_in_a_read_only_keras_home_are_used_where_they_are(tmp_path, monkeypatch):
    import shutil

    from keras_tl import offline, sources

    source = sources.get_source("mobilenet")
    source.build(image_size=32)  # makes sure the offline import has written the files
    models = tmp_path / "keras_home" / "models"
    models.mkdir(parents=True)
    for name in source.weight_files:
        shutil.copy(offline.keras_models_dir() / name, models / name)
    monkeypatch.setenv("KERAS_HOME", str(models.parent))
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if mode & os.W_OK and str(path).startswith(
        str(tmp_path)) else real_access(path, mode, **kw))

    def no_download(*args, **kwargs):
        raise AssertionError("Keras tried to fetch the weights instead of reading the read-only cache")

    monkeypatch.setattr(keras.utils, "get_file", no_download)
    model = source.build(image_size=32)
    reference = sources.get_source("mobilenet")._load_imagenet(False)
    np.testing.assert_array_equal(model.get_layer("conv1").get_weights()[0],
                                  reference.get_layer("conv1").get_weights()[0])


def _photo_folder(root, bad_per_class=2):
    """Two classes of small JPEG crops of scikit-learn's photos, plus damaged JPEGs with intact headers."""
    from PIL import Image

    photos = data.sample_photos(96)
    rng = np.random.default_rng(5)
    bad = []
    for label, name in enumerate(("temple", "flower")):
        (root / name).mkdir(parents=True)
        for index in range(8):
            top, left = rng.integers(0, 32, 2)
            crop = photos[label, top:top + 64, left:left + 64].astype(np.uint8)
            Image.fromarray(crop).save(root / name / f"{index}.jpg", quality=90)
        for index in range(bad_per_class):
            raw = bytearray((root / name / f"{index}.jpg").read_bytes())
            cut = bytes(raw[: len(raw) * 3 // 5]) if index % 2 else bytes(raw[:400]) + b"\xff" * 8 + bytes(raw[408:])
            path = root / name / f"damaged_{index}.jpg"
            path.write_bytes(cut)
            bad.append(path)
    return bad


@pytest.mark.parametrize("job", ["fne", "fine_tune"])
def test_jobs_finish_on_a_folder_with_damaged_jpegs_naming_each_once(job, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_TL_CACHE", str(tmp_path / "decode_cache"))
    bad = _photo_folder(tmp_path / "photos")
    run_dir = tmp_path / "run"
    common = ["--dataset", str(tmp_path / "photos"), "--image-size", "32", "--quiet", "--output-dir", str(run_dir)]
    with pytest.warns(UserWarning, match="Skipping 4 unreadable image file") as caught:
        if job == "fne":
            code = fne.main(common + ["--cache-dir", str(tmp_path / "cache")])
        else:
            code = fine_tune.main(common + ["--epochs", "1", "--freeze-epochs", "0", "--unfreeze", "none", "--min-steps", "0",
                                            "--batch-size", "4", "--validation-fraction", "0.25"])
    assert code == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert sorted(path for path, _ in metrics["skipped_files"]) == sorted(str(path) for path in bad)
    warned = "\n".join(str(warning.message) for warning in caught)
    for path in bad:
        assert warned.count(str(path)) == 1  # each bad file named once
    assert metrics["test_images"] + (metrics.get("train_images") or 0) <= 16


@pytest.mark.parametrize("where", ["feature cache", "run folder", "copy into the run folder"])
def test_a_full_disk_is_one_error_line_naming_where_and_exit_2(where, tmp_path, capsys, monkeypatch):
    """Planted as the operating system reports it: a write's error names no file, a copy's names its source
    (here the cache, on a disk with room); the line names the file in the full run folder."""
    import errno
    import pathlib
    import shutil

    def disk_full(filename=None):
        raise OSError(errno.ENOSPC, "No space left on device", filename)

    def other_device(*_):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    if where == "feature cache":
        monkeypatch.setattr(runs.shutil, "disk_usage", lambda folder: shutil._ntuple_diskusage(10**9, 10**9, 4096))
    elif where == "run folder":
        real_write_text = pathlib.Path.write_text
        monkeypatch.setattr(pathlib.Path, "write_text", lambda path, *args, **kwargs: disk_full() if
                            path.name.startswith(".metrics.json.") else real_write_text(path, *args, **kwargs))
    else:
        monkeypatch.setattr(fne.os, "link", other_device)  # the cache on another disk: copied
        monkeypatch.setattr(fne.shutil, "copyfile", lambda source, _: disk_full(str(source)))
    run_dir = tmp_path / "run"
    code = fne.main(["--train-per-class", "2", "--test-per-class", "1", "--image-size", "32", "--quiet",
                     "--output-dir", str(run_dir), "--cache-dir", str(tmp_path / "cache")])
    error = capsys.readouterr().err
    assert code == 2 and error.count("\n") == 1 and error.startswith("error: No space left on device")
    assert "Nothing was half-written" in error and "Traceback" not in error
    named = {"feature cache": tmp_path / "cache", "run folder": run_dir / "metrics.json",
             "copy into the run folder": run_dir / "features" / "train.npy"}[where]
    assert f"(writing {named})" in error
    assert not list(tmp_path.rglob("*.part*")) and not list(tmp_path.rglob("*.partial.npy"))
    assert not (run_dir / "metrics.json").exists()


@pytest.mark.parametrize("tamper, message", [
    ("128 px", "model.json, field image_size: 128 px, but the model in {run}/model.keras takes 32x32 px images"),
    ("no model.json", "{run} is an fne run (its config.json says so) without model.json: the fne job writes"),
], ids=["128 px", "no model.json"])
def test_predict_on_an_fne_run_with_a_tampered_model_json_names_it(fne_run, tamper, message, tmp_path, capsys):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(fne_run, run_dir, ignore=shutil.ignore_patterns("features"))
    if tamper == "128 px":
        info = json.loads((run_dir / "model.json").read_text())
        (run_dir / "model.json").write_text(json.dumps({**info, "image_size": 128}))
    else:
        (run_dir / "model.json").unlink()
    assert predict.main([str(run_dir), "--interpret", "--quiet"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("error: ") and message.format(run=run_dir) in error


def test_a_split_list_that_escapes_the_dataset_folder_is_one_error_line(tmp_path, capsys):
    from PIL import Image

    root = tmp_path / "mit"
    for label in ("bar", "kitchen"):
        (root / "Images" / label).mkdir(parents=True)
        for index in range(2):
            Image.new("RGB", (8, 8), (index * 90, 0, 0)).save(root / "Images" / label / f"{index}.png")
    (root / "TrainImages.txt").write_text("bar/0.png\n../../../etc/hostname\nkitchen/0.png\n")
    (root / "TestImages.txt").write_text("bar/1.png\nkitchen/1.png\n")
    code = fne.main(["--dataset", str(root), "--image-size", "32", "--quiet", "--output-dir", str(tmp_path / "run"),
                     "--cache-dir", str(tmp_path / "cache")])
    error = capsys.readouterr().err
    assert code == 2 and error.count("\n") == 1 and "leave the dataset folder" in error
    assert "../../../etc/hostname" in error
