"""Transferability scores (LogME, H-score, LEEP, NCE) against independent computations and hand
arithmetic, and ``python -m keras_tl.study select`` on a tiny grid."""
import json

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.stats import kendalltau

from keras_tl.experiments import common, source_selection
from keras_tl.features.transferability import h_score, leep, logme, nce
from keras_tl.jobs import study


def direct_log_evidence(features, target):
    """The maximum over alpha, beta of the log evidence per sample, straight from its formula with the full
    D x D matrix A = alpha I + beta F^T F (no SVD, no fixed point), by a bounded optimiser from 4 starts."""
    samples, dimensions = features.shape

    def negative_evidence(log_parameters):
        alpha, beta = np.exp(log_parameters)
        matrix = alpha * np.eye(dimensions) + beta * features.T @ features
        mean = beta * np.linalg.solve(matrix, features.T @ target)
        evidence = (dimensions * np.log(alpha) + samples * np.log(beta) - np.linalg.slogdet(matrix)[1]
                    - beta * np.sum((target - features @ mean) ** 2) - alpha * mean @ mean
                    - samples * np.log(2 * np.pi)) / 2
        return -evidence / samples

    fits = [minimize(negative_evidence, [a, b], method="L-BFGS-B", bounds=[(-15, 15)] * 2,
                     options={"ftol": 1e-15, "gtol": 1e-10}) for a in (0, 4) for b in (0, 4)]
    return -min(fit.fun for fit in fits)


@pytest.mark.parametrize("samples, dimensions", [(40, 6), (12, 20)])  # more samples than features, and fewer
def test_logme_is_the_maximum_evidence_of_the_direct_formula(samples, dimensions):
    rng = np.random.default_rng(0)
    features = rng.normal(size=(samples, dimensions))
    labels = np.argmax(features[:, :3] + 0.5 * rng.normal(size=(samples, 3)), axis=1)  # 3 classes, informative
    expected = np.mean([direct_log_evidence(features, (labels == label).astype(float)) for label in range(3)])
    assert logme(features, labels) == pytest.approx(expected, abs=1e-5)
    assert logme(features.astype(np.float32), labels) == pytest.approx(expected, abs=1e-4)


def test_logme_prefers_the_real_labels_of_separable_features():
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(3), 20)
    features = 3 * np.eye(8)[labels] + 0.3 * rng.normal(size=(60, 8))  # 3 well separated clusters
    real = logme(features, labels)
    shuffled = [logme(features, rng.permutation(labels)) for _ in range(3)]
    assert all(value < real for value in shuffled)


def test_logme_stays_finite_when_the_features_fit_every_label_exactly():
    """Wider than the training set (the FNE's 10,944 columns for 200 images): the evidence is largest at the
    boundary, and the fixed point stops at its last finite step instead of dividing by zero."""
    rng = np.random.default_rng(4)
    features = np.sign(rng.normal(size=(30, 400)))  # discretised to +-1 like the FNE
    labels = np.arange(30) % 3
    with np.errstate(all="raise"):
        assert np.isfinite(logme(features, labels))


def test_leep_by_hand():
    # 4 images, 2 source classes z, 2 target classes y. Joint P(y, z) = (sum of theta_z over the class) / 4:
    # y=0: z0 (0.8 + 0.6) / 4 = 0.35, z1 (0.2 + 0.4) / 4 = 0.15;  y=1: z0 (0.3 + 0.1) / 4 = 0.10, z1 0.40.
    # P(z0) = 0.45, P(z1) = 0.55; P(y=0 | z0) = 7/9, P(y=1 | z0) = 2/9, P(y=0 | z1) = 3/11, P(y=1 | z1) = 8/11.
    # Image 1: 0.8 * 7/9 + 0.2 * 3/11 = 67/99; image 2: 0.6 * 7/9 + 0.4 * 3/11 = 57/99; images 3 and 4 by
    # symmetry 57/99 and 67/99. LEEP = mean of the logs = (log 67/99 + log 57/99) / 2.
    theta = np.array([[0.8, 0.2], [0.6, 0.4], [0.3, 0.7], [0.1, 0.9]])
    assert leep(theta, [0, 0, 1, 1]) == pytest.approx((np.log(67 / 99) + np.log(57 / 99)) / 2, rel=1e-12)
    assert leep(theta, ["cat", "cat", "dog", "dog"]) == leep(theta, [0, 0, 1, 1])  # any label values
    assert leep(np.eye(2)[[0, 0, 1, 1]], [0, 0, 1, 1]) == pytest.approx(0)  # a perfect source: log 1


def test_nce_by_hand():
    # z = source labels, y = target labels of 5 images. Joint: (z0, y0) 2/5, (z1, y0) 1/5, (z1, y1) 2/5;
    # P(y0 | z0) = 1, P(y0 | z1) = 1/3, P(y1 | z1) = 2/3. NCE = 2/5 log 1 + 1/5 log 1/3 + 2/5 log 2/3.
    assert nce([0, 0, 1, 1, 1], [0, 0, 0, 1, 1]) == pytest.approx(np.log(1 / 3) / 5 + 2 * np.log(2 / 3) / 5)
    assert nce([7, 7, 3, 3], ["a", "a", "b", "b"]) == 0  # the source's label decides the target's
    assert nce([0, 0, 0, 0], [0, 1, 0, 1]) == pytest.approx(-np.log(2))  # one source label: H(Y) = log 2


def direct_h_score(features, labels):
    centred = features - features.mean(axis=0)
    class_means = np.zeros_like(centred)
    for label in np.unique(labels):
        class_means[labels == label] = centred[labels == label].mean(axis=0)
    return np.trace(np.linalg.pinv(np.cov(centred, rowvar=False)) @ np.cov(class_means, rowvar=False))


@pytest.mark.parametrize("samples, dimensions", [(30, 5), (9, 20)])
def test_h_score_against_the_covariance_formula(samples, dimensions):
    rng = np.random.default_rng(2)
    labels = np.arange(samples) % 3
    features = rng.normal(size=(samples, dimensions)) + np.eye(dimensions)[labels]
    assert h_score(features, labels) == pytest.approx(direct_h_score(features, labels), rel=1e-8)
    if samples <= dimensions:  # the covariance spans every centred direction: C - 1, whatever the features
        assert h_score(features, labels) == pytest.approx(2)


def test_scores_name_the_bad_argument():
    with pytest.raises(ValueError, match=r"features= should be a 2-D array"):
        logme(np.ones(5), np.zeros(5))
    with pytest.raises(ValueError, match=r"labels= should hold one label per sample, shape \(3,\)"):
        h_score(np.ones((3, 2)), [0, 1])
    with pytest.raises(ValueError, match=r"source_probabilities= should be rows of probabilities"):
        leep(np.ones((3, 2)), [0, 1, 0])
    with pytest.raises(ValueError, match=r"features= are all zero"):
        logme(np.zeros((4, 3)), [0, 1, 0, 1])


def test_select_study_on_a_tiny_grid(tmp_path):
    """One source at 32 px, 3 + 2 images per class, 2 seeds: a tau per score in the report and results.json,
    each tau the one of the candidates' per-seed values, LEEP and NCE without a tau (one source: all tie)."""
    run_dir = tmp_path / "run"
    assert study.main(["select", "--source", "mobilenet", "--dataset", "animal_mnist", "--image-size", "32",
                       "--train-per-class", "3", "--test-per-class", "2", "--seeds", "2", "--layer-step", "13",
                       "--quiet", "--cache-dir", str(tmp_path / "cache"), "--output-dir", str(run_dir)]) == 0
    result = json.loads((run_dir / "results.json").read_text())["results"]["animal_mnist"]
    scores = ["LogME", "H-score", "LEEP", "NCE"]
    assert sorted(result["tau"]) == sorted(scores) and sorted(result["seconds"]) == sorted(scores + ["SVM"])
    candidates = result["candidates"]
    assert sorted(candidates) == [f"mobilenet:{name}" for name in ("FNE", "conv1_relu", "conv_dw_7_relu",
                                                                   "conv_pw_13_relu")]  # (results.json sorts keys)
    for score in ("LogME", "H-score"):
        taus = [kendalltau([entry["scores"][score]["values"][seed] for entry in candidates.values()],
                           [entry["accuracy"]["values"][seed] for entry in candidates.values()]).statistic
                for seed in range(2)]
        defined = [tau for tau in taus if np.isfinite(tau)]
        assert result["tau"][score]["mean"] == pytest.approx(np.mean(defined))
        assert all(-1 <= tau <= 1 for tau in defined)
    for entry in candidates.values():
        assert 0 <= entry["accuracy"]["mean"] <= 1 and len(entry["accuracy"]["values"]) == 2
        assert all(0 <= value <= 9 + 1e-6 for value in entry["scores"]["H-score"]["values"])  # at most C - 1
        assert entry["scores"]["LEEP"]["mean"] <= 0 and entry["scores"]["NCE"]["mean"] <= 0
    leeps = {entry["scores"]["LEEP"]["mean"] for entry in candidates.values()}
    assert len(leeps) == 1  # one value per source
    assert result["tau"]["LEEP"] == {"mean": None, "std": None, "values": [None, None], "undefined": 2}
    report = (run_dir / "report.md").read_text()
    table = [line for line in report.splitlines() if line.endswith("x |") and "| animal_mnist |" in line]
    assert [line.split(" | ")[0] for line in table] == [f"| {score}" for score in scores] + [
        "| linear SVM (the reference)"]
    assert f"| LogME | animal_mnist | {result['tau']['LogME']['mean']:.2f} ± " in report
    assert "| LEEP | animal_mnist | — (every candidate scored the same) | cannot rank" in report
    assert "| mobilenet:FNE |  |" in report
    assert (run_dir / "figures" / "select.png").stat().st_size > 0


def test_a_source_without_its_imagenet_classifier_gets_logme_and_h_score_only():
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(2), 6)
    pool = common.Pool("src", "target", rng.normal(size=(12, 6)).astype("float32"), labels, ["a", "b"],
                       ["one", "two"], {"one": np.arange(3), "two": np.arange(3, 6)}, {"one": 0.5, "two": 1.0})
    result = source_selection.select_study({"src": pool}, {"src": None}, {"src": ["one", "two"]}, 3, 3, [0])
    assert [sorted(entry["scores"]) for entry in result["candidates"].values()] == [["H-score", "LogME"]] * 3
    assert result["tau"]["LEEP"]["mean"] is None and result["seconds"]["SVM"] > 0
