"""Heads beyond the linear SVM: ``fne --classifier NAME`` end to end on one cached
feature set, and ``study heads`` on a tiny grid."""
import json

import numpy as np
import pytest

from keras_tl.analysis import trained
from keras_tl.experiments import head_choice
from keras_tl.features import classifiers
from keras_tl.jobs import fne, study

TINY_FNE = ["--weights", "none", "--image-size", "32", "--train-per-class", "4", "--test-per-class", "2",
            "--methods", "last:l2", "--quiet"]


@pytest.fixture(scope="module")
def heads_cache(tmp_path_factory):
    """A feature cache of this module's own: its first fne run must extract (the shared one may hold the features)."""
    return tmp_path_factory.mktemp("heads_cache")


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # 40 images: mlp stops at max_iter
def test_fne_job_fits_each_head_on_the_cached_features(tmp_path, heads_cache, capsys):
    accuracies = {}
    for name in ("linear-svm", "rbf-svm", "logistic", "knn", "mlp"):  # the first extracts, the others reuse
        run_dir = tmp_path / name
        assert fne.main([*TINY_FNE, "--classifier", name, "--cache-dir", str(heads_cache),
                         "--output-dir", str(run_dir)]) == 0
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert metrics["classifier"] == name and json.loads((run_dir / "config.json").read_text())["classifier"] == name
        assert metrics["images_from_cache"] == (0 if name == "linear-svm" else 60)
        result = metrics["methods"]["last:l2"]
        assert sum(map(sum, result["confusion_matrix"])) == 20 and 0 <= result["accuracy"] <= 1
        accuracies[name] = result["accuracy"]
        assert (run_dir / "model.keras").exists() == (name in classifiers.LINEAR)  # a Dense layer holds a linear head
        out = capsys.readouterr().out
        assert ("No model.keras: the " + name + " head stays in scikit-learn" in out) == (name not in classifiers.LINEAR)
    assert len(set(accuracies.values())) > 1  # different heads: not all the same classifier
    logistic, svm = (trained.load_run(tmp_path / name) for name in ("logistic", "linear-svm"))
    assert (logistic.score_name, svm.score_name) == ("probability", "svm score")
    images = np.zeros((3, 32, 32, 3), np.float32)
    np.testing.assert_allclose(logistic.predict(images).sum(axis=1), 1, rtol=1e-5)  # the softmax of the head


@pytest.mark.parametrize("argv, message", [
    (["--classifier", "rbf"], "--classifier 'rbf' is not one of linear-svm, logistic, rbf-svm, knn, mlp. "
                              "Did you mean rbf-svm?"),
    (["--classifier", "knn", "--search-c"], "--search-c chooses C, which only linear-svm, logistic, rbf-svm have"),
])
def test_fne_job_refuses_unknown_heads_before_any_work(argv, message, capsys):
    with pytest.raises(SystemExit):
        fne.parse_args(argv)
    assert message in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_heads_study_on_a_tiny_grid(tmp_path, heads_cache):
    run_dir = tmp_path / "study"
    assert study.main(["heads", "--source", "mobilenet", "--dataset", "animal_mnist", "--image-size", "32",
                       "--train-per-class", "3", "--test-per-class", "2", "--seeds", "1", "--shots", "3", "2",
                       "--cache-dir", str(heads_cache), "--output-dir", str(run_dir), "--quiet"]) == 0
    results = json.loads((run_dir / "results.json").read_text())
    assert results["study"] == "heads" and results["settings"]["shots"] == [3, 2]
    result = results["results"]["mobilenet"]["animal_mnist"]
    assert sorted(result) == sorted(head_choice.HEAD_FEATURES)
    for curves in result.values():
        assert sorted(curves) == sorted(classifiers.CLASSIFIERS)
        for curve in curves.values():
            assert sorted(curve) == ["2", "3"]
            for entry in curve.values():
                assert len(entry["values"]) == 1 and 0 <= entry["mean"] <= 1 and 0 <= entry["train"]["mean"] <= 1
                assert entry["seconds"]["mean"] > 0
    report = (run_dir / "report.md").read_text()
    assert "| head | 2 | 3 | train accuracy at 3 | fit s at 3 | fits at the iteration cap |" in report
    assert "32 px; 2, 3 train and 2 test images per class" in report  # the shots, not --train-per-class
    assert all(f"| {head} | " in report for head in classifiers.CLASSIFIERS)
    assert report.count("| claim (slides) | here | holds? |") == 2 and "| kernel likely to overfit |" in report
    assert "Linear SVMs (LinearSVC, C=1)" not in report  # that line counts the other studies' SVM fits
    for features in ("FNE", "last_conv"):
        assert (run_dir / "figures" / f"heads_mobilenet_animal_mnist_{features}.png").read_bytes()[:4] == b"\x89PNG"


def curves(**heads):
    """``{head: {shots: summary}}`` from ``head=[[accuracy per seed] per shot count]`` at shots 5, 20, 50."""
    return {head: {shot: classifiers.mean_std(values) for shot, values in zip((5, 20, 50), rows)}
            for head, rows in heads.items()}


def test_heads_verdicts_follow_paired_gains():
    linear = [[0.60, 0.62], [0.70, 0.72], [0.80, 0.82]]
    given = curves(**{"linear-svm": linear, "rbf-svm": [[0.50, 0.55], [0.71, 0.71], [0.80, 0.82]],
                      "mlp": [[0.55, 0.60], [0.75, 0.78], [0.85, 0.86]], "knn": linear})
    assert head_choice.head_gain(given, "knn", 5) == {"mean": 0.0, "std": 0.0, "values": [0.0, 0.0]}
    assert head_choice.head_gain(given, "mlp", 5)["mean"] == pytest.approx(-0.035)
    assert head_choice.gain_verdict(head_choice.head_gain(given, "mlp", 5)) == "worse"  # -0.035 ± 0.015
    assert [head_choice.gain_verdict(head_choice.head_gain(given, "rbf-svm", shot)) for shot in (5, 20, 50)] == [
        "worse", "tie", "tie"]
    verdicts = head_choice.heads_verdicts(given)
    assert verdicts["kernel likely to overfit"][1] == "holds"
    assert verdicts["kernel likely to overfit"][0] == "rbf-svm against the linear SVM: worse at 5, tie at 20, tie at 50"
    assert verdicts["1-3 FC layers if the data allows"] == ("mlp beats the linear SVM from 20 images per class", "holds")
    assert verdicts["linear SVM usually enough"] == ("beaten at 20 (mlp); 50 (mlp) images per class", "does not hold")
