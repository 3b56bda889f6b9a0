"""Grad-CAM: where in the image did a fine-tuned network look for its class?

Selvaraju et al. 2017, "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based
Localization" (ICCV). Take the last convolutional feature maps ``A`` (H', W', K) and the class
score ``y`` before the softmax; weight each map by the spatial mean of ``dy/dA`` (how much the
class cares about that channel) and keep the positive part of the weighted sum:

    heat = ReLU(sum_k mean_ij(dy/dA_ijk) * A_k)

The map has the resolution of the last conv layer (for MobileNet, 1/32 of the input); scale it
up to overlay it on the image (:func:`keras_tl.plots.plot_grad_cam`).

Works on the classifiers of :func:`keras_tl.training.recipe.build_classifier` (a chain: input ->
[augmentation] -> base -> pooling -> dropout -> softmax Dense), with the TensorFlow backend.
"""
import keras
import numpy as np


def _split_at_base(model):
    """``(layers before the base, the base, layers after it)`` of a chain-shaped classifier.

    The base is the nested model whose output is 4-D (wrapped in ``InferenceMode`` by
    :func:`keras_tl.training.recipe.build_classifier`); its output is the last conv feature map.
    """
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    for index in reversed(range(len(layers))):
        layer = layers[index]
        if (isinstance(layer, keras.Model) or hasattr(layer, "model")) and len(layer.output.shape) == 4:
            return layers[:index], layer, layers[index + 1:]
    raise ValueError(f"Grad-CAM needs a classifier with a nested convolutional base (4-D output), as "
                     f"fine_tune builds; {model.name} has none among {[layer.name for layer in layers]}.")


def grad_cam(model, image, class_index=None):
    """The Grad-CAM heat map ``(H', W')`` in 0..1 of ``class_index`` (default: the predicted class).

    ``image``: one model input (H, W, 3), already preprocessed for the source, as the model takes it
    (:meth:`keras_tl.analysis.trained.TrainedModel.model_inputs` makes it from a file).
    """
    import tensorflow as tf

    before, base, after = _split_at_base(model)
    *head, classifier = after
    if not isinstance(classifier, keras.layers.Dense):
        raise ValueError(f"Grad-CAM expects a Dense classifier as the last layer; {model.name} ends with "
                         f"{type(classifier).__name__}.")
    inputs = tf.convert_to_tensor(np.asarray(image, dtype="float32")[None])
    for layer in before:
        inputs = layer(inputs, training=False)
    with tf.GradientTape() as tape:
        feature_maps = base(inputs, training=False)
        tape.watch(feature_maps)
        pooled = feature_maps
        for layer in head:
            pooled = layer(pooled, training=False)
        scores = tf.matmul(pooled, classifier.kernel) + classifier.bias  # the class scores before the softmax
        if class_index is None:
            class_index = int(tf.argmax(scores[0]))
        score = scores[0, class_index]
    gradients = tape.gradient(score, feature_maps)[0]
    weights = tf.reduce_mean(gradients, axis=(0, 1))
    heat = tf.nn.relu(tf.reduce_sum(feature_maps[0] * weights, axis=-1)).numpy()
    peak = heat.max()
    return heat / peak if peak > 0 else heat
