"""The Full-Network Embedding (FNE): standardise every feature, then discretise it to {-1, 0, 1}.

Garcia-Gasulla et al. 2018, "On the Behavior of Convolutional Nets for Feature Extraction" (JAIR)
and "An Out-of-the-box Full-network Embedding for Convolutional Neural Networks" (ICBK):

1. take the activations of *every* conv layer (spatially averaged) and of the FC layers
   (:mod:`keras_tl.features.extraction` does this step);
2. standardise each feature with the mean and standard deviation of the training set;
3. discretise to {-1, 0, 1}: below -0.25 is -1 (unusually low), above 0.15 is 1 (unusually high).

Steps 2-3 in two forms that give the same numbers:

- :class:`FullNetworkEmbedding`: a Keras layer that learns its statistics with ``adapt()``, like
  ``keras.layers.Normalization``, and saves inside a ``.keras`` model;
- :class:`FNETransformer`: a scikit-learn transformer (``mean_``, ``std_``) for pipelines with a
  ``LinearSVC``; :meth:`FNETransformer.to_layer` turns a fitted one into the Keras layer.

A linear SVM on the embedding is compared with the classic single-layer baseline: the last conv
layer, average pooled and L2-normalised (:func:`postprocessor` names these choices).

``reference="hpai"`` follows HPAI-BSC's ``fne`` package where it differs cheaply: unbiased
standard deviation and ``torch.bucketize`` boundaries (a value equal to ``lower`` becomes -1).
``docs/fne.md`` tabulates every difference.
"""
import warnings

import keras
import numpy as np
from keras import ops
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.preprocessing import Normalizer
from sklearn.utils.validation import check_is_fitted, validate_data

DEFAULT_THRESHOLDS = (-0.25, 0.15)
MAX_THRESHOLD = 10.0  # thresholds are in standard deviations: beyond +-10 every feature maps to 0
POSTPROCESSING = ("none", "l2", "standardise", "fne")
REFERENCES = ("keras_tl", "hpai")


def _check_thresholds(lower, upper):
    if not all(np.isfinite(value) and abs(value) <= MAX_THRESHOLD for value in (lower, upper)):
        raise ValueError(f"The thresholds are in standard deviations and must lie within -{MAX_THRESHOLD:g} .. "
                         f"{MAX_THRESHOLD:g}; got lower={lower}, upper={upper}.")
    if not lower < upper:
        raise ValueError(f"The lower threshold must be below the upper one; got lower={lower}, upper={upper}.")


def _check_reference(reference):
    if reference not in REFERENCES:
        raise ValueError(f"Unknown FNE reference {reference!r}; choose from {', '.join(REFERENCES)}.")


def _renamed_discretize(discretise, discretize):
    """``discretise``, or the value given under its 0.1 spelling ``discretize=`` (with a DeprecationWarning)."""
    if discretize is None:
        return discretise
    warnings.warn("discretize= is spelled discretise= since keras_tl 0.2 (like \"standardise\"); the old spelling "
                  "goes in 0.3. A model saved by 0.1 holds it: save the model again to update it.",
                  DeprecationWarning, stacklevel=3)
    return discretize


def _ddof(reference, count):
    """Delta degrees of freedom of the std: 1 (unbiased) for the HPAI reference, when there are 2+ samples."""
    return 1 if reference == "hpai" and count > 1 else 0


@keras.saving.register_keras_serializable(package="keras_tl")
class FullNetworkEmbedding(keras.layers.Layer):
    """Standardise each feature with train-set statistics, then discretise to {-1, 0, 1}.

    Used like ``keras.layers.Normalization``: call ``adapt(train_features)`` once, then apply it.
    The mean, standard deviation and the number of samples adapted on are non-trainable weights,
    so they are saved with the model. A feature with zero standard deviation maps to 0.

    Args:
        lower, upper: discretisation thresholds (paper: -0.25 and 0.15). Values below ``lower``
            become -1, above ``upper`` become 1, the rest 0.
        discretise: False stops after standardisation (the "standardise" ablation).
        reference: "keras_tl" (population std, strict thresholds) or "hpai" (unbiased std, a value
            equal to ``lower`` becomes -1, as ``torch.bucketize`` does); see ``docs/fne.md``.
        discretize: the 0.1 spelling of ``discretise`` (deprecated; a model saved by 0.1 holds it).
    """

    def __init__(self, lower=DEFAULT_THRESHOLDS[0], upper=DEFAULT_THRESHOLDS[1], discretise=True,
                 reference="keras_tl", discretize=None, **kwargs):
        super().__init__(**kwargs)
        discretise = _renamed_discretize(discretise, discretize)
        _check_thresholds(lower, upper)
        _check_reference(reference)
        self.lower, self.upper, self.discretise = float(lower), float(upper), bool(discretise)
        self.reference = reference

    def build(self, input_shape):
        features = input_shape[-1]
        self.mean = self.add_weight(name="mean", shape=(features,), initializer="zeros", trainable=False)
        self.std = self.add_weight(name="std", shape=(features,), initializer="ones", trainable=False)
        self.count = self.add_weight(name="count", shape=(), initializer="zeros", trainable=False)

    @property
    def is_adapted(self):
        return self.built and float(ops.convert_to_numpy(self.count)) > 0

    def adapt(self, data):
        """Compute the per-feature mean and standard deviation of ``data`` (population, or unbiased for "hpai").

        ``data`` is what ``keras.layers.Normalization.adapt`` takes: a 2-D array (samples, features),
        a list or tuple of such batches, or a batched ``tf.data.Dataset``; as in ``Normalization``, a
        dataset of ``(features, labels)`` tuples is used for its features and the labels are ignored.
        One pass in float64, batch by batch (:func:`_add_batch`), so a large feature matrix (or a
        memory map) needs no second copy in memory, and the std stays exact when the mean is far above it.
        """
        count, mean, squared_deviations = 0, 0.0, 0.0
        for batch in _batches(data):
            if not self.built:
                self.build(batch.shape)
            width = int(self.mean.shape[0])
            if batch.shape[1] != width:
                raise ValueError(f"adapt() got data of shape {batch.shape}, but this layer was built for "
                                 f"inputs of shape (None, {width}); make a new layer for another width.")
            if len(batch):
                count, mean, squared_deviations = _add_batch(count, mean, squared_deviations, batch)
        if not count:
            raise ValueError("adapt() got no samples; give a non-empty 2-D array or dataset of batches.")
        variance = squared_deviations / (count - _ddof(self.reference, count))
        self.set_statistics(mean, np.sqrt(variance), count)

    def set_statistics(self, mean, std, count):
        """Set the learned statistics directly (for example from a fitted :class:`FNETransformer`)."""
        if not self.built:
            self.build((None, len(mean)))
        self.mean.assign(np.asarray(mean, dtype="float32"))
        self.std.assign(np.asarray(std, dtype="float32"))
        self.count.assign(float(count))

    def call(self, inputs):
        mean, std = ops.convert_to_tensor(self.mean), ops.convert_to_tensor(self.std)
        has_spread = ops.greater(std, 0.0)
        standardised = ops.where(has_spread, (inputs - mean) / ops.where(has_spread, std, 1.0), 0.0)
        if not self.discretise:
            return standardised
        high = ops.cast(ops.greater(standardised, self.upper), standardised.dtype)
        below = ops.less_equal if self.reference == "hpai" else ops.less
        low = ops.cast(below(standardised, self.lower), standardised.dtype)
        return high - low

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "lower": self.lower, "upper": self.upper, "discretise": self.discretise,
                "reference": self.reference}


def _add_batch(count, mean, squared_deviations, batch):
    """The count, mean and sum of squared deviations from the mean (M2) of the samples so far and ``batch``.

    Chan, Golub & LeVeque (1979), "Updating Formulae and a Pairwise Algorithm for Computing Sample
    Variances": Welford's update generalised to batches. Each batch's M2 is summed around the batch's
    own mean, so no large squares cancel (a sum of squares minus the squared mean loses the std when
    the mean is 1e7 times the std); the two parts are joined with ``delta**2 * n_a * n_b / n``.
    The first batch is added to ``(0, 0.0, 0.0)``.
    """
    batch_count = batch.shape[0]
    batch_mean = batch.mean(axis=0)
    batch_squared_deviations = np.square(batch - batch_mean).sum(axis=0)
    total = count + batch_count
    delta = batch_mean - mean
    mean = mean + delta * (batch_count / total)
    joined = np.square(delta) * (count * batch_count / total)
    return total, mean, squared_deviations + batch_squared_deviations + joined


def _batches(data, rows=4096):
    """Float64 numpy batches of ``data``, each checked to be 2-D (samples, features).

    ``data`` is a 2-D array (cut into chunks of ``rows`` rows), a list or tuple of 2-D batches, or a
    ``tf.data.Dataset`` of batches or of ``(features, labels, ...)`` tuples, of which the features are used.
    """
    is_dataset = hasattr(data, "as_numpy_iterator")
    if is_dataset:
        batches, source = (_features(element) for element in data.as_numpy_iterator()), "tf.data.Dataset"
    elif isinstance(data, (list, tuple)) and data and np.ndim(data[0]) == 2:
        batches, source = data, f"{type(data).__name__} of batches"
    else:
        data = data if hasattr(data, "shape") else np.asarray(data)
        if len(data.shape) != 2:
            raise ValueError(f"adapt() expects a 2-D array (samples, features), a list of 2-D batches or a batched "
                             f"tf.data.Dataset; got an array of shape {tuple(data.shape)}.")
        batches, source = (data[start:start + rows] for start in range(0, data.shape[0], rows)), "array"
    for number, batch in enumerate(batches, start=1):
        batch = np.asarray(ops.convert_to_numpy(batch), dtype=np.float64)
        if batch.ndim != 2:
            hint = " (batch the dataset first, e.g. dataset.batch(256))" if is_dataset and batch.ndim == 1 else ""
            raise ValueError(f"adapt() expects 2-D batches (samples, features); batch {number} of the {source} has "
                             f"shape {batch.shape}{hint}.")
        yield batch


def _features(element):
    """The features of a dataset element: the element itself, or the first item of ``(features, labels, ...)``."""
    return element[0] if isinstance(element, tuple) else element


class FNETransformer(TransformerMixin, BaseEstimator):
    """The FNE's post-processing as a scikit-learn transformer, for pipelines with a classifier.

    ``fit`` learns each feature's mean and population standard deviation (``mean_``, ``std_``) on
    the training features, so every few-shot repeat uses the statistics of its own training
    subset; ``transform`` standardises (a feature with ``std_ == 0`` gives 0) and, with
    ``discretise``, maps to {-1, 0, 1}. float64 input stays float64, float32 stays float32.
    ``reference="hpai"``: unbiased std and ``torch.bucketize`` boundaries (see :class:`FullNetworkEmbedding`).
    ``discretize``: the 0.1 spelling of ``discretise`` (deprecated; as in scikit-learn, ``fit`` warns).
    """

    def __init__(self, lower=DEFAULT_THRESHOLDS[0], upper=DEFAULT_THRESHOLDS[1], discretise=True,
                 reference="keras_tl", discretize=None):
        self.lower = lower
        self.upper = upper
        self.discretise = discretise
        self.reference = reference
        self.discretize = discretize

    def fit(self, X, y=None):
        self.discretise_ = _renamed_discretize(self.discretise, self.discretize)
        _check_thresholds(self.lower, self.upper)
        _check_reference(self.reference)
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        self.mean_ = X.mean(axis=0, dtype=np.float64).astype(X.dtype)
        self.std_ = X.std(axis=0, dtype=np.float64, ddof=_ddof(self.reference, X.shape[0])).astype(X.dtype)
        self.n_samples_seen_ = X.shape[0]
        return self

    def transform(self, X):
        check_is_fitted(self, ("mean_", "std_"))
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        has_spread = self.std_ > 0
        standardised = np.where(has_spread, (X - self.mean_) / np.where(has_spread, self.std_, 1), 0).astype(X.dtype)
        if not self.discretise_:
            return standardised
        low = standardised <= self.lower if self.reference == "hpai" else standardised < self.lower
        return (standardised > self.upper).astype(X.dtype) - low.astype(X.dtype)

    def to_layer(self, name="full_network_embedding"):
        """A :class:`FullNetworkEmbedding` holding this transformer's statistics (the same numbers, in Keras)."""
        check_is_fitted(self, ("mean_", "std_"))
        layer = FullNetworkEmbedding(self.lower, self.upper, discretise=self.discretise_, reference=self.reference,
                                     name=name)
        layer.set_statistics(self.mean_, self.std_, self.n_samples_seen_)
        return layer

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


def postprocessor(name, thresholds=DEFAULT_THRESHOLDS):
    """The scikit-learn step for a post-processing choice: none, l2, standardise or fne."""
    if name == "none":
        return "passthrough"
    if name == "l2":
        return Normalizer(norm="l2")
    if name in ("standardise", "fne"):
        return FNETransformer(*thresholds, discretise=name == "fne")
    raise ValueError(f"Unknown post-processing {name!r}; choose from {', '.join(POSTPROCESSING)}.")
