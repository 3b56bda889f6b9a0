import json
import os
import pathlib

import numpy as np
import pytest

from keras_tl import messages, runs


def test_atomic_path_leaves_nothing_behind_when_interrupted(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with runs.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise KeyboardInterrupt
    assert target.read_text() == "old"
    assert [path.name for path in tmp_path.iterdir()] == ["metrics.json"]


def test_written_files_get_the_usual_permissions(tmp_path):
    previous = os.umask(0o022)
    try:
        path = runs.write_json(tmp_path / "config.json", {"a": 1})
    finally:
        os.umask(previous)
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)


def test_write_json_converts_numpy_and_paths(tmp_path):
    runs.write_json(tmp_path / "m.json", {"accuracy": np.float32(0.5), "matrix": np.eye(2, dtype=int),
                                          "dir": pathlib.Path("/x"), 3: (np.int64(4),)})
    assert json.loads((tmp_path / "m.json").read_text()) == {"accuracy": 0.5, "matrix": [[1, 0], [0, 1]],
                                                            "dir": "/x", "3": [4]}


def test_make_run_dir_and_format_table(tmp_path):
    run_dir = runs.make_run_dir(tmp_path / "run", "fne")
    assert (run_dir / "figures").is_dir()
    table = messages.format_table([["fne", 0.97412, 10944]], ["method", "accuracy", "dims"])
    assert table.splitlines() == ["method  accuracy  dims", "------  --------  -----", "fne     0.9741    10944"]


def _hold_lock_in_another_process(run_dir):
    """A process that holds ``run_dir``'s lock until it is killed; returns it once the lock is held."""
    import subprocess
    import sys
    import time

    code = ("import sys, time\nfrom keras_tl import runs\nwith runs.locked_run_dir(sys.argv[1]):\n"
            "    print('locked', flush=True)\n    time.sleep(120)\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(run_dir)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    time.sleep(0.1)
    return holder


def test_a_run_folder_in_use_is_refused_and_a_dead_runs_lock_does_not_block(tmp_path):
    run_dir = tmp_path / "run"
    holder = _hold_lock_in_another_process(run_dir)
    try:
        with pytest.raises(ValueError, match=rf"{run_dir} is in use by a run that is still going \(process "
                                             rf"{holder.pid}, started .*\); wait for it to end, or choose another"):
            with runs.locked_run_dir(run_dir):
                pass
    finally:
        holder.kill()  # like kill -9: the lock goes with the process
        holder.wait()
    with runs.locked_run_dir(run_dir) as locked:
        assert locked == run_dir and (run_dir / ".lock.owner").read_text().startswith(f"process {os.getpid()}")
    assert not (run_dir / ".lock.owner").exists()


def test_the_fine_tune_job_refuses_a_run_folder_in_use_with_one_error_line(tmp_path, capsys):
    from keras_tl.jobs import fine_tune

    run_dir = tmp_path / "run"
    holder = _hold_lock_in_another_process(run_dir)
    try:
        code = fine_tune.main(["--image-size", "32", "--train-per-class", "5", "--test-per-class", "2", "--epochs",
                               "1", "--freeze-epochs", "0", "--quiet", "--output-dir", str(run_dir)])
    finally:
        holder.kill()
        holder.wait()
    error = capsys.readouterr().err
    assert code == 2 and error.count("\n") == 1
    assert error.startswith(f"error: {run_dir} is in use by a run that is still going (process {holder.pid}")
    assert "choose another --output-dir" in error
    assert not (run_dir / "config.json").exists()  # the second run wrote nothing


def test_check_free_space_names_the_folder_and_the_sizes(tmp_path, monkeypatch):
    import errno
    import shutil

    monkeypatch.setattr(runs.shutil, "disk_usage", lambda folder: shutil._ntuple_diskusage(10**9, 10**9, 2048))
    runs.check_free_space(tmp_path, 2048)
    with pytest.raises(OSError) as caught:
        runs.check_free_space(tmp_path, 3 * 2**20)
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(tmp_path)
    assert str(caught.value).endswith(f"needs 3.0 MiB, 2.0 KiB are free: '{tmp_path}'")


def test_a_full_disk_names_the_file_written_not_the_copy_source_nor_nothing(tmp_path):
    """A write's OSError names no file and a copy's names its source; either way the error names the file
    (or, for another write in a locked run folder, the folder) whose disk is full."""
    import errno

    def disk_full(filename=None):
        raise OSError(errno.ENOSPC, "No space left on device", filename)

    target = tmp_path / "run" / "features" / "train.npy"
    for filename in (None, str(tmp_path / "cache" / "train.npy")):
        with pytest.raises(OSError) as caught, runs.atomic_path(target):
            disk_full(filename)
        assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(target)
    assert not list(tmp_path.rglob("*.part*"))
    with pytest.raises(OSError) as caught, runs.locked_run_dir(tmp_path / "run"):
        disk_full()  # a Keras callback appending to its log, say
    assert caught.value.filename == str(tmp_path / "run")
    with pytest.raises(OSError) as caught, runs.locked_run_dir(tmp_path / "run"):
        disk_full(str(tmp_path / "cache"))  # named already: kept
    assert caught.value.filename == str(tmp_path / "cache")
    with pytest.raises(OSError) as caught, runs.atomic_path(target):
        raise OSError(errno.EACCES, "Permission denied")  # other errors pass unchanged
    assert caught.value.filename is None
