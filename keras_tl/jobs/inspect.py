"""The inspection job, ``python -m keras_tl.inspect [SOURCE_OR_RUN]``: what the network sees, layer by layer.

For a source (ImageNet or random weights) or a finished ``fne`` / ``fine_tune`` run folder, draws
with :mod:`keras_tl.analysis.visualize` (Yosinski et al. 2015): the first conv layer's filters, the feature
maps of chosen layers for one image, the dataset images that activate chosen channels most, and
the inputs that maximise those channels (gradient ascent). Writes ``figures/*.png``,
``config.json`` and ``inspect.json`` (what was drawn; the activations before and after the
ascent; the top images) into a run folder.
"""
import argparse
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
  python -m keras_tl.inspect runs/fine_tune-20260101-120000 --image photo.jpg   # what fine-tuning changed
"""
BUILTIN_DEFAULTS = {"train_per_class": 20, "test_per_class": 10}
DEFAULT_IMAGE_SIZE = 96


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
    parser.add_argument("--channels", type=int, nargs="+", default=[0, 1, 2, 3], metavar="C",
                        help="channels of each layer to maximise and find top images for (default: 0 1 2 3)")
    parser.add_argument("--image", default=None, metavar="FILE",
                        help="image whose feature maps are drawn (default: the dataset's first image)")
    cli.add_dataset_options(parser, ("20 for the built-in default, else all", "10 for the built-in default, "
                                     "else all"))
    parser.add_argument("--top-k", type=int, default=9, help="top images per channel (default 9)")
    parser.add_argument("--steps", type=int, default=40, help="gradient-ascent steps per channel (default 40)")
    parser.add_argument("--learning-rate", type=float, default=6.0,
                        help="gradient-ascent step, in pixels of 0..255 (default 6)")
    cli.add_output_options(parser, "inspect", cache=True)
    return parser


def parse_args(argv=None):
    parser = make_parser()
    args = parser.parse_args(argv)
    cli.fill_defaults(args, BUILTIN_DEFAULTS, when=args.dataset == parser.get_default("dataset"))
    cli.check_options(parser, args, image_size=cli.IMAGE_SIZE, channels=cli.NOT_NEGATIVE, top_k=cli.AT_LEAST_ONE,
                      steps=cli.AT_LEAST_ONE, learning_rate=cli.POSITIVE, train_per_class=cli.AT_LEAST_ONE,
                      test_per_class=cli.AT_LEAST_ONE)
    return args


def load_subject(args):
    """``(network, source, image_size, description, run)``: the network to inspect and what goes with it.

    A run folder gives its own network (the base of a fine-tuned classifier), source and size;
    ``run`` is then the :class:`~keras_tl.analysis.trained.TrainedModel`, else None.
    """
    from keras_tl import sources
    from keras_tl.analysis import trained, visualize

    subject = args.subject or args.source
    if os.path.isdir(subject) or os.sep in subject:
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
        if max(channels) >= shape[-1]:
            raise ValueError(f"channels={max(channels)} is beyond layer {name}'s {shape[-1]} channels (0.."
                             f"{shape[-1] - 1}).")
    return names


def joined_images(dataset):
    """The train and test images of ``dataset`` as one set: top images come from all of it."""
    parts = (dataset.train, dataset.test)
    stacked = {field: None if getattr(dataset.train, field) is None
               else np.concatenate([getattr(part, field) for part in parts]) for field in ("paths", "images")}
    return data.ImageSet(labels=np.concatenate([part.labels for part in parts]), **stacked)


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
    dataset = data.load_dataset(args.dataset, seed=args.seed, train_per_class=args.train_per_class,
                                test_per_class=args.test_per_class, verbose=verbose, tfds_data_dir=args.tfds_data_dir)
    image_set = joined_images(dataset)
    image = args.image or (image_set.paths[0] if image_set.paths is not None else image_set.images[0])

    run_dir = runs.make_run_dir(args.output_dir, "inspect")
    figures = run_dir / "figures"
    with runs.locked_run_dir(run_dir):
        runs.write_json(run_dir / "config.json", {**vars(args), "image_size": image_size, "layers": layers,
                                                  "run_dir": run_dir, "dataset_summary": dataset.summary()})
        if verbose:
            print(f"Network: {description}, {image_size}x{image_size} px")
            print(f"Layers: {messages.describe_layers(layers)}; channels {' '.join(map(str, args.channels))}")
            print(f"Data: {dataset.summary()}; feature maps of {args.image or 'its first image'}")
            print(f"Output: {run_dir}", flush=True)
        visualize.plot_filters(network, path=figures / "filters.png")
        visualize.plot_feature_maps(network, image, layers, source.preprocess_input, path=figures / "feature_maps.png")
        extractor = extraction.FeatureExtractor(source, layers, image_size, model=network,
                                             weights=None if args.weights == "none" else "imagenet")
        cache_dir = None if trained_run is not None else args.cache_dir  # a run's weights are its own: no shared cache
        top = draw_top_images(extractor, image_set, dataset.class_names, layers, args, cache_dir, figures)
        maximized = visualize.maximize_channels(network, layers, args.channels, preprocess=source.preprocess_input,
                                                steps=args.steps, learning_rate=args.learning_rate, seed=args.seed,
                                                verbose=verbose)
        visualize.plot_maximized(maximized, path=figures / "maximized.png")
        report = {"network": description, "source": source.name, "image_size": image_size, "layers": layers,
                  "channels": args.channels,
                  "feature_map_image": image if isinstance(image, str) else "dataset image 0",
                  "dataset": dataset.summary(), "figures": sorted(path.name for path in figures.glob("*.png")),
                  "maximized": [{key: result[key] for key in ("layer", "channel", "before", "after")}
                                for result in maximized],
                  "top_images": top}
        runs.write_json(run_dir / "inspect.json", report)
        print_summary(maximized, top, dataset.class_names, run_dir)
        return report


def draw_top_images(extractor, image_set, class_names, layers, args, cache_dir, figures):
    """One figure per layer, ``top_images_<layer>.png``: a row of top images per channel. Returns their records."""
    import matplotlib.pyplot as plt

    from keras_tl import plots
    from keras_tl.analysis import visualize

    records = []
    k = min(args.top_k, len(image_set))
    features, _ = extractor.extract(image_set, cache_dir, verbose=not args.quiet)  # every layer's, once
    for layer in layers:
        layer_features = features[:, extractor.columns([layer])]
        figure, grid = plt.subplots(len(args.channels), k, figsize=(1.6 * k, 1.9 * len(args.channels)), squeeze=False)
        figure.suptitle(f"{layer}: the {k} images that activate each channel most")
        for row, channel in zip(grid, args.channels):
            indices, activations = visualize.top_images(layer_features, image_set, layer, channel, k)
            visualize.plot_top_images(image_set, indices, activations, class_names, ax=row)
            row[0].set_ylabel(f"channel {channel}", fontsize=8)
            records.append({"layer": layer, "channel": channel, "indices": indices, "activations": activations,
                            "classes": [class_names[image_set.labels[index]] for index in indices],
                            "files": None if image_set.paths is None
                            else [image_set.paths[index] for index in indices]})
        plots.finish_figure(figure, figures / f"top_images_{layer}.png")
    return records


def print_summary(maximized, top, class_names, run_dir):
    """One row per layer and channel: its activation on noise and on its maximising image, its top image's class."""
    best = {(record["layer"], record["channel"]): record for record in top}
    rows = [[result["layer"], result["channel"], result["before"], result["after"],
             best[result["layer"], result["channel"]]["classes"][0]] for result in maximized]
    print(messages.format_table(rows, ["layer", "channel", "noise", "maximised", "top image"]))
    print(f"Figures: {pathlib.Path(run_dir) / 'figures'}")
    print(f"Run folder: {run_dir}")


def main(argv=None):
    return cli.run_cli(parse_args, run, argv, make_parser=make_parser)
