"""The study job, ``python -m keras_tl.study STUDY``: the course's claims, measured here.

The studies are those of :data:`keras_tl.experiments.STUDIES` (the one list, read for the choices
and ``--help``), one module each. A study runs on every offline dataset that is installed (or on
``--dataset``, each of which must load: one that does not stops the study before any work), repeats
each number over ``--seeds`` seeded splits, and writes ``report.md`` (tables of mean ± std),
``figures/*.png`` and ``results.json`` into its folder. Features come from the feature
cache shared with the fne job, and each finished training run (tradeoff, depth) is kept in ``parts/``,
so the same command run again resumes instead of starting over. This module turns the options into
the studies' settings and writes the report around the study's tables.
"""
import argparse
import importlib
import shlex
import sys

from keras_tl import messages, runs
from keras_tl.experiments import STUDIES
from keras_tl.jobs import cli
from keras_tl.offline import OFFLINE_SOURCES

TRADEOFF_METHODS = cli.library_constant("keras_tl.experiments.tradeoff", "TRADEOFF_METHODS")
NAMED_DATASETS = cli.library_constant("keras_tl.data.registry", "NAMED_DATASETS")  # the offline datasets

DEFAULTS = {  # quick on a 2-core CPU / --full, for a GPU or a Slurm job
    "image_size": (64, 128), "train_per_class": (20, 50), "test_per_class": (20, 50), "seeds": (3, 5),
    "shots": ([1, 5, 10, 25, 50], [1, 5, 10, 25, 50, 100]), "epochs": (8, 20), "layer_step": (3, 1),
}
PAPER_DEFAULTS = {  # the paper study: VGG16's training size (224 px: with fc6 and fc7); --full: every image
    "image_size": (224, 224), "train_per_class": (20, None), "test_per_class": (20, None), "seeds": (3, 5),
}
DEPTH_DEFAULTS = {  # the depth study trains 1 + 2 x cuts networks per seed: small images and sets on a CPU
    "image_size": (32, 96), "train_per_class": (10, 50), "test_per_class": (10, 50), "seeds": (3, 5), "epochs": (6, 20),
}
HEADS_DEFAULTS = {"shots": ([5, 20, 50], [5, 20, 50, 100])}  # the heads study's curve: 3 counts on a CPU
EXAMPLES = """examples:
  python -m keras_tl.study layers                  # every offline source, every 3rd layer, each offline dataset
  python -m keras_tl.study fne --dataset animal_mnist ~/data/flowers
  python -m keras_tl.study tradeoff --seeds 5
  python -m keras_tl.study layers --full           # every layer, larger images and sets (GPU or Slurm)
  python -m keras_tl.study paper --dataset mit67:~/data/mit67 dtd:~/data/dtd --full   # the FNE paper's tables
  python -m keras_tl.study depth --cuts conv_dw_2 conv_dw_6 conv_dw_12   # Yosinski et al.'s AnB / AnB+ at 3 cuts
  python -m keras_tl.study select                  # LogME, H-score, LEEP, NCE against the layers study's SVMs
  python -m keras_tl.study heads                   # linear SVM, logistic, RBF SVM, k-NN, MLP heads against shots
"""


def studies_help():
    """One line per study of :data:`keras_tl.experiments.STUDIES`: its name and the claim it tests."""
    width = max(map(len, STUDIES))
    return "studies (the claim each tests):\n" + "".join(f"  {name:<{width}}  {claim}\n"
                                                        for name, (_, claim) in STUDIES.items())


def make_parser():
    parser = argparse.ArgumentParser(
        prog="python -m keras_tl.study", description="Run one study of transfer learning and write report.md, "
        "figures and results.json (every number a mean ± std over seeded splits).",
        epilog=studies_help() + "\n" + EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", choices=list(STUDIES), help="the study to run (listed below)")
    parser.add_argument("--source", nargs="+", default=None, metavar="SOURCE",
                        help="sources (default: layers and select every offline one, paper vgg16, else mobilenet)")
    cli.add_alias(parser, "--sources", "source", nargs="+")
    parser.add_argument("--image-size", type=int, default=None, help="input size in pixels (default 64; --full 128; "
                        "paper 224, where VGG16 keeps its fc layers)")
    cli.add_dataset_options(parser, ("20; --full 50", "20; --full 50"), several=True)
    parser.add_argument("--seeds", type=int, default=None, help="seeded splits per number (default 3; --full 5)")
    parser.add_argument("--shots", type=int, nargs="+", default=None,
                        help="fne: training images per class of the curve (default 1 5 10 25 50; heads 5 20 50)")
    parser.add_argument("--layer-step", type=int, default=None, help="layers, select: every Nth fne layer (default 3; "
                        "--full 1); the last layer is always in")
    parser.add_argument("--epochs", type=int, default=None, help="tradeoff: epochs of training, after 2 "
                        "epochs of the new head for fine-tuning; early stopping with patience 3 (default 8); "
                        "depth: the fixed epochs of every run (default 6; --full 20)")
    parser.add_argument("--methods", nargs="+", choices=list(TRADEOFF_METHODS),
                        default=list(TRADEOFF_METHODS), help="tradeoff: the methods (default: all)")
    parser.add_argument("--cuts", nargs="+", type=layer_or_index, default=None, metavar="LAYER|INDEX",
                        help="depth: where the ImageNet layers end (a layer name or an index into the source's "
                             "layers; the layers from there up are re-initialised; default: 3 (--full 7) spread "
                             "over the conv layers)")
    parser.add_argument("--weights", choices=("imagenet", "none"), default="imagenet",
                        help="paper: the source's weights, imagenet or none (random: a quick check; default imagenet)")
    parser.add_argument("--full", action="store_true", help="the whole grid: every layer, 128 px, 50 images "
                        "per class, 5 seeds, 20 epochs; paper: the paper's setting, 224 px and every image")
    cli.add_scale_options(parser)
    cli.add_output_options(parser, "study-<name>", cache=True, seed=False)
    parser.add_argument("--seed", type=int, default=0, help="the first seed (the others follow it; default 0)")
    return parser


def parse_args(argv=None):
    parser = make_parser()
    args = parser.parse_args(argv)
    args.command = "python -m keras_tl.study " + shlex.join(sys.argv[1:] if argv is None else argv)
    defaults = {"paper": PAPER_DEFAULTS, "depth": DEPTH_DEFAULTS, "heads": HEADS_DEFAULTS}.get(args.study, {})
    for name, (quick, full) in {**DEFAULTS, **defaults}.items():
        if getattr(args, name) is None:
            setattr(args, name, full if args.full else quick)
    if args.source is None:
        args.source = list(OFFLINE_SOURCES) if args.study in ("layers", "select") else ["vgg16" if args.study == "paper"
                                                                            else "mobilenet"]
    args.skip_missing = args.dataset is None  # the default: the offline datasets that are installed
    if args.dataset is None:
        args.dataset = ["animal_mnist"] if args.study in ("tradeoff", "depth") else list(NAMED_DATASETS)
    cli.check_options(parser, args, image_size=cli.IMAGE_SIZE, train_per_class=cli.AT_LEAST_ONE,
                      test_per_class=cli.AT_LEAST_ONE, seeds=cli.AT_LEAST_ONE, shots=cli.AT_LEAST_ONE,
                      layer_step=cli.AT_LEAST_ONE, epochs=cli.AT_LEAST_ONE)
    if args.strategy == "multi-worker":
        parser.error("--strategy multi-worker: a study extracts on one machine (mirrored: all its GPUs); for "
                     "several machines, see python -m keras_tl.fne --strategy multi-worker.")
    return args


def run(args):
    """Run the study; write report.md, figures and results.json; return the results."""
    from keras_tl import sources
    from keras_tl.experiments import common

    for name in args.source:
        sources.get_source(name)  # an unknown source is an error before any work, with the close matches
    verbose = not args.quiet
    datasets, missing = common.available_datasets(args.dataset, args.tfds_data_dir)
    if missing and not args.skip_missing:
        raise ValueError("Not available here: " + "; ".join(f"{name} ({reason})" for name, reason in missing.items())
                         + ". Fix or remove them from --dataset (left out, --dataset is the offline datasets "
                         "that are installed), then run the same command again.")
    if not datasets:
        raise ValueError("None of the targets is available: " + "; ".join(f"{k}: {v}" for k, v in missing.items()))
    run_dir = runs.make_run_dir(args.output_dir, f"study-{args.study}")  # only once there is something to run
    with runs.locked_run_dir(run_dir):  # a second run on this folder stops here with one error line
        seeds = list(range(args.seed, args.seed + args.seeds))
        if verbose:
            print(f"Study {args.study}: sources {', '.join(args.source)}; targets {', '.join(datasets)}"
                  + (f" (missing: {', '.join(missing)})" if missing else "")
                  + f"; {args.image_size} px; seeds {seeds}; output {run_dir}", flush=True)
        experiment = importlib.import_module(f"keras_tl.experiments.{STUDIES[args.study][0]}")
        report = experiment.report(study_settings(args, datasets, seeds), run_dir)
        settings = {key: value for key, value in vars(args).items() if key not in ("quiet", "verbose")}
        runs.write_json(run_dir / "results.json", {"study": args.study, "settings": settings, "seeds": seeds,
                                                   "targets": datasets, "missing_targets": missing,
                                                   "results": report.results})
        write_report(run_dir, args, datasets, missing, seeds, report, svm_fits(report.results))
        print(f"Report: {run_dir / 'report.md'}")
        return report.results


def study_settings(args, datasets, seeds):
    """The options as the studies read them: a :class:`keras_tl.experiments.common.StudySettings`."""
    from keras_tl.experiments.common import StudySettings

    return StudySettings(
        sources=args.source, datasets=datasets, image_size=args.image_size, train_per_class=args.train_per_class,
        test_per_class=args.test_per_class, seeds=seeds, shots=args.shots, layer_step=args.layer_step,
        epochs=args.epochs, methods=args.methods, cuts=args.cuts, cut_count=7 if args.full else 3,
        weights=None if args.weights == "none" else args.weights, cache_dir=args.cache_dir, strategy=args.strategy,
        tfds_data_dir=args.tfds_data_dir, verbose=not args.quiet)


def layer_or_index(text):
    """``--cuts``: a whole number is an index into the source's layers, anything else a layer name."""
    return int(text) if text.lstrip("-").isdigit() else text


# ----------------------------------------------------------------------------- the report


def markdown_table(headers, rows):
    lines = ["| " + " | ".join(str(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join(lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows])


def svm_fits(tree):
    """``(fits, unconverged)``: the SVM fits in a layers or fne results tree, and those stopped at the cap."""
    if not isinstance(tree, dict):
        return 0, 0
    if "unconverged" in tree:
        return len(tree["values"]), tree["unconverged"]
    counts = [svm_fits(item) for item in tree.values()]
    return sum(fits for fits, _ in counts), sum(stopped for _, stopped in counts)


def write_report(run_dir, args, datasets, missing, seeds, report, fits=(0, 0)):
    """``report.md``: the command, the settings, the study's notes, one table (and figure) per section of its
    ``report`` (a :class:`keras_tl.experiments.common.StudyReport`); tables also printed.

    ``fits``: ``(SVM fits, those stopped at liblinear's pass cap)``, said under the settings."""
    from keras_tl.features import classifiers

    train = ", ".join(map(str, sorted(args.shots))) if args.study == "heads" else args.train_per_class or "all"
    lines = [f"# Study: {args.study}", "", f"Command: `{args.command}`", "",
             f"Sources: {', '.join(args.source)}. Targets: {', '.join(datasets)}. Images: {args.image_size} px; "
             f"{train} train and {args.test_per_class or 'all'} test images per class "
             "(fewer where a class has fewer)." + ("" if args.study == "paper" else f" Every number: mean ± std over "
                                                   f"{len(seeds)} seeded split(s), seeds {seeds}."), ""]
    lines += [f"Not available here, skipped: {name} ({reason})." for name, reason in missing.items()]
    if fits[0]:
        lines += [f"Linear SVMs (LinearSVC, C=1): {fits[0]} fits, of which {fits[1]} stopped at "
                  f"{classifiers.SVM_MAX_ITER} liblinear passes before converging (their accuracy is that of the "
                  "last pass)."]
    lines += report.notes
    for title, headers, rows, figure in report.sections:
        lines += ["", f"## {title}", "", markdown_table(headers, rows)]
        if figure:
            lines += ["", f"![{title}]({figure})"]
        if not args.quiet:
            print(f"\n{title}\n{messages.format_table(rows, headers)}")
    with runs.atomic_path(run_dir / "report.md") as temporary:
        temporary.write_text("\n".join(lines) + "\n")


def main(argv=None):
    return cli.run_cli(parse_args, run, argv, make_parser=make_parser)
