"""A real Slurm job: two tasks started by srun find each other through keras_tl.distribute.

Skipped unless ``sbatch`` is on PATH and a cluster answers with a node ready to run (``make
slurm-test`` starts a one-node cluster on Debian as root; this test then runs against it).
"""
import json
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def cluster_ready():
    if not shutil.which("sbatch") or not shutil.which("sinfo"):
        return False
    try:
        states = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return False
    return states.returncode == 0 and any(state.strip().rstrip("*~#") in ("idle", "mix", "alloc")
                                          for state in states.stdout.split())


pytestmark = pytest.mark.skipif(not cluster_ready(), reason="needs a Slurm cluster (sbatch, and sinfo showing a node up)")

TASK = """
import json
from keras_tl import distribute
resolver = distribute.cluster_resolver()
print(json.dumps({"task": [resolver.task_type, resolver.task_id], "cluster": resolver.cluster_spec().as_dict()}))
"""


def test_two_tasks_see_one_cluster(tmp_path):
    output = tmp_path / "job.out"
    script = tmp_path / "task.py"
    script.write_text(TASK)
    job = subprocess.run(["sbatch", "--parsable", "--wait", "--job-name=keras-tl-test", "--nodes=1", "--ntasks=2",
                          "--cpus-per-task=1", "--mem=2G", "--time=00:10:00", f"--output={output}",
                          f"--chdir={ROOT}", "--wrap", f"srun {sys.executable} {script}"],
                         capture_output=True, text=True, timeout=600)
    log = output.read_text() if output.exists() else ""
    assert job.returncode == 0, f"{job.stderr}\n{log[-3000:]}"
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert sorted(tuple(line["task"]) for line in lines) == [("worker", 0), ("worker", 1)]
    clusters = [line["cluster"] for line in lines]
    assert clusters[0] == clusters[1] and len(clusters[0]["worker"]) == 2
    assert {address.rsplit(":", 1)[1] for address in clusters[0]["worker"]} == {"8888", "8889"}


ARRAY_TASK = """
import json
from keras_tl import distribute
print(json.dumps(distribute.slurm_array_shard()))
"""


def test_array_tasks_each_find_their_part(tmp_path):
    """sbatch --array=1-2: each task reads its part of 2 from Slurm (counted from the first id)."""
    script = tmp_path / "task.py"
    script.write_text(ARRAY_TASK)
    job = subprocess.run(["sbatch", "--parsable", "--wait", "--job-name=keras-tl-array-test", "--array=1-2",
                          "--cpus-per-task=1", "--mem=1G", "--time=00:10:00", f"--output={tmp_path}/task-%a.out",
                          f"--chdir={ROOT}", "--wrap", f"{sys.executable} {script}"],
                         capture_output=True, text=True, timeout=600)
    logs = {task: (tmp_path / f"task-{task}.out").read_text() if (tmp_path / f"task-{task}.out").exists() else ""
            for task in (1, 2)}
    assert job.returncode == 0, f"{job.stderr}\n{logs}"
    parts = {task: json.loads(next(line for line in log.splitlines() if line.startswith("[")))
             for task, log in logs.items()}
    assert parts == {1: [0, 2], 2: [1, 2]}
