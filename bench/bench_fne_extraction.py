"""Benchmark: FNE extraction against the bare forward pass and the naive numpy way.

On the same images (Animal-MNIST, MobileNet with ImageNet weights, in one run) it measures:

- ``bare``:  ``keras_tl.FeatureExtractor.extract`` of the last layer only, the cost of one forward pass;
- ``fne``:   the same over all 27 ReLU layers, pooled inside the graph;
- ``pre-BN convs``: the same over the 27 convolutions' outputs, before their BatchNorm: a pooled
  conv output has a second consumer, which keeps TensorFlow from fusing conv + BatchNorm + ReLU;
- ``BN outputs``: the same over the 27 BatchNorm outputs (before the ReLU). In inference BatchNorm
  is a per-channel affine map, so the pre-BN means follow from these exactly, ``(mean - beta) *
  sqrt(moving_var + eps) / gamma + moving_mean``: this row shows whether that would be faster;
- ``naive``: every layer's full maps returned to numpy by ``predict``, averaged there.

Speed: every extractor shares one model and builds its compiled step once (the warm-up traces
it), so a round times extraction alone; the methods run interleaved in one process, several
rounds, and the median round of each counts, so the machine's noise hits them alike. Memory:
each (method, image count) runs in a fresh process, so its peak resident memory is its own;
twice the images show which memory grows with the dataset.
Target: fne >= 0.95x bare, and fne's memory flat in the number of images. The network alone on
one in-memory batch (no input pipeline) is timed too, to separate the cost of pooling 27 maps
from the pipeline's share of the 2 cores.

Replicas: ``fne`` with 1 and with 2 replicas (``FeatureExtractor(strategy=...)``, ``--batch-size``
images per replica), side by side in one fresh process: two GPUs where there are, else two
logical devices of the one GPU or of the CPU (then both replicas share the same cores, so expect
no gain: the row shows what splitting costs).

    python bench/bench_fne_extraction.py [--images 512] [--image-size 128] [--rounds 3]
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _setup(images, image_size, batch_size):
    """The FNE extractor of MobileNet (ImageNet weights) and the first ``images`` Animal-MNIST images."""
    import numpy as np

    from keras_tl import data
    from keras_tl.features import extraction

    extractor = extraction.FeatureExtractor("mobilenet", "fne", image_size, batch_size=batch_size)
    image_set = data.load_dataset("animal_mnist", seed=0).train.subset(np.arange(images))
    return extractor, image_set


def _methods(extractor):
    """Each method as a function of an image set, returning its (N, D) features."""
    import keras
    import numpy as np

    from keras_tl.features import extraction

    model = extractor.model
    maps = keras.Model(model.inputs, [model.get_layer(name).output for name in extractor.layers])
    convs = [layer.name for layer in model.layers
             if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))]
    batch_norms = [layer.name for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    bare, pre_bn, bn = (extraction.FeatureExtractor("mobilenet", layers, extractor.image_size, model=model,
                                                 batch_size=extractor.batch_size)
                        for layers in ("last", convs, batch_norms))
    return {
        "bare": lambda images: bare.extract(images, verbose=False)[0],
        "fne": lambda images: extractor.extract(images, verbose=False)[0],
        "pre-BN convs": lambda images: pre_bn.extract(images, verbose=False)[0],
        "BN outputs": lambda images: bn.extract(images, verbose=False)[0],
        "naive": lambda images: np.concatenate(
            [full.mean(axis=(1, 2)) for full in maps.predict(extractor.pipeline(images), verbose=0)], axis=1),
    }


def _compute_only(extractor, image_set, args):
    """The network alone on one in-memory batch, no input pipeline: bare forward pass against FNE."""
    import keras

    from keras_tl.features import extraction

    model, pooled = extractor.model, extractor.pooled_model
    images = next(iter(extractor.pipeline(image_set.subset(range(args.batch_size)))))[0]
    functions = {"bare (in-memory batch)": extraction.keras_function(lambda x: model(x, training=False)),
                 "fne (in-memory batch)": extraction.keras_function(
                     lambda x: keras.ops.concatenate(pooled(x, training=False), axis=-1))}
    best = {}
    for _ in range(args.rounds + 1):  # the first round traces
        for name, function in functions.items():
            started = time.perf_counter()
            for _ in range(8):
                keras.ops.convert_to_numpy(function(images))
            best[name] = max(best.get(name, 0.0), 8 * args.batch_size / (time.perf_counter() - started))
    return best


def speed_worker(args):
    """All methods in one process, interleaved over rounds; the median round of each counts."""
    import numpy as np

    extractor, image_set = _setup(args.images, args.image_size, args.batch_size)
    methods = _methods(extractor)
    for run in methods.values():  # warm-up: trace and compile once
        run(image_set.subset(range(args.batch_size)))
    speed = _compute_only(extractor, image_set, args)
    rates = {name: [] for name in methods}
    for _ in range(args.rounds):
        for name, run in methods.items():
            images = image_set if name != "naive" else image_set.subset(range(args.images // 4))
            started = time.perf_counter()
            run(images)
            rates[name].append(len(images) / (time.perf_counter() - started))
    print(json.dumps({**speed, **{name: float(np.median(rounds)) for name, rounds in rates.items()}}))


def memory_worker(args):
    """One method in a fresh process: its peak resident memory."""
    extractor, image_set = _setup(args.images, args.image_size, args.batch_size)
    features = _methods(extractor)[args.worker](image_set)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"method": args.worker, "images": args.images, "peak_mib": peak_mib,
                      "dims": int(features.shape[1])}))


def replicas_worker(args):
    """fne with 1 and 2 replicas in one process, interleaved over rounds; the best round of each counts."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) < 2:  # two logical devices of one, before the runtime starts
        limit = 16 * 1024 if gpus else None  # MiB each; a logical GPU needs a memory limit
        tf.config.set_logical_device_configuration((gpus or tf.config.list_physical_devices("CPU"))[0],
                                                   [tf.config.LogicalDeviceConfiguration(memory_limit=limit)] * 2)
    kind = "gpu" if gpus else "cpu"
    devices = [f"/{kind}:0", f"/{kind}:1"]
    from keras_tl import data, sources
    from keras_tl.features import extraction

    image_set = data.load_dataset("animal_mnist", seed=0).train.subset(range(args.images))
    extractors = {}
    for replicas, strategy in ((1, tf.distribute.OneDeviceStrategy(devices[0])),
                               (2, tf.distribute.MirroredStrategy(devices))):
        with strategy.scope():
            model = sources.get_source("mobilenet").build(weights="imagenet", image_size=args.image_size)
        extractors[replicas] = extraction.FeatureExtractor("mobilenet", "fne", args.image_size, batch_size=args.batch_size,
                                                        model=model, strategy=strategy)
        extractors[replicas].extract(image_set.subset(range(2 * args.batch_size)), verbose=False)  # warm-up
    best = {}
    for _ in range(args.rounds):
        for replicas, extractor in extractors.items():
            started = time.perf_counter()
            extractor.extract(image_set, verbose=False)
            best[replicas] = max(best.get(replicas, 0.0), len(image_set) / (time.perf_counter() - started))
    where = f"{len(gpus)} GPU(s)" if len(gpus) >= 2 else f"2 logical devices of one {kind.upper()}"
    print(json.dumps({"devices": where, "1": best[1], "2": best[2]}))


def _run(args, *extra):
    command = [sys.executable, __file__, "--image-size", str(args.image_size), "--batch-size",
               str(args.batch_size), "--rounds", str(args.rounds), *extra]
    return json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout.splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=512, help="images per speed round (naive: a quarter)")
    parser.add_argument("--memory-images", type=int, default=128, help="images of the smaller memory run")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "speed":
        return speed_worker(args)
    if args.worker == "replicas":
        return replicas_worker(args)
    if args.worker:
        return memory_worker(args)
    speed = _run(args, "--worker", "speed", "--images", str(args.images))
    replicas = _run(args, "--worker", "replicas", "--images", str(args.images))
    memory = {(method, images): _run(args, "--worker", method, "--images", str(images))["peak_mib"]
              for method in ("bare", "fne", "naive") for images in (args.memory_images, 2 * args.memory_images)}
    small, large = args.memory_images, 2 * args.memory_images
    print(f"MobileNet (ImageNet), 27 ReLU layers, {args.image_size} px, batch {args.batch_size}, "
          f"{os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f}; speed: median of {args.rounds} "
          "interleaved rounds\n")
    print(f"| method | images/s | x bare | peak RSS, {small} images (MiB) | peak RSS, {large} images (MiB) |")
    print("|---|---|---|---|---|")
    for method in ("bare", "fne", "pre-BN convs", "BN outputs", "naive"):
        memory_cells = (f"{memory[method, small]:.0f} | {memory[method, large]:.0f}" if (method, small) in memory
                        else " | ")
        print(f"| {method} | {speed[method]:.1f} | {speed[method] / speed['bare']:.2f} | {memory_cells} |")
    in_memory = [name for name in speed if "in-memory" in name]
    for name in in_memory:
        print(f"| {name} | {speed[name]:.1f} | {speed[name] / speed[in_memory[0]]:.2f} | | |")
    print(f"\nfne with 1 and 2 replicas ({replicas['devices']}, {args.batch_size} images per replica), "
          "side by side in one process\n")
    print("| replicas | images/s | x 1 replica |\n|---|---|---|")
    for count in ("1", "2"):
        print(f"| {count} | {replicas[count]:.1f} | {replicas[count] / replicas['1']:.2f} |")


if __name__ == "__main__":
    main()
