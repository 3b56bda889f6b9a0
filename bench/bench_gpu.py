"""Benchmark: feature extraction and fine-tuning on one GPU against all the GPUs of this machine.

For one GPU (``--strategy one-device``) and, where there are several, for all of them
(``mirrored``: one replica per GPU, ``--batch-size`` images each) it measures

- extraction images/s through ``keras_tl.FeatureExtractor``: ``fne`` (every feature layer, pooled
  in the graph) against ``bare`` (the last conv layer only);
- fine-tuning steps/s of the whole network (every layer trains, Adam), in float32 and in mixed
  precision (``mixed_float16``), each without and with XLA (``jit_compile=True``);
- the peak GPU memory of each (``tf.config.experimental.get_memory_info``, the largest over the GPUs).

Each cell runs in a fresh process (its own memory peak, its own precision policy): a warm-up
pass traces and compiles first. The images are random pixels held in memory and the
weights random (``weights=None``): the speed does not depend on either, and no weight file or
dataset is needed. Without a GPU it prints one line and exits 0.

    python bench/bench_gpu.py [--source mobilenet] [--image-size 224] [--batch-size 64] [--images 2048] [--steps 50]
"""
import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
NUM_CLASSES = 10


def _gpu_count():
    from keras_tl import tf_logs

    return len(tf_logs.import_tensorflow_quietly().config.list_physical_devices("GPU"))  # start-up lines hidden


def _images(count, seed=0):
    """``count`` random 64 px images in memory (the pipeline resizes them to the input size), 10 classes."""
    import numpy as np

    from keras_tl import data

    rng = np.random.default_rng(seed)
    return data.ImageSet(labels=np.arange(count) % NUM_CLASSES,
                         images=rng.integers(0, 256, (count, 64, 64, 3), dtype=np.uint8))


def _reset_peaks():
    import tensorflow as tf

    for index in range(_gpu_count()):
        tf.config.experimental.reset_memory_stats(f"GPU:{index}")


def _peak_mib():
    import tensorflow as tf

    return max(tf.config.experimental.get_memory_info(f"GPU:{index}")["peak"] for index in range(_gpu_count())) / 2**20


def extract_worker(cell, args):
    """Images/s of extraction (``cell["layers"]``: ``fne`` or ``last``), without the cost of each call.

    Every ``extract`` call traces its step and starts its pipeline once; timing one batch and then
    all ``images`` takes that fixed cost out: images/s = (images - batch) / (t(images) - t(batch)).
    """
    from keras_tl import distribute
    from keras_tl.features import extraction

    strategy = distribute.make_strategy(cell["strategy"])
    extractor = extraction.FeatureExtractor(args.source, cell["layers"], args.image_size, weights=None,
                                         batch_size=args.batch_size, strategy=strategy)
    images, batch = _images(args.images), args.batch_size * strategy.num_replicas_in_sync
    extractor.extract(images.subset(range(batch)), verbose=False)  # warm-up: builds and compiles
    _reset_peaks()
    seconds = []
    for count in (batch, args.images):
        started = time.perf_counter()
        extractor.extract(images.subset(range(count)), verbose=False)
        seconds.append(time.perf_counter() - started)
    rate = (args.images - batch) / (seconds[1] - seconds[0]) if seconds[1] > seconds[0] else args.images / seconds[1]
    return {"rate": rate, "unit": "images/s", "peak_mib": _peak_mib(), "replicas": strategy.num_replicas_in_sync}


def fine_tune_worker(cell, args):
    """Steps/s of fine-tuning every layer (global batch: ``batch_size`` x replicas) after 5 warm-up steps."""
    from keras_tl import data, distribute, sources
    from keras_tl.training import optimizers, recipe

    distribute.set_mixed_precision(cell["mixed_precision"])  # before the model is built
    strategy = distribute.make_strategy(cell["strategy"])
    source = sources.get_source(args.source)
    batch = distribute.global_batch_size(args.batch_size, strategy)
    images = _images(8 * batch)
    train, _, _ = data.training_pipelines(source, args.image_size, {"train": images, "validation": images,
                                                                     "test": images}, NUM_CLASSES, batch)
    with strategy.scope():
        model = recipe.build_classifier(source.build(weights=None, image_size=args.image_size), NUM_CLASSES)
        model.compile(optimizer=optimizers.make_optimizer("adam", 1e-4), loss="categorical_crossentropy",
                      jit_compile=cell["xla"])
    model.fit(train.repeat(), epochs=1, steps_per_epoch=5, verbose=0)
    _reset_peaks()
    started = time.perf_counter()
    model.fit(train.repeat(), epochs=1, steps_per_epoch=args.steps, verbose=0)
    return {"rate": args.steps / (time.perf_counter() - started), "unit": "steps/s", "peak_mib": _peak_mib(),
            "replicas": strategy.num_replicas_in_sync}


def cells(gpus):
    """Every measurement: (devices, what, setting, worker arguments)."""
    device_sets = [("1 GPU", "one-device")] + ([(f"all {gpus} GPUs", "mirrored")] if gpus > 1 else [])
    for devices, strategy in device_sets:
        for layers in ("fne", "last"):
            yield devices, "extraction", "fne (all layers)" if layers == "fne" else "bare (last layer)", {
                "task": "extract", "strategy": strategy, "layers": layers}
        for mixed in (False, True):
            for xla in (False, True):
                setting = ("mixed_float16" if mixed else "float32") + (" + XLA" if xla else "")
                yield devices, "fine-tuning", setting, {"task": "fine_tune", "strategy": strategy,
                                                        "mixed_precision": mixed, "xla": xla}


def _run_cell(cell, args):
    """One cell in a fresh process: its result, or ``{"error": last line of its error output}``."""
    command = [sys.executable, __file__, "--source", args.source, "--image-size", str(args.image_size),
               "--batch-size", str(args.batch_size), "--images", str(args.images), "--steps", str(args.steps),
               "--worker", json.dumps(cell)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["exit code %d" % done.returncode])[-1][:120]}
    return json.loads(done.stdout.splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default="mobilenet", help="keras_tl source (default: mobilenet)")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=64, help="images per batch and per GPU (default 64)")
    parser.add_argument("--images", type=int, default=2048, help="images per timed extraction (default 2048)")
    parser.add_argument("--steps", type=int, default=50, help="timed fine-tuning steps (default 50)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        cell = json.loads(args.worker)
        print(json.dumps((extract_worker if cell["task"] == "extract" else fine_tune_worker)(cell, args)))
        return 0
    gpus = _gpu_count()
    if not gpus:
        print("bench_gpu: no GPU found (TensorFlow sees none); nothing to measure here.")
        return 0

    from keras_tl.messages import format_table

    rows = []
    for devices, what, setting, cell in cells(gpus):
        result = _run_cell(cell, args)
        if "error" in result:
            rows.append([devices, what, setting, "failed", "", result["error"]])
        else:
            rows.append([devices, what, setting, f"{result['rate']:.1f} {result['unit']}",
                         f"{result['peak_mib']:.0f}", ""])
        print(f"  {devices}, {what}, {setting}: {rows[-1][3]}", flush=True)
    print(f"\n{args.source}, {args.image_size} px, batch {args.batch_size} per GPU, random weights and images; "
          f"{gpus} GPU(s)\n")
    print(format_table(rows, ["devices", "measure", "setting", "speed", "peak GPU MiB", "note"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
