"""Run folders: every job writes ``config.json``, ``metrics.json``, ``figures/*.png`` and logs in one place.

Files are written to a temporary name in the same folder and renamed when complete, so an
interrupted run never leaves a half-written file behind (``os.replace`` is atomic on POSIX).
"""
import contextlib
import datetime
import json
import math
import os
import pathlib
import tempfile

import numpy as np


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                          suffix=".part" + "".join(path.suffixes))  # keeps ".weights.h5" for Keras
    os.close(handle)
    try:
        yield pathlib.Path(tmp_name)
        os.chmod(tmp_name, 0o666 & ~_current_umask())  # mkstemp makes files private; give them the usual mode
        os.replace(tmp_name, path)
    finally:
        if os.path.exists(tmp_name):
            os.remove(tmp_name)


def _current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _to_jsonable(value):
    if isinstance(value, dict):
        return {str(key): _to_jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return _to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return _to_jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None  # strict JSON has no NaN or Infinity
    if isinstance(value, pathlib.PurePath):
        return str(value)
    return value


def write_json(path, data):
    """Write ``data`` as strict, indented JSON (numpy values and paths converted, NaN and infinities
    as null), atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_to_jsonable(data), indent=2, sort_keys=True, allow_nan=False) + "\n")
    return pathlib.Path(path)


def write_array(path, array):
    """Save ``array`` as ``.npy`` at ``path``, atomically."""
    with atomic_path(path) as tmp:
        np.save(tmp, np.asarray(array))
    return pathlib.Path(path)


def make_run_dir(output_dir, job):
    """Create and return ``output_dir`` or, when it is None, ``runs/<job>-<timestamp>``, with ``figures/``."""
    if output_dir is None:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        output_dir = pathlib.Path("runs") / f"{job}-{stamp}"
    run_dir = pathlib.Path(output_dir)
    (run_dir / "figures").mkdir(parents=True, exist_ok=True)
    return run_dir
