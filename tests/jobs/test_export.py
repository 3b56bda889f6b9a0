"""``python -m keras_tl.export`` on the tests' two runs (tests/conftest.py, 32 px): each format runs where it is
served, with the figures of ``export.json``, and a bad format, a missing run or a failed conversion writes nothing."""
import io
import json
import os
import subprocess
import sys
import sysconfig

import numpy as np
import pytest
from PIL import Image

from keras_tl import data
from keras_tl.analysis import formats, interpret, trained
from keras_tl.jobs import export


def run_export(run_dir, output_dir, *options):
    """The job on ``run_dir`` into ``output_dir``; its ``export.json``."""
    assert export.main([str(run_dir), *options, "--output-dir", str(output_dir), "--quiet"]) == 0
    return json.loads((output_dir / "export.json").read_text())


def test_savedmodel_predicts_from_jpeg_bytes_in_a_process_without_keras_tl(fne_run, colours, tmp_path):
    report = run_export(fne_run, tmp_path / "served", "--format", "savedmodel")
    assert (report["format"], report["input"]["dtype"], report["test_images"]) == ("savedmodel", "string", 10)
    assert report["meets_target"] and report["top1_agreement"] == 1.0 and report["accuracy"] == report["keras_accuracy"]
    assert report["class_names"] == ["blue", "green", "red"] and report["latency_ms"] > 0
    assert (tmp_path / "served" / "labels.txt").read_text() == "blue\ngreen\nred\n"
    photos = sorted((colours / "test").glob("*/*.png"))
    for index, path in enumerate(photos):  # the photos as JPEG files, larger than the run's 32 px
        buffer = io.BytesIO()
        Image.open(path).resize((48, 40)).save(buffer, format="JPEG", quality=95)
        (tmp_path / f"{index}.jpg").write_bytes(buffer.getvalue())
    code = ("import importlib.util, json\n"
            "assert importlib.util.find_spec('keras_tl') is None, 'keras_tl is importable'\n"
            "import tensorflow as tf\n"
            "serve = tf.saved_model.load('served/saved_model').signatures['serving_default']\n"
            f"files = [open(f'{{index}}.jpg', 'rb').read() for index in range({len(photos)})]\n"
            "out = serve(image_bytes=tf.constant(files))\n"
            "best = [name.decode() for name in out['classes'][:, 0].numpy()]\n"
            "print(json.dumps([best, out['scores'].numpy().tolist()]))\n")
    paths = sysconfig.get_paths()
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(dict.fromkeys([paths["purelib"], paths["platlib"]])),
                   "TF_CPP_MIN_LOG_LEVEL": "3"}
    finished = subprocess.run([sys.executable, "-S", "-c", code], cwd=tmp_path, env=environment, capture_output=True,
                              text=True, timeout=300)  # -S: no site-packages .pth, so not keras_tl's editable install
    assert finished.returncode == 0, finished.stderr[-2000:]
    best, scores = json.loads(finished.stdout.splitlines()[-1])
    model = trained.load_run(fne_run)
    decoded = [np.asarray(Image.open(tmp_path / f"{index}.jpg").convert("RGB")) for index in range(len(photos))]
    expected = np.concatenate([model.predict(image) for image in decoded])
    assert best == [model.classes[index] for index in expected.argmax(axis=1)]
    np.testing.assert_allclose(scores, -np.sort(-expected, axis=1), atol=1e-4)  # decoded as Pillow decodes


def test_tflite_float16_and_int8_run_in_litert_with_the_figures_of_export_json(fine_tune_run, tmp_path):
    model = trained.load_run(fine_tune_run)
    dataset = interpret.run_dataset(fine_tune_run, verbose=False)
    images = model.load_images(list(dataset.test.paths))
    labels = np.array([model.classes.index(dataset.class_names[label]) for label in dataset.test.labels])
    expected = model.predict(images)
    for quantize, fraction in (("float16", 0.6), ("int8", 0.35)):
        report = run_export(fine_tune_run, tmp_path / quantize, "--format", "tflite", "--quantize", quantize)
        file = tmp_path / quantize / "model.tflite"
        assert report["quantization"] == quantize and report["size_bytes"] == file.stat().st_size
        assert report["size_bytes"] < fraction * 4 * sum(np.prod(w.shape) for w in model.model.weights)
        assert report["input"]["shape"] == [None, 32, 32, 3] and report["runtime"].startswith("ai-edge-litert")
        scores = formats.tflite_runner(file)(images)  # in LiteRT's interpreter, as a device runs it
        best = scores.argmax(axis=1)
        assert report["top1_agreement"] == pytest.approx(np.mean(best == expected.argmax(axis=1)))
        assert report["accuracy"] == pytest.approx(np.mean(best == labels))
        assert report["keras_accuracy"] == pytest.approx(np.mean(expected.argmax(axis=1) == labels))
        assert report["latency_ms"] > 0 and report["calibration_images"] == (15 if quantize == "int8" else None)
        np.testing.assert_allclose(scores, expected, atol=0.01 if quantize == "float16" else 0.1)


def test_onnx_runs_in_onnx_runtime(fine_tune_run, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    pytest.importorskip("tf2onnx")
    report = run_export(fine_tune_run, tmp_path / "onnx", "--format", "onnx")
    assert report["meets_target"] and report["runtime"].startswith("onnxruntime") and report["test_images"] == 10
    session = onnxruntime.InferenceSession(str(tmp_path / "onnx" / "model.onnx"), providers=["CPUExecutionProvider"])
    model = trained.load_run(fine_tune_run)
    images = model.load_images(data.sample_photos(64))  # resized by the caller, as export.json says
    scores = session.run(None, {session.get_inputs()[0].name: images})[0]
    np.testing.assert_allclose(scores, model.predict(images), atol=1e-3)


def test_a_bad_format_a_missing_run_or_a_failed_conversion_writes_nothing(fne_run, tmp_path, capsys, monkeypatch):
    with pytest.raises(SystemExit) as stop:
        export.main([str(fne_run), "--format", "tflight"])
    assert stop.value.code == 2 and "invalid choice: 'tflight'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        export.main([str(fne_run), "--format", "onnx", "--quantize", "int8"])
    assert stop.value.code == 2 and "--quantize int8 is for --format tflite" in capsys.readouterr().err

    assert export.main([str(tmp_path / "no_run"), "--format", "tflite", "--output-dir", str(tmp_path / "out")]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: Run folder") and "no_run does not exist" in errors[0]
    unfinished = tmp_path / "unfinished"  # a run folder without its model.keras
    unfinished.mkdir()
    for name in ("model.json", "config.json", "metrics.json"):
        (unfinished / name).write_bytes((fne_run / name).read_bytes())
    assert export.main([str(unfinished), "--format", "onnx", "--output-dir", str(tmp_path / "out")]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 1 and errors[0].startswith(f"error: {unfinished} ") and "without model.keras" in errors[0]
    assert not (tmp_path / "out").exists()

    earlier = tmp_path / "out"  # an earlier export, kept whole when the next one fails
    earlier.mkdir()
    (earlier / "export.json").write_text("{}")

    def broken(*args, **kwargs):
        raise RuntimeError("converter crashed\nop FancyOp is not supported")

    monkeypatch.setattr(formats, "save_tflite", broken)
    assert export.main([str(fne_run), "--format", "tflite", "--output-dir", str(earlier), "--quiet"]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert errors == ["error: Converting the model to tflite failed (RuntimeError: op FancyOp is not supported); "
                      "nothing was written. Try another --format, or run with --verbose for the converter's messages."]
    assert list(tmp_path.glob(".*")) == []  # no temporary folder left
    assert [path.name for path in earlier.iterdir()] == ["export.json"]

    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("keep")
    assert export.main([str(fne_run), "--format", "tflite", "--output-dir", str(tmp_path / "notes")]) == 2
    assert "holds files that are not an export" in capsys.readouterr().err
    assert (tmp_path / "notes" / "mine.txt").read_text() == "keep"


def test_an_export_that_misses_its_target_says_by_how_much():
    class Run:  # a Keras model that is always right on four 1-pixel images whose value is their label
        load_images = staticmethod(lambda images: np.asarray(images, "float32"))
        predict = staticmethod(lambda images: np.eye(2)[images[:, 0, 0, 0].astype(int)])

    def always_first(images):  # an export that answers class 0 to every image
        return np.zeros(len(images), int)

    labels = np.array([0, 1, 0, 1])
    test = data.ImageSet(labels=labels, images=np.broadcast_to(labels[:, None, None, None], (4, 1, 1, 3)))
    int8 = formats.check_export(Run(), always_first, "tflite", test, labels, "int8")
    assert (int8["accuracy"], int8["keras_accuracy"], int8["meets_target"]) == (0.5, 1.0, False)
    assert int8["misses_by"] == "49.0 points" and "1 point below the Keras model's" in int8["target"]
    float32 = formats.check_export(Run(), always_first, "onnx", test, labels)
    assert (float32["top1_agreement"], float32["meets_target"], float32["misses_by"]) == (0.5, False, "49.5 points")
    right = formats.check_export(Run(), lambda images: images[:, 0, 0, 0].astype(int), "onnx", test, labels)
    assert (right["top1_agreement"], right["meets_target"], right["misses_by"]) == (1.0, True, None)


def test_a_new_export_replaces_an_earlier_one_whole(tmp_path):
    earlier, staging = tmp_path / "export", tmp_path / ".export.1.part"
    for folder, name in ((earlier, "model.onnx"), (staging, "model.tflite")):
        folder.mkdir()
        (folder / name).write_text(name)
        (folder / "export.json").write_text(json.dumps({"file": name}))
    formats.replace_folder(staging, earlier)
    assert list(tmp_path.glob(".*")) == []  # neither the new export's temporary folder nor the earlier one is left
    assert sorted(path.name for path in earlier.iterdir()) == ["export.json", "model.tflite"]
