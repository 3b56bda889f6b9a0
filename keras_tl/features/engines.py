"""Inference engines for the CPU: a Keras model converted once to OpenVINO or ONNX Runtime, then run on numpy.

An engine made for inference runs the same network faster than TensorFlow on a CPU: it fuses each
convolution with the BatchNorm and activation after it, picks kernels for this processor and plans
the memory once (OpenVINO: https://docs.openvino.ai/ ; ONNX Runtime's graph optimisations:
https://onnxruntime.ai/docs/performance/model-optimizations/graph-optimizations.html). The
conversion is Keras's own ``model.export(path, format="openvino" | "onnx")`` (the ONNX one goes
through ``tf2onnx``). Figures: ``bench/bench_engines.py`` and bench/RESULTS.md.

- :data:`ENGINES` and :func:`resolve_engine`: ``tensorflow`` (the default), ``openvino``,
  ``onnxruntime``, or ``auto`` (the fastest one installed on a CPU-only machine, TensorFlow on a GPU);
- :func:`compile_model`: a model converted once, kept under ``$KERAS_TL_CACHE/engines/<key>`` (the
  key holds everything the converted file depends on: the weights' values, the layers, the input
  size, the converter's version), written to a temporary name and renamed, and loaded; a kept
  conversion that does not load (a truncated or deleted file) is set aside as ``<key>.damaged`` with
  a warning and converted again, and what a killed conversion left (``.<key>.*.part``) is removed;
- :class:`EngineStep`: one batch through it, as :func:`keras_tl.features.extraction.feature_step` runs one
  batch through TensorFlow, so :class:`~keras_tl.features.extraction.FeatureExtractor` (``engine=``) uses either.

An engine's features differ from TensorFlow's by about 1e-5 (another order of the sums), so the
feature cache key of an extractor names its engine.
"""
import hashlib
import importlib
import json
import os
import pathlib
import shutil
import tempfile
import warnings

import keras
import numpy as np

from keras_tl import data, distribute
from keras_tl.data.crops import ten_crops

ENGINES = ("tensorflow", "openvino", "onnxruntime", "auto")
# engine: (the modules it needs, the pip packages that hold them, keras_tl's extra, Keras's export format, file)
REQUIREMENTS = {
    "openvino": (("openvino",), "openvino", "openvino", "openvino", "model.xml"),
    "onnxruntime": (("onnxruntime", "tf2onnx", "onnx"), "onnxruntime tf2onnx onnx", "onnx", "onnx", "model.onnx"),
}
# how each engine runs a converted model: float32 throughout (on a CPU with bfloat16 units, AVX512-BF16 or
# AMX, OpenVINO would otherwise run in bfloat16, and features then differ by about 1e-1: a fifth of the
# FNE codes flipped, measured); part of the feature cache key (keras_tl.features.extraction.FeatureExtractor.cache_key)
RUN_OPTIONS = {"openvino": {"INFERENCE_PRECISION_HINT": "f32"}, "onnxruntime": {}}
FASTEST_FIRST = ("onnxruntime", "openvino")  # on a CPU, bench/RESULTS.md ("peers and limits")


def require(engine):
    """The modules ``engine`` needs, imported; a ``ModuleNotFoundError`` saying how to install a missing one."""
    modules, packages, extra, _, _ = REQUIREMENTS[engine]
    imported = []
    for name in modules:
        try:
            imported.append(importlib.import_module(name))
        except ImportError:
            raise ModuleNotFoundError(
                f"engine={engine!r} needs the package {name}, which is not installed: pip install {packages} "
                f"(in a keras_tl checkout: pip install -e '.[{extra}]'), or use engine='tensorflow'.") from None
    return imported


def installed(engine):
    """Whether every module ``engine`` needs imports."""
    try:
        require(engine)
    except ModuleNotFoundError:
        return False
    return True


def resolve_engine(engine="tensorflow", strategy=None):
    """The engine to run: ``engine`` checked (installed, and only with one device), ``auto`` chosen.

    ``auto`` is TensorFlow on a GPU or with a ``strategy`` of several devices, else the fastest
    engine installed (:data:`FASTEST_FIRST`), else TensorFlow.
    """
    if engine not in ENGINES:
        from keras_tl.messages import did_you_mean

        raise ValueError(f"engine={engine!r} is not one of {', '.join(ENGINES)}." + did_you_mean(str(engine), ENGINES))
    if engine == "auto":
        if distribute.has_gpu() or not _one_device(strategy):
            return "tensorflow"
        return next((name for name in FASTEST_FIRST if installed(name)), "tensorflow")
    if engine != "tensorflow":
        require(engine)
        if not _one_device(strategy):
            raise ValueError(f"engine={engine!r} runs on this machine's CPU, outside tf.distribute; a strategy= "
                             f"({type(strategy).__name__}) spreads TensorFlow over several devices. Use the default "
                             "strategy with it, or engine='tensorflow' with the strategy.")
    return engine


def _one_device(strategy):
    """Whether ``strategy`` is None or TensorFlow's default strategy (no distribution)."""
    if strategy is None:
        return True
    import tensorflow as tf

    return strategy is tf.distribute.get_strategy() and not tf.distribute.has_strategy()


def engines_folder():
    """Where converted models are kept: ``engines/`` in keras_tl's cache folder (``$KERAS_TL_CACHE``, as
    the decode check's)."""
    return data.decode_cache_file().parent / "engines"


def model_key(model, engine, description=()):
    """The folder name of ``model`` converted for ``engine``: ``description`` (the source, its layers,
    ...) and a digest of the weights' values, the input and output shapes and the converter's version."""
    digest = hashlib.sha1()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight.value)).tobytes())
    versions = [getattr(module, "__version__", "") for module in require(engine)]
    digest.update(json.dumps([list(description), model.name, engine, versions, keras.__version__, model.input_shape,
                              [output.shape for output in model.outputs]], default=str).encode())
    name = "-".join(str(part) for part in description[:1])
    return f"{engine}-{name}-{digest.hexdigest()[:16]}" if name else f"{engine}-{digest.hexdigest()[:16]}"


def compile_model(model, engine, description=(), cache_folder=None, verbose=True):
    """``model`` converted for ``engine`` (converted on first use, then read from ``cache_folder``,
    default :func:`engines_folder`), as a function from a float32 numpy batch to its (batch, D) outputs.

    Several outputs (an extractor's pooled layers) are joined along the last axis, as
    :func:`keras_tl.features.extraction.feature_step` joins them. Two processes converting the same model wait
    for each other (a lock), and a conversion is written to a temporary folder and renamed. A kept conversion
    that does not load is set aside as ``<key>.damaged`` (a warning names it) and converted again.
    """
    from filelock import FileLock

    modules = require(engine)
    folder = pathlib.Path(cache_folder or engines_folder()) / model_key(model, engine, description)
    path = folder / REQUIREMENTS[engine][4]
    folder.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(folder.parent)
    with FileLock(str(folder) + ".lock"):  # one process at a time converts, sets aside or loads this key
        if folder.exists():
            try:
                return load(modules, engine, path)
            except Exception as error:  # each engine has its own errors (OpenVINO RuntimeError, ONNX Runtime Fail...)
                damaged = folder.with_name(folder.name + ".damaged")
                shutil.rmtree(damaged, ignore_errors=True)  # an older one
                os.replace(folder, damaged)
                reason = (str(error).strip().splitlines() or [type(error).__name__])[-1]
                warnings.warn(f"The converted model in {folder} does not load ({reason}); moved to {damaged.name} "
                              "and converted again.", stacklevel=2)
        if verbose:
            print(f"  engine: converting {model.name} for {engine} into {folder}", flush=True)
        convert(model, engine, folder)
        return load(modules, engine, path)


def load(modules, engine, path):
    """The converted model at ``path`` loaded by ``engine`` (``modules``: :func:`require`'s), as a function
    from a float32 numpy batch to its outputs."""
    if engine == "openvino":
        compiled = modules[0].Core().compile_model(str(path), "CPU", RUN_OPTIONS["openvino"])
        return lambda images: compiled(images)[0]
    session = modules[0].InferenceSession(str(path), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    return lambda images: session.run(None, {input_name: images})[0]


def remove_stale_parts(folder):
    """Delete the temporary folders (``.<key>.*.part``) that killed conversions left in ``folder``, each only
    while no process holds its key's lock (a conversion that runs keeps its folder)."""
    from filelock import FileLock, Timeout

    for part in folder.glob(".*.part"):
        key = part.name[1:].rsplit(".", 2)[0]  # .<key>.<random>.part, as convert() names it
        try:
            with FileLock(str(folder / key) + ".lock", timeout=0):
                shutil.rmtree(part, ignore_errors=True)
        except Timeout:
            continue


def convert(model, engine, folder):
    """Write ``model`` (of one input; its outputs joined) for ``engine`` into ``folder``, through a temporary
    folder beside it."""
    outputs = model.outputs[0] if len(model.outputs) == 1 else keras.layers.Concatenate(name="joined")(model.outputs)
    model = keras.Model(model.inputs[0], outputs, name=model.name)
    model(np.zeros((1,) + tuple(model.input_shape[1:]), np.float32))  # Keras exports only a model once called
    temporary = pathlib.Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".part"))
    try:
        model.export(str(temporary / REQUIREMENTS[engine][4]), format=REQUIREMENTS[engine][3], verbose=False)
        shutil.rmtree(folder, ignore_errors=True)  # an incomplete folder left by hand
        os.replace(temporary, folder)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


class EngineStep:
    """One batch through a converted model (:func:`compile_model`), as the extractor's step: it takes a
    batch of images, or the iterator of a ``tf.data`` pipeline and reads its next batch (in Python:
    the engine runs outside TensorFlow's graph). With ``ten_crop`` the features of each image's ten
    crops (:func:`keras_tl.data.crops.ten_crops`) are averaged. Returns numpy (batch, D)."""

    def __init__(self, run, crop_size, ten_crop=False):
        self.run, self.crop_size, self.ten_crop = run, crop_size, ten_crop

    def __call__(self, images_or_iterator):
        images = (images_or_iterator.get_next()[0] if hasattr(images_or_iterator, "get_next")
                  else images_or_iterator)  # get_next() raises tf.errors.OutOfRangeError after the last batch
        images = keras.ops.convert_to_numpy(images).astype(np.float32, copy=False)
        if not self.ten_crop:
            return self.run(images)
        crops = keras.ops.convert_to_numpy(ten_crops(images, self.crop_size))
        features = self.run(np.ascontiguousarray(crops.reshape((-1,) + crops.shape[2:])))
        return features.reshape((10, len(images), -1)).mean(axis=0)
