"""The study job, ``python -m keras_tl.study {layers,fne,tradeoff,paper}``: the course's claims, measured here.

Each study runs the experiment of :mod:`keras_tl.experiments` on every offline target that is
installed, repeats it over ``--seeds`` seeded splits, and writes ``report.md`` (tables of
mean ± std), ``figures/*.png`` and ``results.json`` into its folder. Features come from the
feature cache shared with the fne job, and each finished tradeoff run is kept in ``parts/``,
so the same command run again resumes instead of starting over. ``paper`` redoes the FNE paper's
tables (fc6, fc7 and the FNE per course dataset, mean ± std over its published splits) with the
paper's numbers beside ours. ``select`` scores every source and layer of the layers study with
transferability estimators and ranks them against its linear SVMs (Kendall's tau). ``heads`` puts
other heads than the linear SVM (logistic, RBF SVM, k-NN, MLP) on the same features, against shots.
"""
import argparse
import json
import shlex
import sys

from keras_tl import messages, runs
from keras_tl.jobs import cli
from keras_tl.offline import OFFLINE_SOURCES

TRADEOFF_METHODS = cli.library_constant("keras_tl.experiments", "TRADEOFF_METHODS")
OFFLINE_TARGETS = cli.library_constant("keras_tl.experiments", "OFFLINE_TARGETS")

STUDIES = ("layers", "fne", "tradeoff", "paper", "depth", "select", "heads")
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
  python -m keras_tl.study layers                  # every offline source, every 3rd layer, each offline target
  python -m keras_tl.study fne --dataset animal_mnist ~/data/flowers
  python -m keras_tl.study tradeoff --seeds 5
  python -m keras_tl.study layers --full           # every layer, larger images and sets (GPU or Slurm)
  python -m keras_tl.study paper --dataset mit67:~/data/mit67 dtd:~/data/dtd --full   # the FNE paper's tables
  python -m keras_tl.study depth --cuts conv_dw_2 conv_dw_6 conv_dw_12   # Yosinski et al.'s AnB / AnB+ at 3 cuts
  python -m keras_tl.study select                  # LogME, H-score, LEEP, NCE against the layers study's SVMs
  python -m keras_tl.study heads                   # linear SVM, logistic, RBF SVM, k-NN, MLP heads against shots
"""


def make_parser():
    parser = argparse.ArgumentParser(
        prog="python -m keras_tl.study", description="Run one study of transfer learning and write report.md, "
        "figures and results.json (every number a mean ± std over seeded splits).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", choices=STUDIES)
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
    if args.dataset is None:
        args.dataset = ["animal_mnist"] if args.study in ("tradeoff", "depth") else list(OFFLINE_TARGETS)
    cli.check_options(parser, args, image_size=cli.IMAGE_SIZE, train_per_class=cli.AT_LEAST_ONE,
                      test_per_class=cli.AT_LEAST_ONE, seeds=cli.AT_LEAST_ONE, shots=cli.AT_LEAST_ONE,
                      layer_step=cli.AT_LEAST_ONE, epochs=cli.AT_LEAST_ONE)
    if args.strategy == "multi-worker":
        parser.error("--strategy multi-worker: a study extracts on one machine (mirrored: all its GPUs); for "
                     "several machines, see python -m keras_tl.fne --strategy multi-worker.")
    return args


def run(args):
    """Run the study; write report.md, figures and results.json; return the results."""
    from keras_tl import experiments, sources

    for name in args.source:
        sources.get_source(name)  # an unknown source is an error before any work, with the close matches
    verbose = not args.quiet
    targets, missing = experiments.available_targets(args.dataset, args.tfds_data_dir)
    if not targets:
        raise ValueError("None of the targets is available: " + "; ".join(f"{k}: {v}" for k, v in missing.items()))
    run_dir = runs.make_run_dir(args.output_dir, f"study-{args.study}")  # only once there is something to run
    with runs.locked_run_dir(run_dir):  # a second run on this folder stops here with one error line
        seeds = list(range(args.seed, args.seed + args.seeds))
        if verbose:
            print(f"Study {args.study}: sources {', '.join(args.source)}; targets {', '.join(targets)}"
                  + (f" (missing: {', '.join(missing)})" if missing else "")
                  + f"; {args.image_size} px; seeds {seeds}; output {run_dir}", flush=True)
        study = {"layers": report_layers, "fne": report_fne, "tradeoff": report_tradeoff,
                 "paper": report_paper, "depth": report_depth, "select": report_select,
                 "heads": report_heads}[args.study]
        results, sections = study(args, targets, seeds, run_dir, verbose)
        settings = {key: value for key, value in vars(args).items() if key not in ("quiet", "verbose")}
        runs.write_json(run_dir / "results.json", {"study": args.study, "settings": settings, "seeds": seeds,
                                                   "targets": targets, "missing_targets": missing, "results": results})
        write_report(run_dir, args, targets, missing, seeds, sections, svm_fits(results))
        print(f"Report: {run_dir / 'report.md'}")
        return results


# ----------------------------------------------------------------------------- the four studies' reports


def report_layers(args, targets, seeds, run_dir, verbose):
    from keras_tl import distribute, experiments, plots

    results, sections = {}, []
    for source in args.source:
        results[source] = {}
        for target in targets:
            pool = experiments.pool_features(source, target, args.image_size, args.train_per_class, args.test_per_class,
                                         args.cache_dir, verbose=verbose,
                                         strategy=distribute.make_strategy(args.strategy),
                                         tfds_data_dir=args.tfds_data_dir)
            chosen = experiments.study_layers(pool, args.layer_step)
            results[source][target] = experiments.layer_study(pool, chosen, args.train_per_class,
                                                          args.test_per_class, seeds, verbose=verbose)
        figure = f"figures/layers_{source}.png"
        plots.plot_layers({t: r["layers"] for t, r in results[source].items()},
                            {t: r["fne"] for t, r in results[source].items()}, path=run_dir / figure,
                            title=f"{source}: one linear SVM per layer ({args.image_size} px)")
        rows = [[target, f"{layer} ({entry['depth']:.2f})", entry["dimensions"], mean_std(entry)]
                for target, result in results[source].items() for layer, entry in result["layers"].items()]
        rows += [[target, "FNE (all layers)", "", mean_std(result["fne"])]
                 for target, result in results[source].items()]
        best = [[target, max(r["layers"], key=lambda name: r["layers"][name]["mean"]),
                 mean_std(max(r["layers"].values(), key=lambda entry: entry["mean"])), mean_std(r["fne"])]
                for target, r in results[source].items()]
        sections.append((f"{source}: single layers (L2) and the FNE", ["target", "layer (relative depth)",
                                                                      "dimensions", "accuracy"], rows, figure))
        sections.append((f"{source}: best single layer against the FNE",
                         ["target", "best layer", "its accuracy", "FNE accuracy"], best, None))
    return results, sections


def report_fne(args, targets, seeds, run_dir, verbose):
    from keras_tl import distribute, experiments, plots

    results, sections = {}, []
    for source in args.source:
        results[source] = {}
        for target in targets:
            pool = experiments.pool_features(source, target, args.image_size, max(args.train_per_class, *args.shots),
                                         args.test_per_class, args.cache_dir, verbose=verbose,
                                         strategy=distribute.make_strategy(args.strategy),
                                         tfds_data_dir=args.tfds_data_dir)
            result = results[source][target] = experiments.fne_study(pool, args.train_per_class, args.test_per_class,
                                                                 args.shots, seeds, verbose=verbose)
            figure = f"figures/shots_{source}_{target}.png"
            plots.plot_few_shot(result["shots"], path=run_dir / figure,
                                        title=f"{source} on {target}: accuracy against shots")
            sections.append((f"{source} on {target}: accuracy against training images per class",
                             ["method"] + [str(shot) for shot in args.shots],
                             [[name] + [mean_std(curve[shot]) for shot in args.shots]
                              for name, curve in result["shots"].items()], figure))
        methods = list(experiments.FNE_METHODS)
        sections.insert(0, (f"{source}: FNE against single-layer baselines ({args.train_per_class} train images "
                            "per class)", ["method"] + targets,
                            [[name] + [mean_std(results[source][t]["methods"][name]) for t in targets]
                             for name in methods], None))
        sections.insert(1, (f"{source}: the FNE's post-processing, ablated (all layers)", ["post-processing"] + targets,
                            [[name] + [mean_std(results[source][t]["ablation"][name]) for t in targets]
                             for name in experiments.ABLATION], None))
    return results, sections


def report_tradeoff(args, targets, seeds, run_dir, verbose):
    from keras_tl import experiments, plots

    results, sections = {}, []
    source = args.source[0]
    # finished runs, kept per setting: a rerun with other settings trains anew instead of reusing them
    parts = run_dir / "parts" / (f"{source}-{args.image_size}px-{args.train_per_class}+{args.test_per_class}"
                                 f"-per-class-{args.epochs}-epochs")
    progress = messages.progress_bar(len(targets) * len(args.methods) * len(seeds), "runs", unit="run",
                                     verbose=verbose)
    with progress:
        for target in targets:
            results[target] = {}
            for method in args.methods:
                per_seed = []
                for seed in seeds:
                    part = parts / f"{target}-{method}-seed{seed}.json".replace(" ", "_")
                    if part.exists():
                        per_seed.append(json.loads(part.read_text()))
                    else:
                        per_seed.append(experiments.tradeoff_run(method, source, target, args.image_size,
                                                             args.train_per_class, args.test_per_class, seed,
                                                             epochs=args.epochs, tfds_data_dir=args.tfds_data_dir))
                        runs.write_json(part, per_seed[-1])
                    progress.update(1)
                results[target][method] = {key: experiments.summary([entry[key] for entry in per_seed])
                                           for key in per_seed[0] if isinstance(per_seed[0][key], (int, float))}
                results[target][method]["energy_method"] = per_seed[0]["energy_method"]
            figure = f"figures/tradeoff_{target}.png"
            plots.plot_tradeoff(results[target], path=run_dir / figure,
                                  title=f"{source} on {target}: accuracy against wall time")
            rows = [[method, mean_std(entry["accuracy"]), mean_std(entry["network_epochs"], ".1f"),
                     mean_std(entry["wall_seconds"], ".1f"),
                     mean_std(entry["images_per_second"], ".0f"), f"{entry['trainable_params']['mean']:,.0f}",
                     mean_std(entry["energy_joules"], ".0f")] for method, entry in results[target].items()]
            headers = ["method", "accuracy", "network epochs", "wall s", "images/s", "trainable params", "energy J"]
            sections.append((f"{source} on {target}: extraction against fine-tuning against scratch "
                             f"(up to {args.epochs} epochs)", headers, rows, figure))
    return results, sections


def layer_or_index(text):
    """``--cuts``: a whole number is an index into the source's layers, anything else a layer name."""
    return int(text) if text.lstrip("-").isdigit() else text


def part_or_run(path, compute):
    """The finished run kept at ``path`` (JSON), or ``compute()``'s result, kept there for a rerun."""
    if path.exists():
        return json.loads(path.read_text())
    result = compute()
    runs.write_json(path, result)
    return result


def report_depth(args, targets, seeds, run_dir, verbose):
    """Yosinski et al. 2014 (:data:`keras_tl.experiments.DEPTH_METHODS`): AnB and AnB+ against the cut, and
    scratch, per target: a table, a figure and the paper's two effects as verdicts."""
    from keras_tl import experiments, plots, sources
    from keras_tl.training import freezing

    source = sources.get_source(args.source[0])
    pretrained = source.build("imagenet", image_size=args.image_size)
    cuts = args.cuts or experiments.depth_cuts(pretrained, 7 if args.full else 3)
    for cut in cuts:
        freezing.find_layer(pretrained, cut)  # an unknown layer is an error now, with the close names
    parts = run_dir / "parts" / (f"depth-{source.name}-{args.image_size}px-{args.train_per_class}+"
                                 f"{args.test_per_class}-per-class-{args.epochs}-fixed-epochs")
    grid = [("scratch", 0)] + [(method, cut) for cut in cuts for method in ("AnB", "AnB+")]
    results, sections = {}, []
    with messages.progress_bar(len(targets) * len(grid) * len(seeds), "runs", unit="run", verbose=verbose) as bar:
        for target in targets:
            result = results[target] = {"AnB": {}, "AnB+": {}}
            for method, cut in grid:
                per_seed = []
                for seed in seeds:
                    per_seed.append(part_or_run(parts / f"{target}-{method}-{cut}-seed{seed}.json", lambda: (
                        experiments.depth_run(method, source.name, target, args.image_size, cut,
                                              args.train_per_class, args.test_per_class, seed, epochs=args.epochs,
                                              pretrained=pretrained, tfds_data_dir=args.tfds_data_dir))))
                    bar.update(1)
                entry = experiments.summary([run["accuracy"] for run in per_seed])
                if method == "scratch":
                    result["scratch"] = entry
                else:
                    result[method][per_seed[0]["cut_layer"]] = {"layers_kept": per_seed[0]["layers_kept"], **entry}
            result["verdicts"] = experiments.depth_verdicts(result, result["scratch"])
            figure = f"figures/depth_{target}.png"
            plots.plot_depth({method: result[method] for method in ("AnB", "AnB+")}, result["scratch"],
                             path=run_dir / figure, title=f"{source.name} on {target}: ImageNet layers kept, "
                             f"{args.image_size} px")
            rows = [[f"{entry['layers_kept']} (from {layer} up: new)", mean_std(entry), mean_std(result["AnB+"][layer])]
                    for layer, entry in result["AnB"].items()]
            rows.append(["0 (scratch)", mean_std(result["scratch"]), mean_std(result["scratch"])])
            sections.append((f"{source.name} on {target}: the first n layers from ImageNet, frozen (AnB) or fine-tuned "
                             f"(AnB+), {args.epochs} epochs", ["n: layers kept", "AnB (frozen)",
                                                                      "AnB+ (fine-tuned)"], rows, figure))
            sections.append((f"{source.name} on {target}: Yosinski et al. 2014's two effects", ["verdict"],
                             [[line] for line in result["verdicts"]], None))
    return results, sections


def report_select(args, targets, seeds, run_dir, verbose):
    """Transferability scores against the layers study's SVMs (:func:`keras_tl.experiments.select_study`): per
    target, each score's Kendall's tau with the accuracy, a verdict, its cost against an SVM fit's, a figure, and
    every candidate's numbers."""
    from keras_tl import distribute, experiments, plots
    from keras_tl.offline import WeightsUnavailableError

    strategy = distribute.make_strategy(args.strategy)
    results, sections, without_top = {}, [], {}
    for target in targets:
        pools, probabilities = {}, {}
        for source in args.source:
            pools[source] = experiments.pool_features(source, target, args.image_size, args.train_per_class,
                                                      args.test_per_class, args.cache_dir, verbose=verbose,
                                                      strategy=strategy, tfds_data_dir=args.tfds_data_dir)
            try:
                probabilities[source] = experiments.source_probabilities(
                    source, target, args.train_per_class, args.test_per_class, args.cache_dir, verbose=verbose,
                    strategy=strategy, tfds_data_dir=args.tfds_data_dir)
            except WeightsUnavailableError as error:  # no ImageNet classifier here: LogME and H-score only
                probabilities[source], without_top[source] = None, str(error).splitlines()[0]
        layers = {source: experiments.study_layers(pool, args.layer_step) for source, pool in pools.items()}
        results[target] = experiments.select_study(pools, probabilities, layers, args.train_per_class,
                                                   args.test_per_class, seeds, verbose=verbose)
    scores = [*experiments.FEATURE_SCORES, *experiments.PREDICTION_SCORES]
    figure = "figures/select.png"
    plots.plot_rank_correlations({target: result["tau"] for target, result in results.items()}, path=run_dir / figure,
                                 title=f"Kendall's tau of each score with the linear SVM's accuracy "
                                       f"({args.image_size} px, {args.train_per_class} train images per class)")
    rows = []
    for target, result in results.items():
        svm = result["seconds"]["SVM"]
        rows += [[score, target, tau_cell(result["tau"][score], len(seeds)), experiments.tau_verdict(
            result["tau"][score]["mean"]), f"{1000 * result['seconds'][score]:.2f}",
            f"{svm / max(result['seconds'][score], 1e-9):,.0f}x"] for score in scores]
        rows.append(["linear SVM (the reference)", target, "1", "", f"{1000 * svm:.2f}", "1x"])
    sections.append((f"Transferability scores against the linear SVM, over {len(results[targets[0]]['candidates'])} "
                     "candidates per target (each source's layers, L2, and its FNE)",
                     ["score", "target", "Kendall's tau (mean ± std over seeds)", "verdict", "ms per candidate",
                      "faster than the SVM"], rows, figure))
    notes = [experiments.SELECT_NOTES[score] for score in scores]
    notes += [f"{source}: no ImageNet classifier here, so no LEEP or NCE ({reason})."
              for source, reason in without_top.items()]
    sections.append(("How to read the scores", ["note"], [[note] for note in notes], None))
    for target, result in results.items():
        rows = [[candidate, "" if entry["depth"] is None else f"{entry['depth']:.2f}", mean_std(entry["accuracy"])]
                + [f"{entry['scores'][score]['mean']:.3f}" if score in entry["scores"] else "—" for score in scores]
                for candidate, entry in result["candidates"].items()]
        sections.append((f"{target}: every candidate (means over seeds)",
                         ["candidate", "relative depth", "SVM accuracy", *scores], rows, None))
    return results, sections


def tau_cell(entry, seeds):
    """``mean ± std`` of one score's tau (:func:`keras_tl.experiments.select_study`); how many seeds had none."""
    if entry["mean"] is None:
        return "— (every candidate scored the same)"
    cell = mean_std(entry, ".2f")
    return cell + (f" ({entry['undefined']} of {seeds} seeds: all scores equal)" if entry["undefined"] else "")


def report_heads(args, targets, seeds, run_dir, verbose):
    """Per source and target: each head's accuracy against shots on the FNE and on the last layer (a table and
    a figure each), then the slides' three claims about heads, one verdict each."""
    from keras_tl import distribute, experiments, plots
    from keras_tl.features import classifiers

    results, sections = {}, []
    shots = sorted(args.shots)
    for source in args.source:
        results[source] = {}
        for target in targets:
            pool = experiments.pool_features(source, target, args.image_size, max(args.train_per_class, *shots),
                                             args.test_per_class, args.cache_dir, verbose=verbose,
                                             strategy=distribute.make_strategy(args.strategy),
                                             tfds_data_dir=args.tfds_data_dir)
            result = results[source][target] = experiments.heads_study(pool, shots, args.test_per_class, seeds,
                                                                       verbose=verbose)
            for features, curves in result.items():
                figure = f"figures/heads_{source}_{target}_{features.split(',')[0].replace(' ', '_')}.png"
                plots.plot_few_shot(curves, path=run_dir / figure,
                                    title=f"{source} on {target}, {features}: heads against shots")
                rows = [[head, *[mean_std(curve[shot]) for shot in shots], mean_std(curve[shots[-1]]["train"]),
                         mean_std(curve[shots[-1]]["seconds"], ".2f"), sum(entry["capped"] for entry in curve.values())]
                        for head, curve in curves.items()]
                sections.append((f"{source} on {target}, {features}: test accuracy against training images per class",
                                 ["head", *[str(shot) for shot in shots], f"train accuracy at {shots[-1]}",
                                  f"fit s at {shots[-1]}", "fits at the iteration cap"], rows, figure))
                gains = [[head, *[mean_std(experiments.head_gain(curves, head, shot)) + " "
                                  + experiments.gain_verdict(experiments.head_gain(curves, head, shot))
                                  for shot in shots]] for head in curves if head != experiments.HEAD_BASELINE]
                sections.append((f"{source} on {target}, {features}: gain over the linear SVM (paired: same splits; "
                                 "better/worse when the mean exceeds the spread)",
                                 ["head", *[str(shot) for shot in shots]], gains, None))
                sections.append((f"{source} on {target}, {features}: the slides' claims",
                                 ["claim (slides)", "here", "holds?"],
                                 [[claim, here, holds] for claim, (here, holds)
                                  in experiments.heads_verdicts(curves).items()], None))
    sections.insert(0, ("The heads", ["head", "what it is"], list(map(list, classifiers.CLASSIFIERS.items())), None))
    return results, sections


def report_paper(args, targets, seeds, run_dir, verbose):
    """The FNE paper's table per source: dataset | fc6 L2 | fc7 L2 | FNE, each "ours (paper)" in %, and a verdict."""
    from keras_tl import distribute, experiments, plots

    results, sections = {}, []
    weights = None if args.weights == "none" else args.weights
    for source in args.source:
        extractor = experiments.paper_extractor(source, args.image_size, weights,
                                                strategy=distribute.make_strategy(args.strategy))
        differences = experiments.paper_setting_differences(source, weights, args.image_size, args.train_per_class,
                                                            args.test_per_class)
        results[source] = {}
        for target in targets:
            result = experiments.paper_study(extractor, target, seeds, args.train_per_class, args.test_per_class,
                                             args.cache_dir, verbose=verbose, tfds_data_dir=args.tfds_data_dir)
            result["verdict"] = experiments.paper_verdict(result, differences)
            results[source][target] = result
        chosen = list(results[source].values())
        layers = chosen[0]["layers"]
        figure = f"figures/paper_{source}.png"
        ours = {r["dataset"]: {name: r[column] for column, name in PAPER_HEADERS.items()} for r in chosen}
        paper = {r["dataset"]: {PAPER_HEADERS[column]: value for column, value in r["paper_percent"].items()}
                 for r in chosen}
        plots.plot_against_paper(ours, paper, path=run_dir / figure, title=f"{source}: ours against the FNE paper")
        rows = [[r["dataset"], *[paper_cell(r, column) for column in PAPER_HEADERS]] for r in chosen]
        sections.append((f"{source}: the FNE paper's table, accuracy % as ours (paper); fc6 = {layers['fc6']}, "
                         f"fc7 = {layers['fc7']}", ["dataset", *PAPER_HEADERS.values()], rows, figure))
        sections.append((f"{source}: verdicts", ["dataset", "splits", "verdict"],
                         [[r["dataset"], len(r["runs"]), r["verdict"]] for r in chosen], None))
    return results, sections


PAPER_HEADERS = {"fc6": "fc6 L2", "fc7": "fc7 L2", "fne": "FNE"}  # experiments.PAPER_COLUMNS, as the table names them


def paper_cell(result, column):
    """``ours (paper)`` in %: mean ± std over several splits, one number for one; "—" without a paper number."""
    entry, paper = result[column], result["paper_percent"].get(column)
    ours = f"{100 * entry['mean']:.1f}" + (f" ± {100 * entry['std']:.1f}" if len(entry["values"]) > 1 else "")
    return f"{ours} ({'—' if paper is None else f'{paper:.1f}'})"


# ----------------------------------------------------------------------------- the report


def mean_std(entry, spec=".3f"):
    return f"{entry['mean']:{spec}} ± {entry['std']:{spec}}"


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


def write_report(run_dir, args, targets, missing, seeds, sections, fits=(0, 0)):
    """``report.md``: the command, the settings, one table (and figure) per section; tables also printed.

    ``fits``: ``(SVM fits, those stopped at liblinear's pass cap)``, said under the settings."""
    from keras_tl import experiments
    from keras_tl.features import classifiers

    train = ", ".join(map(str, sorted(args.shots))) if args.study == "heads" else args.train_per_class or "all"
    lines = [f"# Study: {args.study}", "", f"Command: `{args.command}`", "",
             f"Sources: {', '.join(args.source)}. Targets: {', '.join(targets)}. Images: {args.image_size} px; "
             f"{train} train and {args.test_per_class or 'all'} test images per class "
             "(fewer where a class has fewer)." + ("" if args.study == "paper" else f" Every number: mean ± std over "
                                                   f"{len(seeds)} seeded split(s), seeds {seeds}."), ""]
    lines += [f"Not available here, skipped: {name} ({reason})." for name, reason in missing.items()]
    if fits[0]:
        lines += [f"Linear SVMs (LinearSVC, C=1): {fits[0]} fits, of which {fits[1]} stopped at "
                  f"{classifiers.SVM_MAX_ITER} liblinear passes before converging (their accuracy is that of the "
                  "last pass)."]
    if args.study == "tradeoff":
        lines += ["", f"Energy: measured by codecarbon when installed, else process CPU seconds x "
                      f"{experiments.WATTS_PER_CPU_CORE:g} W (an assumed power per busy core). images/s: images "
                      "passed through the network (training images x epochs, plus test) per wall second.", ""]
        lines += [f"- {name}: {experiments.TRADEOFF_METHODS[name]}" for name in args.methods]
    if args.study == "paper":
        lines += ["", "The FNE paper (Garcia-Gasulla et al., ICBK 2018, arXiv:1705.07706): a linear SVM on fc6 and on "
                      "fc7 (each L2-normalised) against one on the FNE (every conv and fc layer, standardised and "
                      "discretised at the default thresholds). Here a number is the mean ± std over a dataset's "
                      "published splits (DTD: its 10) or, where the split is drawn from the seed, over the seeds "
                      f"{seeds}; "
                      "a dataset with one published split gives one number. In brackets: the paper's number, or "
                      "— where it is not recorded (keras_tl.experiments.PAPER_RESULTS). Verdict: the FNE's gain "
                      "over fc7 against the paper's and the slides' (the slides sum the paper up as "
                      f"+{experiments.SLIDES_FC6_GAIN} points over fc6 and +{experiments.SLIDES_FC7_GAIN} over fc7 "
                      "on tasks close to ImageNet); comparable only in the paper's setting (--full: VGG16 with "
                      "ImageNet weights, 224 px, every image)."]
    for title, headers, rows, figure in sections:
        lines += ["", f"## {title}", "", markdown_table(headers, rows)]
        if figure:
            lines += ["", f"![{title}]({figure})"]
        if not args.quiet:
            print(f"\n{title}\n{messages.format_table(rows, headers)}")
    with runs.atomic_path(run_dir / "report.md") as temporary:
        temporary.write_text("\n".join(lines) + "\n")


def main(argv=None):
    return cli.run_cli(parse_args, run, argv, make_parser=make_parser)
