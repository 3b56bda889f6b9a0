"""Feature extraction at scale (keras_tl.features.extraction): a tf.distribute strategy over several devices,
parts of the images (``shard=``, ``--shard I/N``, Slurm arrays) joined later into the same cache
entry, and the fne job's multi-worker and array options.

Logical CPU devices must be configured before TensorFlow starts its runtime, so the run with two
replicas happens in a fresh subprocess.
"""
import json
import pathlib
import subprocess
import sys
import types

import numpy as np
import pytest

from keras_tl import distribute
from keras_tl.features import extraction
from keras_tl.features.cache import FeatureCache, shard_rows
from keras_tl.jobs import fne

ROOT = pathlib.Path(__file__).resolve().parents[2]




@pytest.fixture
def extractor(tiny_mobilenet):
    return extraction.FeatureExtractor("mobilenet", ["conv1_relu", "conv_pw_13_relu"], image_size=48, weights=None,
                                    model=tiny_mobilenet, batch_size=4)


def test_parts_are_contiguous_and_cut_at_multiples_of_the_batch_size():
    assert [shard_rows(13, (index, 3), 4) for index in range(3)] == [(0, 4), (4, 8), (8, 13)]
    assert [shard_rows(13, (index, 2), 4) for index in range(2)] == [(0, 8), (8, 13)]
    assert [shard_rows(5, (index, 4), 4) for index in range(4)] == [(0, 0), (0, 4), (4, 4), (4, 5)]
    for count in (1, 2, 5, 7):
        rows = [shard_rows(101, (index, count), 8) for index in range(count)]
        assert rows[0][0] == 0 and rows[-1][1] == 101
        assert all(stop == start for (_, stop), (start, _) in zip(rows, rows[1:]))  # no gap, no overlap
        assert all(start % 8 == 0 for start, _ in rows)
    for bad in ((2, 2), (-1, 2), (0, 0)):
        with pytest.raises(ValueError, match=r"shard=\(.*\) is not \(I, N\) with 0 <= I < N"):
            shard_rows(10, bad, 4)


def test_parts_joined_later_are_bit_identical_to_one_run(random_image_set, extractor, tmp_path):
    images = random_image_set(13)
    expected, _ = extractor.extract(images, verbose=False)
    assert extractor.last_counts == {"images_extracted": 13, "images_from_cache": 0}
    key = extractor.cache_key(images)

    first, first_file = extractor.extract(images, tmp_path, shard=(0, 3), verbose=False)
    assert first_file.name == f"{key}.rows-0-4.npy" and np.array_equal(first, expected[:4])
    assert extractor.last_counts == {"images_extracted": 4, "images_from_cache": 0}
    last, _ = extractor.extract(images, tmp_path, shard=(2, 3), verbose=False)
    assert np.array_equal(last, expected[8:])
    # a run split in 2 parts finds the rows 8-12 that the 3-part run already extracted
    _, same_file = extractor.extract(images, tmp_path, shard=(1, 2), verbose=False)
    assert same_file.name == f"{key}.rows-8-13.npy"
    assert extractor.last_counts == {"images_extracted": 0, "images_from_cache": 5}

    whole, whole_file = extractor.extract(images, tmp_path, verbose=False)  # joins the parts, extracts rows 4-7
    assert extractor.last_counts == {"images_extracted": 4, "images_from_cache": 9}
    assert whole_file.name == f"{key}.npy" and np.array_equal(whole, expected)
    assert not list(tmp_path.glob("*.rows-*.npy"))  # the parts are deleted once the whole entry is in place
    again, _ = extractor.extract(images, tmp_path, verbose=False)
    assert extractor.last_counts == {"images_extracted": 0, "images_from_cache": 13} and np.array_equal(again, whole)
    middle, middle_file = extractor.extract(images, tmp_path, shard=(1, 3), verbose=False)  # read from the whole
    assert middle_file == whole_file and np.array_equal(middle, expected[4:8])
    assert extractor.last_counts == {"images_extracted": 0, "images_from_cache": 4}
    with pytest.raises(ValueError, match=r"shard=\(0, 2\) extracts a part .* give cache_dir="):
        extractor.extract(images, shard=(0, 2))


def test_a_part_being_written_does_not_block_another_part_of_the_same_key(random_image_set, extractor, tmp_path):
    from filelock import Timeout

    images = random_image_set(13)
    whole = FeatureCache(tmp_path, extractor.cache_key(images), (13, extractor.num_features))
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from filelock import FileLock\n"
                               f"with FileLock({str(whole.part(0, 4).lock_file)!r}):\n"
                               "    print('locked', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"  # another process is writing part 0/3
        with pytest.raises(Timeout):
            whole.part(0, 4).lock().acquire(timeout=0.2)
        assert extractor.wait_for_parts(images, 3, tmp_path, timeout=0) == [0, 1, 2]
        part, _ = extractor.extract(images, tmp_path, shard=(1, 3), verbose=False)  # not blocked
        assert part.shape == (4, extractor.num_features) and whole.part(4, 8).final.is_file()
        assert extractor.wait_for_parts(images, 3, tmp_path, timeout=0) == [0, 2]
    finally:
        holder.kill()
        holder.wait()


MIRRORED = """
import json
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
import numpy as np
from keras_tl import data, distribute, sources
from keras_tl.features import extraction

strategy = distribute.make_strategy("mirrored", devices=["/cpu:0", "/cpu:1"])
keras.utils.set_random_seed(0)
with strategy.scope():
    model = sources.get_source("mobilenet").build(weights=None, image_size=32)
one = extraction.FeatureExtractor("mobilenet", "fne", 32, None, batch_size=4, model=model)  # one device, same weights
two = extraction.FeatureExtractor("mobilenet", "fne", 32, None, batch_size=4, model=model, strategy=strategy)
rng = np.random.default_rng(0)
result = {"replicas": two.strategy.num_replicas_in_sync, "global_batch": two.global_batch_size}
for count in (13, 9):  # the last global batches hold 5 and 1 images: the second replica gets 2, then none
    images = data.ImageSet(labels=np.arange(count) % 2, images=rng.integers(0, 255, (count, 28, 28), dtype=np.uint8))
    alone, _ = one.extract(images, verbose=False)
    shared, _ = two.extract(images, verbose=False)
    result[count] = {"shape": list(shared.shape), "max_difference": float(np.abs(alone - shared).max()),
                     "scale": float(np.abs(alone).max()), "exact": bool(np.array_equal(alone, shared)),
                     "exact_but_last_batch": bool(np.array_equal(alone[:8], shared[:8])),
                     "same_key": one.cache_key(images) == two.cache_key(images)}
print(json.dumps(result))
"""


def test_two_replicas_extract_the_features_of_one_device():
    process = subprocess.run([sys.executable, "-c", MIRRORED], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert process.returncode == 0, process.stderr[-3000:]
    result = json.loads(process.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2 and result["global_batch"] == 8
    for count in ("13", "9"):
        entry = result[count]
        assert entry["shape"] == [int(count), 10944] and entry["same_key"]
        assert entry["scale"] > 0.1
        # Equal to float32 rounding; exactly equal where the replicas' batches are the one-device
        # batches (every batch but an uneven last one, which the strategy splits in its own way).
        assert entry["max_difference"] <= 1e-5 * entry["scale"], entry
        assert entry["exact_but_last_batch"], entry


def test_a_model_for_a_strategy_is_built_in_its_scope(tiny_mobilenet):
    import tensorflow as tf

    with pytest.raises(ValueError, match="built outside the strategy's scope; build it inside `with strategy"):
        extraction.FeatureExtractor("mobilenet", "last", 48, None, model=tiny_mobilenet,
                                 strategy=tf.distribute.MirroredStrategy(["/cpu:0"]))
    several_machines = types.SimpleNamespace(cluster_resolver=types.SimpleNamespace(task_type="worker"))
    with pytest.raises(ValueError, match="spans several machines.*shard=\\(I, N\\)"):
        extraction.FeatureExtractor("mobilenet", "last", 48, None, model=tiny_mobilenet, strategy=several_machines)


def test_slurm_array_tasks_and_cluster_workers_name_their_part(monkeypatch):
    for name in ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_STEP",
                 "TF_CONFIG", "SLURM_PROCID"):
        monkeypatch.delenv(name, raising=False)
    assert distribute.slurm_array_shard() is None
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "3")
    monkeypatch.setenv("SLURM_ARRAY_TASK_MIN", "1")  # sbatch --array=1-3
    assert distribute.slurm_array_shard() == (2, 3)
    monkeypatch.setenv("SLURM_ARRAY_TASK_MIN", "0")
    with pytest.raises(ValueError, match="not one of 3 evenly spaced tasks from 0"):
        distribute.slurm_array_shard()
    monkeypatch.setenv("SLURM_ARRAY_TASK_STEP", "2")  # sbatch --array=0-4:2
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "4")
    assert distribute.slurm_array_shard() == (2, 3)
    config = {"cluster": {"chief": ["a:1"], "worker": ["b:1", "c:1"]}, "task": {"type": "worker", "index": 1}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(config))
    assert distribute.worker_shard() == (2, 3)  # the chief is part 0


@pytest.mark.parametrize("argv, message", [
    (["--shard", "2/2"], "argument --shard: expected I/N with 0 <= I < N"),
    (["--shard", "half"], "argument --shard: expected I/N"),
    (["--strategy", "multi-worker", "--output-dir", "run"], "needs --output-dir and --cache-dir"),
    (["--strategy", "multi-worker", "--shard", "0/2"], "--shard and --strategy multi-worker"),
    (["--strategy", "mirored"], "invalid choice: 'mirored'"),
])
def test_fne_refuses_bad_scale_options_in_one_line(argv, message, capsys):
    with pytest.raises(SystemExit):
        fne.parse_args(argv)
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("python -m keras_tl.fne: error:") and message in error


def test_fne_job_in_two_parts_then_joined_equals_one_run(tmp_path, monkeypatch, capsys):
    for name in ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_STEP"):
        monkeypatch.delenv(name, raising=False)
    common = ["--train-per-class", "4", "--test-per-class", "2", "--image-size", "32", "--batch-size", "8",
              "--weights", "none", "--methods", "fne:l2", "--quiet"]
    cache, run_dir = tmp_path / "cache", tmp_path / "run"
    assert fne.main(common + ["--cache-dir", str(cache), "--output-dir", str(run_dir), "--shard", "0/2"]) == 0
    assert "The same command without --shard" in capsys.readouterr().out
    part = json.loads((run_dir / "part-0-of-2" / "metrics.json").read_text())
    # 40 train images in batches of 8: part 0/2 is batches 0-1; 20 test images: batch 0 of 0-2
    assert part["shard"] == "0/2" and part["rows"] == {"train": [0, 16], "test": [0, 8]}
    assert part["images_extracted"] == 24 and part["images_from_cache"] == 0 and "methods" not in part
    with monkeypatch.context() as slurm:  # the second part as a Slurm array task, without --shard
        slurm.setenv("SLURM_ARRAY_TASK_ID", "1")
        slurm.setenv("SLURM_ARRAY_TASK_COUNT", "2")
        assert fne.main(common + ["--cache-dir", str(cache), "--output-dir", str(run_dir)]) == 0
    part = json.loads((run_dir / "part-1-of-2" / "metrics.json").read_text())
    assert part["shard"] == "1/2" and part["images_extracted"] == 36 and not (run_dir / "metrics.json").exists()
    assert len(list(cache.glob("*.rows-*.npy"))) == 4  # train and test, two parts each
    capsys.readouterr()

    assert fne.main(common + ["--cache-dir", str(cache), "--output-dir", str(run_dir)]) == 0  # joins and trains
    joined = json.loads((run_dir / "metrics.json").read_text())
    assert joined["images_extracted"] == 0 and joined["images_from_cache"] == 60
    assert not list(cache.glob("*.rows-*.npy"))
    single_dir = tmp_path / "single"
    assert fne.main(common + ["--cache-dir", str(tmp_path / "fresh"), "--output-dir", str(single_dir)]) == 0
    single = json.loads((single_dir / "metrics.json").read_text())
    assert single["images_extracted"] == 60 and single["images_from_cache"] == 0
    assert joined["methods"]["fne:l2"]["accuracy"] == single["methods"]["fne:l2"]["accuracy"]
    for split in ("train", "test"):
        assert np.array_equal(np.load(run_dir / "features" / f"{split}.npy"),
                              np.load(single_dir / "features" / f"{split}.npy"))
