"""Benchmark: feature extraction with each installed engine (keras_tl.features.engines) against TensorFlow.

Speed: one FNE extractor per engine over the same MobileNet (ImageNet weights) and the same
Animal-MNIST images, in one process. Each extractor is warmed up first (TensorFlow traces its
step; the others convert the pooled model, or read the conversion from the cache, and run one
batch), then the engines run interleaved, several rounds, and the median round of each counts,
so the machine's noise hits them alike. Target: an engine >= 1.5x TensorFlow on a CPU.

Agreement: the largest difference of each engine's features from TensorFlow's (relative to the
largest feature) and the fraction of discretised FNE features (fitted on TensorFlow's) that differ.

Accuracy (``--accuracy``): ``python -m keras_tl.fne`` on its default (Animal-MNIST, 100 train and
50 test images per class, 128 px) once per engine; the accuracy of each method against TensorFlow's.

    python bench/bench_engines.py [--images 96] [--image-size 160] [--rounds 3] [--accuracy]
"""
import argparse
import json
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def speed(args):
    """Rows ``[engine, images/s, x TensorFlow, max relative difference, FNE flips]``."""
    import numpy as np

    from keras_tl import data, messages, sources
    from keras_tl.features import engines, extraction
    from keras_tl.features.full_network_embedding import FNETransformer

    names = ["tensorflow"] + [name for name in ("openvino", "onnxruntime") if engines.installed(name)]
    model = sources.get_source("mobilenet").build("imagenet", image_size=args.image_size)
    image_set = data.load_dataset("animal_mnist", seed=0, verbose=False).train.subset(np.arange(args.images))
    extractors = {name: extraction.FeatureExtractor("mobilenet", "fne", args.image_size, batch_size=args.batch_size,
                                                 model=model, engine=name) for name in names}
    features, seconds = {}, {name: [] for name in names}
    for name, extractor in extractors.items():
        started = time.perf_counter()
        extractor.step()  # TensorFlow traces it, the others convert (or read the conversion) and load it
        extractor.extract(image_set.subset(np.arange(args.batch_size)), verbose=False)
        print(f"{name}: ready in {time.perf_counter() - started:.1f} s", flush=True)
    for _ in range(args.rounds):
        for name, extractor in extractors.items():
            started = time.perf_counter()
            features[name] = np.asarray(extractor.extract(image_set, verbose=False)[0])
            seconds[name].append(time.perf_counter() - started)
    rates = {name: args.images / statistics.median(seconds[name]) for name in names}
    transformer = FNETransformer().fit(features["tensorflow"])
    reference = transformer.transform(features["tensorflow"])
    scale = np.abs(features["tensorflow"]).max()
    rows = [[name, round(rates[name], 1), f"{rates[name] / rates['tensorflow']:.2f}x",
             f"{np.abs(features[name] - features['tensorflow']).max() / scale:.1e}",
             f"{np.mean(transformer.transform(features[name]) != reference):.4%}"] for name in names]
    print(f"\nMobileNet (ImageNet), {len(extractors['tensorflow'].layers)} FNE layers, "
          f"{extractors['tensorflow'].num_features} features, {args.image_size} px, {args.images} images, "
          f"batches of {args.batch_size}, median of {args.rounds} interleaved rounds")
    print(messages.format_table(rows, ["engine", "images/s", "x tensorflow", "max rel. difference", "FNE flips"]))
    return rows


def accuracy(args):
    """Rows ``[engine, method, accuracy, difference from TensorFlow in points]`` of the fne job's default."""
    from keras_tl import messages
    from keras_tl.features import engines
    from keras_tl.jobs import fne

    names = ["tensorflow"] + [name for name in ("openvino", "onnxruntime") if engines.installed(name)]
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            run_dir = os.path.join(folder, name)
            code = fne.main(["--engine", name, "--quiet", "--output-dir", run_dir,
                             "--cache-dir", os.path.join(folder, "cache")])
            if code:
                raise SystemExit(f"fne --engine {name} failed (exit {code})")
            with open(os.path.join(run_dir, "metrics.json")) as file:
                results[name] = {method: entry["accuracy"] for method, entry in json.load(file)["methods"].items()}
    rows = [[name, method, value, f"{100 * (value - results['tensorflow'][method]):+.1f}"]
            for name in names for method, value in results[name].items()]
    print(messages.format_table(rows, ["engine", "method", "accuracy", "points from tensorflow"]))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--image-size", type=int, default=160)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--accuracy", action="store_true", help="also run the fne job's default once per engine")
    args = parser.parse_args()
    from keras_tl import tf_logs

    tf_logs.import_tensorflow_quietly()
    speed(args)
    if args.accuracy:
        accuracy(args)


if __name__ == "__main__":
    main()
