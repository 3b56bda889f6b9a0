"""Calibration: can a classifier's probabilities be trusted, and a fix that keeps its decisions.

A classifier is *calibrated* when its confidence is its accuracy: of the images it gives 0.8, 80 %
are right. Guo et al. (2017), "On Calibration of Modern Neural Networks" (ICML), found modern
networks over-confident, and a one-number fix:

- :func:`expected_calibration_error` (ECE): the images in equal-width bins of confidence (their top
  probability; 15 bins, Guo et al.'s choice), and the mean gap between each bin's accuracy and its
  mean confidence, weighted by the bin's share of images. 0 is perfect; :func:`plot_reliability`
  draws the bins (a reliability diagram).
- **Temperature scaling** (:func:`fit_temperature`): the logits divided by one ``T > 0`` that
  minimises the negative log-likelihood of a held-out part (the validation part of a fine-tuning
  run). ``T > 1`` softens over-confident probabilities; the order of the classes, so every
  prediction and the accuracy, stays. A fine-tuned model outputs softmax probabilities; their
  logarithms serve as logits (a softmax ignores a constant added to a row).
- **Platt scaling** (:func:`fit_platt`; Platt 1999, "Probabilistic outputs for support vector
  machines"): an SVM's scores are margins, not probabilities. A sigmoid ``sigmoid(a s + b)`` per
  class (one-vs-rest) maps each class's score to a probability, and they are normalised to sum
  to 1: scikit-learn's ``CalibratedClassifierCV(method="sigmoid")``. It is fitted on scores the
  SVM gave images it was not trained on: cross-validated scores of the training features
  (:func:`fit_head_calibration`; scikit-learn's ``ensemble=False``). Unlike a temperature, it may
  change a few predictions.

A :class:`Calibration` is the fitted map; the jobs save it as ``calibration.json`` in the run
folder (:func:`write_calibration`, with ``figures/reliability.png`` and the ECE before and after on the
test images), and :func:`keras_tl.analysis.trained.load_run` reads it back, so ``python -m
keras_tl.predict`` shows calibrated probabilities.
"""
import dataclasses
import json
import math

import numpy as np

BINS = 15  # confidence bins of the ECE and the reliability diagram (Guo et al. 2017)
METHODS = ("temperature", "platt")
METHOD_NAMES = {"temperature": "temperature scaling", "platt": "Platt scaling"}
CALIBRATION_FILE = "calibration.json"
TEMPERATURE_RANGE = (0.05, 20.0)  # searched; a small validation part with every image right would push T to 0
FOLDS = 3  # cross-validation folds of an FNE head's calibration scores: 3 more fits, each on 2/3 of the images
SMALLEST = 1e-12  # log-probabilities of a probability that rounded to 0 stay finite


def reliability(probabilities, labels, bins=BINS):
    """The reliability table of ``probabilities`` (N, classes) against integer ``labels``: each of ``bins``
    equal-width confidence bins ``(m / bins, (m + 1) / bins]`` (a confidence of 0 in the first) with its
    image ``counts``, its ``accuracy`` and its mean ``confidence`` (NaN where a bin is empty), and the
    bin ``edges``."""
    probabilities, labels = _checked(probabilities, labels)
    if not (isinstance(bins, (int, np.integer)) and bins >= 1):
        raise ValueError(f"bins={bins!r}: expected a whole number of confidence bins, 1 or more (Guo et al.: 15).")
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.bincount(which, correct, minlength=bins) / counts
        mean_confidence = np.bincount(which, confidence, minlength=bins) / counts
    return {"edges": np.linspace(0, 1, bins + 1), "counts": counts, "accuracy": accuracy,
            "confidence": mean_confidence}


def expected_calibration_error(probabilities, labels, bins=BINS):
    """The ECE (Guo et al. 2017, eq. 3): ``sum over bins of |B_m| / N * |accuracy(B_m) - confidence(B_m)|``,
    with the bins of :func:`reliability`."""
    table = reliability(probabilities, labels, bins)
    filled = table["counts"] > 0
    gaps = np.abs(table["accuracy"][filled] - table["confidence"][filled])
    return float(np.sum(table["counts"][filled] * gaps) / table["counts"].sum())


def softmax(logits):
    """Row-wise softmax of ``logits`` (N, classes), in float64."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def log_probabilities(probabilities):
    """``log(probabilities)``, a probability that rounded to 0 counted as :data:`SMALLEST`: logits of a softmax."""
    return np.log(np.clip(np.asarray(probabilities, dtype=np.float64), SMALLEST, 1.0))


def fit_temperature(logits, labels):
    """The temperature ``T`` in :data:`TEMPERATURE_RANGE` that minimises the mean negative log-likelihood of
    ``softmax(logits / T)`` on integer ``labels`` (Guo et al. 2017). The likelihood is convex in ``1 / T``,
    so a bounded scalar search finds it."""
    from scipy.optimize import minimize_scalar
    from scipy.special import logsumexp

    logits, labels = _checked(logits, labels, probabilities=False)
    true = logits[np.arange(len(labels)), labels]

    def negative_log_likelihood(log_temperature):
        inverse = math.exp(-log_temperature)
        return float(np.mean(logsumexp(logits * inverse, axis=1) - true * inverse))

    found = minimize_scalar(negative_log_likelihood, bounds=np.log(TEMPERATURE_RANGE), method="bounded",
                            options={"xatol": 1e-6})
    return float(math.exp(found.x))


def fit_platt(scores, labels):
    """``(slopes, intercepts)`` of Platt scaling of ``scores`` (N, classes): one sigmoid per class on its
    column (one-vs-rest); for two classes, one sigmoid of the second class on the margin
    ``(s1 - s0) / 2`` (the ``s`` of an exported binary SVM's ``[-s, s]``), as scikit-learn fits them."""
    scores, labels = _checked(scores, labels, probabilities=False)
    if scores.shape[1] == 2:
        pairs = [_platt_sigmoid((scores[:, 1] - scores[:, 0]) / 2, labels == 1)]
    else:
        pairs = [_platt_sigmoid(scores[:, column], labels == column) for column in range(scores.shape[1])]
    slopes, intercepts = ([pair[index] for pair in pairs] for index in (0, 1))
    return slopes, intercepts


def _platt_sigmoid(scores, positive):
    """``(slope, intercept)`` of ``P(positive | s) = sigmoid(slope * s + intercept)`` by maximum likelihood
    against Platt's smoothed targets, ``(N+ + 1) / (N+ + 2)`` and ``1 / (N- + 2)``: a class seen a few times
    is not promised certainty."""
    from scipy.optimize import minimize
    from scipy.special import expit, log_expit

    positives = int(positive.sum())
    negatives = len(positive) - positives
    targets = np.where(positive, (positives + 1) / (positives + 2), 1 / (negatives + 2))
    scale = max(float(np.abs(scores).max()), 1.0)  # the fit is the same on scaled scores, and better conditioned
    scaled = scores / scale

    def loss_and_gradient(parameters):
        z = parameters[0] * scaled + parameters[1]
        loss = -np.sum(targets * log_expit(z) + (1 - targets) * log_expit(-z))
        error = expit(z) - targets
        return loss, np.array([error @ scaled, error.sum()])

    start = np.array([0.0, math.log((positives + 1) / (negatives + 1))])
    found = minimize(loss_and_gradient, start, jac=True, method="L-BFGS-B",
                     options={"gtol": 1e-6, "ftol": 64 * np.finfo(float).eps})
    return float(found.x[0] / scale), float(found.x[1])


def _checked(values, labels, probabilities=True):
    """``values`` (N, classes) as float64 and ``labels`` as N integers in 0..classes-1; a ``ValueError`` otherwise."""
    values, labels = np.asarray(values, dtype=np.float64), np.asarray(labels)
    what = "probabilities" if probabilities else "scores"
    if values.ndim != 2 or values.shape[1] < 2 or len(values) != len(labels) or not len(labels):
        raise ValueError(f"Expected {what} of shape (images, classes), with 2 classes or more, and one label per "
                         f"image; got {what} of shape {values.shape} and {len(labels)} labels.")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"The {what} hold NaN or infinite values: the model's outputs are broken.")
    if not (np.issubdtype(labels.dtype, np.integer) and labels.min() >= 0 and labels.max() < values.shape[1]):
        raise ValueError(f"Expected integer labels in 0..{values.shape[1] - 1}, one per row of the {what}.")
    return values, labels


@dataclasses.dataclass(frozen=True)
class Calibration:
    """A fitted map from a model's outputs to calibrated probabilities.

    ``method``: ``"temperature"`` (the outputs are probabilities: ``softmax(log p / temperature)``) or
    ``"platt"`` (the outputs are SVM scores: ``slopes`` and ``intercepts``, one per class, or one pair for
    two classes, see :func:`fit_platt`); ``fitted_on``: which images, in words."""

    method: str
    temperature: float = None
    slopes: tuple = None
    intercepts: tuple = None
    fitted_on: str = ""

    @classmethod
    def fit(cls, outputs, labels, method, fitted_on=""):
        """Fit ``method`` on a model's ``outputs`` (probabilities for a temperature, scores for Platt) and the
        integer ``labels`` of the same images."""
        if method == "temperature":
            return cls(method, temperature=fit_temperature(log_probabilities(outputs), labels), fitted_on=fitted_on)
        if method == "platt":
            slopes, intercepts = fit_platt(outputs, labels)
            return cls(method, slopes=tuple(slopes), intercepts=tuple(intercepts), fitted_on=fitted_on)
        raise ValueError(f"Unknown calibration method={method!r}; choose one of {', '.join(METHODS)}.")

    def probabilities(self, outputs):
        """Calibrated probabilities (N, classes) of a model's ``outputs`` (N, classes)."""
        from scipy.special import expit

        outputs = np.asarray(outputs, dtype=np.float64)
        if self.method == "temperature":
            return softmax(log_probabilities(outputs) / self.temperature)
        slopes, intercepts = np.asarray(self.slopes), np.asarray(self.intercepts)
        if outputs.shape[1] == 2 and len(slopes) == 1:
            second = expit(slopes[0] * (outputs[:, 1] - outputs[:, 0]) / 2 + intercepts[0])
            return np.stack([1 - second, second], axis=1)
        each = expit(outputs * slopes + intercepts)
        total = each.sum(axis=1, keepdims=True)
        return np.divide(each, total, out=np.full_like(each, 1 / each.shape[1]), where=total > 0)

    def uncalibrated(self, outputs):
        """The probabilities one reads without calibration: the outputs themselves when they are probabilities
        (temperature), the softmax of SVM scores (Platt)."""
        return np.asarray(outputs, dtype=np.float64) if self.method == "temperature" else softmax(outputs)

    def as_dict(self):
        """The fields that are set: ``calibration.json``'s content."""
        return {key: value for key, value in dataclasses.asdict(self).items() if value is not None}


def read_calibration(path, classes):
    """The :class:`Calibration` in ``path`` (``calibration.json``) for a model of ``classes`` outputs; a
    ``ValueError`` naming the file and the field that is missing or wrong."""
    try:
        info = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON ({error}); it is damaged. Delete it to predict with the "
                         f"model's own scores, or rerun the job.") from None
    method = info.get("method") if isinstance(info, dict) else None
    if method not in METHODS:
        raise ValueError(f"{path}, field method: expected one of {', '.join(METHODS)}; got {method!r}.")
    if method == "temperature":
        temperature = info.get("temperature")
        if not (isinstance(temperature, (int, float)) and not isinstance(temperature, bool) and temperature > 0
                and math.isfinite(temperature)):
            raise ValueError(f"{path}, field temperature: expected a number above 0; got {temperature!r}.")
        return Calibration(method, temperature=float(temperature), fitted_on=str(info.get("fitted_on", "")))
    pairs = 1 if classes == 2 else classes
    for field in ("slopes", "intercepts"):
        values = info.get(field)
        if not (isinstance(values, list) and len(values) == pairs and all(
                isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                for value in values)):
            raise ValueError(f"{path}, field {field}: expected {pairs} number(s), one per class of the model "
                             f"({classes} classes); the file is damaged or from another run.")
    return Calibration(method, slopes=tuple(info["slopes"]), intercepts=tuple(info["intercepts"]),
                       fitted_on=str(info.get("fitted_on", "")))


def model_outputs(model, pipeline):
    """The outputs of a Keras ``model`` on every batch of ``pipeline`` (``(images, labels)`` batches), in order,
    on this process alone (as :func:`keras_tl.features.classifiers.predict_classes`)."""
    import keras

    return np.concatenate([keras.ops.convert_to_numpy(model(images, training=False)) for images, _ in pipeline])


def head_outputs(classifier, features):
    """What the exported model of a fitted scikit-learn head outputs on ``features``, and whether they are
    probabilities: ``predict_proba`` where the head has it (logistic regression), else the decision scores,
    a binary head's ``s`` as ``[-s, s]`` (see :mod:`keras_tl.analysis.export`)."""
    if hasattr(classifier, "predict_proba"):
        return classifier.predict_proba(features), True
    scores = classifier.decision_function(features)
    return (np.stack([-scores, scores], axis=1) if scores.ndim == 1 else scores), False


def fit_head_calibration(classifier, features, labels, folds=FOLDS, seed=0):
    """The :class:`Calibration` of a fitted scikit-learn head (an FNE run's): Platt scaling of SVM scores, a
    temperature for probabilities, fitted on cross-validated outputs of the training ``features`` (each image
    scored by a copy of the head trained on the other folds, stratified, seeded). A grid search's chosen
    pipeline is copied, not searched again. ``None`` when a class has fewer than 2 images (no folds)."""
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    labels = np.asarray(labels)
    counts = np.bincount(labels)
    splits = min(folds, int(counts[counts > 0].min()))
    if splits < 2:
        return None
    estimator = getattr(classifier, "best_estimator_", classifier)
    _, are_probabilities = head_outputs(estimator, features[:1])
    outputs = cross_val_predict(clone(estimator), features, labels,
                                cv=StratifiedKFold(splits, shuffle=True, random_state=seed),
                                method="predict_proba" if are_probabilities else "decision_function")
    if outputs.ndim == 1:
        outputs = np.stack([-outputs, outputs], axis=1)
    return Calibration.fit(outputs, labels, "temperature" if are_probabilities else "platt",
                           fitted_on=f"cross-validated scores of {len(labels)} train images ({splits} folds)")


def write_calibration(run_dir, calibration, outputs, labels, title="", bins=BINS):
    """Save ``calibration`` as ``run_dir/calibration.json`` and the reliability diagram before and after it on
    labelled test ``outputs`` as ``run_dir/figures/reliability.png``; return the metrics' entry: the method,
    its parameters, the ECE before and after (and what "before" reads as probabilities)."""
    from keras_tl import runs

    before, after = calibration.uncalibrated(outputs), calibration.probabilities(outputs)
    runs.write_json(run_dir / CALIBRATION_FILE, calibration.as_dict())
    plot_reliability({"before": before, "after": after}, labels, bins, path=run_dir / "figures" / "reliability.png",
                     title=f"{title}: {METHOD_NAMES[calibration.method]}" if title else None)
    return {**calibration.as_dict(), "bins": bins, "test_images": len(labels),
            "uncalibrated": "the model's softmax" if calibration.method == "temperature"
            else "the softmax of the SVM scores",
            "ece_before": expected_calibration_error(before, labels, bins),
            "ece_after": expected_calibration_error(after, labels, bins)}


def describe(entry):
    """One line for a job's summary from :func:`write_calibration`'s entry."""
    how = f"temperature {entry['temperature']:.3g}" if entry["method"] == "temperature" else METHOD_NAMES["platt"]
    if entry["method"] == "temperature" and any(math.isclose(entry["temperature"], bound, rel_tol=1e-3)
                                                for bound in TEMPERATURE_RANGE):
        how += " (an end of the range searched: too few or too easy validation images to tell)"
    return (f"Calibration: expected calibration error {entry['ece_before']:.3f} before, {entry['ece_after']:.3f} "
            f"after ({how}, fitted on {entry['fitted_on']}; {entry['test_images']} test images), "
            f"calibration.json and figures/reliability.png")


def plot_reliability(curves, labels, bins=BINS, path=None, title=None, ax=None):
    """Reliability diagrams, one panel per entry of ``curves`` (a name -> probabilities (N, classes) of the
    images with integer ``labels``): each bin's accuracy as a bar against its confidence, the gap to the
    diagonal (perfect calibration) shaded, the ECE in the panel's title. ``ax``: axes to draw into, one per
    curve."""
    import matplotlib.pyplot as plt

    from keras_tl import plots

    new = ax is None
    if new:
        figure, ax = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 4.2), squeeze=False)
        ax = ax[0]
    figure = ax[0].figure
    for panel, (name, probabilities) in zip(ax, curves.items()):
        table = reliability(probabilities, labels, bins)
        centres, filled = (table["edges"][:-1] + table["edges"][1:]) / 2, table["counts"] > 0
        panel.bar(centres[filled], table["accuracy"][filled], width=1 / bins, edgecolor="black", linewidth=0.5,
                  label="accuracy")
        gaps = table["confidence"][filled] - table["accuracy"][filled]
        panel.bar(centres[filled], gaps, bottom=table["accuracy"][filled], width=1 / bins, color="red", alpha=0.2,
                  edgecolor="red", hatch="//", linewidth=0.5, label="gap to the mean confidence")
        panel.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
        panel.set_xlim(0, 1)
        panel.set_ylim(0, 1)
        panel.set_xlabel("confidence (the top probability)")
        panel.set_ylabel("accuracy")
        panel.set_title(f"{name}: ECE {expected_calibration_error(probabilities, labels, bins):.3f}")
        panel.legend(fontsize=7, loc="upper left")
        panel.grid(alpha=0.3)
    if title:
        figure.suptitle(title)
    if new:
        figure.tight_layout()
    return plots.finish_figure(figure, path)
