"""tf.distribute: strategy choice, and real training with two replicas and with two worker processes.

Logical CPU devices must be configured before TensorFlow starts its runtime, so the runs with
several replicas or workers happen in fresh subprocesses.
"""
import json
import os
import pathlib
import socket
import subprocess
import sys

import pytest
import tensorflow as tf

from keras_tl import distribute

ROOT = pathlib.Path(__file__).resolve().parents[1]
HAS_GPU = bool(tf.config.list_physical_devices("GPU"))

TRAIN = """
import json, sys
import numpy as np, tensorflow as tf
if sys.argv[1] == "mirrored":  # two logical CPUs, before the runtime starts
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from keras_tl import distribute
from keras_tl.training import optimizers

def train(strategy, global_batch=16):
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="tanh", name="lower"),
                                  keras.layers.Dense(3, name="upper")], name="net")
        multipliers = optimizers.layer_multipliers(model, {"lower": 0.5})
        model.compile(optimizer=optimizers.make_optimizer("sgd", 0.1, multipliers), loss="mse")
    start = [weight.numpy().copy() for weight in model.weights]
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 6)).astype("float32"), rng.normal(size=(64, 3)).astype("float32")
    batch = distribute.global_batch_size(global_batch // strategy.num_replicas_in_sync, strategy)
    data = distribute.shard_by_data(tf.data.Dataset.from_tensor_slices((x, y)).batch(batch))
    history = model.fit(data, epochs=2, verbose=0)
    weights = [weight.numpy() for weight in model.weights]
    moved = max(float(np.abs(a - b).max()) for a, b in zip(start, weights))
    return weights, moved, history.history["loss"]

if sys.argv[1] == "mirrored":
    mirrored = distribute.make_strategy("mirrored", devices=["/cpu:0", "/cpu:1"])
    two, moved, _ = train(mirrored)
    one, _, _ = train(distribute.make_strategy("default"))
    difference = max(float(np.abs(a - b).max()) for a, b in zip(one, two))
    print(json.dumps({"replicas": mirrored.num_replicas_in_sync, "difference": difference, "moved": moved}))
elif sys.argv[1] == "single":
    weights, _, _ = train(distribute.make_strategy("default"), global_batch=8)
    print(json.dumps({"checksum": float(sum(np.sum(weight) for weight in weights))}))
else:
    strategy = distribute.make_strategy("multi-worker")
    weights, moved, loss = train(strategy, global_batch=8)
    print(json.dumps({"replicas": strategy.num_replicas_in_sync, "chief": distribute.is_chief(strategy),
                      "checksum": float(sum(np.sum(weight) for weight in weights)), "moved": moved,
                      "describe": distribute.describe(strategy), "epochs": len(loss)}))
"""


def run_script(mode, env=None):
    return subprocess.Popen([sys.executable, "-c", TRAIN, mode], cwd=ROOT, env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def result_of(process, timeout=180):
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        pytest.fail(f"timed out after {timeout} s; stderr tail:\n{stderr[-2000:]}")
    assert process.returncode == 0, stderr[-3000:]
    return json.loads(stdout.strip().splitlines()[-1])


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def test_mirrored_on_two_cpus_trains_like_one_device():
    result = result_of(run_script("mirrored"))
    assert result["replicas"] == 2
    assert result["moved"] > 1e-3  # training really changed the weights
    assert result["difference"] < 1e-5


def test_two_local_workers_complete_an_epoch_with_equal_weights():
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    processes = []
    for index in range(2):
        config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        processes.append(run_script("multi-worker", env={"TF_CONFIG": config}))
    results = [result_of(process) for process in processes]
    single = result_of(run_script("single"))
    assert [result["replicas"] for result in results] == [2, 2]
    assert [result["chief"] for result in results] == [True, False]
    assert results[0]["epochs"] == results[1]["epochs"] == 2
    assert results[0]["moved"] > 1e-3
    assert results[0]["checksum"] == pytest.approx(results[1]["checksum"], abs=1e-5)
    # Each worker took half of every global batch: together they trained like one device.
    assert results[0]["checksum"] == pytest.approx(single["checksum"], abs=1e-4)
    assert "2 workers, this one is worker 1" in results[1]["describe"]


@pytest.mark.skipif(HAS_GPU, reason="checks the choices of a machine without a GPU")
def test_choices_on_a_machine_without_gpu():
    assert distribute.make_strategy("auto").num_replicas_in_sync == 1
    assert type(distribute.make_strategy("auto")) is type(tf.distribute.get_strategy())
    assert "CPU:0" in distribute.make_strategy("one-device").extended.worker_devices[0]
    with pytest.raises(ValueError, match="no GPU"):
        distribute.make_strategy("mirrored")
    with pytest.raises(ValueError, match="no GPU"):
        distribute.set_mixed_precision(True)


@pytest.mark.skipif(HAS_GPU, reason="checks the warning of a machine without a GPU")
def test_xla_asked_for_without_a_gpu_warns_and_auto_stays_quiet(recwarn):
    with pytest.warns(UserWarning, match=r"jit_compile=True: XLA on a machine without a GPU is slower.*17 against"):
        distribute.warn_if_xla_without_gpu(True)
    recwarn.clear()
    distribute.warn_if_xla_without_gpu("auto")  # Keras's auto: XLA stays off on a CPU
    distribute.warn_if_xla_without_gpu(False)
    assert len(recwarn) == 0


def test_unknown_strategy_and_missing_cluster(monkeypatch):
    with pytest.raises(ValueError, match="Unknown strategy 'mirored'.*mirrored"):
        distribute.make_strategy("mirored")
    for name in ("TF_CONFIG", "SLURM_PROCID", "SLURM_STEP_NUM_TASKS"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG.*srun"):
        distribute.cluster_resolver()


def test_cluster_from_tf_config(monkeypatch):
    config = {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(config))
    resolver = distribute.cluster_resolver()
    assert (resolver.task_type, resolver.task_id) == ("worker", 1)
    assert resolver.cluster_spec().as_dict() == {"worker": ["a:1", "b:2"]}


def test_global_batch_and_sharding_options():
    strategy = tf.distribute.get_strategy()
    assert distribute.global_batch_size(32, strategy) == 32
    dataset = distribute.shard_by_data(tf.data.Dataset.range(4))
    assert dataset.options().experimental_distribute.auto_shard_policy == tf.data.experimental.AutoShardPolicy.DATA


@pytest.mark.parametrize("script, strategy", [("one_gpu.sbatch", "one-device"), ("multi_node.sbatch", "multi-worker")])
def test_slurm_scripts_parse_and_run_the_job(script, strategy):
    path = ROOT / "labs" / "slurm" / script
    assert subprocess.run(["bash", "-n", str(path)]).returncode == 0
    text = path.read_text()
    assert f"python -m keras_tl.fine_tune --strategy {strategy}" in text
    assert '--output-dir "runs/fine_tune-slurm-${SLURM_JOB_ID}"' in text  # a requeued job resumes in place


SLURM_STEP = {"SLURM_PROCID": "3", "SLURM_STEP_NUM_TASKS": "4", "SLURM_STEP_NODELIST": "node[01-02]",
              "SLURM_STEP_TASKS_PER_NODE": "2(x2)"}


def slurm_environment(monkeypatch, tmp_path, **extra):
    """A Slurm step of 2 nodes x 2 tasks, seen from task 3, on a machine whose PATH has no nvidia-smi."""
    for name in ("TF_CONFIG", "CUDA_VISIBLE_DEVICES", "SLURM_GPUS_ON_NODE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {**SLURM_STEP, **extra}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no nvidia-smi to call


def test_slurm_cluster_without_nvidia_smi(monkeypatch, tmp_path):
    slurm_environment(monkeypatch, tmp_path)
    assert distribute.gpus_on_node() == 0
    resolver = distribute.cluster_resolver()
    assert resolver.cluster_spec().as_dict() == {"worker": ["node01:8888", "node01:8889", "node02:8888", "node02:8889"]}
    assert (resolver.task_type, resolver.task_id) == ("worker", 3)
    assert not resolver.num_accelerators().get("GPU")
    assert "CUDA_VISIBLE_DEVICES" not in os.environ  # a CPU node: nothing hidden from later processes


def test_slurm_cluster_with_gpus_from_slurm(monkeypatch, tmp_path):
    slurm_environment(monkeypatch, tmp_path, SLURM_GPUS_ON_NODE="4", SLURM_PROCID="1")
    resolver = distribute.cluster_resolver()
    assert resolver.cluster_spec().as_dict()["worker"][1] == "node01:8889"
    assert (resolver.task_type, resolver.task_id) == ("worker", 1)
    assert resolver.num_accelerators() == {"GPU": 2}  # 4 GPUs shared by the node's 2 tasks
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "2,3"  # this task's half of the node


@pytest.mark.parametrize("visible, count", [("0,1", 2), ("", 0), ("-1", 0), ("0,-1,2", 1), ("NoDevFiles", 0)])
def test_gpus_on_node_from_cuda_visible_devices(monkeypatch, tmp_path, visible, count):
    slurm_environment(monkeypatch, tmp_path, CUDA_VISIBLE_DEVICES=visible)
    assert distribute.gpus_on_node() == count
