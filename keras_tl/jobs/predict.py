"""The prediction job, ``python -m keras_tl.predict RUN_DIR IMAGE_OR_FOLDER...``: a trained run on new images.

Loads a finished ``fine_tune`` or ``fne`` run (:func:`keras_tl.analysis.trained.load_run`), reads the
images with the run's own size and preprocessing, and prints each file's top classes: softmax
probabilities for a fine-tuned network, linear-SVM decision scores for an FNE run, and beside them the
calibrated probabilities where the run has them (``calibration.json``, :mod:`keras_tl.training.calibration`).
A multi-label run (``thresholds.json``) prints instead every class whose score reaches its threshold, with the
scores (none, when no class does). ``--output-dir`` writes them as ``predictions.csv`` there; ``--explain`` saves
a Grad-CAM figure per image (fine-tuned runs; of its best class) there, else in ``RUN_DIR/explain``.
``--tta flip|ten-crop`` averages the scores over views of each image (:mod:`keras_tl.analysis.tta`).

``--interpret`` is the error analysis (:mod:`keras_tl.analysis.interpret`) instead: the run's own test
split (or ``--dataset``, ``--split``), the most confused pairs and the per-class accuracy as
tables, and in ``--output-dir`` (else ``RUN_DIR/interpret``) ``top_losses.png``,
``per_class_accuracy.png``, ``confusion_matrix.png``, ``confused_pairs.csv`` and ``mislabelled.csv``; not for a
multi-label run, whose ``metrics.json`` holds each class's AP and F1 on test instead.
"""
import argparse
import csv
import dataclasses
import pathlib

import numpy as np

from keras_tl import data, runs
from keras_tl.jobs import cli
from keras_tl.messages import format_table

TTA_KINDS = cli.library_constant("keras_tl.analysis.tta", "TTA_KINDS")
SPLITS = cli.library_constant("keras_tl.analysis.interpret", "SPLITS")
MAX_TOP_LOSSES = 100  # top_losses.png: a grid of 10 x 10 images

EXAMPLES = """examples:
  python -m keras_tl.predict runs/fine_tune-20260101-120000 photo.jpg          # top 5 classes
  python -m keras_tl.predict runs/fne-20260101-120000 ~/photos --top-k 3 --output-dir runs/photos
  python -m keras_tl.predict runs/fine_tune-20260101-120000 photo.jpg --explain  # + Grad-CAM figures
  python -m keras_tl.predict runs/fine_tune-20260101-120000 photo.jpg --tta flip # averaged with the mirror image
  python -m keras_tl.predict runs/fine_tune-20260101-120000 --interpret          # error analysis on its test split
  python -m keras_tl.predict runs/fne-20260101-120000 --interpret --dataset ~/data/flowers --split all
"""


def make_parser():
    parser = argparse.ArgumentParser(
        prog="python -m keras_tl.predict", description="Predict the classes of new images with a finished "
        "fine_tune or fne run.", epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run folder of a finished fine_tune or fne run")
    parser.add_argument("images", metavar="IMAGE_OR_FOLDER", nargs="*",
                        help="image files, or folders searched for images (hidden files left out); "
                             "none with --interpret")
    parser.add_argument("--top-k", type=int, default=5, help="classes shown per image (default 5)")
    parser.add_argument("--explain", action="store_true", help="fine_tune runs: save a Grad-CAM figure per "
                        "image in --output-dir, else RUN_DIR/explain")
    parser.add_argument("--batch-size", type=int, default=32)
    cli.add_engine_option(parser)
    parser.add_argument("--tta", choices=TTA_KINDS, default="none",
                        help="test-time augmentation: average the scores over the image and its mirror image "
                             "(flip) or over ten crops (ten-crop); default none")
    analysis = parser.add_argument_group("error analysis (--interpret)")
    analysis.add_argument("--interpret", action="store_true", help="which labelled images the run gets wrong: "
                          "the run's own test split, or --dataset")
    analysis.add_argument("--dataset", default=None, help="--interpret on this dataset (a name or folder) "
                          "instead of the run's own")
    analysis.add_argument("--split", choices=SPLITS, default=None,
                          help="--interpret on this split of the dataset: test (default), train or all")
    analysis.add_argument("--top-losses", type=int, default=9, metavar="N",
                          help="--interpret: images in top_losses.png, and rows of each kind in mislabelled.csv "
                               f"(default 9, at most {MAX_TOP_LOSSES})")
    parser.add_argument("--output-dir", default=None, metavar="DIR",
                        help="also write predictions.csv (and the --explain figures) into this folder; "
                             "--interpret: its figures and CSV files (default RUN_DIR/interpret)")
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)  # older: the CSV file itself
    parser.add_argument("--quiet", action="store_true", help="no plan and no progress bar")
    cli.add_verbose(parser)
    return parser


def parse_args(argv=None):
    parser = make_parser()
    args = parser.parse_args(argv)
    cli.check_options(parser, args, top_k=cli.AT_LEAST_ONE, batch_size=cli.BATCH_SIZE,
                      top_losses=(cli.AT_LEAST_ONE, cli.at_most(MAX_TOP_LOSSES)))
    if args.interpret and (args.images or args.explain or args.out):
        parser.error("--interpret takes its labelled images from the run's dataset (or --dataset); give no "
                     + ("IMAGE_OR_FOLDER" if args.images else "--explain" if args.explain else "--out") + ".")
    if not args.interpret:
        if args.dataset or args.split:
            parser.error(f"{'--dataset' if args.dataset else '--split'} chooses the images of --interpret; "
                         f"add --interpret, or give IMAGE_OR_FOLDER alone.")
        if not args.images:
            parser.error("the following arguments are required: IMAGE_OR_FOLDER (or --interpret)")
    return args


def image_files(names):
    """The image files that ``names`` (files and folders) stand for, folders searched as datasets are."""
    files = []
    for name in map(pathlib.Path, names):
        if name.is_dir():
            found = data.image_files(name)
            if not found:
                raise FileNotFoundError(f"No image files ({', '.join(data.IMAGE_EXTENSIONS)}) in the folder {name}.")
            files += found
        elif name.is_file():
            files.append(str(name))
        else:
            raise FileNotFoundError(f"{name} is neither an image file nor a folder.")
    return files


def run(args):
    """Predict every readable image; print the table, write the CSV and figures; return the rows.

    With ``--interpret``: the error analysis (:func:`interpret_run`) instead.
    """
    from keras_tl.analysis import trained
    from keras_tl.analysis.tta import tta_model
    from keras_tl.features.multi_label import labels_above

    if args.interpret:
        return interpret_run(args)
    model = trained.load_run(args.run_dir)
    if args.explain and model.kind != "fine_tune":
        raise ValueError(f"--explain (Grad-CAM) needs a fine_tune run; {args.run_dir} is an {model.kind} run.")
    files = image_files(args.images)
    bad = data.find_unreadable_images(files, verbose=not args.quiet)
    if bad:
        data.warn_unreadable(bad)
    files = [path for path in files if path not in bad]
    if not files:
        raise ValueError("None of the images can be read (see the warning); give readable image files.")
    if not args.quiet:
        print(f"Run: {describe_run(model)}; predicting {len(files)} image(s)"
              + (f" with {args.tta} TTA" if args.tta != "none" else ""), flush=True)
    if args.tta != "none" and args.engine != "tensorflow":
        raise ValueError(f"engine={args.engine!r} runs the run's own model, without test-time augmentation; "
                         f"give tta='none' with it, or engine='tensorflow'.")
    scorer = dataclasses.replace(model, model=tta_model(model.model, args.tta), engine=args.engine)
    batches = [files[start:start + args.batch_size] for start in range(0, len(files), args.batch_size)]
    if model.multi_label:  # the scores once: the classes above their thresholds, and the best for --explain
        scores = np.concatenate([scorer.predict(batch) for batch in batches])
        top = labels_above(scores, model.thresholds, model.classes)
        best = [[(model.classes[index], float(row[index]))] for row, index in zip(scores, scores.argmax(axis=1))]
        print_labels(files, top, model.score_name)
    else:
        top = best = [entry for batch in batches for entry in scorer.top_k(batch, args.top_k, calibrated=True)]
        print_table(files, top, model.score_name)
    output_dir = pathlib.Path(args.output_dir) if args.output_dir else None
    csv_path = args.out or (output_dir / "predictions.csv" if output_dir else None)
    if csv_path:
        write_csv(csv_path, files, top, model.score_name)
        print(f"Predictions: {csv_path}")
    if args.explain:
        folder = output_dir or (pathlib.Path(args.out).parent if args.out else model.run_dir / "explain")
        explain(model, files, best, folder)
        print(f"Grad-CAM figures: {folder}")
    if bad:
        shown = ", ".join(sorted(bad)[:3]) + (", ..." if len(bad) > 3 else "")
        print(f"Skipped {len(bad)} unreadable file(s): {shown}")
    return {path: entry for path, entry in zip(files, top)}


def interpret_run(args):
    """The error analysis: print its plan and tables, write its figures and CSV files; return the
    :class:`keras_tl.analysis.interpret.Interpretation`."""
    from keras_tl.analysis import interpret, trained

    verbose = not args.quiet
    split = args.split or "test"
    model = trained.load_run(args.run_dir)
    if model.multi_label:
        raise ValueError(f"--interpret analyses the mistakes of one label per image, and {args.run_dir} is a "
                         f"multi-label run: its metrics.json holds each class's AP and F1 on test (multi_label).")
    dataset = interpret.run_dataset(args.run_dir, args.dataset, verbose=verbose)
    image_set = interpret.split_of(dataset, split)
    output_dir = pathlib.Path(args.output_dir) if args.output_dir else model.run_dir / "interpret"
    if verbose:
        images = f"{args.dataset}'s {split}" if args.dataset else f"the run's own {split}"
        print(f"Run: {describe_run(model)}; interpreting {len(image_set)} images ({images} split"
              + (f", {args.tta} TTA)" if args.tta != "none" else ")"), flush=True)
    result = interpret.Interpretation(model, image_set, dataset.class_names, args.tta, args.batch_size, verbose)
    result.plot_top_losses(args.top_losses, path=output_dir / "top_losses.png")
    result.plot_per_class_accuracy(path=output_dir / "per_class_accuracy.png")
    result.plot_confusion_matrix(path=output_dir / "confusion_matrix.png")
    result.write_most_confused(output_dir / "confused_pairs.csv")
    result.write_csv(output_dir / "mislabelled.csv", args.top_losses)
    confused = result.most_confused()
    print("Most confused (true -> predicted):")
    print(format_table(confused, ["true", "predicted", "images"]) if confused else "  no mistakes")
    counts = result.confusion_matrix().sum(axis=1)
    print("Per-class accuracy:")
    print(format_table([[name, int(counts[result.classes.index(name)]), accuracy]
                        for name, accuracy in result.per_class_accuracy().items()],
                       ["class", "images", "accuracy"]))
    from keras_tl.features import classifiers

    accuracy = classifiers.format_accuracy(result.accuracy, result.evaluation["accuracy_interval"])
    with_tta = f" with {args.tta} TTA" if args.tta != "none" else ""
    print(f"Accuracy: {accuracy} on {len(result.files)} images{with_tta} ([low, high]: the 95 % Wilson score interval)")
    print(f"Error analysis: {output_dir} (top_losses.png, per_class_accuracy.png, confusion_matrix.png, "
          f"confused_pairs.csv, mislabelled.csv)")
    return result


def describe_run(model):
    """The header's run: ``RUN_DIR (fne run, method last:l2 (linear SVM scores), mobilenet, 128x128 px, 8 classes)``,
    the method that of ``model.json``, which the fne job's ``--export-method`` chose."""
    from keras_tl.analysis import trained

    kind = "fine_tune run"
    if model.kind == "fne":
        scores = "linear SVM scores" if model.score_name == trained.SVM_SCORE else "logistic regression probabilities"
        kind = f"fne run, method {model.method or '(not recorded)'} ({scores})"
    return (f"{model.run_dir} ({kind}, {model.source.name}, {model.image_size}x{model.image_size} px, "
            f"{len(model.classes)} classes" + (", multi-label" if model.multi_label else "") + ")")


def print_table(files, top, score_name):
    """One row per file: the best class, its score (and calibrated probability), and the next ones."""
    calibrated = len(top[0][0]) == 3
    rows = [[path, entry[0][0], f"{entry[0][1]:.3f}"] + ([f"{entry[0][2]:.3f}"] if calibrated else [])
            + [", ".join(f"{name} {score:.3f}" for name, score, *_ in entry[1:])] for path, entry in zip(files, top)]
    print(format_table(rows, ["file", "class", score_name] + (["calibrated probability"] if calibrated else [])
                       + ["next classes"]))


def print_labels(files, found, score_name):
    """A multi-label run's table: one row per file, its classes above their thresholds with their scores."""
    rows = [[path, ", ".join(f"{name} {score:.3f}" for name, score in entry) or "(none above its threshold)"]
            for path, entry in zip(files, found)]
    print(format_table(rows, ["file", f"classes above their thresholds ({score_name})"]))


def write_csv(path, files, top, score_name):
    """``file,rank,class,<score name>[,calibrated_probability]``: one line per file and rank, written atomically
    (multi-label: per class above its threshold; a file with none has no line)."""
    calibrated = any(len(pair) == 3 for entry in top for pair in entry)
    with runs.atomic_path(path) as temporary, open(temporary, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "rank", "class", score_name.replace(" ", "_")]
                        + (["calibrated_probability"] if calibrated else []))
        writer.writerows([path, rank, name] + [f"{value:.6g}" for value in values] for path, entry in zip(files, top)
                         for rank, (name, *values) in enumerate(entry, start=1))


def explain(model, files, top, folder):
    """Save ``<folder>/<file stem>_gradcam.png`` for each file: Grad-CAM of its predicted class."""
    from keras_tl import plots
    from keras_tl.analysis import gradcam

    used = set()
    for path, entry in zip(files, top):
        stem = pathlib.Path(path).stem
        name = stem if stem not in used else f"{stem}_{len(used)}"
        used.add(name)
        heat_map = gradcam.grad_cam(model.model, model.model_inputs(path)[0], model.classes.index(entry[0][0]))
        plots.plot_grad_cam(model.load_images(path)[0], heat_map, path=folder / f"{name}_gradcam.png",
                            title=f"{pathlib.Path(path).name}: {entry[0][0]} ({entry[0][1]:.2f})")


def main(argv=None):
    return cli.run_cli(parse_args, run, argv, make_parser=make_parser)
