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
"""
import argparse
import dataclasses
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
"""
BUILTIN_DATASET = "animal_mnist"
BUILTIN_DEFAULTS = {"train_per_class": 20, "test_per_class": 10}
DEFAULT_IMAGE_SIZE = 96
DEFAULT_CHANNELS = 4  # per layer: its most active channels on the images inspected
MAX_TOP_K = 100  # top images per channel: a figure row of 100 images is already 160 inches wide
MAX_STEPS = 1000  # gradient-ascent steps per channel (Lucid's renderings take 512)


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
                      train_per_class=cli.AT_LEAST_ONE, test_per_class=cli.AT_LEAST_ONE)
    return args


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
        return dataset, "--dataset" if args.dataset else "the default; --dataset to choose"
    from keras_tl.analysis import interpret

    dataset = interpret.run_dataset(trained_run.run_dir, verbose=verbose)
    kept = {}
    for split, per_class in (("train", args.train_per_class), ("test", args.test_per_class)):
        image_set = getattr(dataset, split)
        kept[split] = (image_set if per_class is None
                       else image_set.subset(data.per_class_subset(image_set.labels, per_class, args.seed)))
    return dataclasses.replace(dataset, **kept), "the run's own dataset, from its config.json"


def joined_images(dataset):
    """The train and test images of ``dataset`` as one set: top images come from all of it."""
    parts = (dataset.train, dataset.test)
    stacked = {field: None if getattr(dataset.train, field) is None
               else np.concatenate([getattr(part, field) for part in parts]) for field in ("paths", "images")}
    return data.ImageSet(labels=np.concatenate([part.labels for part in parts]), **stacked)


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

    keras.utils.set_random_seed(args.seed)
    verbose = not args.quiet
    network, source, image_size, description, trained_run = load_subject(args)
    layers = chosen_layers(network, args.layers, args.channels)
    if args.image is not None and not os.path.isfile(args.image):
        raise FileNotFoundError(f"--image {args.image}: no such file.")
    dataset, where = inspected_dataset(args, trained_run, verbose)
    image_set = joined_images(dataset)
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
