"""Domain adaptation: make features of a *source* domain (where the labels are) look like those of
a *target* domain (where the classifier will be used).

- :func:`coral`: CORrelation ALignment (Sun, Feng & Saenko 2016, "Return of Frustratingly Easy
  Domain Adaptation"). Whiten the source features with their own covariance, re-colour them with
  the target's; a classifier trained on the result is then applied to the target as it is. No
  target label is needed, only target features.
- :class:`GradientReversal`: the layer of domain-adversarial training (DANN, Ganin & Lempitsky
  2015): the identity going forward, the gradient times ``-strength`` going back, so the features
  below it learn to *confuse* a domain classifier put above it.
- :class:`DANN`: a Keras model that trains a feature extractor, a label head and, through the
  reversal layer, a domain head on labelled source and *unlabelled* target batches (Ganin et al.
  2016, "Domain-Adversarial Training of Neural Networks", JMLR 17), with the paper's ramp of the
  reversal strength (:func:`adaptation_strength`). ``coral_weight`` adds Deep CORAL's loss
  (:func:`coral_loss`, Sun & Saenko 2016, "Deep CORAL", ECCV workshops) to the label loss.
"""
import math

import keras
import numpy as np


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

    def call(self, inputs, strength=None):
        """``strength``: a number or scalar tensor used instead of the layer's own for this call
        (:class:`DANN` passes its ramp, which changes every step)."""
        strength = self.strength if strength is None else strength

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


def adaptation_strength(progress):
    """DANN's ramp of the reversal strength: ``2 / (1 + exp(-10 p)) - 1`` at training progress ``p``
    (0 at the start, 1 at the end; Ganin et al. 2016, section 5.2.2). It starts at 0, while the domain
    classifier is still noise, and nears 1 by mid-training. Works on numbers and on tensors."""
    return 2.0 / (1.0 + keras.ops.exp(-10.0 * keras.ops.convert_to_tensor(progress, "float32"))) - 1.0


def coral_loss(source_features, target_features):
    """Deep CORAL's loss: ``||C_s - C_t||_F^2 / (4 d^2)``, the distance between the covariance
    matrices of a source and a target batch of ``d`` features (Sun & Saenko 2016, equation 1).
    Differentiable (``keras.ops``), so it can be minimised with the label loss; 0 when both
    batches have the same covariance."""
    def covariance(features):
        centred = features - keras.ops.mean(features, axis=0, keepdims=True)
        count = keras.ops.cast(keras.ops.shape(features)[0], features.dtype)
        return keras.ops.matmul(keras.ops.transpose(centred), centred) / (count - 1.0)

    source = keras.ops.convert_to_tensor(source_features, "float32")
    target = keras.ops.convert_to_tensor(target_features, "float32")
    width = keras.ops.cast(keras.ops.shape(source)[1], "float32")
    return keras.ops.sum(keras.ops.square(covariance(source) - covariance(target))) / (4.0 * width * width)


class DANN(keras.Model):
    """A feature extractor with a label head and a domain head, trained by ``fit_domains`` on
    labelled source and unlabelled target data (Ganin et al. 2016, figure 1).

    Every step takes a source batch (images or features, and their labels) and a target batch
    (inputs only) and minimises::

        label loss (source) + coral_weight * coral_loss(source features, target features)
                            + domain loss (source = 0, target = 1)

    The domain head sits behind a :class:`GradientReversal` whose strength is
    ``domain_weight * adaptation_strength(p)``: the head learns to tell the domains apart while the
    extractor learns to make that impossible. ``domain_weight=0`` leaves the features alone (the
    domain head still trains, so its accuracy shows how separable the domains are): with
    ``coral_weight=0`` too, that is the *source-only* baseline; with ``coral_weight > 0``, Deep CORAL.

    ``feature_extractor``: any Keras model from inputs to a feature vector (a small ``Dense``
    network on precomputed features, or a conv network such as MobileNet with global pooling; keep
    its BatchNorm in inference mode with :class:`keras_tl.InferenceMode` when fine-tuning one).
    Called, the model returns class probabilities, so ``predict`` and ``evaluate(x, labels)`` (after
    ``compile``, which ``fit_domains`` does) work as usual. The custom ``train_step`` follows Keras's
    guide "Customizing what happens in fit()" and needs the TensorFlow backend.
    """

    def __init__(self, feature_extractor, num_classes, domain_units=64, domain_weight=1.0, coral_weight=0.0,
                 **kwargs):
        super().__init__(**kwargs)
        if int(num_classes) < 2:
            raise ValueError(f"num_classes must be at least 2; got {num_classes}.")
        if domain_weight < 0 or coral_weight < 0:
            raise ValueError(f"domain_weight and coral_weight must be >= 0; got domain_weight={domain_weight}, "
                             f"coral_weight={coral_weight}.")
        self.feature_extractor = feature_extractor
        self.num_classes = int(num_classes)
        self.domain_weight = float(domain_weight)
        self.coral_weight = float(coral_weight)
        self.label_head = keras.layers.Dense(self.num_classes, name="label_logits")
        self.reversal = GradientReversal(name="gradient_reversal")
        self.domain_head = keras.Sequential([keras.layers.Dense(domain_units, activation="relu"),
                                             keras.layers.Dense(1)], name="domain_head")
        self.steps_done = keras.Variable(0.0, trainable=False, name="steps_done")
        self.total_steps = keras.Variable(1.0, trainable=False, name="total_steps")
        self.trackers = {name: keras.metrics.Mean(name=name)
                         for name in ("label_loss", "domain_loss", "coral_loss", "strength")}
        self.trackers["label_accuracy"] = keras.metrics.SparseCategoricalAccuracy(name="label_accuracy")
        self.trackers["domain_accuracy"] = keras.metrics.BinaryAccuracy(name="domain_accuracy", threshold=0.0)

    def call(self, inputs, training=False):
        return keras.ops.softmax(self.label_head(self.feature_extractor(inputs, training=training)))

    def progress(self):
        """How far ``fit_domains`` has gone, from 0 to 1 (the paper's ``p``)."""
        return keras.ops.minimum(self.steps_done / self.total_steps, 1.0)

    def train_step(self, data):
        import tensorflow as tf

        (source_x, source_y), target_x = data
        strength = self.domain_weight * adaptation_strength(self.progress())
        domains = keras.ops.concatenate([keras.ops.zeros((keras.ops.shape(source_x)[0], 1)),
                                         keras.ops.ones((keras.ops.shape(target_x)[0], 1))], axis=0)
        with tf.GradientTape() as tape:
            source_features = self.feature_extractor(source_x, training=True)
            target_features = self.feature_extractor(target_x, training=True)
            label_logits = self.label_head(source_features)
            label_loss = keras.ops.mean(keras.losses.sparse_categorical_crossentropy(
                source_y, label_logits, from_logits=True))
            features = keras.ops.concatenate([source_features, target_features], axis=0)
            domain_logits = self.domain_head(self.reversal(features, strength=strength))
            domain_loss = keras.ops.mean(keras.losses.binary_crossentropy(domains, domain_logits, from_logits=True))
            alignment = coral_loss(source_features, target_features)
            loss = label_loss + domain_loss + self.coral_weight * alignment
        variables = self.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        self.steps_done.assign_add(1.0)
        for name, value in (("label_loss", label_loss), ("domain_loss", domain_loss), ("coral_loss", alignment),
                            ("strength", strength)):
            self.trackers[name].update_state(value)
        self.trackers["label_accuracy"].update_state(source_y, label_logits)
        self.trackers["domain_accuracy"].update_state(domains, domain_logits)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def test_step(self, data):
        x, y = data[:2]
        label_logits = self.label_head(self.feature_extractor(x, training=False))
        self.trackers["label_loss"].update_state(keras.ops.mean(
            keras.losses.sparse_categorical_crossentropy(y, label_logits, from_logits=True)))
        self.trackers["label_accuracy"].update_state(y, label_logits)
        return {name: self.trackers[name].result() for name in ("label_loss", "label_accuracy")}

    def fit_domains(self, source_x, source_y, target_x, epochs=10, batch_size=32, learning_rate=1e-3, seed=0,
                    verbose=0):
        """Train on labelled source and unlabelled target data; return the Keras ``History``.

        An epoch is as many steps as the larger domain needs at ``batch_size``; each step draws a
        shuffled batch of each (the smaller one repeats). Progress ``p`` runs from 0 to 1 over all
        ``epochs``; Adam's learning rate decays as ``learning_rate / (1 + 10 p) ** 0.75``, the
        paper's schedule. There is no target label to pass: adaptation never sees one. ``seed``
        sets the batch order and, through ``keras.utils.set_random_seed``, the heads' first weights.
        ``history.history`` holds, per epoch, both heads' losses and accuracies (on the training
        batches), the CORAL loss and the mean reversal strength.
        """
        import tensorflow as tf

        source_x, target_x = np.asarray(source_x, "float32"), np.asarray(target_x, "float32")
        source_y = np.asarray(source_y, "int32")
        if len(source_x) != len(source_y):
            raise ValueError(f"source_x and source_y must have the same length; got {len(source_x)} "
                             f"and {len(source_y)}.")
        if source_x.shape[1:] != target_x.shape[1:]:
            raise ValueError(f"source_x and target_x must have the same sample shape; got {source_x.shape[1:]} "
                             f"and {target_x.shape[1:]}.")
        if min(len(source_x), len(target_x)) < 2 or batch_size < 2:
            raise ValueError(f"batch_size and each domain need at least 2 samples (covariances); got "
                             f"batch_size={batch_size}, {len(source_x)} source and {len(target_x)} target samples.")
        steps_per_epoch = math.ceil(max(len(source_x), len(target_x)) / batch_size)

        def batches(values, count, offset):
            return (tf.data.Dataset.from_tensor_slices(values).shuffle(count, seed=seed + offset)
                    .repeat().batch(batch_size, drop_remainder=True))

        keras.utils.set_random_seed(seed)
        data = tf.data.Dataset.zip((batches((source_x, source_y), len(source_x), 0),
                                    batches(target_x, len(target_x), 1)))
        self.steps_done.assign(0.0)
        self.total_steps.assign(float(steps_per_epoch * epochs))
        self.compile(optimizer=keras.optimizers.Adam(lambda: learning_rate / (1.0 + 10.0 * self.progress()) ** 0.75),
                     jit_compile=False)  # XLA: slower to start
        return self.fit(data.prefetch(2), epochs=epochs, steps_per_epoch=steps_per_epoch,
                        shuffle=False, verbose=verbose)
