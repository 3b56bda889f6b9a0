"""Domain adaptation: make features of a *source* domain (where the labels are) look like those of
a *target* domain (where the classifier will be used).

- :func:`coral`: CORrelation ALignment (Sun, Feng & Saenko 2016, "Return of Frustratingly Easy
  Domain Adaptation"). Whiten the source features with their own covariance, re-colour them with
  the target's; a classifier trained on the result is then applied to the target as it is. No
  target label is needed, only target features.
- :class:`GradientReversal`: the layer of domain-adversarial training (DANN, Ganin & Lempitsky
  2015): the identity going forward, the gradient times ``-strength`` going back, so the features
  below it learn to *confuse* a domain classifier put above it.
"""
import numpy as np

import keras


def _matrix_power(matrix, power):
    """``matrix ** power`` of a symmetric positive definite matrix, through its eigendecomposition."""
    values, vectors = np.linalg.eigh(matrix)
    values = np.clip(values, np.finfo(values.dtype).tiny, None)
    return (vectors * values ** power) @ vectors.T


def _as_features(name, values):
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or len(values) < 2:
        raise ValueError(f"{name} must be a 2-D array (samples, features) with at least 2 samples; "
                         f"got shape {values.shape}.")
    return values


def coral(source_features, target_features, eps=1.0):
    """The source features re-coloured with the target's covariance (CORAL, Sun et al. 2016).

    ``source @ (C_s + eps I)^(-1/2) @ (C_t + eps I)^(1/2)`` with ``C_s``, ``C_t`` the covariance
    matrices of the two sets (features in columns). ``eps`` (the paper's 1) keeps the whitening
    stable when features are many or correlated; with ``eps`` near 0 and full-rank covariances,
    the result has exactly the target's covariance. As in the paper, features should be on a
    common scale first (for example standardised); the means are left as they are.

    Returns a float64 array with the shape of ``source_features``.
    """
    source = _as_features("source_features", source_features)
    target = _as_features("target_features", target_features)
    if source.shape[1] != target.shape[1]:
        raise ValueError(f"source and target features must have the same columns; got {source.shape[1]} "
                         f"and {target.shape[1]}.")
    if eps < 0:
        raise ValueError(f"eps must be >= 0; got {eps}.")
    identity = np.eye(source.shape[1])
    whiten = _matrix_power(np.cov(source, rowvar=False) + eps * identity, -0.5)
    recolour = _matrix_power(np.cov(target, rowvar=False) + eps * identity, 0.5)
    return source @ whiten @ recolour


@keras.saving.register_keras_serializable(package="keras_tl")
class GradientReversal(keras.layers.Layer):
    """The identity forward; backward, the gradient multiplied by ``-strength`` (DANN's lambda).

    Put it between a feature extractor and a domain classifier: the classifier learns to tell the
    domains apart, and the extractor, receiving the reversed gradient, learns features in which
    it cannot. Works with the TensorFlow and JAX backends (``keras.ops.custom_gradient``).
    """

    def __init__(self, strength=1.0, **kwargs):
        super().__init__(**kwargs)
        self.strength = float(strength)

    def call(self, inputs):
        strength = self.strength

        @keras.ops.custom_gradient
        def reverse(x):
            def grad(*args, upstream=None):
                if upstream is None:
                    (upstream,) = args
                return keras.ops.multiply(upstream, -strength)

            return keras.ops.copy(x), grad

        return reverse(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "strength": self.strength}
