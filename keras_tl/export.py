"""One Keras model from an FNE run: backbone, pooling, post-processing and the linear SVM together.

The FNE job trains a scikit-learn pipeline (post-processing -> ``LinearSVC``) on pooled features.
:func:`fne_model` joins it to the network that made the features, so the whole classifier is
one ``.keras`` file that Keras alone can load and serve:

``images -> backbone -> per-layer global average pooling -> concatenation -> svm_head``

where ``svm_head`` is ``[FullNetworkEmbedding | UnitNormalization] -> Dense``, the Dense layer
holding the SVM's ``coef_.T`` and ``intercept_``; its outputs are the SVM decision scores
(Cortes & Vapnik 1995: one-vs-rest, the largest score wins). A binary SVM has one score ``s``
for the second class; the model returns ``[-s, s]`` so that ``argmax`` picks the class as
scikit-learn does.

The model takes the source's *preprocessed* images (``source.preprocess_input`` of RGB 0..255),
as a fine-tuned run's ``model.keras`` does; :func:`keras_tl.trained.load_run` applies it.
:func:`save_fne_model` writes ``model.keras`` and ``model.json`` (class names, source, image
size, method) into the run folder.
"""
import keras
import numpy as np
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import Normalizer

from keras_tl import runs
from keras_tl.full_network_embedding import FNETransformer


def _fitted_pipeline(classifier):
    """The fitted pipeline itself, or the best one a grid search refitted."""
    return classifier.best_estimator_ if isinstance(classifier, GridSearchCV) else classifier


def svm_head(classifier, width, name="svm_head"):
    """``features -> post-processing -> Dense(SVM)``: a fitted pipeline as a Keras model of ``width`` inputs."""
    pipeline = _fitted_pipeline(classifier)
    postprocess, svm = pipeline.named_steps["postprocess"], pipeline.named_steps["svm"]
    inputs = keras.Input((width,), name="features")
    features = inputs
    if isinstance(postprocess, FNETransformer):
        features = postprocess.to_layer()(features)
    elif isinstance(postprocess, Normalizer):
        features = keras.layers.UnitNormalization(name="l2")(features)
    elif postprocess not in ("passthrough", None):
        raise ValueError(f"Cannot export the post-processing {postprocess!r}: only FNE, standardise, l2 and none.")
    kernel, bias = svm.coef_.T, svm.intercept_
    if kernel.shape[1] == 1:  # binary: one score s for classes[1]; outputs [-s, s]
        kernel, bias = np.concatenate([-kernel, kernel], axis=1), np.concatenate([-bias, bias])
    dense = keras.layers.Dense(kernel.shape[1], name="svm")
    outputs = dense(features)
    dense.set_weights([kernel.astype("float32"), bias.astype("float32")])
    return keras.Model(inputs, outputs, name=name)


def fne_model(extractor, classifier, name="fne_svm"):
    """The whole FNE classifier: the :class:`~keras_tl.extract.FeatureExtractor`'s pooled layers joined,
    then :func:`svm_head`.

    ``classifier`` is the fitted pipeline (or grid search) trained on ``extractor``'s features, in
    its column order.
    """
    outputs = extractor.pooled_model.outputs
    joined = keras.layers.Concatenate(name="joined")(outputs) if len(outputs) > 1 else outputs[0]
    return keras.Model(extractor.model.inputs, svm_head(classifier, extractor.num_features)(joined), name=name)


def save_fne_model(model, run_dir, class_names, source, image_size, method):
    """Write ``model.keras`` and ``model.json`` (what :func:`keras_tl.trained.load_run` needs) atomically."""
    with runs.atomic_path(run_dir / "model.keras") as temporary:
        model.save(temporary)
    runs.write_json(run_dir / "model.json", {
        "kind": "fne", "method": method, "class_names": list(class_names), "source": source,
        "image_size": int(image_size), "scores": "svm decision scores",
        "preprocessing": f"{source} preprocess_input on RGB 0..255, applied before the model"})
