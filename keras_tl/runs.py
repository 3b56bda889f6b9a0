"""Run folders: every job writes ``config.json``, ``metrics.json``, ``figures/*.png`` and logs in one place.

Files are written to a temporary name in the same folder and renamed when complete, so an
interrupted run never leaves a half-written file behind (``os.replace`` is atomic on POSIX).
A job holds its run folder's lock (:func:`locked_run_dir`) while it writes there, so two runs
never write into one folder. A full disk is an ``OSError`` naming the file being written (or, for
another write in the run folder, the folder): an ``OSError`` from a write itself names no file, and
one from a copy names its source.
"""
import contextlib
import datetime
import errno
import hashlib
import json
import math
import os
import pathlib
import shutil
import tempfile

import numpy as np

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)  # no space left on the device, or the user's quota used up


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                          suffix=".part" + "".join(path.suffixes))  # keeps ".weights.h5" for Keras
    os.close(handle)
    try:
        with _naming_a_full_disk(path):
            yield pathlib.Path(tmp_name)
        os.chmod(tmp_name, 0o666 & ~_current_umask())  # mkstemp makes files private; give them the usual mode
        os.replace(tmp_name, path)
    finally:
        if os.path.exists(tmp_name):
            os.remove(tmp_name)


@contextlib.contextmanager
def _naming_a_full_disk(path, unless_named=False):
    """Raise a full disk's ``OSError`` from the block again naming ``path`` (or, ``unless_named``, only when it
    names no file), so that the error line says where the space ran out."""
    try:
        yield
    except OSError as error:
        if error.errno not in DISK_FULL or (unless_named and error.filename):
            raise
        raise OSError(error.errno, error.strerror or os.strerror(error.errno), str(path)) from error


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


@contextlib.contextmanager
def locked_run_dir(run_dir):
    """Hold ``run_dir``'s lock (``.lock``, an operating-system file lock) for the block.

    A second run on the same folder fails at once with a ``ValueError`` naming the running one.
    The lock belongs to the process: it goes with it when the process ends, however it ends, so
    a lock left by a killed run never blocks the next one.
    """
    from filelock import FileLock, Timeout

    run_dir = pathlib.Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    owner = run_dir / ".lock.owner"
    lock = FileLock(str(run_dir / ".lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        holder = owner.read_text().strip() if owner.is_file() else "another process"
        raise ValueError(f"{run_dir} is in use by a run that is still going ({holder}); wait for it to end, "
                         f"or choose another output_dir=.") from None
    try:
        owner.write_text(f"process {os.getpid()}, started {datetime.datetime.now():%Y-%m-%d %H:%M:%S}\n")
        with _naming_a_full_disk(run_dir, unless_named=True):  # a log a Keras callback appends to, for one
            yield run_dir
    finally:
        owner.unlink(missing_ok=True)
        lock.release()


def check_free_space(folder, needed_bytes):
    """Raise ``OSError(ENOSPC)`` naming ``folder`` when it has less than ``needed_bytes`` free.

    For files written through a memory map: a full disk there is a bus error, not an exception.
    """
    free = shutil.disk_usage(folder).free
    if free < needed_bytes:
        raise OSError(errno.ENOSPC, f"No space left on device: {folder} needs {readable_size(needed_bytes)}, "
                                    f"{readable_size(free)} are free", str(folder))


def readable_size(count):
    """``count`` bytes as people write it: ``100 bytes``, ``20.0 KiB``, ``1.5 GiB``."""
    if count < 1024:
        return f"{count} bytes"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        count /= 1024
        if count < 1024 or unit == "TiB":
            return f"{count:,.1f} {unit}"


def make_run_dir(output_dir, job):
    """Create and return ``output_dir`` or, when it is None, ``runs/<job>-<timestamp>``, with ``figures/``."""
    if output_dir is None:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        output_dir = pathlib.Path("runs") / f"{job}-{stamp}"
    run_dir = pathlib.Path(output_dir)
    (run_dir / "figures").mkdir(parents=True, exist_ok=True)
    return run_dir


def file_digest(path):
    """The SHA-256 of a file, read in chunks (checksums of downloads, best-model records, duplicate images)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
