"""Repeatable runs: one ``--seed`` fixes every source of randomness, so two CPU runs write the same metrics.json.

Timing fields (seconds, images per second, the fine-tune's cost block) are the only differences allowed.
"""
import json

from keras_tl.jobs import fine_tune, fne

TIMING_KEYS = ("cost",)


def without_timings(value):
    """``value`` with every key that holds a duration or a speed removed, at any depth."""
    if isinstance(value, dict):
        return {key: without_timings(item) for key, item in value.items()
                if key not in TIMING_KEYS and "second" not in key}
    if isinstance(value, list):
        return [without_timings(item) for item in value]
    return value


def metrics_of(run_dir):
    return without_timings(json.loads((run_dir / "metrics.json").read_text()))


def test_fne_job_twice_with_one_seed_gives_identical_metrics(tmp_path):
    for run in ("a", "b"):  # separate caches: the second run extracts again
        assert fne.main(["--train-per-class", "4", "--test-per-class", "2", "--image-size", "32", "--quiet",
                         "--seed", "3", "--output-dir", str(tmp_path / run),
                         "--cache-dir", str(tmp_path / f"cache_{run}")]) == 0
    assert metrics_of(tmp_path / "a") == metrics_of(tmp_path / "b")


def test_fine_tune_job_twice_with_one_seed_gives_identical_metrics(tmp_path):
    """Shuffling, augmentation layers, dropout and the head's initial weights all follow ``--seed``."""
    for run in ("a", "b"):
        assert fine_tune.main(["--image-size", "32", "--train-per-class", "5", "--test-per-class", "2",
                               "--batch-size", "8", "--unfreeze", "none", "--freeze-epochs", "0", "--epochs", "1",
                               "--min-steps", "0", "--seed", "3", "--quiet", "--output-dir", str(tmp_path / run)]) == 0
    first, second = metrics_of(tmp_path / "a"), metrics_of(tmp_path / "b")
    assert first["history"] and first["history"][0]["loss"] > 0
    assert first == second
