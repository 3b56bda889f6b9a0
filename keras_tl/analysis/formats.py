"""A run's model for serving and for devices: SavedModel, TensorFlow Lite, ONNX and OpenVINO IR, each checked.

:func:`export_run` writes one format of a finished run's raw-image model
(:mod:`keras_tl.analysis.raw_images`: RGB 0..255 in, the source's preprocessing inside, the run's
scores out) into a folder that whoever serves it needs nothing else from:

- ``savedmodel``: ``saved_model/``, whose ``serving_default`` signature takes a batch of encoded
  image files (``image_bytes``: JPEG, PNG, GIF or BMP strings, any size) and returns ``classes``
  (the class names, best first) and their ``scores``; TensorFlow alone loads it (TF Serving too);
- ``tflite``: ``model.tflite`` in float32, or ``quantize="float16"`` (half the size) or ``"int8"``
  (a quarter, calibrated on up to :data:`CALIBRATION_IMAGES` of the run's training images), for
  the LiteRT interpreter (``ai-edge-litert``) on a phone or a Raspberry Pi;
- ``onnx``: ``model.onnx``, for ONNX Runtime; ``openvino``: ``model.xml`` and ``model.bin``, for
  OpenVINO (both converted as :mod:`keras_tl.features.engines` converts its engines).

The three device formats take float32 RGB images in 0..255 of the run's size, ``(batch, size, size, 3)``:
the caller resizes (squashed, cropped or padded, bilinear, as the run's pipeline did: ``export.json``'s ``input``);
the preprocessing is inside.
Each folder also holds ``labels.txt`` (one class name a line) and ``export.json``: the format, the
input, the class names, the file size, and the export measured against the Keras model on the run's
test images: top-1 agreement, accuracy, batch-1 latency. A float export should agree on at least
:data:`FLOAT_AGREEMENT` of the images; an int8 one should lose at most :data:`INT8_MAX_DROP` of
accuracy; ``export.json`` (and a warning) says by how much one misses.

Everything is written into a temporary folder beside the output and renamed at the end: a failed
conversion leaves nothing behind.
"""
import os
import pathlib
import shutil
import tempfile
import time
import warnings

import numpy as np

from keras_tl import runs
from keras_tl.analysis import interpret, raw_images, trained
from keras_tl.features import engines

FORMATS = ("savedmodel", "tflite", "onnx", "openvino")
QUANTIZATIONS = ("float16", "int8")  # TensorFlow Lite's; the other formats are float32
MODEL_FILES = {"savedmodel": "saved_model", "tflite": "model.tflite", "onnx": "model.onnx", "openvino": "model.xml"}
FORMAT_ENGINES = {"onnx": "onnxruntime", "openvino": "openvino"}  # converted and run as keras_tl.features.engines does
EXPORT_FILE, LABELS_FILE = "export.json", "labels.txt"
CALIBRATION_IMAGES = 200  # training images that calibrate an int8 model's ranges
FLOAT_AGREEMENT = 0.995  # the least top-1 agreement of a float export with the Keras model
INT8_MAX_DROP = 0.01  # the most test accuracy an int8 export may lose against the Keras model
SERVING_INPUT = "image_bytes"  # the SavedModel's input, named as Google's serving names binary (REST: {"b64": ...})
TF_DECODES = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM")  # the files tf.io.decode_image reads, by their start


def check_format(format, quantize=None):
    """A ``ValueError`` naming ``format=`` or ``quantize=`` when they are not a format and its quantization."""
    from keras_tl.messages import did_you_mean

    if format not in FORMATS:
        raise ValueError(f"format={format!r} is not one of {', '.join(FORMATS)}." + did_you_mean(str(format), FORMATS))
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize={quantize!r} is not one of {', '.join(QUANTIZATIONS)}."
                         + did_you_mean(str(quantize), QUANTIZATIONS))
    if quantize is not None and format != "tflite":
        raise ValueError(f"quantize={quantize!r} is for format='tflite'; the {format} export is float32. Give "
                         f"format='tflite', or no quantize=.")


def default_output_dir(run_dir, format, quantize=None):
    """Where an export goes by default: ``RUN_DIR/export/<format>[-<quantize>]``."""
    return pathlib.Path(run_dir) / "export" / (format + (f"-{quantize}" if quantize else ""))


def export_run(run_dir, format, quantize=None, output_dir=None, dataset=None, verbose=True):
    """Export the run in ``run_dir`` as ``format`` (one of :data:`FORMATS`; ``quantize``: one of
    :data:`QUANTIZATIONS`, TensorFlow Lite only) into ``output_dir`` (default :func:`default_output_dir`),
    checked on the test images of the run's dataset (or of ``dataset``, a name or folder); return what
    ``export.json`` holds.

    An ``output_dir`` that exists is replaced only when it holds an earlier export (its ``export.json``)
    or nothing.
    """
    check_format(format, quantize)
    modules = require(format)
    run = trained.load_run(run_dir)
    output_dir = pathlib.Path(output_dir) if output_dir else default_output_dir(run_dir, format, quantize)
    check_output_dir(output_dir)
    images = interpret.run_dataset(run_dir, dataset, verbose=verbose)
    test = images.test
    labels = interpret.labels_in_model_order(test.labels, images.class_names, run.classes)
    if not len(test):
        raise ValueError(f"The test split of {images.name} has no images to check the export on; give dataset= "
                         f"(a name or folder with test images).")
    if verbose:
        quantized = f" ({quantize})" if quantize else ""
        print(f"Exporting {run.run_dir} ({run.kind} run, {run.source.name}, {run.image_size}x{run.image_size} px, "
              f"{len(run.classes)} classes) as {format}{quantized} into {output_dir}; checking it on {len(test)} "
              f"test images of {images.name}", flush=True)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(dir=output_dir.parent, prefix=f".{output_dir.name}.", suffix=".part"))
    try:
        model = run.raw_model if format == "savedmodel" else fixed_size_model(run)
        calibration = calibration_images(run, images.train) if quantize == "int8" else None
        convert(model, format, quantize, staging, run.classes, calibration)
        predict = load_export(staging, format, run.classes, modules)
        report = describe_export(run, format, quantize, staging, calibration)
        report.update(check_export(run, predict, format, test, labels, quantize, verbose=verbose))
        (staging / LABELS_FILE).write_text("".join(f"{name}\n" for name in run.classes))
        runs.write_json(staging / EXPORT_FILE, report)
        replace_folder(staging, output_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if not report["meets_target"]:
        advice = " Try quantize='float16'." if quantize == "int8" else ""
        warnings.warn(f"{output_dir / EXPORT_FILE}: the {format}{f' {quantize}' if quantize else ''} export misses "
                      f"its target ({report['target']}) by {report['misses_by']}.{advice}", stacklevel=2)
    return report


def require(format):
    """The modules that convert and run ``format`` (for ONNX and OpenVINO, :func:`keras_tl.features.engines.require`'s);
    a ``ModuleNotFoundError`` saying what to install."""
    if format not in FORMAT_ENGINES:
        return ()
    engine = FORMAT_ENGINES[format]
    try:
        return engines.require(engine)
    except ModuleNotFoundError:
        _, packages, extra, _, _ = engines.REQUIREMENTS[engine]
        raise ModuleNotFoundError(f"format={format!r} needs {packages.replace(' ', ', ')}: pip install {packages} "
                                  f"(in a keras_tl checkout: pip install -e '.[{extra}]').") from None


def check_output_dir(output_dir):
    """A ``ValueError`` when ``output_dir`` is a file, or a folder with files that are not an earlier export
    (those would be deleted by the rename)."""
    if output_dir.exists() and not output_dir.is_dir():
        raise ValueError(f"output_dir={str(output_dir)!r} is a file; give a folder for the export.")
    if output_dir.is_dir() and any(output_dir.iterdir()) and not (output_dir / EXPORT_FILE).is_file():
        raise ValueError(f"output_dir={str(output_dir)!r} holds files that are not an export (no {EXPORT_FILE}); "
                         f"an export replaces its folder, so give an empty or new folder.")


def replace_folder(staging, output_dir):
    """Rename ``staging`` onto ``output_dir``; an earlier export there is set aside first (and put back if the
    rename fails), then deleted."""
    os.chmod(staging, output_dir.parent.stat().st_mode & 0o777)  # mkdtemp's folders are private: its parent's mode
    if not output_dir.exists():
        os.replace(staging, output_dir)
        return
    old = pathlib.Path(tempfile.mkdtemp(dir=output_dir.parent, prefix=f".{output_dir.name}.", suffix=".old"))
    os.replace(output_dir, old / "export")
    try:
        os.replace(staging, output_dir)
    except OSError:
        os.replace(old / "export", output_dir)
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


def fixed_size_model(run):
    """The raw-image model of ``run`` for devices: float32 RGB 0..255 at the run's size in, scores out.

    The size is fixed, so its resize is the identity (plain bilinear, an op TensorFlow Lite and ONNX have
    built in); images of another size are resized by the caller."""
    import keras

    raw = raw_images.raw_image_model_of(run, antialias=False)
    images = keras.Input((run.image_size, run.image_size, 3), name=raw_images.RAW_INPUT_NAME)
    return keras.Model(images, raw(images), name=raw.name)


def calibration_images(run, train, count=CALIBRATION_IMAGES, seed=0):
    """Up to ``count`` of the ``train`` images (a seeded sample) at the run's size, float32 RGB 0..255."""
    chosen = np.sort(np.random.default_rng(seed).permutation(len(train))[:count])
    if not len(chosen):
        raise ValueError("An int8 export is calibrated on the run's training images, and its dataset has none; "
                         "give dataset= (a name or folder with training images).")
    return run.load_images(image_batch(train.subset(chosen)))


def image_batch(image_set):
    """The images of ``image_set`` as :meth:`~keras_tl.analysis.trained.TrainedModel.load_images` takes them."""
    return list(image_set.paths) if image_set.paths is not None else image_set.images


def convert(model, format, quantize, folder, class_names, calibration=None):
    """Write ``model`` as ``format`` into ``folder`` (:data:`MODEL_FILES`); a ``ValueError`` saying why
    a conversion failed."""
    try:
        if format == "savedmodel":
            save_serving_model(model, class_names, folder / MODEL_FILES[format])
        elif format == "tflite":
            save_tflite(model, folder / MODEL_FILES[format], quantize, calibration)
        else:
            with warnings.catch_warnings():  # Keras's tf2onnx patch asks numpy for np.object, which warns
                warnings.filterwarnings("ignore", "In the future `np.object`", FutureWarning)
                engines.convert(model, FORMAT_ENGINES[format], folder)
    except Exception as error:  # each converter raises its own errors (TensorFlow's, tf2onnx's, OpenVINO's ...)
        lines = str(error).strip().splitlines() or [type(error).__name__]
        raise ValueError(f"Converting the model to {format} failed ({type(error).__name__}: {lines[-1][:300]}); "
                         f"nothing was written. Try another format=, or run with --verbose for the converter's "
                         f"messages.") from None


def variables_module(model):
    """A ``tf.Module`` that holds the TensorFlow variables of Keras ``model`` once, for a SavedModel or the
    TensorFlow Lite converter: Keras's own ``model.export`` tracks every variable twice (keras-team/keras#23553),
    which doubles a SavedModel and slows the conversions through one."""
    import tensorflow as tf

    module = tf.Module()
    module.model_variables = [weight.value for weight in model.weights]  # the tf.Variables the model reads
    return module


def save_serving_model(raw_model, class_names, path):
    """Save ``raw_model`` (a raw-image model) as a SavedModel at ``path`` whose ``serving_default`` signature takes
    encoded image files and returns the class names (``classes``) and ``scores``, best first."""
    import tensorflow as tf

    module = variables_module(raw_model)
    module.class_names = tf.constant(class_names)
    count = len(class_names)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=SERVING_INPUT)])
    def serve(image_bytes):
        def scores_of(encoded):
            image = tf.cond(tf.io.is_jpeg(encoded),  # TensorFlow's default JPEG decoding is coarser than Pillow's
                            lambda: tf.io.decode_jpeg(encoded, channels=3, dct_method="INTEGER_ACCURATE"),
                            lambda: tf.io.decode_image(encoded, channels=3, expand_animations=False))
            image.set_shape([None, None, 3])
            return raw_model(tf.cast(image, tf.float32)[None], training=False)[0]

        scores = tf.map_fn(scores_of, image_bytes, fn_output_signature=tf.TensorSpec([count], tf.float32))
        order = tf.argsort(scores, axis=1, direction="DESCENDING", stable=True)
        return {"classes": tf.gather(module.class_names, order), "scores": tf.gather(scores, order, batch_dims=1)}

    module.serve = serve
    tf.saved_model.save(module, str(path), signatures={"serving_default": serve})


def save_tflite(model, path, quantize=None, calibration=None):
    """Write ``model`` as TensorFlow Lite at ``path``, only with LiteRT's built-in ops; ``quantize``: ``"float16"``
    weights, or ``"int8"`` weights and activations with the ranges of ``calibration`` (float input and output
    either way)."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec(model.input_shape, tf.float32, name=raw_images.RAW_INPUT_NAME)])
    def serve(images):
        return model(images, training=False)

    converter = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()],
                                                                variables_module(model))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # no Flex ops: LiteRT has none
    if quantize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantize == "int8":
        converter.representative_dataset = lambda: ([image[None]] for image in calibration)
    pathlib.Path(path).write_bytes(converter.convert())


def load_export(folder, format, class_names, modules=()):
    """The export in ``folder`` as a function from a batch to the index of each image's best class: encoded
    files (bytes) for a SavedModel, float32 images at the run's size for the other formats."""
    path = folder / MODEL_FILES[format]
    if format == "savedmodel":
        import tensorflow as tf

        serve = tf.saved_model.load(str(path)).signatures["serving_default"]
        index = {name: position for position, name in enumerate(class_names)}
        return lambda encoded: np.array([index[name.decode()] for name in
                                         serve(**{SERVING_INPUT: tf.constant(encoded)})["classes"][:, 0].numpy()])
    run = tflite_runner(path) if format == "tflite" else engines.load(modules, FORMAT_ENGINES[format], path)
    return lambda images: np.argmax(run(np.ascontiguousarray(images, np.float32)), axis=1)


def tflite_interpreter_class():
    """LiteRT's interpreter (``ai-edge-litert``), else TensorFlow's (deprecated in its favour)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    return Interpreter


def tflite_runner(path, threads=None):
    """A TensorFlow Lite model as a function from a float32 batch to its output, on ``threads`` (default all cores)."""
    interpreter = tflite_interpreter_class()(model_path=str(path), num_threads=threads or os.cpu_count())
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]
    shape = []

    def run(images):
        if list(images.shape) != shape:  # a new batch size
            interpreter.resize_tensor_input(input_index, images.shape)
            interpreter.allocate_tensors()
            shape[:] = images.shape
        interpreter.set_tensor(input_index, images)
        interpreter.invoke()
        return interpreter.get_tensor(output_index).copy()

    return run


def describe_export(run, format, quantize, folder, calibration=None):
    """What ``export.json`` says of the export in ``folder`` before it is checked: the run, the files, the input
    and the output (and a multi-label run's threshold per class: an image has every class whose score reaches it)."""
    size = run.image_size
    if format == "savedmodel":
        inputs = {"name": SERVING_INPUT, "dtype": "string", "shape": [None],
                  "values": "encoded image files (JPEG, PNG, GIF or BMP), any size; resized and preprocessed inside"}
        outputs = {"classes": "string (batch, classes): the class names, best first",
                   "scores": f"float32 (batch, classes): their {run.score_name} scores, best first",
                   "signature": "serving_default"}
    else:
        inputs = {"name": raw_images.RAW_INPUT_NAME, "dtype": "float32", "shape": [None, size, size, 3],
                  "values": f"RGB 0..255, made square as the run did ({run.resize}) and resized to {size}x{size} px "
                            f"first (bilinear); preprocessed inside"}
        outputs = {"scores": f"float32 (batch, classes): {run.score_name} scores, in the order of class_names"}
    files = [path for path in sorted(folder.rglob("*")) if path.is_file()]
    size_bytes = sum(path.stat().st_size for path in files)
    return {"format": format, "quantization": quantize or "none", "file": MODEL_FILES[format],
            "files": [str(path.relative_to(folder)) for path in files], "size_bytes": size_bytes,
            "size": runs.readable_size(size_bytes), "input": inputs, "output": outputs, "class_names": run.classes,
            "score_name": run.score_name, "run": str(run.run_dir), "kind": run.kind, "source": run.source.name,
            "image_size": size, "runtime": runtime(format),
            "calibration_images": None if calibration is None else len(calibration), "multi_label": run.multi_label,
            "thresholds": None if run.thresholds is None else dict(zip(run.classes, run.thresholds.tolist()))}


def runtime(format):
    """The package (and its version) that runs ``format`` here."""
    from importlib import metadata

    package = {"savedmodel": "tensorflow", "onnx": "onnxruntime", "openvino": "openvino"}.get(format)
    if package is None:
        litert = tflite_interpreter_class().__module__.startswith("ai_edge_litert")
        package = "ai-edge-litert" if litert else "tensorflow"
    return f"{package} {metadata.version(package)}"


def check_export(run, predict, format, test, labels, quantize=None, batch_size=32, verbose=False):
    """The export (``predict``, :func:`load_export`'s) against the Keras model (``run.predict``) on the ``test``
    images (``labels``: in the run's class order): top-1 agreement, both accuracies, batch-1 latencies, and
    whether it meets its target. Multi-hot ``labels`` (a multi-label run): an accuracy is the share of images
    whose best class is one of theirs."""
    from keras_tl.messages import progress_bar

    def export_input(image_set, images):  # what the export takes: encoded files, or the images at the run's size
        return encoded_images(image_set) if format == "savedmodel" else images

    keras_best, export_best = [], []
    with progress_bar(len(test), f"checking the {format} export", verbose=verbose) as bar:
        for start in range(0, len(test), batch_size):
            part = test.subset(np.arange(start, min(start + batch_size, len(test))))
            images = run.load_images(image_batch(part))
            keras_best.append(np.argmax(run.predict(images), axis=1))
            export_best.append(predict(export_input(part, images)))
            bar.update(len(part))
    keras_best, export_best = np.concatenate(keras_best), np.concatenate(export_best)
    first = test.subset([0])
    first_image = run.load_images(image_batch(first))
    def right(best):
        return labels[np.arange(len(best)), best] if labels.ndim == 2 else best == labels

    report = {"test_images": len(test), "top1_agreement": float(np.mean(export_best == keras_best)),
              "accuracy": float(np.mean(right(export_best))), "keras_accuracy": float(np.mean(right(keras_best))),
              "latency_ms": batch1_latency_ms(predict, export_input(first, first_image)),
              "keras_latency_ms": batch1_latency_ms(run.predict, first_image)}
    if quantize == "int8":
        report["target"] = f"test accuracy at most {INT8_MAX_DROP * 100:g} point below the Keras model's"
        misses = report["keras_accuracy"] - report["accuracy"] - INT8_MAX_DROP
    else:
        report["target"] = (f"top-1 agreement with the Keras model on at least {FLOAT_AGREEMENT * 100:g} % of "
                            f"test images")
        misses = FLOAT_AGREEMENT - report["top1_agreement"]
    report["meets_target"] = bool(misses <= 1e-9)
    report["misses_by"] = None if report["meets_target"] else f"{misses * 100:.1f} points"
    return report


def encoded_images(image_set):
    """The images of ``image_set`` as encoded files: a file's own bytes where TensorFlow decodes it (JPEG, PNG,
    GIF, BMP), else the image as decoded by keras_tl, encoded as PNG."""
    import io

    from PIL import Image

    from keras_tl import data

    encoded = []
    for index in range(len(image_set)):
        if image_set.paths is not None:
            path = image_set.paths[index]
            content = pathlib.Path(path).read_bytes()
            if content.startswith(TF_DECODES):
                encoded.append(content)
                continue
            image = data.decode_image(path)
        else:
            image = Image.fromarray(np.asarray(image_set.images[index], np.uint8))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        encoded.append(buffer.getvalue())
    return encoded


def batch1_latency_ms(call, one, max_runs=50, max_seconds=2.0):
    """The median time of ``call(one)`` in milliseconds, after one warm-up call: up to ``max_runs`` calls
    or ``max_seconds``, at least 5."""
    call(one)
    times, start = [], time.perf_counter()
    while len(times) < 5 or (len(times) < max_runs and time.perf_counter() - start < max_seconds):
        before = time.perf_counter()
        call(one)
        times.append(time.perf_counter() - before)
    return round(float(np.median(times)) * 1000, 3)
