"""Multi-label classification: several labels per image, each class a yes/no question of its own.

The labels are a multi-hot matrix ``(images, classes)`` (1: the image has the class). A model gives each
class a score (a sigmoid probability of a fine-tuned network, a one-vs-rest SVM's decision value of an FNE
head), and an image gets every class whose score reaches that class's threshold. The thresholds are chosen
per class on data the model was not fitted on (:func:`choose_thresholds`: the validation part of a fine-tuned
run, cross-validated scores of the training features for an FNE head), each the one that maximises the class's
F1, as in the Pascal VOC and COCO multi-label baselines (see also fastai's ``MultiCategoryBlock`` and
transformers' ``problem_type="multi_label_classification"``).

:func:`evaluate_multi_label` reports the metrics of the multi-label literature, computed with scikit-learn:
micro F1 (every image-class decision pooled), macro F1 (the mean of the per-class F1, so a rare class counts
as much as a common one), the mean average precision (mAP: the mean over classes of the area under each
class's precision-recall curve, which needs no threshold) and each class's AP. ``thresholds.json``
(:func:`write_thresholds`) keeps a run's thresholds beside its model, for ``python -m keras_tl.predict``.
"""
import json
import reprlib

import numpy as np
from sklearn.metrics import accuracy_score, average_precision_score, f1_score, precision_recall_curve

from keras_tl import runs
from keras_tl.messages import format_table

THRESHOLDS_FILE = "thresholds.json"


def check_multi_hot(labels, scores=None):
    """``labels`` as a ``(images, classes)`` 0/1 integer array (and ``scores`` as floats of the same shape); a
    ``ValueError`` saying what came otherwise."""
    labels = np.asarray(labels)
    if labels.ndim != 2 or not np.isin(labels, (0, 1)).all():
        raise ValueError(f"Expected multi-hot labels, an (images, classes) array of 0 and 1; got an array of shape "
                         f"{labels.shape} with values {reprlib.repr(np.unique(labels).tolist())}.")
    if scores is not None and np.shape(scores) != labels.shape:
        raise ValueError(f"Expected one score per image and class, of shape {labels.shape}; got {np.shape(scores)}.")
    return labels.astype(int)


def choose_thresholds(labels, scores, default=0.5):
    """Each class's threshold: the score at or above which calling the class maximises its F1 on ``labels`` and
    ``scores`` (held-out data). A class with no positive image there gets ``default`` (0.5 for probabilities,
    0 for SVM scores: the margin). Ties go to the lowest such score."""
    labels = check_multi_hot(labels, scores)
    scores = np.asarray(scores, dtype=float)
    thresholds = np.full(labels.shape[1], float(default))
    for index in range(labels.shape[1]):
        if labels[:, index].any():
            precision, recall, candidates = precision_recall_curve(labels[:, index], scores[:, index])
            f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
            thresholds[index] = candidates[int(np.argmax(f1[:-1]))]  # the curve's last point has no threshold
    return thresholds


def head_scores(classifier, features):
    """A fitted scikit-learn head's score per class, what its exported model outputs: ``predict_proba`` where it
    has one (one-vs-rest: each class's own probability), else ``decision_function`` (the SVMs' margins)."""
    if hasattr(classifier, "predict_proba"):
        return classifier.predict_proba(features)
    return classifier.decision_function(features)


def cross_validated_thresholds(classifier, features, labels, folds=3, seed=0):
    """Thresholds for a scikit-learn head, chosen (:func:`choose_thresholds`) on the scores that clones of
    ``classifier`` fitted on the other ``folds`` - 1 seeded folds of the training ``features`` give each training
    image (``cross_val_predict``): scores of images the head did not see, as a validation part's would be, without
    holding images out of the final fit; the scores are those of :func:`head_scores`. A class with no positive image
    keeps 0.5 for probabilities, 0 (the SVM's margin) for decision scores."""
    from sklearn.model_selection import KFold, cross_val_predict

    method = "predict_proba" if hasattr(classifier, "predict_proba") else "decision_function"
    scores = cross_val_predict(classifier, features, labels, method=method,
                               cv=KFold(n_splits=folds, shuffle=True, random_state=seed))
    return choose_thresholds(labels, scores, default=0.5 if method == "predict_proba" else 0.0)


def predict_labels(scores, thresholds):
    """The multi-hot predictions: 1 where a score reaches its class's threshold."""
    return (np.asarray(scores) >= np.asarray(thresholds)[None, :]).astype(int)


def evaluate_multi_label(labels, scores, thresholds, class_names):
    """The multi-label metrics of ``scores`` against ``labels`` (multi-hot), scikit-learn's: ``micro_f1`` and
    ``macro_f1`` (``f1_score``, of the predictions at ``thresholds``), ``mean_average_precision`` (the mean of
    ``per_class_ap``, ``average_precision_score`` of each class that has a positive image: AP is undefined
    without one), ``subset_accuracy`` (the images whose every label is right), ``per_class`` (F1, AP, threshold
    and positive images), ``thresholds`` by class name and ``images``."""
    labels = check_multi_hot(labels, scores)
    if len(class_names) != labels.shape[1] or len(thresholds) != labels.shape[1]:
        raise ValueError(f"Expected {labels.shape[1]} class names and thresholds, one per column of labels; got "
                         f"{len(class_names)} and {len(thresholds)}.")
    predicted = predict_labels(scores, thresholds)
    per_class_f1 = f1_score(labels, predicted, average=None, zero_division=0)
    per_class_ap = {name: float(average_precision_score(labels[:, index], scores[:, index]))
                    for index, name in enumerate(class_names) if labels[:, index].any()}
    return {
        "micro_f1": float(f1_score(labels, predicted, average="micro", zero_division=0)),
        "macro_f1": float(f1_score(labels, predicted, average="macro", zero_division=0)),
        "mean_average_precision": float(np.mean(list(per_class_ap.values()))) if per_class_ap else None,
        "per_class_ap": per_class_ap,
        "subset_accuracy": float(accuracy_score(labels, predicted)),
        "per_class": {name: {"f1": float(per_class_f1[index]), "ap": per_class_ap.get(name),
                             "threshold": float(thresholds[index]), "images": int(labels[:, index].sum())}
                      for index, name in enumerate(class_names)},
        "thresholds": {name: float(value) for name, value in zip(class_names, thresholds)},
        "images": len(labels),
    }


def format_evaluation(evaluation):
    """``"micro F1 0.812, macro F1 0.774, mAP 0.856"``: an evaluation's three numbers, as the jobs print them."""
    return (f"micro F1 {evaluation['micro_f1']:.3f}, macro F1 {evaluation['macro_f1']:.3f}, "
            f"mAP {format_score(evaluation['mean_average_precision'])}")


def format_score(value):
    """``"0.812"``, or ``"n/a"`` for None (an AP where the test images hold no positive of the class)."""
    return "n/a" if value is None else f"{value:.3f}"


def per_class_table(evaluation, ap_header="AP"):
    """An evaluation's table of each class's test images, AP, F1 and threshold, as the jobs print it."""
    return format_table([[name, row["images"], format_score(row["ap"]), f"{row['f1']:.3f}", f"{row['threshold']:.3g}"]
                         for name, row in evaluation["per_class"].items()],
                        ["class", "test images", ap_header, "F1", "threshold"])


def labels_above(scores, thresholds, class_names):
    """For each image, its ``(class, score)`` pairs that reach their thresholds, the highest score first."""
    scores = np.asarray(scores)
    return [[(class_names[index], float(row[index])) for index in np.argsort(-row, kind="stable")
             if row[index] >= thresholds[index]] for row in scores]


def write_thresholds(run_dir, thresholds, class_names, chosen_on):
    """``run_dir/thresholds.json``: the run is multi-label, with these thresholds (``chosen_on`` says on what)."""
    runs.write_json(run_dir / THRESHOLDS_FILE, {
        "multi_label": True, "thresholds": {name: float(value) for name, value in zip(class_names, thresholds)},
        "chosen_on": chosen_on})


def read_thresholds(path, class_names):
    """The thresholds of ``thresholds.json``, in the order of ``class_names``; a ``ValueError`` naming the file
    when it is damaged or names other classes."""
    try:
        info = json.loads(path.read_text())
        thresholds = info["thresholds"]
        values = [float(thresholds[name]) for name in class_names]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path}, field thresholds: expected a threshold (a number) per class of the run "
                         f"({', '.join(class_names)}); the file is damaged or from another run ({error!r}).") from None
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{path}, field thresholds: expected finite numbers; got {reprlib.repr(values)}.")
    return np.array(values)
