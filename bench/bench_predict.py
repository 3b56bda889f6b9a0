"""Benchmark: predicting one image, and a batch of 32, with each way of running a model, side by side in one process.

The model is MobileNet v1 with its ImageNet classifier (offline weights, see keras_tl/offline) at
224 px; the images are 32 Animal-MNIST training images read at 224 px by the jobs' pipeline. Each
path is given the same RGB 0..255 batch and does everything from there (the source's
``preprocess_input`` included), so the rows compare what a caller waits for:

- ``model.predict``: ``preprocess_input`` in numpy, then ``model.predict`` per call (what
  ``load_run(...).predict`` did before);
- ``model(x)``: the Keras model called eagerly (``training=False``);
- ``tf.function``: the model called in one traced ``tf.function``
  (:func:`keras_tl.analysis.raw_images.compiled_call`);
- ``load_run().predict``: the toolkit's default path, ``TrainedModel.predict``: the raw-image model
  (resize and ``preprocess_input`` in the graph) in one traced ``tf.function``;
- ``openvino``, ``onnxruntime``: the model converted by :mod:`keras_tl.features.engines` (the
  ``--engine`` option), where installed;
- TensorFlow Lite float32 and int8 (calibrated on 100 other images): the exports of
  :mod:`keras_tl.analysis.formats` (its fixed-size raw-image model), run by its interpreter (LiteRT).

Every path is warmed up first (tracing, conversion, loading); then the paths run interleaved,
several rounds, and the median counts, so the machine's noise hits them alike. ``agree``: the
top-1 agreement with ``model.predict`` on the batch of 32. Target: the default path >= 5x
``model.predict`` at batch 1 on a CPU.

    python bench/bench_predict.py [--calls 30] [--rounds 3]
"""
import argparse
import importlib.util
import os
import pathlib
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

IMAGE_SIZE = 224
CALIBRATION = 100  # images that calibrate the int8 model


def paths(model, source, calibration, folder):
    """``{name: run or the reason it is missing}``: each run a function from a float32 RGB 0..255 batch to scores."""
    from keras_tl.analysis import raw_images, trained
    from keras_tl.features import engines

    def preprocessed(run):
        return lambda images: run(source.preprocess_input(images.copy()))

    classes = [str(index) for index in range(model.output_shape[-1])]
    run = trained.TrainedModel(model, "fine_tune", classes, source, IMAGE_SIZE, folder)
    found = {"model.predict": preprocessed(lambda images: model.predict(images, verbose=0)),
             "model(x)": preprocessed(lambda images: model(images, training=False).numpy()),
             "tf.function": preprocessed(raw_images.compiled_call(model)),
             "load_run().predict": run.predict}
    for engine in ("openvino", "onnxruntime"):
        found[engine] = (preprocessed(engines.compile_model(model, engine, ["bench_predict"], folder, verbose=False))
                         if engines.installed(engine) else "not installed")
    for quantize in ("float32", "int8"):
        found[f"tflite {quantize}"] = tflite_path(run, quantize, calibration, folder)
    return found


def tflite_path(run, quantize, calibration, folder):
    """``run``'s fixed-size raw-image model exported to TensorFlow Lite by :mod:`keras_tl.analysis.formats` and run
    by its interpreter (int8: calibrated on ``calibration``), or why there is none."""
    if importlib.util.find_spec("keras_tl.analysis.formats") is None:
        return "no exporter (keras_tl.analysis.formats missing)"
    from keras_tl.analysis import formats

    path = pathlib.Path(folder) / f"{quantize}.tflite"
    formats.save_tflite(formats.fixed_size_model(run), path, None if quantize == "float32" else quantize, calibration)
    return formats.tflite_runner(path)


def median_seconds(run, images, repeats):
    """The median of ``repeats`` timed calls of ``run(images)``."""
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        run(images)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=30, help="batch-1 calls per path and round (default 30)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    args = parser.parse_args()
    from keras_tl import tf_logs

    tf_logs.import_tensorflow_quietly()
    import numpy as np

    from keras_tl import data, messages, sources

    source = sources.get_source("mobilenet")
    model = source.build("imagenet", include_top=True, image_size=IMAGE_SIZE)
    train = data.load_dataset("animal_mnist", seed=0, verbose=False).train.subset(np.arange(32 + CALIBRATION))
    images = next(iter(data.make_pipeline(train, IMAGE_SIZE, batch_size=len(train))))[0].numpy()  # RGB 0..255
    batch, calibration = images[:32], images[32:]  # int8 is calibrated on other images than it is checked on
    with tempfile.TemporaryDirectory() as folder:
        found = paths(model, source, calibration, folder)
        runs = {name: run for name, run in found.items() if callable(run)}
        scores = {}
        for name, run in runs.items():
            started = time.perf_counter()
            scores[name] = run(batch)
            run(batch[:1])
            print(f"{name}: ready in {time.perf_counter() - started:.1f} s", flush=True)
        one, many = {name: [] for name in runs}, {name: [] for name in runs}
        for _ in range(args.rounds):
            for name, run in runs.items():
                one[name].append(median_seconds(run, batch[:1], args.calls))
                many[name].append(median_seconds(run, batch, 1))
    reference = scores["model.predict"].argmax(axis=1)
    base = statistics.median(one["model.predict"])
    rows = []
    for name, run in found.items():
        if not callable(run):
            rows.append([name, "-", "-", "-", run])
            continue
        latency = statistics.median(one[name])
        rows.append([name, f"{1000 * latency:.1f}", f"{base / latency:.1f}x", round(32 / statistics.median(many[name]), 1),
                     f"{np.mean(scores[name].argmax(axis=1) == reference):.0%}"])
    print(f"\nMobileNet v1 (ImageNet, 1000 classes), {IMAGE_SIZE} px, {os.cpu_count()} CPU cores; batch 1: median of "
          f"{args.calls} calls x {args.rounds} interleaved rounds; batch 32: median of {args.rounds} rounds")
    print(messages.format_table(rows, ["path", "batch 1 ms", "x model.predict", "batch 32 img/s", "agree"]))
    return rows


if __name__ == "__main__":
    main()
