"""What every job's command line shares: start-up, option checks, and one line per user error.

The design notes' convention: every expected failure prints ``error: ...`` saying what to do and
exits with status 2; Ctrl-C prints one line, keeps what can be resumed, and exits with 130.
"""
import argparse
import importlib
import math
import sys

# Expected failures: a bad value, a missing or unreadable file or folder, a missing package.
USER_ERRORS = (ValueError, FileNotFoundError, PermissionError, NotADirectoryError, IsADirectoryError,
               ModuleNotFoundError)
INTERRUPTED_EXIT = 130


def main(job_name, argv=None, tensorflow=True):
    """``python -m keras_tl.<job_name>``: import the job quietly, parse ``argv``, run it, return the exit code.

    TensorFlow is imported first with its start-up lines hidden (see :mod:`keras_tl.tf_logs`),
    unless the job never needs it (``tensorflow=False``) or ``--verbose`` is given.
    """
    from keras_tl import tf_logs

    argv = sys.argv[1:] if argv is None else list(argv)
    if tensorflow and "-h" not in argv and "--help" not in argv:
        tf_logs.import_tensorflow_quietly(verbose=True if "--verbose" in argv else None)
    job = importlib.import_module(f"keras_tl.jobs.{job_name}")
    return run_cli(job.parse_args, job.run, argv)


def run_cli(parse_args, job, argv=None):
    """Parse ``argv`` and run ``job(args)``; a user error prints ``error: ...`` and returns 2,
    Ctrl-C prints one line and returns 130."""
    args = parse_args(argv)
    try:
        job(args)
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: finished work is kept; run the same command again to resume.", file=sys.stderr)
        return INTERRUPTED_EXIT
    return 0


def add_verbose(parser):
    """The ``--verbose`` option every job has: TensorFlow's start-up and log lines are shown."""
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's start-up and log lines (also: KERAS_TL_VERBOSE=1)")


def at_least(minimum, kind=int):
    """An argparse ``type`` that accepts ``kind`` values ``>= minimum`` (finite), else a clear error."""
    def convert(text):
        value = _number(text, kind)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}; got {text}")
        return value

    convert.__name__ = kind.__name__  # argparse names the type in its messages
    return convert


def positive(kind=float):
    """An argparse ``type`` for finite values ``> 0``."""
    def convert(text):
        value = _number(text, kind)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0; got {text}")
        return value

    convert.__name__ = kind.__name__
    return convert


def fraction(low_open=True, high_open=True):
    """An argparse ``type`` for a finite number in the interval (0, 1), ends included where not open."""
    def convert(text):
        value = _number(text, float)
        above = value > 0 if low_open else value >= 0
        below = value < 1 if high_open else value <= 1
        if not (above and below):
            interval = f"{'(' if low_open else '['}0, 1{')' if high_open else ']'}"
            raise argparse.ArgumentTypeError(f"must be in {interval}; got {text}")
        return value

    convert.__name__ = "float"
    return convert


def _number(text, kind):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}; got {text!r}")
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number; got {text}")
    return value
