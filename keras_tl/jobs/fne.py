"""The feature-extraction job, ``python -m keras_tl.fne``: single layers against the Full-Network Embedding.

Extract once (every layer any method needs, pooled in the graph, cached), then train one linear
SVM per method on the columns it uses, and write the run folder: ``config.json``,
``metrics.json`` (each method's test accuracy with its 95 % Wilson interval), ``figures/*.png``,
``features/``, and one method (``--export-method``) as ``model.keras`` and ``model.json``, which
``python -m keras_tl.predict`` uses. That method's head is calibrated on cross-validated scores of the
training features (Platt scaling of SVM scores, :mod:`keras_tl.training.calibration`): ``calibration.json``,
``figures/reliability.png`` and the expected calibration error on test before and after in ``metrics.json``.

Every method reports its balanced accuracy (the mean of the recalls per class) and each class's recall
beside its accuracy. Imbalanced classes: ``--class-weight auto`` weighs each class's errors in the head
(scikit-learn's ``class_weight="balanced"``). A small dataset: ``--folds K`` also fits each method's head
on K stratified folds of train and test joined (the features are extracted once), each fold and mean ± std.

Several labels per image (a multi-label table, :mod:`keras_tl.data.csv_labels`): each head is one-vs-rest
(scikit-learn's ``OneVsRestClassifier``, a binary head per class), and each class's threshold on its scores is
the one that maximises its F1 on cross-validated scores of the training features
(:func:`keras_tl.features.multi_label.cross_validated_thresholds`; for a class with no positive training image,
0, the SVM's margin, or 0.5 for a head of probabilities); ``metrics.json`` holds each method's micro and macro
F1, mean average precision and per-class AP on test (``multi_label``), ``test_scores/LAYERS_POST.npy`` the test
scores they come from (the labels are ``features/labels_test.npy``), and ``thresholds.json`` the exported
method's thresholds. No confusion matrix and no calibration then; ``--shots`` and ``--folds`` need one label per
image.

At scale (see :mod:`keras_tl.features.extraction`): ``--strategy mirrored`` spreads each batch over the GPUs
of the machine; ``--shard I/N`` (or, in a Slurm array, the array task's part) only extracts part
I of N into the shared cache and stops, and a later run without it joins the parts, extracts what
is missing and trains; ``--strategy multi-worker`` makes each worker of a cluster extract its
part, and the chief wait for the others (as long as it takes: the job's time limit bounds it),
join the parts and train. A Slurm array in parts: labs/slurm/fne_array.sbatch. An array whose
tasks each run a whole job (one dataset per task, say) must ``unset SLURM_ARRAY_TASK_ID`` first.
"""
import argparse
import os
import shutil
import time

import numpy as np

from keras_tl import data, messages, runs
from keras_tl.jobs import cli

DEFAULT_THRESHOLDS = cli.library_constant("keras_tl.features.full_network_embedding", "DEFAULT_THRESHOLDS")
MAX_THRESHOLD = cli.library_constant("keras_tl.features.full_network_embedding", "MAX_THRESHOLD")
POSTPROCESSING = cli.library_constant("keras_tl.features.full_network_embedding", "POSTPROCESSING")
CLASSIFIERS = cli.library_constant("keras_tl.features.classifiers", "CLASSIFIERS")
LINEAR = cli.library_constant("keras_tl.features.classifiers", "LINEAR")  # the heads that model.keras can hold
WITH_C = cli.library_constant("keras_tl.features.classifiers", "WITH_C")
WITH_CLASS_WEIGHT = cli.library_constant("keras_tl.features.classifiers", "WITH_CLASS_WEIGHT")

EXAMPLES = """examples:
  python -m keras_tl.fne                                  # MobileNet on Animal-MNIST, baseline vs FNE
  python -m keras_tl.fne --shots 1 5 10 20 --repeats 5    # few-shot curve: accuracy against shots
  python -m keras_tl.fne --source vgg16 --include-top --image-size 224 --dataset ~/data/mit67
  python -m keras_tl.fne --methods last:l2 fne:none fne:l2 fne:standardise fne:fne   # ablation
  python -m keras_tl.fne --methods last:l2 fne:fne --export-method last:l2   # model.keras holds last:l2
  python -m keras_tl.fne --dataset ~/data/flowers --ten-crop --search-c
  python -m keras_tl.fne --dataset ~/data/photos --class-weight auto --folds 5   # imbalanced, small: 5 folds
  python -m keras_tl.fne --shard 0/2 & python -m keras_tl.fne --shard 1/2; wait; python -m keras_tl.fne  # in parts
"""
BUILTIN_DEFAULTS = {"train_per_class": 100, "test_per_class": 50, "image_size": 128}


def make_parser():
    parser = argparse.ArgumentParser(
        prog="python -m keras_tl.fne", description="The Full-Network Embedding against single-layer features, "
        "each with a linear SVM.", epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_source_options(parser, "128 for the built-in default, else the source's training size")
    cli.add_resize_option(parser)
    parser.add_argument("--weights", default="imagenet", choices=["imagenet", "none"],
                        help="'none' gives random weights, a useful sanity baseline")
    parser.add_argument("--include-top", action="store_true",
                        help="keep the ImageNet classifier, so FNE also takes the FC layers (needs the training size)")
    cli.add_dataset_options(parser, ("100 for the built-in default, else all", "50 for the built-in default, "
                                     "else all"))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--methods", nargs="+", default=["last:l2", "fne:fne"], metavar="LAYERS:POST",
                        help=f"layer set or layer names, and post-processing ({'/'.join(POSTPROCESSING)}); "
                             "default: last:l2 fne:fne")
    parser.add_argument("--export-method", default=None, metavar="LAYERS:POST",
                        help="the method written to model.keras for python -m keras_tl.predict, one of --methods; "
                             "default fne:fne when it is among them, else the first (not the best on test: that "
                             "choice would be made on the test set, and its accuracy would read too high)")
    parser.add_argument("--thresholds", type=float, nargs=2, default=DEFAULT_THRESHOLDS, metavar=("LOW", "HIGH"))
    parser.add_argument("--ten-crop", action="store_true", help="average the features of 10 crops per test image")
    parser.add_argument("--classifier", default="linear-svm", metavar="NAME",
                        help=f"the head on the features: {', '.join(CLASSIFIERS)} (default linear-svm; only a "
                             f"linear head, {' or '.join(LINEAR)}, is written to model.keras)")
    parser.add_argument("--C", dest="c", type=float, default=1.0,
                        help=f"regularisation of {', '.join(WITH_C)} (default 1)")
    parser.add_argument("--search-c", action="store_true", help="choose C by cross-validation on train only")
    parser.add_argument("--class-weight", choices=["none", "auto"], default="none",
                        help="auto: weigh each class's errors by n / (k x its images), scikit-learn's "
                             "class_weight='balanced', for imbalanced classes (default none)")
    parser.add_argument("--folds", type=int, default=None, metavar="K",
                        help="also estimate each method by K stratified folds of train and test joined: each fold "
                             "and mean ± std (model.keras and the test accuracy stay those of the given split)")
    parser.add_argument("--shots", type=int, nargs="+", default=None, metavar="K",
                        help="few-shot mode: train on K images per class")
    parser.add_argument("--repeats", type=int, default=5, help="seeded repeats per shot count (default 5)")
    parser.add_argument("--projector", action="store_true",
                        help="also write projector/ for TensorBoard's Embedding Projector: every image (train, then "
                             "test) as the --export-method's head sees it, with its label, split, file and thumbnail")
    parser.add_argument("--check", action="store_true", help="check the set-up first (input scale, class balance, "
                        "test images copied from train, tiny images): a table and check.json")
    cli.add_scale_options(parser, shard=True)
    cli.add_engine_option(parser)
    cli.add_output_options(parser, "fne", cache=True)
    return parser


def parse_args(argv=None):
    parser = make_parser()
    args = parser.parse_args(argv)
    cli.fill_defaults(args, BUILTIN_DEFAULTS, when=args.dataset == parser.get_default("dataset"))
    cli.check_options(parser, args, train_per_class=cli.AT_LEAST_ONE, test_per_class=cli.AT_LEAST_ONE,
                      image_size=cli.IMAGE_SIZE, batch_size=cli.BATCH_SIZE, c=cli.POSITIVE, shots=cli.AT_LEAST_ONE,
                      repeats=cli.AT_LEAST_ONE, thresholds=cli.within(-MAX_THRESHOLD, MAX_THRESHOLD))
    if not args.thresholds[0] < args.thresholds[1]:
        parser.error(f"--thresholds LOW HIGH needs LOW < HIGH; got {args.thresholds[0]} {args.thresholds[1]}.")
    if args.classifier not in CLASSIFIERS:
        parser.error(f"--classifier {args.classifier!r} is not one of {', '.join(CLASSIFIERS)}."
                     + messages.did_you_mean(args.classifier, CLASSIFIERS))
    if args.search_c and args.classifier not in WITH_C:
        parser.error(f"--search-c chooses C, which only {', '.join(WITH_C)} have; got --classifier {args.classifier}.")
    if args.class_weight == "auto" and args.classifier not in WITH_CLASS_WEIGHT:
        parser.error(f"--class-weight auto weighs the errors of {', '.join(WITH_CLASS_WEIGHT)}; --classifier "
                     f"{args.classifier} has none to weigh.")
    if args.folds is not None and args.folds < 2:
        parser.error(f"--folds must be at least 2; got {args.folds}.")
    if args.folds and args.ten_crop:
        parser.error("--ten-crop averages crops of the test images only; --folds tests every image in turn.")
    for method in args.methods:
        layers, _, post = method.rpartition(":")
        if not layers or post not in POSTPROCESSING:
            parser.error(f"--methods entry {method!r} is not LAYERS:POST with POST in {', '.join(POSTPROCESSING)}."
                         + messages.did_you_mean(post, POSTPROCESSING))
    if args.export_method is None:
        args.export_method = "fne:fne" if "fne:fne" in args.methods else args.methods[0]
    elif args.export_method not in args.methods:
        parser.error(f"--export-method {args.export_method!r} is not one of --methods {' '.join(args.methods)}; "
                     "choose one of them, or add it to --methods." + messages.did_you_mean(args.export_method,
                                                                                             args.methods))
    elif args.classifier not in LINEAR:
        parser.error(f"--export-method chooses what model.keras holds, and --classifier {args.classifier} writes no "
                     f"model.keras; use it with {' or '.join(LINEAR)}.")
    if args.strategy == "multi-worker":
        if args.shard is not None:
            parser.error("--shard and --strategy multi-worker both choose the part to extract; give one of them.")
        if args.output_dir is None or args.cache_dir == parser.get_default("cache_dir"):
            parser.error("--strategy multi-worker needs --output-dir and --cache-dir: folders every worker "
                         "reaches (a shared file system); each worker writes its part of the features there.")
    return args


def choose_scale(args):
    """``(strategy, shard, where the shard comes from, whether this process trains)``.

    The part comes from ``--shard``, a Slurm array task, or this worker's place in a multi-worker
    cluster (whose chief also joins the parts and trains); the strategy spreads this process's
    extraction over its own machine's devices.
    """
    from keras_tl import distribute

    if args.strategy == "multi-worker":  # first: in Slurm the resolver sets CUDA_VISIBLE_DEVICES
        index, workers = distribute.worker_shard()
        return distribute.make_strategy("auto"), (index, workers), f"worker {index} of {workers}", index == 0
    strategy = distribute.make_strategy(args.strategy)
    if args.shard is not None:
        return strategy, args.shard, "--shard", False
    shard = distribute.slurm_array_shard()
    origin = (f"Slurm array task {os.environ.get('SLURM_ARRAY_TASK_ID')} of "
              f"{os.environ.get('SLURM_ARRAY_TASK_COUNT')}") if shard else None
    return strategy, shard, origin, shard is None


def run(args):
    """The whole job: extract once, train one SVM per method, write the run folder; return the metrics."""
    import keras

    from keras_tl import distribute, plots, sources
    from keras_tl.analysis import setup_check
    from keras_tl.features import extraction

    strategy, shard, shard_origin, trains = choose_scale(args)
    keras.utils.set_random_seed(args.seed)
    verbose = not args.quiet
    source = sources.get_source(args.source)
    image_size = args.image_size or source.default_size
    source.input_shape(image_size)  # an error below the source's minimum size, before any work
    dataset = data.load_dataset(args.dataset, seed=args.seed, train_per_class=args.train_per_class,
                                test_per_class=args.test_per_class, verbose=verbose, tfds_data_dir=args.tfds_data_dir,
                                **cli.table_options(args))
    if dataset.multi_label and (args.shots or args.folds):
        raise ValueError(f"{'--shots' if args.shots else '--folds'} needs one label per image, and {dataset.name} "
                         f"gives some images several (a multi-label table); leave it out.")
    if args.shots:
        smallest = int(np.bincount(dataset.train.labels).min())
        if max(args.shots) > smallest:
            raise ValueError(f"--shots {max(args.shots)} exceeds the smallest train class ({smallest} images).")
    if args.folds:
        from keras_tl.features import classifiers

        classifiers.stratified_folds(pooled_labels(dataset), args.folds, args.seed)  # an error before any work
    weights = None if args.weights == "none" else "imagenet"
    with strategy.scope():
        model = source.build(weights=weights, include_top=args.include_top, image_size=image_size)
    methods = [method.rpartition(":")[::2] for method in args.methods]
    method_layers = {layers: sources.layer_names(model, layers) for layers, _ in methods}
    all_layers = [layer.name for layer in model.layers
                  if any(layer.name in names for names in method_layers.values())]
    extractor = extraction.FeatureExtractor(source, all_layers, image_size, weights, args.include_top, args.batch_size,
                                         model=model, strategy=strategy, engine=args.engine, resize=args.resize)

    run_dir = runs.make_run_dir(args.output_dir, "fne")
    if shard is not None and not trains:
        run_dir = runs.make_run_dir(run_dir / f"part-{shard[0]}-of-{shard[1]}", "fne")
    with runs.locked_run_dir(run_dir):  # a second run on this folder stops here with one error line
        runs.write_json(run_dir / "config.json", {**vars(args), "image_size": image_size, "layers": method_layers,
                                                  "run_dir": run_dir, "dataset_summary": dataset.summary(),
                                                  "devices": distribute.describe(strategy)})
        if verbose:
            print(f"Source: {source.name} ({args.weights} weights, top {'on' if args.include_top else 'off'}), "
                  f"{image_size}x{image_size} px ({args.resize}); {len(all_layers)} layers, "
                  f"{extractor.num_features:,} features per image")
            print(f"Data: {dataset.summary()}")
            print(f"Extraction: {distribute.describe(strategy)}, engine {extractor.engine}, batches of "
                  f"{args.batch_size} per replica"
                  + (f"; part {shard[0]}/{shard[1]} of the images ({shard_origin}) into {args.cache_dir}"
                     if shard else ""))
            print(f"Methods: {', '.join(args.methods)}; output: {run_dir}", flush=True)
        if args.check:
            setup_check.check(model, dataset, source, pipeline=extractor.pipeline(dataset.train), trains=False,
                              path=run_dir / "check.json", verbose=verbose)
        if shard is not None:
            part_counts = extract_part(args, extractor, dataset, shard, verbose)
            if not trains:
                metrics = {**part_counts, "shard": f"{shard[0]}/{shard[1]}", "train_images": len(dataset.train),
                           "test_images": len(dataset.test)}
                runs.write_json(run_dir / "metrics.json", metrics)
                print(f"Part {shard[0]}/{shard[1]} is in {args.cache_dir} ({part_counts['images_extracted']} images "
                      f"extracted, {part_counts['images_from_cache']} from the cache). "
                      + ("The chief joins the parts and trains the SVMs." if args.strategy == "multi-worker" else
                         "The same command without --shard (outside the array) joins the parts, extracts what is "
                         "missing and trains the SVMs."))
                return metrics
            for split in ("train", "test"):
                extractor.wait_for_parts(getattr(dataset, split), shard[1], args.cache_dir,
                                         ten_crop=args.ten_crop and split == "test", verbose=verbose)
        features, timings, counts = extract_splits(args, extractor, dataset, run_dir)
        if shard is not None:  # the chief: its own part was extracted in this run too
            counts["images_extracted"] += part_counts["images_extracted"]
            counts["images_from_cache"] -= part_counts["images_extracted"]
        results = {f"{layers}:{post}": evaluate_method(args, features, dataset, layers, post, method_layers[layers],
                                                       extractor, run_dir, save_model=f"{layers}:{post}" ==
                                                       args.export_method and args.classifier in LINEAR)
                   for layers, post in methods}  # only a linear head is a Dense layer in model.keras
        if args.projector:
            write_projector(args, features, dataset, method_layers, extractor, run_dir)
        images_per_second = (len(dataset.train) + len(dataset.test)) / max(sum(timings.values()), 1e-9)
        if args.shots:
            plots.plot_few_shot({name: result["few_shot"] for name, result in results.items()},
                                path=run_dir / "figures" / "few_shot.png", title=f"{source.name} on {dataset.name}")
        metrics = {"classifier": args.classifier, "methods": results, "extraction_seconds": timings,
                   "extraction_images_per_second": images_per_second,
                   "train_images": len(dataset.train), "test_images": len(dataset.test),
                   "skipped_files": dataset.skipped, **counts}
        runs.write_json(run_dir / "metrics.json", metrics)
        print_summary(results, images_per_second, run_dir, args.shots, dataset.skipped, args.classifier,
                      args.export_method)
        return metrics


def extract_splits(args, extractor, dataset, run_dir):
    """Train and test features (cached, linked into ``run_dir/features``), the seconds each took, and
    how many images were extracted and how many came from the cache."""
    features, timings, counts = {}, {}, {"images_extracted": 0, "images_from_cache": 0}
    for split in ("train", "test"):
        image_set = getattr(dataset, split)
        ten_crop = args.ten_crop and split == "test"
        if not args.quiet:
            print(f"Extracting {split} features ({len(image_set)} images{', ten crops' if ten_crop else ''})")
        started = time.perf_counter()
        features[split], cache_file = extractor.extract(image_set, args.cache_dir, ten_crop=ten_crop,
                                                        verbose=not args.quiet)
        timings[split] = time.perf_counter() - started
        counts = {name: counts[name] + extractor.last_counts[name] for name in counts}
        link_into(cache_file, run_dir / "features" / f"{split}.npy")
        runs.write_array(run_dir / "features" / f"labels_{split}.npy", image_set.labels)
    return features, timings, counts


def extract_part(args, extractor, dataset, shard, verbose):
    """Extract part ``shard`` of the train and test images into the cache; the counts, and each split's rows."""
    from keras_tl.features.cache import shard_rows

    counts = {"images_extracted": 0, "images_from_cache": 0, "rows": {}}
    for split in ("train", "test"):
        image_set = getattr(dataset, split)
        start, stop = shard_rows(len(image_set), shard, extractor.batch_size)
        if verbose:
            print(f"Extracting {split} features, part {shard[0]}/{shard[1]}: "
                  + (f"images {start}..{stop - 1} of {len(image_set)}" if start < stop else "no images (more parts "
                     "than batches)"), flush=True)
        extractor.extract(image_set, args.cache_dir, ten_crop=args.ten_crop and split == "test", verbose=verbose,
                          shard=shard)
        counts["images_extracted"] += extractor.last_counts["images_extracted"]
        counts["images_from_cache"] += extractor.last_counts["images_from_cache"]
        counts["rows"][split] = [start, stop]
    return counts


def evaluate_method(args, features, dataset, layers, post, names, extractor, run_dir, save_model=False):
    """Train and test one LAYERS:POST method's head (``--classifier``; and its few-shot curve); save its
    confusion matrix. With ``save_model``, also save the method as one Keras model (:mod:`keras_tl.analysis.export`).
    A multi-label dataset: :func:`evaluate_multi_label_method` instead.
    """
    from keras_tl import plots
    from keras_tl.analysis import export
    from keras_tl.features import classifiers, extraction
    from keras_tl.features.full_network_embedding import postprocessor

    source = extractor.source
    selected = extractor.columns(names)
    train_x, test_x = features["train"][:, selected], features["test"][:, selected]
    started = time.perf_counter()
    classifier = classifiers.make_classifier(postprocessor(post, args.thresholds), c=args.c,
                                          search_c=args.search_c, seed=args.seed, classifier=args.classifier,
                                          class_weight="balanced" if args.class_weight == "auto" else None,
                                          multi_label=dataset.multi_label)
    if dataset.multi_label:
        return evaluate_multi_label_method(args, classifier, train_x, test_x, dataset, f"{layers}:{post}", run_dir,
                                           extractor, names, save_model, started)
    result = classifiers.fit_evaluate(classifier, train_x, dataset.train.labels, test_x, dataset.test.labels,
                                   dataset.class_names)
    result.update(dimensions=len(selected), layers=len(names), seconds=time.perf_counter() - started)
    if args.folds:  # features of train and test joined, each image tested once
        result["folds"] = classifiers.k_fold(classifier, np.concatenate([train_x, test_x]), pooled_labels(dataset),
                                             args.folds, dataset.class_names, args.seed)
    if args.shots:
        result["few_shot"] = classifiers.few_shot(classifier, train_x, dataset.train.labels, test_x,
                                               dataset.test.labels, args.shots, args.repeats, args.seed,
                                               verbose=not args.quiet)
    if save_model:
        method_extractor = extraction.FeatureExtractor(source, names, extractor.image_size, extractor.weights,
                                                    extractor.include_top, model=extractor.model,
                                                    strategy=extractor.strategy)
        export.save_fne_model(export.fne_model(method_extractor, classifier), run_dir, dataset.class_names,
                              source.name, extractor.image_size, f"{layers}:{post}", export.head_score_name(classifier),
                              extractor.resize)
    if save_model:
        result["calibration"] = calibrate(args, classifier, train_x, test_x, dataset, run_dir,
                                          f"{source.name} {layers}:{post}")
    plots.plot_confusion_matrix(result["confusion_matrix"], dataset.class_names,
                                path=run_dir / "figures" / f"confusion_{layers}_{post}.png".replace(",", "+"),
                                title=f"{source.name} {layers}:{post}: accuracy {result['accuracy']:.3f}")
    return result


def evaluate_multi_label_method(args, classifier, train_x, test_x, dataset, method, run_dir, extractor, names,
                                save_model, started):
    """One method's one-vs-rest head on a multi-label dataset: fitted on train, thresholds from cross-validated
    training scores, the metrics of :func:`keras_tl.features.multi_label.evaluate_multi_label` on test, its test
    scores in ``test_scores/``; with ``save_model``, the model files and ``thresholds.json``."""
    from keras_tl.analysis import export
    from keras_tl.features import extraction, multi_label

    classifier.fit(train_x, dataset.train.labels)
    thresholds = multi_label.cross_validated_thresholds(classifier, train_x, dataset.train.labels, seed=args.seed)
    scores = multi_label.head_scores(classifier, test_x)
    runs.write_array(run_dir / "test_scores" / f"{method.replace(':', '_').replace(',', '+')}.npy", scores)
    result = {"multi_label": multi_label.evaluate_multi_label(dataset.test.labels, scores, thresholds,
                                                              dataset.class_names),
              "thresholds_chosen_on": f"cross-validated scores of the {len(train_x)} training images (3 folds), "
                                      f"each class's best F1",
              "images": len(test_x), "dimensions": train_x.shape[1], "layers": len(names),
              "seconds": time.perf_counter() - started}
    if save_model:
        method_extractor = extraction.FeatureExtractor(extractor.source, names, extractor.image_size,
                                                       extractor.weights, extractor.include_top,
                                                       model=extractor.model, strategy=extractor.strategy)
        export.save_fne_model(export.fne_model(method_extractor, classifier), run_dir, dataset.class_names,
                              extractor.source.name, extractor.image_size, method,
                              export.head_score_name(classifier), extractor.resize, thresholds)
        multi_label.write_thresholds(run_dir, thresholds, dataset.class_names, result["thresholds_chosen_on"])
    return result


def calibrate(args, classifier, train_x, test_x, dataset, run_dir, title):
    """Calibrated probabilities for the exported head, fitted on cross-validated scores of the training features
    (:func:`keras_tl.training.calibration.fit_head_calibration`: Platt scaling of SVM scores):
    ``calibration.json``, ``figures/reliability.png`` and the metrics' entry with the test ECE before and after;
    None (and no calibration.json) when a class has fewer than 2 training images."""
    from keras_tl.training import calibration

    fitted = calibration.fit_head_calibration(classifier, train_x, dataset.train.labels, seed=args.seed)
    if fitted is None:
        (run_dir / calibration.CALIBRATION_FILE).unlink(missing_ok=True)
        return None
    return calibration.write_calibration(run_dir, fitted, calibration.head_outputs(classifier, test_x)[0],
                                         dataset.test.labels, title)


def write_projector(args, features, dataset, method_layers, extractor, run_dir):
    """``--projector``: ``run_dir/projector`` (:mod:`keras_tl.features.projector`) with every image, train then test,
    as the ``--export-method``'s head sees it (its layers' columns, post-processed as fitted on train), and its
    label, split, file and thumbnail."""
    from sklearn.pipeline import Pipeline

    from keras_tl.features import projector
    from keras_tl.features.full_network_embedding import postprocessor

    layers, _, post = args.export_method.rpartition(":")
    selected = extractor.columns(method_layers[layers])
    postprocess = Pipeline([("postprocess", postprocessor(post, args.thresholds))]).fit(features["train"][:, selected])
    vectors = np.concatenate([postprocess.transform(features[split][:, selected]) for split in ("train", "test")])
    rows, images = [], []
    for split in ("train", "test"):
        image_set = getattr(dataset, split)
        files = [str(path) for path in image_set.paths] if image_set.paths is not None else \
            [f"{split} image {index}" for index in range(len(image_set))]
        rows += [(label_text(label, dataset.class_names), split, file) for label, file in zip(image_set.labels, files)]
        images += list(image_set.paths if image_set.paths is not None else image_set.images)
    folder = projector.write_projector(run_dir / "projector", vectors, rows, metadata_header=("label", "split", "file"),
                                       images=images, name=f"{extractor.source.name} {args.export_method}")
    if not args.quiet:
        print(f"Projector: {len(vectors)} images x {vectors.shape[1]} features ({args.export_method}) in {folder}; "
              f"tensorboard --logdir {folder}")


def label_text(label, class_names):
    """An image's label as text: its class, or its classes joined by ``+`` (multi-hot labels)."""
    return "+".join(np.asarray(class_names)[label == 1]) if np.ndim(label) else class_names[label]


def pooled_labels(dataset):
    """The labels of train and test joined, in that order: the pool that ``--folds`` splits."""
    return np.concatenate([dataset.train.labels, dataset.test.labels])


def print_summary(results, images_per_second, run_dir, shots, skipped, classifier, export_method):
    """The summary table (each accuracy with its 95 % Wilson interval, and the balanced accuracy), each method's
    recall per class, the k-fold table and the few-shot table, the files skipped, the method in model.keras, its
    calibration and where the run folder is."""
    from keras_tl.features import classifiers
    from keras_tl.training import calibration

    if "multi_label" in next(iter(results.values())):
        return print_multi_label_summary(results, images_per_second, run_dir, skipped, classifier, export_method)
    rows = [[name, result["layers"], result["dimensions"],
             classifiers.format_accuracy(result["accuracy"], result["accuracy_interval"]),
             f"{result['balanced_accuracy']:.3f}", images_per_second, result["seconds"]]
            for name, result in results.items()]
    print(messages.format_table(rows, ["method", "layers", "dims", "accuracy [95% CI]", "balanced", "extract img/s",
                                       "fit s"]))
    test_images = next(iter(results.values()))["images"]
    print(f"Accuracy on {test_images} test images, with its 95 % Wilson score interval [low, high] (Wilson 1927); "
          "balanced: the mean of the recalls per class.")
    for name, result in results.items():
        print(f"Recall per class (test images), {name}: {classifiers.format_recalls(result['per_class'])}")
    folds = {name: result["folds"] for name, result in results.items() if "folds" in result}
    if folds:
        fold_rows = [[name, " ".join(f"{fold['accuracy']:.3f}" for fold in entry["folds"]),
                      classifiers.format_mean_std(entry["accuracy"]),
                      classifiers.format_mean_std(entry["balanced_accuracy"])] for name, entry in folds.items()]
        print(messages.format_table(fold_rows, ["method", "accuracy of each fold", "accuracy", "balanced"]))
        entry = next(iter(folds.values()))
        print(f"{len(entry['folds'])} stratified folds of the {sum(fold['images'] for fold in entry['folds'])} train "
              "and test images joined, each tested once: mean ± std over the folds.")
    if shots:
        shot_rows = [[name, count, f"{entry['mean']:.3f} ± {entry['std']:.3f}"]
                     for name, result in results.items() for count, entry in result["few_shot"].items()]
        print(messages.format_table(shot_rows, ["method", "shots", "accuracy"]))
    if skipped:
        print(f"Skipped {len(skipped)} unreadable file(s), listed in metrics.json: "
              + ", ".join(str(path) for path, _ in skipped[:3]) + (", ..." if len(skipped) > 3 else ""))
    if classifier not in LINEAR:
        print(f"No model.keras: the {classifier} head stays in scikit-learn; python -m keras_tl.predict needs a "
              f"run with a linear head (--classifier {' or '.join(LINEAR)}).")
    else:
        print(f"model.keras: the {export_method} method, which python -m keras_tl.predict uses (--export-method "
              "chooses another).")
    if results[export_method].get("calibration"):
        print(calibration.describe(results[export_method]["calibration"]))
    print(f"Run folder: {run_dir}")


def print_multi_label_summary(results, images_per_second, run_dir, skipped, classifier, export_method):
    """A multi-label run's summary: each method's micro and macro F1 and mAP on test, the exported method's
    per-class AP, F1 and threshold, the files skipped, what model.keras holds and where the run folder is."""
    from keras_tl.features import multi_label

    rows = [[name, result["layers"], result["dimensions"], f"{entry['micro_f1']:.3f}", f"{entry['macro_f1']:.3f}",
             multi_label.format_score(entry["mean_average_precision"]), images_per_second, result["seconds"]]
            for name, result in results.items() for entry in [result["multi_label"]]]
    print(messages.format_table(rows, ["method", "layers", "dims", "micro F1", "macro F1", "mAP", "extract img/s",
                                       "fit s"]))
    exported = results[export_method]
    print(multi_label.per_class_table(exported["multi_label"], f"AP ({export_method})"))
    print(f"Multi-label, one-vs-rest heads, on {exported['images']} test images: F1 at each class's threshold (chosen "
          f"on {exported['thresholds_chosen_on']}); mAP, the mean of the per-class average precisions, needs none.")
    if skipped:
        print(f"Skipped {len(skipped)} unreadable file(s), listed in metrics.json")
    if classifier in LINEAR:
        print(f"model.keras: the {export_method} method and its thresholds (thresholds.json), which python -m "
              "keras_tl.predict uses.")
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
    return cli.run_cli(parse_args, run, argv, make_parser=make_parser)
