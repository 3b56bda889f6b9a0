import json

import numpy as np
import pytest

from keras_tl.features.classifiers import wilson_interval
from keras_tl.jobs import fne


def test_cli_help_shows_examples(capsys):
    with pytest.raises(SystemExit):
        fne.parse_args(["--help"])
    assert "python -m keras_tl.fne --shots" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--methods", "fne:max"], "not LAYERS:POST"),
    (["--C", "0"], "--C must be > 0"),
    (["--batch-size", "0"], "--batch-size must be at least 1"),
    (["--methods", "last:l2", "fne:l2", "--export-method", "fne:fne"],
     "--export-method 'fne:fne' is not one of --methods last:l2 fne:l2; choose one of them"),
    (["--classifier", "knn", "--export-method", "fne:fne"], "--classifier knn writes no model.keras"),
    (["--class-weight", "balanced"], "argument --class-weight: invalid choice: 'balanced'"),
    (["--class-weight", "auto", "--classifier", "knn"],
     "--class-weight auto weighs the errors of linear-svm, logistic, rbf-svm; --classifier knn has none"),
    (["--folds", "1"], "--folds must be at least 2; got 1."),
    (["--folds", "3", "--ten-crop"], "--ten-crop averages crops of the test images only"),
])
def test_cli_refuses_bad_options(argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        fne.parse_args(argv)
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert stop.value.code == 2 and len(errors) == 1 and message in errors[0]


@pytest.mark.parametrize("methods, exported", [([], "fne:fne"), (["last:l2", "fne:fne"], "fne:fne"),
                                               (["fne:l2", "last:l2"], "fne:l2")])
def test_export_method_defaults_to_fne_fne_else_the_first_method(methods, exported):
    assert fne.parse_args((["--methods"] + methods if methods else [])).export_method == exported


def test_cli_runs_end_to_end_on_a_few_images(tmp_path, capsys):
    run_dir, cache = tmp_path / "run", tmp_path / "cache"
    argv = ["--train-per-class", "4", "--test-per-class", "2", "--image-size", "64", "--output-dir", str(run_dir),
            "--cache-dir", str(cache), "--shots", "1", "2", "--repeats", "2", "--quiet"]
    assert fne.main(argv) == 0
    out = capsys.readouterr().out
    assert "last:l2" in out and "fne:fne" in out and "10944" in out
    metrics = json.loads((run_dir / "metrics.json").read_text())
    config = json.loads((run_dir / "config.json").read_text())
    assert config["source"] == "mobilenet" and config["image_size"] == 64
    assert metrics["train_images"] == 40 and metrics["test_images"] == 20
    assert metrics["methods"]["fne:fne"]["dimensions"] == 10944
    assert metrics["methods"]["last:l2"]["dimensions"] == 1024
    for method in metrics["methods"].values():
        assert 0.0 <= method["accuracy"] <= 1.0
        assert sorted(method["few_shot"]) == ["1", "2"]
        assert np.asarray(method["confusion_matrix"]).sum() == 20
    for name in ("confusion_fne_fne.png", "confusion_last_l2.png", "few_shot.png"):
        assert (run_dir / "figures" / name).read_bytes()[:4] == b"\x89PNG"
    assert np.load(run_dir / "features" / "train.npy").shape == (40, 10944)
    assert np.load(run_dir / "features" / "labels_test.npy").shape == (20,)
    assert fne.main(argv[:-1]) == 0  # a rerun reads the cached features
    assert capsys.readouterr().out.count("reusing cache") == 2


def test_cli_reports_bad_input_as_an_error(tmp_path, capsys):
    assert fne.main(["--dataset", str(tmp_path / "missing"), "--output-dir", str(tmp_path / "run")]) == 2
    assert f"error: no such folder: {tmp_path / 'missing'}." in capsys.readouterr().err


def test_each_accuracy_carries_its_wilson_interval_and_the_per_class_counts(fne_run):
    metrics = json.loads((fne_run / "metrics.json").read_text())
    result, test_images = metrics["methods"]["fne:fne"], metrics["test_images"]
    assert result["images"] == test_images == 10  # 3 images of each colour, and the planted red one in blue
    correct = round(result["accuracy"] * test_images)
    assert result["accuracy_interval"] == pytest.approx(wilson_interval(correct, test_images))
    assert {name: row["images"] for name, row in result["per_class"].items()} == {"blue": 4, "green": 3, "red": 3}
    assert all(low <= row["accuracy"] <= high for row in result["per_class"].values()
               for low, high in [row["accuracy_interval"]])


def confusion_pairs(matrix):
    """``(true, predicted)`` labels that give ``matrix``, a confusion matrix (rows: true classes)."""
    pairs = [(true, predicted) for true, row in enumerate(matrix) for predicted, count in enumerate(row)
             for _ in range(count)]
    return [true for true, _ in pairs], [predicted for _, predicted in pairs]


def test_balanced_accuracy_and_each_class_recall_are_in_the_metrics(fne_run):
    from sklearn.metrics import balanced_accuracy_score, recall_score

    result = json.loads((fne_run / "metrics.json").read_text())["methods"]["fne:fne"]
    true, predicted = confusion_pairs(result["confusion_matrix"])
    assert result["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(true, predicted))
    recalls = recall_score(true, predicted, average=None, labels=[0, 1, 2])
    assert [result["per_class"][name]["accuracy"] for name in ("blue", "green", "red")] == pytest.approx(recalls)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # the planted copy: not separable
def test_folds_estimate_each_method_on_train_and_test_joined_with_a_balanced_head(colours, tmp_path, monkeypatch,
                                                                                     capsys):
    """The colours pool: 5 + 3 red, 5 + 3 green, 5 + 4 blue (the planted copy). Five folds test each image once;
    --class-weight auto reaches the head as scikit-learn's class_weight='balanced'. (last:l2: 1,024 features,
    a tenth of the FNE's, for a cheap SVM on a pool that the planted copy makes inseparable.)"""
    from keras_tl.features import classifiers

    made = []
    make_classifier = classifiers.make_classifier
    monkeypatch.setattr(classifiers, "make_classifier", lambda *a, **k: made.append(k) or make_classifier(*a, **k))
    run_dir = tmp_path / "run"
    assert fne.main(["--dataset", str(colours), "--weights", "none", "--image-size", "32", "--methods", "last:l2",
                     "--folds", "5", "--class-weight", "auto", "--quiet", "--output-dir", str(run_dir),
                     "--cache-dir", str(tmp_path / "cache")]) == 0
    assert made and all(kwargs["class_weight"] == "balanced" for kwargs in made)
    entry = json.loads((run_dir / "metrics.json").read_text())["methods"]["last:l2"]["folds"]
    assert [fold["fold"] for fold in entry["folds"]] == [1, 2, 3, 4, 5]
    assert [fold["images"] for fold in entry["folds"]] == [5, 5, 5, 5, 5]
    assert all(sorted(fold["recall"]) == ["blue", "green", "red"] for fold in entry["folds"])
    for key in ("accuracy", "balanced_accuracy"):
        values = [fold[key] for fold in entry["folds"]]
        assert entry[key] == {"mean": pytest.approx(np.mean(values)), "std": pytest.approx(np.std(values)),
                              "values": values}
    out = capsys.readouterr().out
    each_fold = " ".join(f"{fold['accuracy']:.3f}" for fold in entry["folds"])
    assert f"last:l2  {each_fold}  {classifiers.format_mean_std(entry['accuracy'])}" in out
    assert "5 stratified folds of the 25 train and test images joined" in out
    assert "Recall per class (test images), last:l2: blue " in out and "balanced" in out


def test_more_folds_than_the_smallest_class_is_one_error_line_before_any_work(colours, tmp_path, capsys):
    assert fne.main(["--dataset", str(colours), "--weights", "none", "--image-size", "32", "--folds", "9", "--quiet",
                     "--output-dir", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache")]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert errors == ["error: --folds 9 should be at least 2 and at most the images of the smallest class (8): "
                      "each fold needs an image of each class."]
    assert not (tmp_path / "run").exists() and not (tmp_path / "cache").exists()
