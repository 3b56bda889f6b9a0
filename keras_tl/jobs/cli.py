"""What every job's command line shares: start-up, option checks, and one line per user error.

The design notes' convention: every expected failure prints ``error: ...`` saying what to do and
exits with status 2; Ctrl-C prints one line, keeps what can be resumed, and exits with 130.
"""
import importlib
import math
import os
import sys
import warnings

# Expected failures: a bad value, a missing or unreadable file or folder, a missing package.
USER_ERRORS = (ValueError, FileNotFoundError, PermissionError, NotADirectoryError, IsADirectoryError,
               ModuleNotFoundError)
INTERRUPTED_EXIT = 130


def main(job_name, argv=None, tensorflow=True):
    """``python -m keras_tl.<job_name>``: import the job quietly, parse ``argv``, run it, return the exit code.

    TensorFlow is imported first with its start-up lines hidden (see :mod:`keras_tl.tf_logs`),
    unless the job never needs it (``tensorflow=False``), Keras runs on another backend, or
    ``--verbose`` is given.
    """
    from keras_tl import tf_logs

    argv = sys.argv[1:] if argv is None else list(argv)
    if tensorflow and os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
        tf_logs.import_tensorflow_quietly(verbose=True if "--verbose" in argv else None)
    job = importlib.import_module(f"keras_tl.jobs.{job_name}")
    return job.main(argv)


def run_cli(parse_args, job, argv=None, resumable=True):
    """Parse ``argv`` and run ``job(args)``; a user error prints ``error: ...`` and returns 2,
    Ctrl-C prints one line (saying how to resume, for a ``resumable`` job) and returns 130."""
    args = parse_args(argv)
    warnings.formatwarning = _warning_line
    try:
        job(args)
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: " + ("finished work is kept; run the same command again to resume." if resumable
                                  else "stopped before the end; start it again to run it from the beginning."),
              file=sys.stderr)
        return INTERRUPTED_EXIT
    return 0


def _warning_line(message, category, filename, lineno, line=None):
    """Warnings in a job are for its user: ``warning: ...``, without the file and line of the code."""
    return f"warning: {message}\n"


def add_verbose(parser):
    """The ``--verbose`` option every job has: TensorFlow's start-up and log lines are shown."""
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's start-up and log lines (also: KERAS_TL_VERBOSE=1)")


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


def check_options(parser, args, **rules):
    """Stop with ``parser.error`` (exit 2, one line) at the first option outside its :class:`Rule`.

    ``rules`` maps an option's ``dest`` to its rule; None values (not given) pass, lists are
    checked item by item, and NaN or infinite numbers never pass.
    """
    flags = {action.dest: action.option_strings[-1] for action in parser._actions if action.option_strings}
    for dest, rule in rules.items():
        value = getattr(args, dest)
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if item is not None and not (math.isfinite(item) and rule.test(item)):
                parser.error(f"{flags[dest]} {rule.phrase}; got {item}.")
