"""Use what you trained: the exported FNE model, load_run, and ``python -m keras_tl.predict`` on both run kinds
(the tests' ``fne_run`` and ``fine_tune_run``, tests/conftest.py)."""
import csv
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from keras_tl import data
from keras_tl.analysis import trained
from keras_tl.features import classifiers
from keras_tl.features.full_network_embedding import postprocessor
from keras_tl.jobs import predict


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """A folder with the two scikit-learn sample photos, one broken file and one hidden file."""
    folder = tmp_path_factory.mktemp("photos")
    for name, photo in zip(("temple", "flower"), data.sample_photos(96)):
        Image.fromarray(photo).save(folder / f"{name}.png")
    (folder / "broken.jpg").write_bytes(b"not an image")
    Image.fromarray(data.sample_photos(32)[0]).save(folder / ".hidden.png")
    return folder


@pytest.mark.parametrize("classes, row_space", [(2, False), (4, False), (4, True)])
@pytest.mark.parametrize("classifier", ["linear-svm", "logistic"])
def test_a_linear_head_exports_as_a_dense_layer_with_scikit_learn_numbers(classifier, classes, row_space):
    from keras_tl.analysis import export

    rng = np.random.default_rng(0)
    train_x, test_x = rng.normal(size=(8, 12)).astype("float32"), rng.normal(size=(9, 12)).astype("float32")
    labels = np.arange(8) % classes  # 8 images, 12 features: the row space (RowSpace) has 8 dimensions
    pipeline = classifiers.make_classifier(postprocessor("fne"), classifier=classifier, row_space=row_space)
    pipeline.fit(train_x, labels)
    outputs = export.linear_head(pipeline, 12).predict(test_x, verbose=0)
    if classifier == "logistic":  # class probabilities, also for two classes ([1 - sigmoid(s), sigmoid(s)])
        assert export.head_score_name(pipeline) == "probability"
        np.testing.assert_allclose(outputs, pipeline.predict_proba(test_x), atol=1e-5)
    else:  # decision scores; for two classes [-s, s]
        assert export.head_score_name(pipeline) == "svm score"
        scores = pipeline.decision_function(test_x)
        np.testing.assert_allclose(outputs, np.stack([-scores, scores], 1) if classes == 2 else scores, atol=1e-5)
    assert np.array_equal(outputs.argmax(axis=1), pipeline.predict(test_x))


def test_a_head_that_is_not_linear_is_refused_by_name():
    from keras_tl.analysis import export

    pipeline = classifiers.make_classifier(postprocessor("l2"), classifier="knn").fit(np.eye(6), np.arange(6) % 2)
    with pytest.raises(ValueError, match="Cannot export a KNeighborsClassifier head: only a linear one"):
        export.linear_head(pipeline, 6)


def test_exported_fne_model_gives_the_scikit_learn_scores_and_loads_in_a_fresh_process(fne_run, colours, tmp_path):
    model = trained.load_run(fne_run)
    info = json.loads((fne_run / "model.json").read_text())
    assert (model.kind, model.source.name, model.image_size, info["method"]) == ("fne", "mobilenet", 32, "fne:fne")
    dataset = data.load_dataset(colours, verbose=False)  # the run's dataset, split as the job read it
    train_x, test_x = np.load(fne_run / "features" / "train.npy"), np.load(fne_run / "features" / "test.npy")
    svm = classifiers.make_classifier(postprocessor("fne"), seed=0).fit(train_x, dataset.train.labels)
    expected = svm.decision_function(test_x)
    np.testing.assert_allclose(model.model.get_layer("linear_head").predict(test_x, verbose=0), expected, atol=1e-5)
    scores = model.predict(list(dataset.test.paths))  # files, read and preprocessed as the job did
    np.testing.assert_allclose(scores, expected, atol=1e-4)
    assert np.array_equal(scores.argmax(axis=1), svm.predict(test_x))
    arrays = np.stack([np.asarray(Image.open(path)) for path in dataset.test.paths])  # the same pixels, as arrays
    np.testing.assert_allclose(model.predict(arrays), expected, atol=1e-4)

    np.save(tmp_path / "inputs.npy", model.model_inputs(arrays))
    code = (f"import keras_tl, keras, numpy as np\n"
            f"model = keras.models.load_model({str(fne_run / 'model.keras')!r})\n"
            f"print(model.predict(np.load({str(tmp_path / 'inputs.npy')!r}), verbose=0).argmax(axis=1).tolist())\n")
    finished = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert json.loads(finished.stdout.strip().splitlines()[-1]) == svm.predict(test_x).tolist()


def test_export_method_chooses_what_model_keras_holds_and_predict_names_it(colours, photos, tmp_path, capsys):
    from keras_tl.jobs import fne

    run_dir = tmp_path / "run"
    assert fne.main(["--dataset", str(colours), "--weights", "none", "--image-size", "32", "--methods", "last:l2",
                     "fne:fne", "--export-method", "last:l2", "--quiet", "--output-dir", str(run_dir),
                     "--cache-dir", str(tmp_path / "cache")]) == 0
    assert "model.keras: the last:l2 method" in capsys.readouterr().out
    model = trained.load_run(run_dir)
    assert model.method == json.loads((run_dir / "model.json").read_text())["method"] == "last:l2"
    dimensions = json.loads((run_dir / "metrics.json").read_text())["methods"]["last:l2"]["dimensions"]
    assert model.model.get_layer("linear_head").inputs[0].shape[-1] == dimensions
    # the columns follow the layers' depth, so the last layer's are the last ones of the saved features
    train_x, test_x = (np.load(run_dir / "features" / f"{split}.npy")[:, -dimensions:] for split in ("train", "test"))
    dataset = data.load_dataset(colours, verbose=False)
    svm = classifiers.make_classifier(postprocessor("l2"), seed=0).fit(train_x, dataset.train.labels)
    np.testing.assert_allclose(model.predict(list(dataset.test.paths)), svm.decision_function(test_x), atol=1e-4)
    assert predict.main([str(run_dir), str(photos / "flower.png")]) == 0
    header = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("Run: "))
    assert header == (f"Run: {run_dir} (fne run, method last:l2 (linear SVM scores), mobilenet, 32x32 px, 3 classes); "
                      "predicting 1 image(s)")


def test_predict_on_an_fne_run_skips_the_broken_file_and_writes_csv(fne_run, photos, tmp_path, capsys):
    out = tmp_path / "preds.csv"
    with pytest.warns(UserWarning, match=r"Skipping 1 unreadable image file\(s\):\n  .*broken.jpg") as caught:
        assert predict.main([str(fne_run), str(photos), "--top-k", "3", "--out", str(out), "--quiet"]) == 0
    assert sum("unreadable" in str(warning.message) for warning in caught) == 1
    printed = capsys.readouterr().out
    assert "svm score" in printed and "temple.png" in printed and "flower.png" in printed
    assert ".hidden" not in printed and printed.count("broken.jpg") == 1  # named once, in the summary
    rows = list(csv.DictReader(out.open()))
    assert [row["rank"] for row in rows] == ["1", "2", "3"] * 2
    assert {row["file"].rsplit("/", 1)[-1] for row in rows} == {"flower.png", "temple.png"}
    assert all(row["class"] in trained.load_run(fne_run).classes for row in rows) and len(rows) == 6
    scores = [float(row["svm_score"]) for row in rows[:3]]
    assert scores == sorted(scores, reverse=True)


def test_predict_on_a_fine_tune_run_gives_probabilities_and_grad_cam(fine_tune_run, photos, capsys):
    model = trained.load_run(fine_tune_run)
    assert model.kind == "fine_tune" and model.score_name == "probability" and model.image_size == 32
    probabilities = model.predict(str(photos / "flower.png"))
    assert probabilities.shape == (1, 3) and probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    top = model.top_k([photos / "temple.png"], k=2)[0]
    assert len(top) == 2 and top[0][1] >= top[1][1]
    files = [str(photos / "temple.png"), str(photos / "flower.png")]
    assert predict.main([str(fine_tune_run)] + files + ["--explain", "--top-k", "2", "--quiet"]) == 0
    assert "probability" in capsys.readouterr().out
    for name in ("temple", "flower"):
        assert (fine_tune_run / "explain" / f"{name}_gradcam.png").read_bytes()[:4] == b"\x89PNG"


def test_a_folder_that_is_not_a_finished_run_is_one_error(fine_tune_run, photos, tmp_path, capsys):
    image = str(photos / "flower.png")
    assert predict.main([str(tmp_path / "missing"), image]) == 2
    (tmp_path / "unfinished").mkdir()
    (tmp_path / "unfinished" / "config.json").write_text("{}")
    assert predict.main([str(tmp_path / "unfinished"), image]) == 2
    assert predict.main([str(fine_tune_run), str(tmp_path / "nope.jpg")]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 3 and all(line.startswith("error: ") for line in errors)
    assert "metrics.json, model.keras missing" in errors[1] and "neither an image file nor a folder" in errors[2]


def test_a_truncated_model_keras_of_a_real_run_is_one_error(fine_tune_run, photos, tmp_path, capsys):
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    for name in ("config.json", "metrics.json"):
        shutil.copy(fine_tune_run / name, damaged / name)
    model_bytes = (fine_tune_run / "model.keras").read_bytes()
    (damaged / "model.keras").write_bytes(model_bytes[:len(model_bytes) // 2])
    with pytest.raises(ValueError, match=r"model.keras cannot be loaded as a Keras model \(not a complete zip"):
        trained.load_run(damaged)
    assert predict.main([str(damaged), str(photos / "flower.png"), "--quiet"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith(f"error: {damaged / 'model.keras'} cannot be loaded")
    assert "not found" not in errors[0]


def test_explain_needs_a_fine_tune_run(fne_run, photos, capsys):
    assert predict.main([str(fne_run), str(photos / "flower.png"), "--explain", "--quiet"]) == 2
    assert "needs a fine_tune run" in capsys.readouterr().err


def test_the_entry_point_loads_the_fne_model_in_a_fresh_process(fne_run, photos):
    """``python -m keras_tl.predict``: TensorFlow (and with it Keras) is imported before any keras_tl layer."""
    finished = subprocess.run([sys.executable, "-m", "keras_tl.predict", str(fne_run), str(photos / "flower.png"),
                               "--top-k", "2", "--quiet"], capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert "flower.png" in finished.stdout and "svm score" in finished.stdout
