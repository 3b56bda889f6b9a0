"""tf.distribute: the same ``model.fit`` on one device, on several GPUs, or on several machines.

A strategy holds a copy of the model on each *replica* (a GPU, or a CPU device) and keeps the
copies equal: every replica takes its share of a batch, the gradients are combined across
replicas (all-reduce) and every copy takes the same step. What the code must do:

- build **and compile** the model inside ``strategy.scope()``, so its variables (and the
  optimizer's) are created as mirrored variables;
- give ``fit`` batches of the *global* size, ``per-replica batch x replicas``
  (:func:`global_batch_size`); Keras splits each batch across the replicas;
- with several machines, let each worker read a different part of the data
  (:func:`shard_by_data`) and let only the chief write the run's files (:func:`is_chief`).

Work that needs no exchange between workers (feature extraction, :mod:`keras_tl.features.extraction`) needs
no multi-worker strategy: each worker (:func:`worker_shard`) or Slurm array task
(:func:`slurm_array_shard`) does its own part with the devices of its machine.

Strategies (``--strategy``):

- ``default``: no distribution, one device (``tf.distribute.get_strategy()``);
- ``one-device``: everything on one device, the first GPU if there is one;
- ``mirrored``: one replica per GPU of this machine (MirroredStrategy);
- ``multi-worker``: several machines, each with its GPUs (MultiWorkerMirroredStrategy). The cluster
  comes from the ``TF_CONFIG`` variable or, inside a Slurm allocation, from Slurm (``srun``);
- ``auto``: ``mirrored`` with more than one GPU, ``one-device`` with one, ``default`` otherwise.

This module is TensorFlow only; with the JAX backend only ``auto`` and ``default`` are accepted
(for JAX, see ``keras.distribution``).
"""
import os
import warnings

import keras

STRATEGIES = ("auto", "default", "one-device", "mirrored", "multi-worker")


def _gpus():
    """The GPUs TensorFlow sees. (Physical devices: listing logical ones would start the runtime,
    and a multi-worker strategy must be created before that.)"""
    import tensorflow as tf

    return tf.config.list_physical_devices("GPU")


def gpus_on_node():
    """How many GPUs this node gives the job, found without starting CUDA.

    Slurm's ``SLURM_GPUS_ON_NODE`` first, then ``CUDA_VISIBLE_DEVICES`` (CUDA stops at the first
    negative or invalid entry), then ``nvidia-smi --list-gpus`` where it exists; 0 otherwise.
    Listing TensorFlow's devices would initialise CUDA, and then the ``CUDA_VISIBLE_DEVICES`` that
    ``SlurmClusterResolver`` sets for each task would come too late to take effect.
    """
    import shutil
    import subprocess

    if os.environ.get("SLURM_GPUS_ON_NODE", "").strip().isdigit():
        return int(os.environ["SLURM_GPUS_ON_NODE"])
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        count = 0
        for entry in visible.split(","):
            entry = entry.strip()
            if not entry or entry.startswith("-") or entry == "NoDevFiles":
                break
            count += 1
        return count
    if shutil.which("nvidia-smi"):
        try:
            listing = subprocess.run(["nvidia-smi", "--list-gpus"], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.SubprocessError):
            return 0
        if listing.returncode == 0:
            return sum(line.startswith("GPU ") for line in listing.stdout.splitlines())
    return 0


def cluster_resolver():
    """Where the workers are: ``TF_CONFIG`` if set, else the Slurm allocation, else an error.

    In Slurm, every task (``srun`` starts one per node, or several) is one worker; workers listen
    from port 8888 on, one port per task of a node. TensorFlow's ``SlurmClusterResolver`` would
    count GPUs with ``nvidia-smi`` (missing on CPU-only nodes) and, with no GPU, would give no task
    an address; here the count comes from :func:`gpus_on_node`, and a CPU-only node gets one
    address per task and no GPU.
    """
    import tensorflow as tf

    if os.environ.get("TF_CONFIG"):
        return tf.distribute.cluster_resolver.TFConfigClusterResolver()
    if os.environ.get("SLURM_PROCID") is not None and os.environ.get("SLURM_STEP_NUM_TASKS"):
        slurm = tf.distribute.cluster_resolver.SlurmClusterResolver
        gpus = gpus_on_node()
        if gpus:
            return slurm(gpus_per_node=gpus)
        # No GPU: pretend one per task only to get one address per task (the resolver hands
        # out addresses along with GPUs), set no CUDA_VISIBLE_DEVICES, and report no accelerator.
        tasks = int(os.environ["SLURM_STEP_NUM_TASKS"])  # at least the tasks of any one node
        resolver = slurm(gpus_per_node=tasks, gpus_per_task=1, auto_set_gpu=False)
        spec = resolver.cluster_spec()
        return tf.distribute.cluster_resolver.SimpleClusterResolver(
            spec, task_type=resolver.task_type, task_id=resolver.task_id, num_accelerators={}, rpc_layer="grpc")
    raise ValueError("strategy='multi-worker' needs to know the cluster: set TF_CONFIG (see "
                     "https://www.tensorflow.org/guide/distributed_training#TF_CONFIG) or start one task "
                     "per node with srun inside a Slurm allocation (labs/slurm/multi_node.sbatch).")


def make_strategy(name="auto", devices=None):
    """The ``tf.distribute.Strategy`` called ``name`` (see the module docstring).

    Call it first thing: a multi-worker strategy must exist before TensorFlow runs any operation.

    ``devices`` (e.g. ``["/cpu:0", "/cpu:1"]``) overrides the devices of ``one-device`` and
    ``mirrored``; without it, ``mirrored`` needs GPUs and is an error on a machine without any.
    """
    if name not in STRATEGIES:
        raise ValueError(f"Unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}.")
    if keras.backend.backend() != "tensorflow" and name not in ("auto", "default"):
        raise ValueError(f"strategy={name!r} uses tf.distribute, which needs the TensorFlow backend "
                         f"(KERAS_BACKEND=tensorflow); this run uses {keras.backend.backend()}.")
    import tensorflow as tf

    if name == "multi-worker":  # before anything lists devices: the resolver may set CUDA_VISIBLE_DEVICES
        strategy = tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=cluster_resolver())
        return _reduce_values_one_by_one(strategy)
    gpus = _gpus()
    if name == "auto":
        name = "mirrored" if len(gpus) > 1 else "one-device" if gpus else "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one-device":
        return tf.distribute.OneDeviceStrategy(devices[0] if devices else ("/gpu:0" if gpus else "/cpu:0"))
    # mirrored
    if not devices and not gpus:
        raise ValueError("strategy='mirrored' puts one replica on each GPU, and this machine has no GPU "
                         "TensorFlow can use. Use strategy='default' (or 'auto') here.")
    return tf.distribute.MirroredStrategy(devices)  # None: every GPU


def _reduce_values_one_by_one(strategy):
    """Work around keras-team/keras#20585 (Keras 3.15 with TensorFlow 2.21): ``fit`` calls
    ``strategy.reduce`` on a whole ``(images, labels)`` batch, and with ``axis=0`` on scalar
    losses; MultiWorkerMirroredStrategy accepts neither. Reduce each value on its own, and a
    scalar across the replicas only."""
    import tensorflow as tf

    reduce_value = strategy.reduce

    def reduce_one(reduce_op, item, axis):
        scalar = strategy.experimental_local_results(item)[0].shape.rank == 0
        return reduce_value(reduce_op, item, None if scalar else axis)

    def reduce(reduce_op, value, axis=None):
        return tf.nest.map_structure(lambda item: reduce_one(reduce_op, item, axis), value)

    strategy.reduce = reduce
    return strategy


def describe(strategy):
    """One line: the strategy's class, replicas and, for several workers, this worker's task."""
    text = f"{type(strategy).__name__} with {strategy.num_replicas_in_sync} replica(s)"
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is not None and resolver.task_type is not None:
        workers = len(resolver.cluster_spec().as_dict().get("worker", []))
        text += f", {workers} workers, this one is {resolver.task_type} {resolver.task_id}"
    return text


def global_batch_size(per_replica, strategy):
    """The batch ``fit`` must get: ``per_replica x replicas``; each replica computes on ``per_replica``."""
    return int(per_replica) * strategy.num_replicas_in_sync


def shard_by_data(dataset):
    """Let each worker keep its own share of the batches (tf.data's ``DATA`` auto-shard policy).

    The default policy, ``FILE``, splits by input file and falls back (with a warning) when the
    data are in memory or in one file; ``DATA`` works for any dataset.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def is_chief(strategy):
    """Whether this process writes the outputs: always without workers; with workers, the chief
    (or worker 0 when no chief is named)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or resolver.task_type is None:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def has_gpu():
    """Whether the Keras backend (TensorFlow or JAX) has a GPU to compute on."""
    if keras.backend.backend() == "jax":
        import jax

        return jax.default_backend() == "gpu"
    return bool(_gpus())


def set_mixed_precision(enabled):
    """``mixed_float16`` (float16 maths, float32 weights) on a GPU; on a CPU it is an error: it would be slower."""
    if not enabled:
        keras.mixed_precision.set_global_policy("float32")
        return
    if not has_gpu():
        raise ValueError("Mixed precision runs float16 maths on a GPU's tensor cores, and this machine has no "
                         "GPU TensorFlow can use; on a CPU float16 is slower. Leave it off here.")
    keras.mixed_precision.set_global_policy("mixed_float16")


def warn_if_xla_without_gpu(jit_compile):
    """Warn when XLA (``jit_compile=True``) is asked for and there is no GPU: on this project's 2-core
    CPU a fine-tuning step ran about 7x slower with it, after 20-75 s of compiling (bench/RESULTS.md,
    "XLA"). Keras's own ``jit_compile="auto"`` leaves XLA off on a machine without a GPU."""
    if jit_compile is True and not has_gpu():
        warnings.warn("jit_compile=True: XLA on a machine without a GPU is slower, not faster (fine-tuning "
                      "MobileNet on 2 CPU cores: 17 against 123 images/s, after 20-75 s of compiling; "
                      "bench/RESULTS.md). Leave it off here; it pays on a GPU.", stacklevel=2)



def worker_shard():
    """``(index, workers)``: this worker's place among the cluster's workers (:func:`cluster_resolver`),
    the chief first (worker 0 when no chief is named, as in :func:`is_chief`).

    For work without any exchange between workers, such as feature extraction: each worker does
    part ``index`` of ``workers`` with the devices of its own machine. Call it before TensorFlow
    lists devices: in Slurm the resolver sets ``CUDA_VISIBLE_DEVICES`` of this task.
    """
    resolver = cluster_resolver()
    spec = resolver.cluster_spec().as_dict()
    tasks = [(kind, index) for kind in ("chief", "worker") for index in range(len(spec.get(kind, [])))]
    return tasks.index((resolver.task_type, resolver.task_id)), len(tasks)


def slurm_array_shard():
    """``(index, tasks)`` of this Slurm array task (``sbatch --array``), or None outside an array.

    From ``SLURM_ARRAY_TASK_ID`` and ``SLURM_ARRAY_TASK_COUNT``, counted from ``SLURM_ARRAY_TASK_MIN``
    (an array may start at 1) in steps of ``SLURM_ARRAY_TASK_STEP``; an array with gaps is an error.
    """
    if os.environ.get("SLURM_ARRAY_TASK_ID") is None:
        return None
    names = ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_STEP")
    values = {name: os.environ.get(name, {"SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_STEP": "1"}.get(name, ""))
              for name in names}
    if not all(value.isdigit() for value in values.values()):
        raise ValueError("A Slurm array task needs whole numbers in "
                         + ", ".join(f"{name}={value!r}" for name, value in values.items()) + ".")
    task, count, first, step = (int(values[name]) for name in names)
    index, off_step = divmod(task - first, max(step, 1))
    if off_step or not 0 <= index < count:
        raise ValueError(f"Slurm array task {task} is not one of {count} evenly spaced tasks from {first}; "
                         "use a range without gaps (sbatch --array=0-N).")
    return index, count
