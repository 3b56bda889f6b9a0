"""Linear classifiers on extracted features, and the evaluation of any classifier's predictions.

Plain scikit-learn: a ``Pipeline`` of a post-processing step (from
:mod:`keras_tl.full_network_embedding`) and a ``LinearSVC``, the classifier of the FNE papers.
Optionally C is chosen by cross-validation on the training set only. The few-shot mode repeats
training on seeded subsets of K images per class, the "training samples per class" curves of the
course slides.
"""
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC
from sklearn.utils.validation import check_is_fitted, validate_data

from keras_tl.data import per_class_subset
from keras_tl.messages import progress_bar

C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0)
SVM_MAX_ITER = 5000  # liblinear passes over the data before it stops with a ConvergenceWarning


class RowSpace(TransformerMixin, BaseEstimator):
    """Rotate features into the span of the training rows: ``X @ components_.T``, from the SVD of train.

    With fewer training images (n) than features (d; an FNE has about 11,000), an L2-regularised
    linear model's weights lie in that span (the representer theorem), and the rotation keeps every
    inner product with a training row. LinearSVC's dual solver therefore takes the very same steps
    on n columns instead of d: the same classifier (decisions equal to about 1e-14), d / n times
    cheaper per pass. Use it only where n < d, with ``LinearSVC(dual=True)``.
    """

    def fit(self, X, y=None):
        X = validate_data(self, X, dtype=np.float64)
        self.components_ = np.linalg.svd(X, full_matrices=False)[2]
        return self

    def transform(self, X):
        check_is_fitted(self, "components_")
        return validate_data(self, X, dtype=np.float64, reset=False) @ self.components_.T


def make_classifier(postprocessing="passthrough", c=1.0, search_c=False, seed=0, folds=3, row_space=False):
    """``Pipeline([("postprocess", ...), ("svm", LinearSVC(C=c))])``; with ``search_c``, a grid search over C.

    The search uses stratified folds of the training data it is fitted on, never the test set.
    ``row_space``: fit in the span of the training rows (:class:`RowSpace`), for fewer images than features.
    """
    steps = [("postprocess", postprocessing)] + ([("row_space", RowSpace())] if row_space else [])
    pipeline = Pipeline(steps + [("svm", LinearSVC(C=c, dual=True if row_space else "auto", max_iter=SVM_MAX_ITER,
                                                   random_state=seed))])
    if not search_c:
        return pipeline
    folds = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return GridSearchCV(pipeline, {"svm__C": list(C_GRID)}, cv=folds, n_jobs=1)


def evaluate_predictions(true_labels, predicted, class_names):
    """Accuracy, the per-class report (precision, recall, F1) and the confusion matrix of predictions."""
    labels = np.arange(len(class_names))
    return {
        "accuracy": float(accuracy_score(true_labels, predicted)),
        "report": classification_report(true_labels, predicted, labels=labels, target_names=list(class_names),
                                         output_dict=True, zero_division=0),
        "confusion_matrix": confusion_matrix(true_labels, predicted, labels=labels),
    }


def predict_classes(model, dataset):
    """Predicted class of every image of ``dataset`` by a Keras ``model``, batch by batch, on this process alone.

    (``model.predict`` would shard the data across the workers of a multi-worker strategy.)
    """
    import keras

    batches = [np.argmax(keras.ops.convert_to_numpy(model(images, training=False)), axis=-1)
               for images, _ in dataset]
    return np.concatenate(batches)


def fit_evaluate(classifier, train_x, train_y, test_x, test_y, class_names):
    """Fit on train, predict test, and evaluate the predictions (see :func:`evaluate_predictions`)."""
    classifier.fit(train_x, train_y)
    result = evaluate_predictions(test_y, classifier.predict(test_x), class_names)
    if isinstance(classifier, GridSearchCV):
        result["chosen_c"] = float(classifier.best_params_["svm__C"])
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
