"""Classifiers on extracted features ("heads"), and the evaluation of any classifier's predictions.

Plain scikit-learn: a ``Pipeline`` of a post-processing step (from
:mod:`keras_tl.features.full_network_embedding`) and a head. The default head is a ``LinearSVC``, the
classifier of the FNE papers; the others test the course slides' advice, "Linear SVM usually
enough; kernel likely to overfit; if target data size allows, 1-3 FC layers" (:data:`CLASSIFIERS`).
Optionally C is chosen by cross-validation on the training set only. The few-shot mode repeats
training on seeded subsets of K images per class, the "training samples per class" curves of the
course slides. Every accuracy of an evaluation comes with its image count and a 95 % Wilson score
interval (:func:`wilson_interval`): 0.907 on 43 test images is "somewhere from 0.78 to 0.96"; and
with the balanced accuracy, the mean of the per-class recalls, which a large class cannot hide a small
one's errors behind. ``class_weight="balanced"`` weighs each class's errors by n / (k x its images)
(imbalanced classes); :func:`k_fold` gives a mean ± std over the stratified folds of one pool of
images, where a single split of a small dataset is noisy.
"""
import math
import statistics

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold
from sklearn.multiclass import OneVsRestClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC, LinearSVC
from sklearn.utils.validation import check_is_fitted, validate_data

from keras_tl.data import per_class_subset
from keras_tl.messages import did_you_mean, progress_bar

C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0)
SVM_MAX_ITER = 5000  # liblinear passes over the data before it stops with a ConvergenceWarning
LOGISTIC_MAX_ITER = 1000  # L-BFGS steps (scikit-learn's default of 100 stops early on 10,000-wide features)
CLASSIFIERS = {  # the heads make_classifier builds: name -> what it is (a literal: the jobs' parsers read it)
    "linear-svm": "a linear SVM, one-vs-rest (LinearSVC): the FNE papers' classifier",
    "logistic": "logistic regression (LogisticRegression, multinomial): linear, with class probabilities",
    "rbf-svm": "an SVM with a Gaussian kernel (SVC(kernel='rbf'), one-vs-one)",
    "knn": "a vote of the 5 nearest training images (KNeighborsClassifier, Euclidean distance)",
    "mlp": "fully connected ReLU layers (EarlyStoppedMLP), early-stopped on a validation part of train",
}
WITH_C = ("linear-svm", "logistic", "rbf-svm")  # the heads whose regularisation is C
WITH_CLASS_WEIGHT = ("linear-svm", "logistic", "rbf-svm")  # the heads that weigh each class's errors
LINEAR = ("linear-svm", "logistic")  # the heads whose decision is a linear function of the features


class RowSpace(TransformerMixin, BaseEstimator):
    """Rotate features into the span of the training rows: ``X @ components_.T``, from the SVD of train.

    With fewer training images (n) than features (d; an FNE has about 11,000), an L2-regularised
    linear model's weights lie in that span (the representer theorem), and the rotation keeps every
    inner product with a training row. LinearSVC's dual solver therefore takes the very same steps
    on n columns instead of d: the same classifier (decisions equal to about 1e-14), d / n times
    cheaper per pass. Use it only where n < d, with a linear head (:data:`LINEAR`).
    """

    def fit(self, X, y=None):
        X = validate_data(self, X, dtype=np.float64)
        self.components_ = np.linalg.svd(X, full_matrices=False)[2]
        return self

    def transform(self, X):
        check_is_fitted(self, "components_")
        return validate_data(self, X, dtype=np.float64, reset=False) @ self.components_.T


class EarlyStoppedMLP(ClassifierMixin, BaseEstimator):
    """The slides' "1-3 FC layers": scikit-learn's ``MLPClassifier`` (ReLU, Adam, L2 decay ``alpha``)
    with one hidden layer per entry of ``hidden_layer_sizes``, stopped when the accuracy on a
    validation part of the training images has not improved for 10 epochs (Prechelt 1998, "Early
    stopping - but when?"); the weights of the best epoch are kept.

    The validation part is a stratified ``validation_fraction`` of train, and at least one image per
    class (``MLPClassifier`` alone refuses fewer). With a single image in some class there is
    nothing to hold out: the network then trains for ``max_iter`` epochs without stopping early.
    """

    def __init__(self, hidden_layer_sizes=(256,), alpha=1e-4, validation_fraction=0.2, max_iter=200, random_state=0):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.alpha = alpha
        self.validation_fraction = validation_fraction
        self.max_iter = max_iter
        self.random_state = random_state

    def fit(self, X, y):
        counts = np.unique(y, return_counts=True)[1]
        early = bool(counts.min() >= 2)
        fraction = max(self.validation_fraction, len(counts) / len(y)) if early else self.validation_fraction
        self.network_ = MLPClassifier(self.hidden_layer_sizes, alpha=self.alpha, max_iter=self.max_iter,
                                      early_stopping=early, validation_fraction=fraction,
                                      random_state=self.random_state).fit(X, y)
        self.classes_ = self.network_.classes_
        return self

    def predict(self, X):
        check_is_fitted(self, "network_")
        return self.network_.predict(X)

    def predict_proba(self, X):
        check_is_fitted(self, "network_")
        return self.network_.predict_proba(X)


def check_classifier(classifier):
    """Raise a ``ValueError`` naming the close matches unless ``classifier`` is one of :data:`CLASSIFIERS`."""
    if classifier not in CLASSIFIERS:
        raise ValueError(f"Unknown classifier={classifier!r}; choose from {', '.join(CLASSIFIERS)}."
                         + did_you_mean(str(classifier), CLASSIFIERS))


def _head(classifier, c, seed, dual, class_weight):
    """The pipeline's last step, ``(step name, estimator)``; decision scores: ``decision_function``
    (the SVMs, logistic regression) or ``predict_proba`` (every head but the SVMs)."""
    if classifier == "linear-svm":
        return "svm", LinearSVC(C=c, dual=dual, max_iter=SVM_MAX_ITER, random_state=seed, class_weight=class_weight)
    if classifier == "logistic":
        return "logistic", LogisticRegression(C=c, max_iter=LOGISTIC_MAX_ITER, random_state=seed,
                                              class_weight=class_weight)
    if classifier == "rbf-svm":
        return "rbf_svm", SVC(kernel="rbf", C=c, gamma="scale", random_state=seed, class_weight=class_weight)
    if classifier == "knn":
        return "knn", KNeighborsClassifier(n_neighbors=5)
    return "mlp", EarlyStoppedMLP(random_state=seed)


def make_classifier(postprocessing="passthrough", c=1.0, search_c=False, seed=0, folds=3, row_space=False,
                    classifier="linear-svm", class_weight=None, multi_label=False):
    """``Pipeline([("postprocess", ...), (head, ...)])`` with the ``classifier`` of :data:`CLASSIFIERS`
    (the default ``Pipeline([("postprocess", ...), ("svm", LinearSVC(C=c))])``), seeded by ``seed``;
    with ``search_c``, a grid search over C.

    ``c`` and ``search_c`` apply to the heads with a C (:data:`WITH_C`). The search uses stratified
    folds of the training data it is fitted on, never the test set. ``row_space``: fit in the span of
    the training rows (:class:`RowSpace`), for fewer images than features and a linear head.
    ``class_weight``: scikit-learn's, for the heads of :data:`WITH_CLASS_WEIGHT`: ``"balanced"`` weighs
    the errors on each class by n / (k x its training images), so that a small class counts as much
    as a large one (the jobs' ``--class-weight auto``), or a dict ``{class: weight}``. ``multi_label``: for
    multi-hot labels (several per image), the head is scikit-learn's ``OneVsRestClassifier`` of it, one binary
    head per class (each weighed on its own with ``class_weight``), and the search of C uses plain seeded folds.
    """
    check_classifier(classifier)
    if class_weight is not None and classifier not in WITH_CLASS_WEIGHT:
        raise ValueError(f"class_weight= weighs the errors of {', '.join(WITH_CLASS_WEIGHT)}; "
                         f"classifier={classifier!r} has none to weigh.")
    if search_c and classifier not in WITH_C:
        raise ValueError(f"search_c=True chooses C, and classifier={classifier!r} has none; "
                         f"use it with {', '.join(WITH_C)}.")
    if row_space and classifier not in LINEAR:
        raise ValueError(f"row_space=True keeps a linear head's decisions only, and classifier={classifier!r} is "
                         f"not linear; use it with {', '.join(LINEAR)}.")
    step, head = _head(classifier, c, seed, True if row_space else "auto", class_weight)
    steps = [("postprocess", postprocessing)] + ([("row_space", RowSpace())] if row_space else [])
    pipeline = Pipeline(steps + [(step, OneVsRestClassifier(head) if multi_label else head)])
    if not search_c:
        return pipeline
    folds = (KFold if multi_label else StratifiedKFold)(n_splits=folds, shuffle=True, random_state=seed)
    searched = f"{step}__estimator__C" if multi_label else f"{step}__C"
    return GridSearchCV(pipeline, {searched: list(C_GRID)}, cv=folds, n_jobs=1)


def wilson_interval(correct, total, confidence=0.95):
    """``(low, high)``: the Wilson score interval of a proportion, ``correct`` right out of ``total``
    (Wilson 1927, "Probable inference, the law of succession, and statistical inference", JASA 22:209-212).

    The true accuracies that a test of ``total`` images cannot rule out at this ``confidence``: 8 right
    out of 10 is (0.490, 0.943). Unlike the textbook p ± z·sqrt(p(1 - p)/n), it stays within 0..1 and
    is not a single point at 0/n or n/n (0 out of 2 is (0, 0.658)).
    """
    if not (total >= 1 and 0 <= correct <= total):
        raise ValueError(f"wilson_interval needs total >= 1 and 0 <= correct <= total; got correct={correct}, "
                         f"total={total}.")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence={confidence} should be between 0 and 1 (0.95 for a 95 % interval).")
    z = statistics.NormalDist().inv_cdf(0.5 + confidence / 2)  # 1.96 for 95 %
    share, spread = correct / total, z * z / total
    centre = (share + spread / 2) / (1 + spread)
    half_width = z / (1 + spread) * math.sqrt(share * (1 - share) / total + spread / (4 * total))
    low = 0.0 if correct == 0 else centre - half_width  # exactly 0 and 1 at the ends, where rounding would not be
    high = 1.0 if correct == total else centre + half_width
    return low, high


def format_accuracy(accuracy, interval):
    """``"0.907 [0.78, 0.96]"``: an accuracy with 3 decimals and its interval with 2, as the jobs print them."""
    low, high = interval
    return f"{accuracy:.3f} [{low:.2f}, {high:.2f}]"


def evaluate_predictions(true_labels, predicted, class_names):
    """Accuracy, its 95 % Wilson interval (:func:`wilson_interval`) and image count; each class's accuracy
    (its recall), interval and image count (``per_class``, the classes that have images); the balanced
    accuracy, the mean of those recalls (scikit-learn's ``balanced_accuracy_score``, without its warning
    about predicted classes that have no image); the report (precision, recall, F1) and the confusion
    matrix of predictions."""
    labels = np.arange(len(class_names))
    matrix = confusion_matrix(true_labels, predicted, labels=labels)
    right, images = np.diag(matrix).tolist(), matrix.sum(axis=1).tolist()  # per class
    correct, total = int(np.sum(np.asarray(true_labels) == np.asarray(predicted))), len(true_labels)
    per_class = {name: {"accuracy": right[index] / images[index], "images": images[index],
                        "accuracy_interval": list(wilson_interval(right[index], images[index]))}
                 for index, name in enumerate(class_names) if images[index]}
    return {
        "accuracy": float(accuracy_score(true_labels, predicted)),
        "accuracy_interval": list(wilson_interval(correct, total)),
        "images": total,
        "balanced_accuracy": float(np.mean([row["accuracy"] for row in per_class.values()])),
        "per_class": per_class,
        "report": classification_report(true_labels, predicted, labels=labels, target_names=list(class_names),
                                         output_dict=True, zero_division=0),
        "confusion_matrix": matrix,
    }


def format_recalls(per_class, limit=10):
    """``"cat 0.90 (10), dog 0.40 (5)"``: each class's recall (its accuracy) and images, from an evaluation's
    ``per_class``; above ``limit`` classes, the ``limit`` lowest recalls."""
    rows = list(per_class.items())
    more = len(rows) - limit
    if more > 0:
        rows = sorted(rows, key=lambda item: item[1]["accuracy"])[:limit]
    shown = ", ".join(f"{name} {row['accuracy']:.2f} ({row['images']})" for name, row in rows)
    return shown + (f", ... (the {limit} lowest of {len(per_class)} classes)" if more > 0 else "")


def predict_classes(model, pipeline):
    """Predicted class of every image of ``pipeline`` (batches of ``(images, labels)``, e.g. from
    :func:`keras_tl.data.make_pipeline`) by a Keras ``model``, batch by batch, on this process alone.

    (``model.predict`` would shard the data across the workers of a multi-worker strategy.)
    """
    import keras

    batches = [np.argmax(keras.ops.convert_to_numpy(model(images, training=False)), axis=-1)
               for images, _ in pipeline]
    return np.concatenate(batches)


def fit_evaluate(classifier, train_x, train_y, test_x, test_y, class_names):
    """Fit on train, predict test, and evaluate the predictions (see :func:`evaluate_predictions`)."""
    classifier.fit(train_x, train_y)
    result = evaluate_predictions(test_y, classifier.predict(test_x), class_names)
    if isinstance(classifier, GridSearchCV):
        result["chosen_c"] = float(next(iter(classifier.best_params_.values())))  # the one parameter searched
    return result


def few_shot(classifier, train_x, train_y, test_x, test_y, shots, repeats, seed=0, verbose=True):
    """Accuracy mean and std over ``repeats`` seeded draws of K training images per class, for each K."""
    curve = {}
    with progress_bar(len(shots) * repeats, "few-shot fits", unit="fit", verbose=verbose) as progress:
        for shot_count in shots:
            accuracies = []
            for repeat in range(repeats):
                chosen = per_class_subset(train_y, shot_count, seed=seed * 1000 + repeat)
                model = clone(classifier).fit(train_x[chosen], train_y[chosen])
                accuracies.append(float(accuracy_score(test_y, model.predict(test_x))))
                progress.update(1)
            curve[int(shot_count)] = {"mean": float(np.mean(accuracies)), "std": float(np.std(accuracies)),
                                      "accuracies": accuracies}
    return curve


# ----------------------------------------------------------------------------- k-fold estimates


def stratified_folds(labels, folds, seed=0):
    """``[(train, test), ...]``: the indices of ``folds`` seeded stratified folds of ``labels``, each the test
    part once (scikit-learn's ``StratifiedKFold``, shuffled); every class needs an image in every fold."""
    labels = np.asarray(labels)
    counts = np.bincount(labels)
    smallest = int(counts[counts > 0].min())
    if not 2 <= folds <= smallest:
        raise ValueError(f"folds={folds} should be at least 2 and at most the images of the smallest class "
                         f"({smallest}): each fold needs an image of each class.")
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(labels)), labels))


def mean_std(values):
    """``{"mean", "std", "values"}`` of a list of numbers (population std: 0 for one value)."""
    return {"mean": float(np.mean(values)), "std": float(np.std(values)), "values": [float(v) for v in values]}


def format_mean_std(entry):
    """``"0.912 ± 0.031"``: a :func:`mean_std` with 3 decimals."""
    return f"{entry['mean']:.3f} ± {entry['std']:.3f}"


def summarise_folds(evaluations):
    """Each fold's accuracy, balanced accuracy, images and per-class recall, and the :func:`mean_std` of the
    two accuracies over the folds, from each fold's :func:`evaluate_predictions`."""
    return {"folds": [{"fold": number, "accuracy": evaluation["accuracy"],
                       "balanced_accuracy": evaluation["balanced_accuracy"], "images": evaluation["images"],
                       "recall": {name: row["accuracy"] for name, row in evaluation["per_class"].items()}}
                      for number, evaluation in enumerate(evaluations, 1)],
            **{key: mean_std([evaluation[key] for evaluation in evaluations])
               for key in ("accuracy", "balanced_accuracy")}}


def k_fold(classifier, x, y, folds, class_names, seed=0):
    """Fit a clone of ``classifier`` on all folds but one of ``x`` and test it on that one, for each of the
    :func:`stratified_folds`; return :func:`summarise_folds` of the ``folds`` evaluations."""
    evaluations = [evaluate_predictions(y[test], clone(classifier).fit(x[train], y[train]).predict(x[test]),
                                        class_names) for train, test in stratified_folds(y, folds, seed)]
    return summarise_folds(evaluations)
