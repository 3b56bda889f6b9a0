"""TensorFlow's start-up lines (CUDA not found, oneDNN, CPU instructions, absl), hidden unless asked for.

They are written by C++ code straight to file descriptor 2 while TensorFlow is imported and its
devices are first listed, so Python's ``logging`` cannot catch them. :func:`import_tensorflow_quietly`
points descriptor 2 at a temporary file for that moment and shows the file only if the import
fails. ``KERAS_TL_VERBOSE=1`` (or a job's ``--verbose``) leaves everything as TensorFlow prints it.
"""
import contextlib
import os
import sys
import tempfile

VERBOSE_VARIABLE = "KERAS_TL_VERBOSE"


def verbose_requested():
    """True when ``KERAS_TL_VERBOSE`` is set to something other than ``""`` or ``"0"``."""
    return os.environ.get(VERBOSE_VARIABLE, "") not in ("", "0")


@contextlib.contextmanager
def _stderr_to_file():
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield captured
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def import_tensorflow_quietly(verbose=None):
    """Import TensorFlow (and list its devices) without its start-up lines; return the module.

    Does nothing special when ``verbose`` is true, or is None and ``KERAS_TL_VERBOSE`` is set,
    or when TensorFlow is already imported.
    """
    verbose = verbose_requested() if verbose is None else verbose
    if verbose or "tensorflow" in sys.modules:
        import tensorflow as tf

        return tf
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _stderr_to_file():
        import tensorflow as tf

        tf.config.list_physical_devices()
        tf.get_logger().setLevel("ERROR")
    return tf
