"""One training stage that survives being killed: ``model.fit`` with its files in a stage folder.

A stage writes as it goes (Keras's ``CSVLogger``, ``BackupAndRestore`` and
:class:`BestModelCheckpoint`), so a run killed mid-training and started again with the same
command goes on from its last finished epoch, and a finished stage is only loaded again
(:func:`fit_stage`). The recipe (:mod:`keras_tl.recipe`) runs its stages through here.
"""
import csv
import json
import pathlib
import shutil
import time
import warnings
import zipfile

import keras
import numpy as np

from keras_tl import lora
from keras_tl.runs import atomic_path, write_json


class TrainingClock(keras.callbacks.Callback):
    """Seconds spent in the training part of each epoch (validation left out), and epochs run."""

    def __init__(self):
        super().__init__()
        self.seconds, self.epochs, self._started = 0.0, 0, None

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_test_begin(self, logs=None):
        self._stop()

    def on_epoch_end(self, epoch, logs=None):
        self._stop()
        self.epochs += 1

    def _stop(self):
        if self._started is not None:
            self.seconds += time.perf_counter() - self._started
            self._started = None


class RestartLoRA(keras.callbacks.Callback):
    """After BackupAndRestore has loaded a backup, give LoRA layers a fresh A (see :mod:`keras_tl.lora`)."""

    def __init__(self, seed=None):
        super().__init__()
        self.seed = seed

    def on_train_begin(self, logs=None):
        lora.restart_lora(self.model, self.seed)


class BestModelCheckpoint(keras.callbacks.Callback):
    """Save the model of the epoch with the lowest finite ``val_loss`` to ``path``, atomically.

    Like ``ModelCheckpoint(save_best_only=True)``, but the file is written to a temporary name
    and renamed, so a run killed while saving keeps the previous best file intact.
    """

    def __init__(self, path, best_so_far=None):
        super().__init__()
        self.path = pathlib.Path(path)
        self.best = np.inf if best_so_far is None else best_so_far

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get("val_loss")
        if value is not None and np.isfinite(value) and value < self.best:
            self.best = value
            with atomic_path(self.path) as temporary:
                self.model.save(temporary)


def read_log(path):
    """The rows of a CSVLogger file as dicts of floats, one per epoch (a repeated epoch keeps its last row).

    A line cut short by a kill (missing or unreadable values) is left out.
    """
    path = pathlib.Path(path)
    if not path.exists():
        return []
    rows = {}
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            try:
                rows[int(row["epoch"])] = {key: float(value) for key, value in row.items() if value not in ("", None)}
            except (TypeError, ValueError, KeyError):
                continue
    return [rows[epoch] for epoch in sorted(rows)]


def load_finished_stage(model, stage_dir):
    """Load a finished stage's best weights and summary, or None when the stage must (re)train.

    A ``best.keras`` that cannot be read is reported and set aside; the stage then trains again.
    """
    best_path, done_path = stage_dir / "best.keras", stage_dir / "done.json"
    if not done_path.exists():
        return None
    try:
        model.optimizer.build(model.trainable_variables)
        model.load_weights(best_path)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        aside = best_path.with_name("best.keras.damaged")
        warnings.warn(f"{best_path} cannot be read ({type(error).__name__}: {str(error)[:120]}); set aside as "
                      f"{aside.name}, the stage trains again.", stacklevel=2)
        if best_path.exists():
            best_path.replace(aside)
        done_path.unlink()
        return None
    return {**json.loads(done_path.read_text()), "history": read_log(stage_dir / "log.csv"), "train_seconds": 0.0,
            "epochs_trained_now": 0}


def fit_stage(model, stage_dir, epochs, train, validation, patience=3, callbacks=(), verbose=0):
    """``model.fit`` for one stage, with its files in ``stage_dir``, resumable; returns a summary dict.

    Callbacks, in this order: CSVLogger (``log.csv``), :class:`BestModelCheckpoint` of the best epoch
    on validation loss (``best.keras``), BackupAndRestore (``backup/``: weights, optimizer state and
    epoch after every epoch), EarlyStopping, TerminateOnNaN. After ``fit`` the best epoch is loaded
    back: that is EarlyStopping's "restore best weights", and it also holds when a resumed run's
    EarlyStopping never saw the best epoch. ``done.json`` marks a finished stage, which a rerun only
    loads; the backup is removed only after ``done.json`` is in place.
    """
    stage_dir = pathlib.Path(stage_dir)
    log_path, best_path, done_path = stage_dir / "log.csv", stage_dir / "best.keras", stage_dir / "done.json"
    stage_dir.mkdir(parents=True, exist_ok=True)
    finished = load_finished_stage(model, stage_dir)
    if finished is not None:
        return finished
    best_so_far = min((row["val_loss"] for row in read_log(log_path) if np.isfinite(row.get("val_loss", np.inf))),
                      default=None)
    clock = TrainingClock()
    fit_callbacks = [
        keras.callbacks.CSVLogger(str(log_path), append=True),
        BestModelCheckpoint(best_path, best_so_far),
        keras.callbacks.BackupAndRestore(str(stage_dir / "backup"), double_checkpoint=True, delete_checkpoint=False),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience),
        keras.callbacks.TerminateOnNaN(),
        clock, *callbacks,
    ]
    # shuffle=False: the tf.data pipeline shuffles; fit cannot shuffle a dataset (and warns if asked to).
    fit_history = model.fit(train, validation_data=validation, epochs=epochs, callbacks=fit_callbacks,
                            verbose=verbose, shuffle=False)
    losses = fit_history.history.get("loss", [])
    if losses and not np.isfinite(losses[-1]):
        raise ValueError(f"Training diverged in {stage_dir.name}: the loss became {losses[-1]} at epoch "
                         f"{len(losses)}. Lower the learning rate (learning_rate=) and start again.")
    if best_path.exists():
        model.load_weights(best_path)
    else:  # no epoch had a finite validation loss: keep the last one
        with atomic_path(best_path) as temporary:
            model.save(temporary)
    history = read_log(log_path)
    best = min(history, key=lambda row: row.get("val_loss", np.inf))
    summary = {"epochs": len(history), "best_epoch": int(best["epoch"]) + 1,
               "best_val_loss": best.get("val_loss"), "best_val_accuracy": best.get("val_accuracy")}
    write_json(done_path, summary)
    shutil.rmtree(stage_dir / "backup", ignore_errors=True)
    return {**summary, "history": history, "train_seconds": clock.seconds, "epochs_trained_now": clock.epochs}
