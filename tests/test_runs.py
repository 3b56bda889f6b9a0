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
