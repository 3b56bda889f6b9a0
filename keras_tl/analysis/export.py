"""One Keras model from an FNE run: backbone, pooling, post-processing and the linear head together.

The FNE job trains a scikit-learn pipeline (post-processing -> a linear head, ``LinearSVC`` or
``LogisticRegression``) on pooled features. :func:`fne_model` joins it to the network that made
the features, so the whole classifier is one ``.keras`` file that Keras alone can load and serve:

``images -> backbone -> per-layer global average pooling -> concatenation -> linear_head``

where ``linear_head`` is ``[FullNetworkEmbedding | UnitNormalization] -> Dense``, the Dense layer
holding the head's ``coef_.T`` and ``intercept_``. For the SVM its outputs are the decision
scores (Cortes & Vapnik 1995: one-vs-rest, the largest score wins); for logistic regression a
softmax makes them its class probabilities (multinomial: ``predict_proba`` is the softmax of the
decision scores). A binary head has one score ``s`` for the second class; the model returns
``[-s, s]`` (SVM) or the softmax of ``[0, s]`` (logistic: ``[1 - sigmoid(s), sigmoid(s)]``), so that
``argmax`` picks the class as scikit-learn does. A multi-label head (scikit-learn's ``OneVsRestClassifier``, one
binary head per class) has one score per class, and logistic regression's are each class's own sigmoid.

The model takes the source's *preprocessed* images (``source.preprocess_input`` of RGB 0..255),
as a fine-tuned run's ``model.keras`` does; :func:`keras_tl.analysis.trained.load_run` applies it.
:func:`save_fne_model` writes ``model.keras``, ``raw_model.keras`` (the same classifier of raw RGB
images, :mod:`keras_tl.analysis.raw_images`) and ``model.json`` (class names, source, image size,
method) into the run folder.
"""
import keras
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import Normalizer
from sklearn.svm import LinearSVC

from keras_tl import runs
from keras_tl.analysis import raw_images, trained
from keras_tl.features.full_network_embedding import FNETransformer


def _fitted_pipeline(classifier):
    """The fitted pipeline itself, or the best one a grid search refitted."""
    return classifier.best_estimator_ if isinstance(classifier, GridSearchCV) else classifier


HEAD_SCORE_NAMES = {LinearSVC: trained.SVM_SCORE, LogisticRegression: trained.PROBABILITY}  # what each head outputs


def head_score_name(classifier):
    """What the exported model of ``classifier`` outputs (its ``score_name``): "svm score" or "probability"; a
    ``ValueError`` for a head that is not linear (only :data:`HEAD_SCORE_NAMES`' heads become a Dense layer)."""
    head = _fitted_pipeline(classifier).steps[-1][1]
    head = head.estimator if isinstance(head, OneVsRestClassifier) else head
    if type(head) not in HEAD_SCORE_NAMES:
        raise ValueError(f"Cannot export a {type(head).__name__} head: only a linear one (LinearSVC, "
                         "LogisticRegression) is a Dense layer; its pipeline stays in scikit-learn.")
    return HEAD_SCORE_NAMES[type(head)]


def linear_head(classifier, width, name="linear_head"):
    """``features -> post-processing -> Dense``: a fitted pipeline with a linear head as a Keras model of
    ``width`` inputs (decision scores of a LinearSVC, class probabilities of a LogisticRegression)."""
    probabilities = head_score_name(classifier) == trained.PROBABILITY
    pipeline = _fitted_pipeline(classifier)
    postprocess, (step, head) = pipeline.named_steps["postprocess"], pipeline.steps[-1]
    inputs = keras.Input((width,), name="features")
    features = inputs
    if isinstance(postprocess, FNETransformer):
        features = postprocess.to_layer()(features)
    elif isinstance(postprocess, Normalizer):
        features = keras.layers.UnitNormalization(name="l2")(features)
    elif postprocess not in ("passthrough", None):
        raise ValueError(f"Cannot export the post-processing {postprocess!r}: only FNE, standardise, l2 and none.")
    multi_label = isinstance(head, OneVsRestClassifier)
    kernel, bias = _weights(head) if multi_label else (head.coef_.T, head.intercept_)
    if "row_space" in pipeline.named_steps:  # the head was fitted on X @ components_.T: fold the rotation in
        kernel = pipeline.named_steps["row_space"].components_.T @ kernel
    if kernel.shape[1] == 1 and not multi_label:  # binary: one score s for classes[1]; [-s, s], or softmax([0, s])
        low = np.zeros_like if probabilities else np.negative
        kernel, bias = np.concatenate([low(kernel), kernel], axis=1), np.concatenate([low(bias), bias])
    activation = ("sigmoid" if multi_label else "softmax") if probabilities else None
    dense = keras.layers.Dense(kernel.shape[1], activation=activation, name=step)
    outputs = dense(features)
    dense.set_weights([kernel.astype("float32"), bias.astype("float32")])
    return keras.Model(inputs, outputs, name=name)


def _weights(one_vs_rest):
    """``(kernel (features, classes), bias)`` of a fitted ``OneVsRestClassifier`` of linear heads, a column each."""
    constant = [index for index, estimator in enumerate(one_vs_rest.estimators_) if not hasattr(estimator, "coef_")]
    if constant:
        raise ValueError(f"Cannot export the one-vs-rest head: class(es) {constant} have the same label on every "
                         f"training image, so scikit-learn fitted no linear head for them.")
    return (np.concatenate([estimator.coef_ for estimator in one_vs_rest.estimators_]).T,
            np.concatenate([estimator.intercept_ for estimator in one_vs_rest.estimators_]))


def fne_model(extractor, classifier, name="fne_classifier"):
    """The whole FNE classifier: the :class:`~keras_tl.features.extraction.FeatureExtractor`'s pooled layers joined,
    then :func:`linear_head`.

    ``classifier`` is the fitted pipeline (or grid search) trained on ``extractor``'s features, in
    its column order.
    """
    outputs = extractor.pooled_model.outputs
    joined = keras.layers.Concatenate(name="joined")(outputs) if len(outputs) > 1 else outputs[0]
    return keras.Model(extractor.model.inputs, linear_head(classifier, extractor.num_features)(joined), name=name)


def save_fne_model(model, run_dir, class_names, source, image_size, method, score_name=trained.SVM_SCORE,
                   resize="squash", thresholds=None):
    """Write ``model.keras``, ``raw_model.keras`` and ``model.json`` (what :func:`keras_tl.analysis.trained.load_run`
    needs) atomically; ``score_name``: what the model outputs (:func:`head_score_name`), in the file's ``scores``
    field; ``resize``: how the run made images square (:func:`keras_tl.data.make_pipeline`), its ``resize`` field;
    ``thresholds``: a multi-label head's, one per class, in ``raw_model.keras`` and ``model.json``."""
    with runs.atomic_path(run_dir / "model.keras") as temporary:
        model.save(temporary)
    raw_model = raw_images.save_raw_model(model, run_dir, source, image_size, class_names, score_name, resize,
                                          thresholds)
    runs.write_json(run_dir / "model.json", {
        "kind": "fne", "method": method, "class_names": list(class_names), "source": source,
        "image_size": int(image_size), "resize": resize, "scores": score_name, "multi_label": thresholds is not None,
        "preprocessing": f"{source} preprocess_input on RGB 0..255, applied before the model",
        "raw_model": raw_model})
