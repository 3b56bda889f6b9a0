"""Calibration (keras_tl/training/calibration.py): the ECE by hand, temperature scaling of an over-confident model,
Platt scaling as scikit-learn's, calibration.json, and the calibrated runs of both jobs."""
import json

import numpy as np
import pytest

from keras_tl.training import calibration


def test_the_ece_is_the_weighted_gap_between_accuracy_and_confidence_per_bin():
    probabilities = np.array([[0.9, 0.1], [0.85, 0.15], [0.3, 0.7], [0.65, 0.35], [0.55, 0.45]])
    labels = np.array([0, 1, 1, 0, 1])
    # 5 bins of 0.2: (0.8, 1] holds 0.9 (right) and 0.85 (wrong): accuracy 0.5, confidence 0.875;
    # (0.6, 0.8] holds 0.7 and 0.65, both right: 1 and 0.675; (0.4, 0.6] holds 0.55, wrong: 0 and 0.55
    expected = (2 * 0.375 + 2 * 0.325 + 1 * 0.55) / 5
    assert calibration.expected_calibration_error(probabilities, labels, bins=5) == pytest.approx(expected)
    table = calibration.reliability(probabilities, labels, bins=5)
    assert table["counts"].tolist() == [0, 0, 1, 2, 2]
    np.testing.assert_allclose(table["accuracy"][2:], [0, 1, 0.5])
    assert calibration.expected_calibration_error(np.eye(3), [0, 1, 2]) == 0.0  # sure and right
    for bad in (dict(labels=[0, 1, 2, 0, 1]), dict(labels=[0, 1]), dict(bins=0)):
        with pytest.raises(ValueError):
            calibration.expected_calibration_error(**{"probabilities": probabilities, "labels": labels, **bad})


def test_temperature_scaling_lowers_the_ece_of_an_over_confident_model():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 1.5, (4000, 5))
    labels = (rng.random((4000, 1)) > np.cumsum(calibration.softmax(logits), axis=1)).sum(axis=1)  # drawn from them
    over_confident = calibration.softmax(4 * logits)  # what a network trained too long outputs: logits scaled up
    fitted = calibration.Calibration.fit(over_confident[:2000], labels[:2000], "temperature", "2000 images")
    assert fitted.temperature == pytest.approx(4, rel=0.15)
    before = calibration.expected_calibration_error(over_confident[2000:], labels[2000:])
    after = calibration.expected_calibration_error(fitted.probabilities(over_confident[2000:]), labels[2000:])
    assert before > 0.15 and after < 0.04
    assert np.array_equal(fitted.probabilities(over_confident).argmax(axis=1), over_confident.argmax(axis=1))


def _sklearn_platt(svm, features, labels):
    """scikit-learn's Platt scaling of an already fitted ``svm``: ``FrozenEstimator`` (scikit-learn 1.6 on),
    where ``cv="prefit"`` was deprecated; ``cv="prefit"`` before."""
    from sklearn.calibration import CalibratedClassifierCV

    try:
        from sklearn.frozen import FrozenEstimator
    except ImportError:
        return CalibratedClassifierCV(svm, method="sigmoid", cv="prefit").fit(features, labels)
    return CalibratedClassifierCV(FrozenEstimator(svm), method="sigmoid").fit(features, labels)


@pytest.mark.parametrize("classes", [2, 4])
def test_platt_scaling_of_svm_scores_is_scikit_learns(classes):
    from sklearn.datasets import make_classification
    from sklearn.svm import LinearSVC

    x, y = make_classification(450, 12, n_informative=6, n_classes=classes, random_state=0)
    svm = LinearSVC(random_state=0).fit(x[:150], y[:150])
    held_out, _ = calibration.head_outputs(svm, x[150:300])
    fitted = calibration.Calibration.fit(held_out, y[150:300], "platt")
    assert len(fitted.slopes) == (1 if classes == 2 else classes)  # a binary SVM's [-s, s]: one sigmoid of s
    expected = _sklearn_platt(svm, x[150:300], y[150:300]).predict_proba(x[300:])
    np.testing.assert_allclose(fitted.probabilities(calibration.head_outputs(svm, x[300:])[0]), expected, atol=1e-6)


def test_calibration_json_is_read_back_and_a_damaged_one_names_its_field(tmp_path):
    outputs = np.array([[2.0, -1.0, 0.5], [-0.5, 1.5, 0.0], [0.1, 0.2, 1.2], [1.0, 0.0, -1.0]])
    fitted = calibration.Calibration.fit(outputs, [0, 1, 2, 1], "platt", "4 images")
    entry = calibration.write_calibration(tmp_path, fitted, outputs, [0, 1, 2, 0], title="toy")
    path = tmp_path / calibration.CALIBRATION_FILE
    assert calibration.read_calibration(path, 3) == fitted
    assert set(entry) >= {"ece_before", "ece_after", "method", "slopes", "fitted_on", "bins"}
    assert (tmp_path / "figures" / "reliability.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(tmp_path.rglob(".*.part*"))
    with pytest.raises(ValueError, match=r"calibration.json, field slopes: expected 1 number"):
        calibration.read_calibration(path, 2)  # written for 3 classes
    path.write_text(json.dumps({"method": "temperature", "temperature": -1}))
    with pytest.raises(ValueError, match=r"calibration.json, field temperature: expected a number above 0"):
        calibration.read_calibration(path, 3)
    path.write_text('{"method": ')
    with pytest.raises(ValueError, match=r"calibration.json is not valid JSON"):
        calibration.read_calibration(path, 3)


def test_a_fine_tune_run_is_calibrated_and_predict_shows_the_calibrated_probabilities(fine_tune_run, colours,
                                                                                      tmp_path, capsys):
    import csv

    from keras_tl.jobs import predict

    entry = json.loads((fine_tune_run / "metrics.json").read_text())["calibration"]
    assert entry["method"] == "temperature" and entry["temperature"] > 0 and entry["bins"] == 15
    assert 0 <= entry["ece_before"] <= 1 and 0 <= entry["ece_after"] <= 1 and entry["test_images"] == 10
    assert (fine_tune_run / "figures" / "reliability.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((fine_tune_run / calibration.CALIBRATION_FILE).read_text())["temperature"] == entry["temperature"]
    image = str(colours / "test" / "red" / "red0.png")
    assert predict.main([str(fine_tune_run), image, "--top-k", "3", "--quiet", "--output-dir", str(tmp_path)]) == 0
    assert "calibrated probability" in capsys.readouterr().out
    rows = list(csv.DictReader((tmp_path / "predictions.csv").open()))
    probabilities = np.array([[float(row["probability"]) for row in rows]])  # all 3 classes, best first
    assert probabilities[0].tolist() == sorted(probabilities[0], reverse=True)
    expected = calibration.softmax(calibration.log_probabilities(probabilities) / entry["temperature"])[0]
    np.testing.assert_allclose([float(row["calibrated_probability"]) for row in rows], expected, rtol=1e-4)


def test_an_fne_run_has_platt_scaling_fitted_on_cross_validated_train_scores(fne_run):
    """The job's calibration equals scikit-learn's CalibratedClassifierCV(method="sigmoid", ensemble=False) with the
    same folds, on the run's own features."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.model_selection import StratifiedKFold

    from keras_tl.features import classifiers
    from keras_tl.features.full_network_embedding import postprocessor

    entry = json.loads((fne_run / "metrics.json").read_text())["methods"]["fne:fne"]["calibration"]
    assert entry["method"] == "platt" and entry["fitted_on"] == "cross-validated scores of 15 train images (3 folds)"
    fitted = calibration.read_calibration(fne_run / calibration.CALIBRATION_FILE, 3)
    train_x, test_x = (np.load(fne_run / "features" / f"{split}.npy") for split in ("train", "test"))
    train_y, test_y = (np.load(fne_run / "features" / f"labels_{split}.npy") for split in ("train", "test"))
    head = classifiers.make_classifier(postprocessor("fne"), seed=0)
    expected = CalibratedClassifierCV(head, method="sigmoid", ensemble=False,
                                      cv=StratifiedKFold(3, shuffle=True, random_state=0)).fit(train_x, train_y)
    scores, _ = calibration.head_outputs(head.fit(train_x, train_y), test_x)
    np.testing.assert_allclose(fitted.probabilities(scores), expected.predict_proba(test_x), atol=1e-6)
    assert entry["ece_after"] == pytest.approx(calibration.expected_calibration_error(expected.predict_proba(test_x),
                                                                                        test_y))
