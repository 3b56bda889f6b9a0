"""The feature-extraction job, ``python -m keras_tl.fne``: single layers against the Full-Network Embedding.

Extract once (every layer any method needs, pooled in the graph, cached), then train one linear
SVM per method on the columns it uses, and write the run folder: ``config.json``,
``metrics.json``, ``figures/*.png`` and ``features/``.
"""
import argparse
import os
import shutil
import time

import keras
import numpy as np

from keras_tl import classify, data, export, extract, messages, plots, runs, sources
from keras_tl.fne import DEFAULT_THRESHOLDS, POSTPROCESSING, postprocessor
from keras_tl.jobs import cli

EXAMPLES = """examples:
  python -m keras_tl.fne                                  # MobileNet on Animal-MNIST, baseline vs FNE
  python -m keras_tl.fne --shots 1 5 10 20 --repeats 5    # few-shot curve: accuracy against shots
  python -m keras_tl.fne --source vgg16 --include-top --image-size 224 --dataset ~/data/mit67
  python -m keras_tl.fne --methods last:l2 fne:none fne:l2 fne:standardise fne:fne   # ablation
  python -m keras_tl.fne --dataset ~/data/flowers --ten-crop --search-c
"""
BUILTIN_DEFAULTS = {"train_per_class": 100, "test_per_class": 50, "image_size": 128}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m keras_tl.fne", description="The Full-Network Embedding against single-layer features, "
        "each with a linear SVM.", epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default="mobilenet", help="keras.applications model (default: mobilenet)")
    parser.add_argument("--weights", default="imagenet", choices=["imagenet", "none"],
                        help="'none' gives random weights, a useful sanity baseline")
    parser.add_argument("--include-top", action="store_true",
                        help="keep the ImageNet classifier, so FNE also takes the FC layers (needs the training size)")
    parser.add_argument("--dataset", default="animal_mnist",
                        help="animal_mnist, fashion_mnist, openclipart or a folder (see datasets/)")
    parser.add_argument("--train-per-class", type=int, default=None,
                        help="keep N train images per class (default: 100 for the built-in default, else all)")
    parser.add_argument("--test-per-class", type=int, default=None,
                        help="keep N test images per class (default: 50 for the built-in default, else all)")
    parser.add_argument("--image-size", type=int, default=None,
                        help="input size in pixels (default: 128 for the built-in default, else the source's)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--methods", nargs="+", default=["last:l2", "fne:fne"], metavar="LAYERS:POST",
                        help=f"layer set or layer names, and post-processing ({'/'.join(POSTPROCESSING)}); "
                             "default: last:l2 fne:fne")
    parser.add_argument("--thresholds", type=float, nargs=2, default=DEFAULT_THRESHOLDS, metavar=("LOW", "HIGH"))
    parser.add_argument("--ten-crop", action="store_true", help="average the features of 10 crops per test image")
    parser.add_argument("--C", dest="c", type=float, default=1.0, help="LinearSVC regularisation (default 1)")
    parser.add_argument("--search-c", action="store_true", help="choose C by cross-validation on train only")
    parser.add_argument("--shots", type=int, nargs="+", default=None, metavar="K",
                        help="few-shot mode: train on K images per class")
    parser.add_argument("--repeats", type=int, default=5, help="seeded repeats per shot count (default 5)")
    parser.add_argument("--output-dir", default=None, help="run folder (default runs/fne-<time>)")
    parser.add_argument("--cache-dir", default="runs/feature_cache", help="feature cache shared by runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    cli.add_verbose(parser)
    args = parser.parse_args(argv)
    if args.dataset == parser.get_default("dataset"):
        for name, default in BUILTIN_DEFAULTS.items():
            if getattr(args, name) is None:
                setattr(args, name, default)
    cli.check_options(parser, args, train_per_class=cli.AT_LEAST_ONE, test_per_class=cli.AT_LEAST_ONE,
                      image_size=cli.AT_LEAST_ONE, batch_size=cli.AT_LEAST_ONE, c=cli.POSITIVE, shots=cli.AT_LEAST_ONE,
                      repeats=cli.AT_LEAST_ONE)
    if not args.thresholds[0] < args.thresholds[1]:
        parser.error(f"--thresholds LOW HIGH needs LOW < HIGH; got {args.thresholds[0]} {args.thresholds[1]}.")
    for method in args.methods:
        layers, _, post = method.rpartition(":")
        if not layers or post not in POSTPROCESSING:
            parser.error(f"--methods entry {method!r} is not LAYERS:POST with POST in {', '.join(POSTPROCESSING)}."
                         + messages.did_you_mean(post, POSTPROCESSING))
    return args


def run(args):
    """The whole job: extract once, train one SVM per method, write the run folder; return the metrics."""
    keras.utils.set_random_seed(args.seed)
    verbose = not args.quiet
    source = sources.get_source(args.source)
    image_size = args.image_size or source.default_size
    source.input_shape(image_size)  # an error below the source's minimum size, before any work
    dataset = data.load_dataset(args.dataset, seed=args.seed, train_per_class=args.train_per_class,
                                test_per_class=args.test_per_class, verbose=not args.quiet)
    if args.shots:
        smallest = int(np.bincount(dataset.train.labels).min())
        if max(args.shots) > smallest:
            raise ValueError(f"--shots {max(args.shots)} exceeds the smallest train class ({smallest} images).")
    model = source.build(weights=None if args.weights == "none" else "imagenet",
                         include_top=args.include_top, image_size=image_size)
    methods = [method.rpartition(":")[::2] for method in args.methods]
    method_layers = {layers: sources.layer_names(model, layers) for layers, _ in methods}
    all_layers = [layer.name for layer in model.layers
                  if any(layer.name in names for names in method_layers.values())]

    run_dir = runs.make_run_dir(args.output_dir, "fne")
    runs.write_json(run_dir / "config.json", {**vars(args), "image_size": image_size, "layers": method_layers,
                                              "run_dir": run_dir, "dataset_summary": dataset.summary()})
    feature_dims = sum(entry["channels"] for entry in sources.feature_info(model, all_layers))
    if verbose:
        print(f"Source: {source.name} ({args.weights} weights, top {'on' if args.include_top else 'off'}), "
              f"{image_size}x{image_size} px; {len(all_layers)} layers, {feature_dims:,} features per image")
        print(f"Data: {dataset.summary()}")
        print(f"Methods: {', '.join(args.methods)}; output: {run_dir}", flush=True)
    features, timings = extract_splits(args, source, model, all_layers, dataset, image_size, run_dir)
    columns = layer_columns(model, all_layers)
    exported = next((method for method in methods if method[1] == "fne"), methods[-1])
    results = {f"{layers}:{post}": evaluate_method(args, features, dataset, layers, post, method_layers[layers],
                                                   columns, source, run_dir,
                                                   model if (layers, post) == exported else None)
               for layers, post in methods}
    images_per_second = (len(dataset.train) + len(dataset.test)) / max(sum(timings.values()), 1e-9)
    if args.shots:
        plots.plot_few_shot({name: result["few_shot"] for name, result in results.items()},
                            path=run_dir / "figures" / "few_shot.png", title=f"{source.name} on {dataset.name}")
    metrics = {"methods": results, "extraction_seconds": timings, "extraction_images_per_second": images_per_second,
               "train_images": len(dataset.train), "test_images": len(dataset.test), "skipped_files": dataset.skipped}
    runs.write_json(run_dir / "metrics.json", metrics)
    print_summary(results, images_per_second, run_dir, args.shots, dataset.skipped)
    return metrics


def layer_columns(model, layer_names):
    """The columns of each layer in the joined feature matrix (layers in ``layer_names`` order)."""
    info = sources.feature_info(model, layer_names)
    offsets = np.cumsum([0] + [entry["channels"] for entry in info])
    return {entry["name"]: np.arange(offsets[i], offsets[i + 1]) for i, entry in enumerate(info)}


def extract_splits(args, source, model, layer_names, dataset, image_size, run_dir):
    """Train and test features of ``layer_names`` (cached, linked into ``run_dir/features``) and seconds each."""
    extractor = extract.build_extractor(model, layer_names)
    features, timings = {}, {}
    for split in ("train", "test"):
        image_set = getattr(dataset, split)
        ten_crop = args.ten_crop and split == "test"
        size = int(round(image_size * extract.TEN_CROP_SCALE)) if ten_crop else image_size

        def pipeline(subset, size=size):
            return data.make_pipeline(subset, size, source.preprocess_input, args.batch_size)

        if not args.quiet:
            print(f"Extracting {split} features ({len(image_set)} images{', ten crops' if ten_crop else ''})")
        started = time.perf_counter()
        parts = [source.name, args.weights, args.include_top, layer_names, dataset.name, image_set.fingerprint(),
                 image_size, split]
        features[split], cache_file = extract.extract_features(extractor, image_set, pipeline, args.cache_dir,
                                                               parts, ten_crop=ten_crop, verbose=not args.quiet)
        timings[split] = time.perf_counter() - started
        link_into(cache_file, run_dir / "features" / f"{split}.npy")
        runs.write_array(run_dir / "features" / f"labels_{split}.npy", image_set.labels)
    return features, timings


def evaluate_method(args, features, dataset, layers, post, names, columns, source, run_dir, export_from=None):
    """Train and test one LAYERS:POST method's SVM (and its few-shot curve); save its confusion matrix.

    With ``export_from`` (the backbone), also save the method as one Keras model (:mod:`keras_tl.export`).
    """
    selected = np.concatenate([columns[layer] for layer in names])
    train_x, test_x = features["train"][:, selected], features["test"][:, selected]
    started = time.perf_counter()
    classifier = classify.make_classifier(postprocessor(post, args.thresholds), c=args.c,
                                          search_c=args.search_c, seed=args.seed)
    result = classify.fit_evaluate(classifier, train_x, dataset.train.labels, test_x, dataset.test.labels,
                                   dataset.class_names)
    result.update(dimensions=len(selected), layers=len(names), seconds=time.perf_counter() - started)
    if args.shots:
        result["few_shot"] = classify.few_shot(classifier, train_x, dataset.train.labels, test_x,
                                               dataset.test.labels, args.shots, args.repeats, args.seed,
                                               verbose=not args.quiet)
    if export_from is not None:
        export.save_fne_model(export.fne_model(export_from, names, classifier), run_dir, dataset.class_names,
                              source.name, export_from.input_shape[1], f"{layers}:{post}")
    plots.plot_confusion_matrix(result["confusion_matrix"], dataset.class_names,
                                path=run_dir / "figures" / f"confusion_{layers}_{post}.png".replace(",", "+"),
                                title=f"{source.name} {layers}:{post}: accuracy {result['accuracy']:.3f}")
    return result


def print_summary(results, images_per_second, run_dir, shots, skipped):
    """The summary table (and the few-shot table), the files skipped and where the run folder is."""
    rows = [[name, result["layers"], result["dimensions"], result["accuracy"], images_per_second, result["seconds"]]
            for name, result in results.items()]
    print(messages.format_table(rows, ["method", "layers", "dims", "accuracy", "extract img/s", "svm s"]))
    if shots:
        shot_rows = [[name, count, f"{entry['mean']:.3f} ± {entry['std']:.3f}"]
                     for name, result in results.items() for count, entry in result["few_shot"].items()]
        print(messages.format_table(shot_rows, ["method", "shots", "accuracy"]))
    if skipped:
        print(f"Skipped {len(skipped)} unreadable file(s), listed in metrics.json: "
              + ", ".join(str(path) for path, _ in skipped[:3]) + (", ..." if len(skipped) > 3 else ""))
    print(f"Run folder: {run_dir}")


def link_into(cache_file, target):
    """Put the cached feature file into the run folder: a hard link where possible, else a copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with runs.atomic_path(target) as temporary:
        temporary.unlink()
        try:
            os.link(cache_file, temporary)
        except OSError:
            shutil.copyfile(cache_file, temporary)


def main(argv=None):
    return cli.run_cli(parse_args, run, argv)
