"""The inspection job, ``python -m keras_tl.inspect [SOURCE_OR_RUN]``: what the network sees, layer by layer.

For a source (ImageNet or random weights) or a finished ``fne`` / ``fine_tune`` run folder, draws
with :mod:`keras_tl.analysis.visualize` (Yosinski et al. 2015): the first conv layer's filters, the feature
maps of chosen layers for one image, the dataset images that activate chosen channels most, and
the inputs that maximise those channels (gradient ascent). Writes ``figures/*.png``,
``config.json`` and ``inspect.json`` (what was drawn; the activations before and after the
ascent; the top images) into a run folder.

The images are the run's own dataset (as its ``config.json`` records it) for a run folder, else
Animal-MNIST, unless ``--dataset`` names one. The channels are, unless ``--channels`` names them,
the most active of each layer on those images (mean activation). A top image is one that
activates its channel (activation above 0); a channel that no image activates is dead on these
images: it is named, and not maximised (the "pattern" of a dead channel is noise).

With ``--map``, ``--dendrogram`` or ``--clusters`` the job draws an ``fne`` run's feature space instead of
the network, with :mod:`keras_tl.analysis.image_maps` (the image side of "embedding spaces"): the features
the run saved in ``RUN/features/`` (every layer it extracted; train and test joined, post-processed as its
``--export-method``, fitted on train), on at most ``--points`` images (the same number of each class, at
least one, a seeded choice).
``--map pca|tsne|umap`` writes ``figures/image_map.png`` (each image's thumbnail at its 2-D place, framed
in its class colour); ``--dendrogram``, ``figures/dendrogram.png`` (hierarchical clustering, cosine
distance, on at most :data:`DENDROGRAM_LEAVES` of those images); ``--clusters K``, k-means with K
clusters (one per class by default) and their purity against the labels, in ``inspect.json``.
"""
import argparse
import dataclasses
import importlib.util
import json
import os
import pathlib

import numpy as np

from keras_tl import data, messages, runs
from keras_tl.jobs import cli

EXAMPLES = """examples:
  python -m keras_tl.inspect                                   # ImageNet MobileNet on Animal-MNIST: every figure
  python -m keras_tl.inspect mobilenet --weights none          # random weights: no edges, no patterns
  python -m keras_tl.inspect mobilenet --image photo.jpg --layers conv_pw_1_relu conv_pw_6_relu conv_pw_13_relu
  python -m keras_tl.inspect mobilenet --dataset ~/data/flowers --layers conv_pw_13_relu --channels 7 42 --top-k 16
  python -m keras_tl.inspect runs/fine_tune-20260101-120000 --image photo.jpg   # on the run's own dataset
  python -m keras_tl.inspect runs/fne-20260101-120000 --map tsne --dendrogram --clusters   # an fne run's features
  python -m keras_tl.inspect runs/fne-20260101-120000 --clusters 10 --points 1000          # k-means purity only
"""
BUILTIN_DATASET = "animal_mnist"
BUILTIN_DEFAULTS = {"train_per_class": 20, "test_per_class": 10}
DEFAULT_IMAGE_SIZE = 96
DEFAULT_CHANNELS = 4  # per layer: its most active channels on the images inspected
MAX_TOP_K = 100  # top images per channel: a figure row of 100 images is already 160 inches wide
MAX_STEPS = 1000  # gradient-ascent steps per channel (Lucid's renderings take 512)
MAP_METHODS = ("pca", "tsne", "umap")  # keras_tl.word_vectors.maps.project_vectors; umap where umap-learn is installed
MAP_POINTS = 300  # images on a map and in k-means by default: 300 thumbnails still read on a 9-inch figure
MAX_MAP_POINTS = 5000  # t-SNE and k-means on the FNE's thousands of columns take minutes beyond
DENDROGRAM_LEAVES = 60  # of the map's images: a leaf is a thumbnail, 60 fill a 27-inch-wide figure
FEATURE_FILES = ("train.npy", "test.npy", "labels_train.npy", "labels_test.npy")  # what an fne run saves


def make_parser():
    parser = argparse.ArgumentParser(
        prog="python -m keras_tl.inspect", description="What a network sees: filters, feature maps, the images "
        "that activate a channel most, and the input that maximises it.", epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("subject", nargs="?", default=None, metavar="SOURCE_OR_RUN",
                        help="a source name (as --source) or the folder of a finished fne or fine_tune run")
    cli.add_source_options(parser, f"{DEFAULT_IMAGE_SIZE}; a run folder's own size")
    parser.add_argument("--weights", default="imagenet", choices=["imagenet", "none"],
                        help="a source's weights; 'none' gives random weights, a useful sanity baseline")
    parser.add_argument("--layers", nargs="+", default=None, metavar="LAYER",
                        help="conv layers (names, or a layer set such as last); default: 4 across the depth")
    parser.add_argument("--channels", type=int, nargs="+", default=None, metavar="C",
                        help=f"channels of each layer to find top images for and maximise (default: the "
                             f"{DEFAULT_CHANNELS} most active of each layer on the images inspected)")
    parser.add_argument("--image", default=None, metavar="FILE",
                        help="image whose feature maps are drawn (default: the dataset's first image)")
    cli.add_dataset_options(parser, ("20 for animal_mnist; a run's own dataset: as the run kept it; else all",
                                     "10 for animal_mnist; a run's own dataset: as the run kept it; else all"),
                            default_help=f"a run folder's own dataset, else {BUILTIN_DATASET}")
    parser.add_argument("--top-k", type=int, default=9, help=f"top images per channel (default 9, at most {MAX_TOP_K})")
    parser.add_argument("--steps", type=int, default=40,
                        help=f"gradient-ascent steps per channel (default 40, at most {MAX_STEPS})")
    parser.add_argument("--learning-rate", type=float, default=6.0,
                        help="gradient-ascent step, in pixels of 0..255 (default 6)")
    maps = parser.add_argument_group("maps of an fne run's feature space (instead of the network's figures)")
    maps.add_argument("--map", choices=MAP_METHODS, default=None,
                      help="figures/image_map.png: each image's thumbnail at its place in a 2-D projection")
    maps.add_argument("--dendrogram", action="store_true",
                      help=f"figures/dendrogram.png: hierarchical clustering of at most {DENDROGRAM_LEAVES} images")
    maps.add_argument("--clusters", dest="n_clusters", type=int, nargs="?", const=0, default=None, metavar="K",
                      help="k-means with K clusters (no K: one per class) and their purity against the labels, "
                           "in inspect.json")
    maps.add_argument("--points", type=int, default=MAP_POINTS,
                      help=f"at most this many images, the same number of each class, at least one (default "
                           f"{MAP_POINTS}, at most {MAX_MAP_POINTS})")
    cli.add_output_options(parser, "inspect", cache=True)
    return parser


def parse_args(argv=None):
    parser = make_parser()
    args = parser.parse_args(argv)
    builtin = args.dataset == BUILTIN_DATASET or (args.dataset is None and not is_run_folder(args.subject))
    cli.fill_defaults(args, BUILTIN_DEFAULTS, when=builtin)
    cli.check_options(parser, args, image_size=cli.IMAGE_SIZE, channels=cli.NOT_NEGATIVE,
                      top_k=(cli.AT_LEAST_ONE, cli.at_most(MAX_TOP_K)),
                      steps=(cli.AT_LEAST_ONE, cli.at_most(MAX_STEPS)), learning_rate=cli.POSITIVE,
                      train_per_class=cli.AT_LEAST_ONE, test_per_class=cli.AT_LEAST_ONE, n_clusters=cli.NOT_NEGATIVE,
                      points=(cli.AT_LEAST_ONE, cli.at_most(MAX_MAP_POINTS)))
    if draws_maps(args) and not is_run_folder(args.subject):
        parser.error("--map, --dendrogram and --clusters draw an fne run's saved features: give its run folder "
                     "(the last line of python -m keras_tl.fne names it).")
    if args.map == "umap" and importlib.util.find_spec("umap") is None:
        parser.error("--map umap needs the umap-learn package: pip install umap-learn (or --map pca or tsne).")
    return args


def draws_maps(args):
    """Whether the job draws a run's feature space (``--map``, ``--dendrogram``, ``--clusters``), not the network."""
    return args.map is not None or args.dendrogram or args.n_clusters is not None


def is_run_folder(subject):
    """Whether ``subject`` names a run folder (an existing folder, or a path) rather than a source."""
    return subject is not None and (os.path.isdir(subject) or os.sep in subject)


def load_subject(args):
    """``(network, source, image_size, description, run)``: the network to inspect and what goes with it.

    A run folder gives its own network (the base of a fine-tuned classifier), source and size;
    ``run`` is then the :class:`~keras_tl.analysis.trained.TrainedModel`, else None.
    """
    from keras_tl import sources
    from keras_tl.analysis import trained, visualize

    subject = args.subject or args.source
    if is_run_folder(subject):
        run = trained.load_run(subject)
        if args.image_size not in (None, run.image_size):
            raise ValueError(f"image_size={args.image_size}: the run in {subject} takes {run.image_size} px images; "
                             f"leave image_size= out.")
        return (visualize.backbone(run.model), run.source, run.image_size,
                f"{run.kind} run {run.run_dir} ({run.source.name})", run)
    source = sources.get_source(subject)
    image_size = args.image_size or DEFAULT_IMAGE_SIZE
    weights = None if args.weights == "none" else "imagenet"
    network = source.build(weights=weights, image_size=image_size)
    return network, source, image_size, f"{source.name} ({'random' if weights is None else 'ImageNet'} weights)", None


def chosen_layers(network, requested, channels):
    """The layer names (each a conv map with every one of ``channels``): ``requested`` or 4 across the depth."""
    from keras_tl import sources
    from keras_tl.analysis import visualize

    if not requested:
        names = visualize.layers_across_depth(network, 4)
    else:
        names = list(dict.fromkeys(name for item in requested for name in sources.layer_names(network, item)))
    for name in names:
        shape = network.get_layer(name).output.shape
        if len(shape) != 4:
            raise ValueError(f"layers= holds {name}, whose output {tuple(shape)} is not a conv map; choose conv "
                             f"layers (layer set conv).")
        if channels and max(channels) >= shape[-1]:
            raise ValueError(f"channels={max(channels)} is beyond layer {name}'s {shape[-1]} channels (0.."
                             f"{shape[-1] - 1}).")
    return names


def inspected_dataset(args, trained_run, verbose):
    """``(dataset, where)``: the images to inspect, and where they come from for the plan.

    ``--dataset`` when given, else a source's :data:`BUILTIN_DATASET` (with ``--train-per-class`` /
    ``--test-per-class``); else a run's own dataset as its ``config.json`` records it
    (:func:`keras_tl.analysis.interpret.run_dataset`), with at most ``--train-per-class`` /
    ``--test-per-class`` images per class when given.
    """
    if args.dataset is not None or trained_run is None:
        dataset = data.load_dataset(args.dataset or BUILTIN_DATASET, seed=args.seed,
                                    train_per_class=args.train_per_class, test_per_class=args.test_per_class,
                                    verbose=verbose, tfds_data_dir=args.tfds_data_dir, **cli.table_options(args))
        check_one_label_each(dataset, "--dataset")
        return dataset, "--dataset" if args.dataset else "the default; --dataset to choose"
    from keras_tl.analysis import interpret

    dataset = interpret.run_dataset(trained_run.run_dir, verbose=verbose)
    check_one_label_each(dataset, "--dataset with one label per image")
    kept = {}
    for split, per_class in (("train", args.train_per_class), ("test", args.test_per_class)):
        image_set = getattr(dataset, split)
        kept[split] = (image_set if per_class is None
                       else image_set.subset(data.per_class_subset(image_set.labels, per_class, args.seed)))
    return dataclasses.replace(dataset, **kept), "the run's own dataset, from its config.json"


def check_one_label_each(dataset, instead):
    """A ``ValueError`` when ``dataset`` is multi-label: the figures name and colour each image by its one class."""
    if dataset.multi_label:
        raise ValueError(f"{dataset.name} gives some images several labels (a multi-label table), and inspect "
                         f"names and colours each image by its one class; give {instead}.")


def chosen_channels(layer_features, requested):
    """``{layer: channels}``: ``requested`` for every layer, or each layer's :data:`DEFAULT_CHANNELS` most active."""
    from keras_tl.analysis import visualize

    if requested:
        return {layer: list(requested) for layer in layer_features}
    return {layer: [int(channel) for channel in visualize.most_active_channels(features, DEFAULT_CHANNELS)]
            for layer, features in layer_features.items()}


def print_channels(channels, activity, requested, images):
    """The plan's lines on the channels: which, why, and their mean activation on the images."""
    why = ("as --channels asks" if requested else
           f"the {DEFAULT_CHANNELS} most active of each layer on these {images} images (--channels to choose)")
    print(f"Channels: {why}; mean activation and images active:")
    width = max(map(len, channels))
    for layer, chosen in channels.items():
        means, active = activity[layer]
        print(f"  {layer:<{width}}  " + ", ".join(f"{channel} ({means[channel]:.3g}, {active[channel]})"
                                                  for channel in chosen))


def run(args):
    """The whole job: load, draw every figure into the run folder, write ``inspect.json``; return its content."""
    import keras

    from keras_tl.analysis import visualize
    from keras_tl.features import extraction

    if draws_maps(args):
        return run_maps(args)
    keras.utils.set_random_seed(args.seed)
    verbose = not args.quiet
    network, source, image_size, description, trained_run = load_subject(args)
    layers = chosen_layers(network, args.layers, args.channels)
    if args.image is not None and not os.path.isfile(args.image):
        raise FileNotFoundError(f"--image {args.image}: no such file.")
    dataset, where = inspected_dataset(args, trained_run, verbose)
    image_set = data.ImageSet.concatenate([dataset.train, dataset.test])  # the top images come from all of them
    image = args.image or (image_set.paths[0] if image_set.paths is not None else image_set.images[0])

    run_dir = runs.make_run_dir(args.output_dir, "inspect")
    figures = run_dir / "figures"
    with runs.locked_run_dir(run_dir):
        runs.write_json(run_dir / "config.json", {**vars(args), "image_size": image_size, "layers": layers,
                                                  "run_dir": run_dir, "dataset_summary": dataset.summary()})
        if verbose:
            print(f"Network: {description}, {image_size}x{image_size} px")
            print(f"Layers: {messages.describe_layers(layers)}")
            print(f"Data: {dataset.summary()} ({where}); feature maps of {args.image or 'its first image'}")
            print(f"Output: {run_dir}", flush=True)
        visualize.plot_filters(network, path=figures / "filters.png")
        visualize.plot_feature_maps(network, image, layers, source.preprocess_input, path=figures / "feature_maps.png")
        extractor = extraction.FeatureExtractor(source, layers, image_size, model=network,
                                             weights=None if args.weights == "none" else "imagenet")
        cache_dir = None if trained_run is not None else args.cache_dir  # a run's weights are its own: no shared cache
        features, _ = extractor.extract(image_set, cache_dir, verbose=verbose)  # every layer's, once
        layer_features = {layer: features[:, extractor.columns([layer])] for layer in layers}
        activity = {layer: visualize.channel_activity(values) for layer, values in layer_features.items()}
        channels = chosen_channels(layer_features, args.channels)
        if verbose:
            print_channels(channels, activity, args.channels, len(image_set))
        top = draw_top_images(layer_features, activity, channels, image_set, dataset.class_names, args, figures)
        alive = {layer: [record["channel"] for record in top if record["layer"] == layer and not record["dead"]]
                 for layer in layers}
        maximized = visualize.maximize_channels(network, layers, alive, preprocess=source.preprocess_input,
                                                steps=args.steps, learning_rate=args.learning_rate, seed=args.seed,
                                                verbose=verbose)
        if maximized:
            visualize.plot_maximized(maximized, path=figures / "maximized.png")
        report = {"network": description, "source": source.name, "image_size": image_size, "layers": layers,
                  "channels": channels, "channels_chosen": "given" if args.channels else "most active",
                  "feature_map_image": image if isinstance(image, str) else "dataset image 0",
                  "dataset": dataset.summary(), "dataset_from": where, "class_names": dataset.class_names,
                  "images": len(image_set), "active_above": visualize.ACTIVE_ABOVE,
                  "figures": sorted(path.name for path in figures.glob("*.png")),
                  "maximized": [{key: result[key] for key in ("layer", "channel", "before", "after")}
                                for result in maximized],
                  "dead": [{"layer": record["layer"], "channel": record["channel"]} for record in top
                           if record["dead"]],
                  "top_images": top}
        runs.write_json(run_dir / "inspect.json", report)
        print_summary(maximized, top, len(image_set), run_dir)
        return report


def saved_features(run_dir, verbose=True):
    """``(features, image_set, class_names, method)`` of an fne run folder: the features it saved of its train
    and test images, joined and post-processed as its ``--export-method`` (fitted on train), those images (its
    own dataset, as its ``config.json`` records it) and its class names."""
    from keras_tl.analysis import interpret
    from keras_tl.features.full_network_embedding import DEFAULT_THRESHOLDS, postprocessor

    run_dir = pathlib.Path(run_dir)
    folder = run_dir / "features"
    if not all((folder / name).is_file() for name in FEATURE_FILES):
        raise FileNotFoundError(f"{folder} does not hold {', '.join(FEATURE_FILES)}: the maps draw the features an "
                                f"fne run saves there (a fine_tune run saves none). Give an fne run folder.")
    config = json.loads((run_dir / "config.json").read_text())
    if "export_method" not in config:
        raise ValueError(f"{run_dir / 'config.json'} is not an fne run's: it names no export_method (the method "
                         f"whose post-processing the maps use). Give an fne run folder.")
    method = config["export_method"]
    dataset = interpret.run_dataset(run_dir, verbose=verbose)
    check_one_label_each(dataset, "an fne run on images with one label each (the maps have no --dataset)")
    features = {}
    for split in ("train", "test"):
        features[split] = np.load(folder / f"{split}.npy", mmap_mode="r")
        if not np.array_equal(np.load(folder / f"labels_{split}.npy"), getattr(dataset, split).labels):
            raise ValueError(f"The {split} images of {config['dataset']} are not those whose features {run_dir} "
                             f"saved (the dataset changed since the run); run fne on it again.")
    step = postprocessor(method.rpartition(":")[2], config.get("thresholds", DEFAULT_THRESHOLDS))
    if step != "passthrough":
        step.fit(features["train"])
        features = {split: step.transform(values) for split, values in features.items()}
    return (np.concatenate([features["train"], features["test"]]), data.ImageSet.concatenate([dataset.train, dataset.test]), dataset.class_names,
            method)


def run_maps(args):
    """``--map``, ``--dendrogram``, ``--clusters``: draw an fne run's feature space into the run folder, write
    ``inspect.json``; return its content."""
    from keras_tl.analysis import image_maps

    verbose = not args.quiet
    features, image_set, class_names, method = saved_features(args.subject, verbose)
    per_class = max(1, args.points // len(class_names))
    chosen = data.per_class_subset(image_set.labels, per_class, args.seed)
    points, labels = features[chosen], image_set.labels[chosen]
    images = image_set.subset(chosen)
    run_dir = runs.make_run_dir(args.output_dir, "inspect")
    figures = run_dir / "figures"
    with runs.locked_run_dir(run_dir):
        runs.write_json(run_dir / "config.json", {**vars(args), "run_dir": run_dir})
        if verbose:
            print(f"Features: {args.subject}/features, {features.shape[1]:,} columns ({method}), of "
                  f"{len(features)} images; {len(chosen)} of them, at most {per_class} of each of the "
                  f"{len(class_names)} classes (--points {args.points})")
            print(f"Output: {run_dir}", flush=True)
        title = f"{method} features of {len(chosen)} images ({args.subject})"
        if args.map:
            image_maps.plot_image_map(points, images, labels, class_names, method=args.map, seed=args.seed,
                                      title=f"{image_maps.PROJECTION_NAMES[args.map]} map: {title}",
                                      path=figures / "image_map.png")
        if args.dendrogram:
            leaves = data.per_class_subset(labels, max(1, DENDROGRAM_LEAVES // len(class_names)), args.seed)
            image_maps.plot_dendrogram(points[leaves], images.subset(leaves), labels[leaves], class_names,
                                       path=figures / "dendrogram.png")
        clusters = None
        if args.n_clusters is not None:
            n_clusters = args.n_clusters or len(np.unique(labels))
            assignments, purity = image_maps.kmeans_clusters(points, labels, n_clusters, args.seed)
            clusters = {"n_clusters": n_clusters, "purity": float(purity),
                        "clusters": [int(cluster) for cluster in assignments]}
        files = images.paths if images.paths is not None else [f"image {index}" for index in chosen]
        report = {"run": str(args.subject), "method": method, "images": len(features), "points": len(chosen),
                  "per_class": per_class, "class_names": class_names, "map": args.map,
                  "figures": sorted(path.name for path in figures.glob("*.png")),
                  "files": [str(file) for file in files], "labels": [int(label) for label in labels],
                  "kmeans": clusters}
        runs.write_json(run_dir / "inspect.json", report)
        if clusters:
            print_clusters(clusters, labels, class_names)
        print(f"Figures: {figures}")
        print(f"Run folder: {run_dir}")
        return report


def print_clusters(clusters, labels, class_names):
    """One row per k-means cluster: its size, its most common class and that class's share; then the purity."""
    assignments = np.asarray(clusters["clusters"])
    rows = []
    for cluster in range(clusters["n_clusters"]):
        counts = np.bincount(labels[assignments == cluster], minlength=len(class_names))
        rows.append([cluster, int(counts.sum()), class_names[int(counts.argmax())],
                     f"{counts.max() / max(counts.sum(), 1):.2f}"])
    print(messages.format_table(rows, ["cluster", "images", "most common class", "share"]))
    print(f"k-means purity: {clusters['purity']:.3f} (the share of images in their cluster's most common class)")


def draw_top_images(layer_features, activity, channels, image_set, class_names, args, figures):
    """One figure per layer, ``top_images_<layer>.png``: a row per channel of its top images, only images that
    activate it; a dead channel is named (printed, and in its row). Returns one record per channel."""
    import matplotlib.pyplot as plt

    from keras_tl import plots
    from keras_tl.analysis import visualize

    records = []
    k = min(args.top_k, len(image_set))
    for layer, chosen in channels.items():
        figure, grid = plt.subplots(len(chosen), k, figsize=(1.6 * k, 1.9 * len(chosen)), squeeze=False)
        figure.suptitle(f"{layer}: of the {len(image_set)} images, those that activate each channel most "
                        f"(activation > {visualize.ACTIVE_ABOVE:g})")
        means, active = activity[layer]
        for row, channel in zip(grid, chosen):
            indices, activations = visualize.top_images(layer_features[layer], image_set, layer, channel, k)
            visualize.plot_top_images(image_set, indices, activations, class_names, k=k, ax=row)
            row[0].set_ylabel(f"channel {channel}\nmean {means[channel]:.2g}", fontsize=8)
            if not len(indices):
                print(f"channel {channel} of {layer} is dead on these {len(image_set)} images: no top image, "
                      f"not maximised.")
            records.append({"layer": layer, "channel": channel, "mean_activation": float(means[channel]),
                            "active_images": int(active[channel]), "dead": not len(indices),
                            "indices": indices, "activations": activations,
                            "classes": [class_names[image_set.labels[index]] for index in indices],
                            "files": None if image_set.paths is None
                            else [image_set.paths[index] for index in indices]})
        plots.finish_figure(figure, figures / f"top_images_{layer}.png")
    return records


def print_summary(maximized, top, images, run_dir):
    """One row per layer and channel: its mean activation, the images that activate it, its top image's class,
    its activation on noise and on its maximising image (a dead channel: none)."""
    ascent = {(result["layer"], result["channel"]): result for result in maximized}
    rows = []
    for record in top:
        result = ascent.get((record["layer"], record["channel"]), {})
        rows.append([record["layer"], record["channel"], record["mean_activation"],
                     f"{record['active_images']}/{images}", record["classes"][0] if record["classes"] else "dead",
                     result.get("before", "-"), result.get("after", "-")])
    print(messages.format_table(rows, ["layer", "channel", "mean", "active", "top image", "noise", "maximised"]))
    print(f"Figures: {pathlib.Path(run_dir) / 'figures'}")
    print(f"Run folder: {run_dir}")


def main(argv=None):
    return cli.run_cli(parse_args, run, argv, make_parser=make_parser)
