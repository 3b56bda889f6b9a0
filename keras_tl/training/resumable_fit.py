"""One training stage that survives being killed at any instant: ``model.fit`` with its files in a stage folder.

A stage writes as it goes: ``log.csv`` (Keras's ``CSVLogger``), ``best.keras`` with its record
``best.json`` (:class:`BestModelCheckpoint`) and ``backup/`` (:class:`AtomicBackup`), so a run
killed mid-training and started again with the same command goes on from its last finished
epoch, and a finished stage (``done.json``) is only loaded again (:func:`fit_stage`).

Every file a resume reads is written to a temporary name and renamed, and is checked when read:
the backup holds the weights, the optimizer state and the epochs done in one file; the best
epoch and its loss are read from the record of the ``best.keras`` that actually landed (matched
by its SHA-256), never from a log row alone; log rows of epochs the backup does not hold are
dropped before training goes on. The recipe (:mod:`keras_tl.training.recipe`) runs its stages through here.
"""
import csv
import json
import os
import pathlib
import shutil
import time
import warnings
import zipfile

import keras
import numpy as np

from keras_tl.runs import atomic_path, file_digest, write_json
from keras_tl.training import lora

EPOCHS_DONE = "keras_tl_epochs_done"  # the backup file's attribute: how many epochs its weights have trained


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
    """After a backup has been loaded, give LoRA layers a fresh A (see :mod:`keras_tl.training.lora`)."""

    def __init__(self, seed=None):
        super().__init__()
        self.seed = seed

    def on_train_begin(self, logs=None):
        lora.restart_lora(self.model, self.seed)


class BestModelCheckpoint(keras.callbacks.Callback):
    """Save the model of the epoch with the lowest finite ``val_loss`` to ``path``, with its record.

    Like ``ModelCheckpoint(save_best_only=True)``, but the file is written to a temporary name
    and renamed, so a run killed while saving keeps the previous best file intact. Its record
    (epoch, validation loss and accuracy, SHA-256 of the file) goes to ``best.json`` beside it,
    with the record of the file before, *before* the file is renamed into place: whatever
    instant a kill comes at, one of the two records describes the ``best.keras`` on disk
    (:func:`landed_best`).
    """

    def __init__(self, path, landed=None):
        super().__init__()
        self.path = pathlib.Path(path)
        self.landed = landed
        self.best = np.inf if landed is None or landed["val_loss"] is None else landed["val_loss"]

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        value = logs.get("val_loss")
        if value is not None and np.isfinite(value) and value < self.best:
            self.best = value
            self.landed = save_best(self.model, self.path, epoch + 1, logs, self.landed)


def save_best(model, path, epoch, logs, landed):
    """Write ``model`` to ``path`` (atomically) and its record to ``best.json`` (first); return the record."""
    path = pathlib.Path(path)
    with atomic_path(path) as temporary:
        model.save(temporary)
        record = {"epoch": int(epoch), "val_loss": logs.get("val_loss"), "val_accuracy": logs.get("val_accuracy"),
                  "sha256": file_digest(temporary)}
        write_json(path.with_name("best.json"), {"records": [record] + ([landed] if landed else [])})
    return record


def landed_best(stage_dir):
    """The record of the ``best.keras`` in ``stage_dir`` (matched by SHA-256 in ``best.json``), or None."""
    best_path, record_path = pathlib.Path(stage_dir) / "best.keras", pathlib.Path(stage_dir) / "best.json"
    if not (best_path.is_file() and record_path.is_file()):
        return None
    try:
        records = json.loads(record_path.read_text())["records"]
    except (ValueError, KeyError, TypeError):
        return None
    digest = file_digest(best_path)
    return next((record for record in records if isinstance(record, dict) and record.get("sha256") == digest), None)


class AtomicBackup(keras.callbacks.Callback):
    """The state to resume from, after every epoch: like Keras's ``BackupAndRestore``, safe at any instant.

    ``BackupAndRestore`` writes its weights and its epoch count in place, as two files, so a run
    killed while it writes leaves a file that cannot be read (and a rerun that dies on it). Here
    the weights, the optimizer state and the number of epochs done are one HDF5 file, written to
    a temporary name and renamed; the backup before it is kept as ``previous.weights.h5`` until
    the new one is in place. :meth:`restore` loads the newest one that reads, and sets aside a
    damaged one with a warning.
    """

    def __init__(self, folder):
        super().__init__()
        self.folder = pathlib.Path(folder)
        self.latest, self.previous = self.folder / "latest.weights.h5", self.folder / "previous.weights.h5"

    def restore(self, model):
        """Load the newest readable backup into ``model``; return how many epochs it holds (0: none)."""
        import h5py

        for path in (self.latest, self.previous):
            if not path.is_file():
                continue
            try:
                with h5py.File(path, "r") as handle:
                    epochs = int(handle.attrs[EPOCHS_DONE])
                if model.optimizer is not None and not model.optimizer.built:
                    model.optimizer.build(model.trainable_variables)
                model.load_weights(path)
            except (OSError, ValueError, KeyError, TypeError) as error:
                aside = path.with_name(path.name + ".damaged")
                warnings.warn(f"Backup {path} cannot be read ({type(error).__name__}: {str(error)[:120]}); set aside "
                              f"as {aside.name}, training goes on from the state before it.", stacklevel=3)
                os.replace(path, aside)
                continue
            return epochs
        return 0

    def on_epoch_end(self, epoch, logs=None):
        import h5py

        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.latest) as temporary:
            self.model.save_weights(temporary)
            with h5py.File(temporary, "a") as handle:
                handle.attrs[EPOCHS_DONE] = epoch + 1
            if self.latest.exists():
                os.replace(self.latest, self.previous)


def keep_log_rows(path, epochs):
    """Rewrite a CSVLogger file with the rows of its first ``epochs`` epochs only (atomically).

    Rows past the backup's epochs are of epochs that train again, and rows repeated by a kill are
    kept once, so the log never holds an epoch twice.
    """
    path = pathlib.Path(path)
    rows = [row for row in read_log(path) if int(row["epoch"]) < epochs]
    if not path.exists():
        return
    with open(path, newline="") as handle:
        header = next(csv.reader(handle), None)
    with atomic_path(path) as temporary, open(temporary, "w", newline="") as handle:
        if header and rows:
            writer = csv.DictWriter(handle, fieldnames=header, extrasaction="ignore")
            writer.writeheader()
            writer.writerows({**row, "epoch": int(row["epoch"])} for row in rows)


def remove_stale_temporaries(folder):
    """Remove the temporary ``.*.part*`` files a killed process could not remove (see :func:`atomic_path`)."""
    for path in pathlib.Path(folder).glob(".*.part*"):
        path.unlink(missing_ok=True)


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


def fit_stage(model, stage_dir, epochs, train, validation, patience=3, callbacks=(), verbose=0, class_weight=None):
    """``model.fit`` for one stage, with its files in ``stage_dir``, resumable; returns a summary dict.

    Callbacks, in this order: CSVLogger (``log.csv``), :class:`BestModelCheckpoint` of the best epoch
    on validation loss (``best.keras`` and ``best.json``), :class:`AtomicBackup` (``backup/``: weights,
    optimizer state and epochs done, after every epoch), EarlyStopping, TerminateOnNaN. Before ``fit``
    the newest readable backup is loaded and training starts after its epochs. After ``fit`` the
    best epoch is loaded back: that is EarlyStopping's "restore best weights", and it also holds
    when a resumed run's EarlyStopping never saw the best epoch. ``done.json`` marks a finished
    stage, which a rerun only loads; the backup is removed only after ``done.json`` is in place.
    ``class_weight``: ``fit``'s, ``{class index: weight}`` for the training loss.
    """
    stage_dir = pathlib.Path(stage_dir)
    log_path, best_path, done_path = stage_dir / "log.csv", stage_dir / "best.keras", stage_dir / "done.json"
    stage_dir.mkdir(parents=True, exist_ok=True)
    for folder in (stage_dir, stage_dir / "backup"):
        remove_stale_temporaries(folder)
    finished = load_finished_stage(model, stage_dir)
    if finished is not None:
        shutil.rmtree(stage_dir / "backup", ignore_errors=True)  # a kill may have come before it was removed
        return finished
    backup = AtomicBackup(stage_dir / "backup")
    epochs_done = backup.restore(model)
    keep_log_rows(log_path, epochs_done)
    checkpoint = BestModelCheckpoint(best_path, landed_best(stage_dir))
    clock = TrainingClock()
    fit_callbacks = [
        keras.callbacks.CSVLogger(str(log_path), append=True),
        checkpoint, backup,
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience),
        keras.callbacks.TerminateOnNaN(),
        clock, *callbacks,
    ]
    # shuffle=False: the tf.data pipeline shuffles; fit cannot shuffle a dataset (and warns if asked to).
    fit_history = model.fit(train, validation_data=validation, epochs=epochs, initial_epoch=epochs_done,
                            callbacks=fit_callbacks, verbose=verbose, shuffle=False, class_weight=class_weight)
    losses = fit_history.history.get("loss", [])
    if losses and not np.isfinite(losses[-1]):
        raise ValueError(f"Training diverged in {stage_dir.name}: the loss became {losses[-1]} at epoch "
                         f"{len(losses)}. Lower the learning rate (learning_rate=) and start again.")
    history = read_log(log_path)
    best = checkpoint.landed
    if best is not None:
        model.load_weights(best_path)
    else:  # no epoch had a finite validation loss: keep the last one
        best = save_best(model, best_path, len(history), history[-1] if history else {}, None)
    summary = {"epochs": len(history), "best_epoch": best["epoch"], "best_val_loss": best["val_loss"],
               "best_val_accuracy": best["val_accuracy"]}
    write_json(done_path, summary)
    shutil.rmtree(stage_dir / "backup", ignore_errors=True)
    return {**summary, "history": history, "train_seconds": clock.seconds, "epochs_trained_now": clock.epochs}
