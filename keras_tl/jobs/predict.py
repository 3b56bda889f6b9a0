"""The prediction job, ``python -m keras_tl.predict RUN_DIR IMAGE_OR_FOLDER...``: a trained run on new images.

Loads a finished ``fine_tune`` or ``fne`` run (:func:`keras_tl.trained.load_run`), reads the
images with the run's own size and preprocessing, and prints each file's top classes: softmax
probabilities for a fine-tuned network, linear-SVM decision scores for an FNE run.
``--output-dir`` writes them as ``predictions.csv`` there; ``--explain`` saves a Grad-CAM figure per
image (fine-tuned runs) there, else in ``RUN_DIR/explain``.
"""
import argparse
import csv
import pathlib

from keras_tl import data, gradcam, plots, runs, trained
from keras_tl.jobs import cli
from keras_tl.messages import format_table

EXAMPLES = """examples:
  python -m keras_tl.predict runs/fine_tune-20260101-120000 photo.jpg          # top 5 classes
  python -m keras_tl.predict runs/fne-20260101-120000 ~/photos --top-k 3 --output-dir runs/photos
  python -m keras_tl.predict runs/fine_tune-20260101-120000 photo.jpg --explain  # + Grad-CAM figures
"""


def make_parser():
    parser = argparse.ArgumentParser(
        prog="python -m keras_tl.predict", description="Predict the classes of new images with a finished "
        "fine_tune or fne run.", epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run folder of a finished fine_tune or fne run")
    parser.add_argument("images", metavar="IMAGE_OR_FOLDER", nargs="+",
                        help="image files, or folders searched for images (hidden files left out)")
    parser.add_argument("--top-k", type=int, default=5, help="classes shown per image (default 5)")
    parser.add_argument("--explain", action="store_true", help="fine_tune runs: save a Grad-CAM figure per "
                        "image in --output-dir, else RUN_DIR/explain")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--output-dir", default=None, metavar="DIR",
                        help="also write predictions.csv (and the --explain figures) into this folder")
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)  # older: the CSV file itself
    parser.add_argument("--quiet", action="store_true", help="no plan and no progress bar")
    cli.add_verbose(parser)
    return parser


def parse_args(argv=None):
    parser = make_parser()
    args = parser.parse_args(argv)
    cli.check_options(parser, args, top_k=cli.AT_LEAST_ONE, batch_size=cli.BATCH_SIZE)
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
    """Predict every readable image; print the table, write the CSV and figures; return the rows."""
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
        print(f"Run: {model.run_dir} ({model.kind}, {model.source.name}, {model.image_size}x{model.image_size} px, "
              f"{len(model.classes)} classes); predicting {len(files)} image(s)", flush=True)
    top = [entry for start in range(0, len(files), args.batch_size)
           for entry in model.top_k(files[start:start + args.batch_size], args.top_k)]
    print_table(files, top, model.score_name)
    output_dir = pathlib.Path(args.output_dir) if args.output_dir else None
    csv_path = args.out or (output_dir / "predictions.csv" if output_dir else None)
    if csv_path:
        write_csv(csv_path, files, top, model.score_name)
        print(f"Predictions: {csv_path}")
    if args.explain:
        folder = output_dir or (pathlib.Path(args.out).parent if args.out else model.run_dir / "explain")
        explain(model, files, top, folder)
        print(f"Grad-CAM figures: {folder}")
    if bad:
        shown = ", ".join(sorted(bad)[:3]) + (", ..." if len(bad) > 3 else "")
        print(f"Skipped {len(bad)} unreadable file(s): {shown}")
    return {path: entry for path, entry in zip(files, top)}


def print_table(files, top, score_name):
    """One row per file: the best class, its score, and the next ones."""
    rows = [[path, entry[0][0], f"{entry[0][1]:.3f}", ", ".join(f"{name} {score:.3f}" for name, score in entry[1:])]
            for path, entry in zip(files, top)]
    print(format_table(rows, ["file", "class", score_name, "next classes"]))


def write_csv(path, files, top, score_name):
    """``file,rank,class,<score name>``: one line per file and rank, written atomically."""
    with runs.atomic_path(path) as temporary, open(temporary, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "rank", "class", score_name.replace(" ", "_")])
        writer.writerows([path, rank, name, f"{score:.6g}"] for path, entry in zip(files, top)
                         for rank, (name, score) in enumerate(entry, start=1))


def explain(model, files, top, folder):
    """Save ``<folder>/<file stem>_gradcam.png`` for each file: Grad-CAM of its predicted class."""
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
