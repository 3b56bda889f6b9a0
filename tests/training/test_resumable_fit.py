"""One resumable stage (keras_tl.training.resumable_fit): a kill at any write leaves a state that the same call finishes
from, with best.keras, done.json and the log agreeing; damaged backups are set aside, not fatal."""
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_tl.training import resumable_fit

EPOCHS = 2


def _batches():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(32, 4)).astype("float32")
    labels = np.eye(2, dtype="float32")[(features[:, 0] + 0.3 * features[:, 1] > 0).astype(int)]
    return tf.data.Dataset.from_tensor_slices((features, labels)).batch(8)


def _model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def _fit(stage):
    return resumable_fit.fit_stage(_model(), stage, EPOCHS, _batches(), _batches(), patience=10)


def _renames_into(stage, monkeypatch, kill_at=None, after=False):
    """Count the renames into ``stage`` (every file write lands by one); raise KeyboardInterrupt at ``kill_at``."""
    real_replace, seen = os.replace, []

    def replace(source, target):
        if str(target).startswith(str(stage)):
            seen.append(str(target))
            if len(seen) == kill_at and not after:
                raise KeyboardInterrupt  # killed with the file written under its temporary name
        real_replace(source, target)
        if len(seen) == kill_at and after:
            raise KeyboardInterrupt  # killed just after the file landed

    monkeypatch.setattr(os, "replace", replace)
    return seen


def _check_consistent(stage, summary):
    done = json.loads((stage / "done.json").read_text())
    assert {key: summary[key] for key in done} == done
    record = resumable_fit.landed_best(stage)
    assert record is not None and record["epoch"] == done["best_epoch"]
    best = keras.models.load_model(stage / "best.keras")
    assert best.evaluate(_batches(), verbose=0)[0] == pytest.approx(done["best_val_loss"], abs=1e-5)
    epochs = [int(row["epoch"]) for row in resumable_fit.read_log(stage / "log.csv")]
    assert epochs == list(range(EPOCHS)) and done["epochs"] == EPOCHS
    assert (stage / "log.csv").read_text().count("epoch,") == 1  # one header
    assert not list(stage.rglob(".*.part*")) and not (stage / "backup").exists()


def test_a_kill_at_any_write_is_finished_by_the_same_call_consistently(tmp_path, monkeypatch):
    with monkeypatch.context() as patch:
        writes = _renames_into(tmp_path / "whole", patch)
        _check_consistent(tmp_path / "whole", _fit(tmp_path / "whole"))
    assert len(writes) >= 3 * EPOCHS  # best.json, best.keras and the backup's renames, each epoch
    for point in range(1, len(writes) + 1):
        for after in (False, True):
            stage = tmp_path / f"killed-at-{point}-{'after' if after else 'before'}"
            with monkeypatch.context() as patch:
                _renames_into(stage, patch, kill_at=point, after=after)
                with pytest.raises(KeyboardInterrupt):
                    _fit(stage)
            (stage / ".best.keras.left-by-a-kill.part.keras").write_bytes(b"half a file")
            _check_consistent(stage, _fit(stage))


def test_a_kill_after_the_log_row_but_before_best_keras_keeps_the_landed_best(tmp_path, monkeypatch):
    stage = tmp_path / "stage"
    real_save = resumable_fit.save_best

    def killed_on_the_second_save(*args, **kwargs):
        if (stage / "best.keras").exists():
            raise KeyboardInterrupt  # epoch 2's row is in log.csv; its best.keras never lands
        return real_save(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(resumable_fit, "save_best", killed_on_the_second_save)
        with pytest.raises(KeyboardInterrupt):
            _fit(stage)
    assert [int(row["epoch"]) for row in resumable_fit.read_log(stage / "log.csv")] == [0, 1]
    assert resumable_fit.landed_best(stage)["epoch"] == 1
    _check_consistent(stage, _fit(stage))


@pytest.mark.parametrize("damaged", ["latest only", "latest, previous intact"])
def test_a_damaged_backup_is_set_aside_and_training_goes_on(tmp_path, damaged):
    stage = tmp_path / "stage"
    model = _model()
    resumable_fit.fit_stage(model, stage, 2, _batches(), _batches(), patience=10)
    backup = resumable_fit.AtomicBackup(stage / "backup")
    stage.joinpath("done.json").unlink()  # as if killed before the stage was marked done
    backup.folder.mkdir(parents=True, exist_ok=True)
    model.save_weights(stage / "kept.weights.h5")
    if damaged == "latest, previous intact":
        import h5py

        os.replace(stage / "kept.weights.h5", backup.previous)
        with h5py.File(backup.previous, "a") as handle:
            handle.attrs[resumable_fit.EPOCHS_DONE] = 1
    backup.latest.write_bytes(b"\x89HDF\r\n" + b"\0" * 50)  # a file cut short while written
    with pytest.warns(UserWarning, match="cannot be read.*set aside"):
        epochs = backup.restore(_model())
    assert epochs == (1 if damaged == "latest, previous intact" else 0)
    assert (backup.folder / "latest.weights.h5.damaged").is_file()
