"""The fine-tuning recipe: a new head on an ImageNet network, trained in two stages (:func:`fine_tune`).

"Don't be a hero": start from a network trained on ImageNet, put a new classifier on it and
retrain only as much as the data need. The recipe (fastai's ``fine_tune``; the Keras guide
"Transfer learning & fine-tuning"):

1. build the source without its ImageNet classifier and put a new *head* on top: global average
   pooling, dropout, and a softmax ``Dense`` layer with one unit per class;
2. **stage head**: freeze the base and train the head. The new head starts random; its large,
   noisy gradients would wreck the pretrained features if they could reach them;
3. **stage fine_tune**: unfreeze part or all of the base, recompile, and go on at a tenth of the
   learning rate. Both stages stop early when the loss on a validation part, held out from the
   training images, stops improving, and keep their best epoch. The test set is used once, at the end.

What trains in stage fine_tune (:class:`Recipe` ``unfreeze``): every layer (``"all"``), part of
the base (the top N layers that have weights, a layer and everything above it, or named blocks),
or nothing (``None``: the head alone, which is feature extraction plus a trained head). With
``from_scratch`` the weights are random and every layer trains from the start: the baseline that
shows what the ImageNet weights are worth. The command line is ``python -m keras_tl.fine_tune``.

BatchNormalization: except from scratch, the base is always called with ``training=False``, so its
BN layers normalise with the moving mean and variance learned on ImageNet, also once they are
unfrozen (their scale and offset may train; their statistics never change). Batches from a new,
small dataset give noisy statistics, and a network normalised with statistics it never saw in
training loses what it learned (Ioffe & Szegedy 2015 for BN; the Keras guide for this rule).
In Keras 3 writing ``base(x, training=False)`` in a functional model is not enough: ``fit``
overrides it; :class:`keras_tl.freezing.InferenceMode` makes the call instead.

Keras reads ``trainable`` flags when the model is compiled, so every stage recompiles.
A run writes into its folder as it goes (CSV logs, best and backup weights per stage), so a run
killed mid-training and started again with the same command goes on from its last finished epoch.
"""
import contextlib
import csv
import dataclasses
import json
import pathlib
import shutil
import tempfile
import time
import warnings
import zipfile

import keras
import numpy as np

from keras_tl import augment, data, distribute, freezing, lora, optimizers
from keras_tl.messages import close_matches
from keras_tl.runs import atomic_path, write_json

FINE_TUNE_LR_FACTOR = 0.1  # stage fine_tune runs at a tenth of the head's learning rate


# ----------------------------------------------------------------------------- the model


def build_classifier(base, num_classes, augmentation=None, dropout=0.2, bn_inference=True):
    """``inputs -> [augmentation] -> base -> average pooling -> dropout -> softmax Dense``.

    ``bn_inference`` wraps the base in :class:`~keras_tl.freezing.InferenceMode`, which calls it with
    ``training=False`` (see the module docstring). The last layer computes in float32 also under
    mixed precision, so the softmax stays accurate.
    """
    inputs = keras.Input(base.input_shape[1:], name="images")
    features = augmentation(inputs) if augmentation is not None else inputs
    if bn_inference:
        features = freezing.InferenceMode(base, name="inference_mode")(features)
    else:
        features = base(features)
    features = keras.layers.GlobalAveragePooling2D(name="pool")(features)
    if dropout:
        features = keras.layers.Dropout(dropout, name="dropout")(features)
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="classifier")(features)
    return keras.Model(inputs, outputs, name=f"{base.name}_classifier")


def unfreeze_part(base, spec):
    """Unfreeze part of ``base``: ``"N"`` (the top N layers with weights), a layer name (that layer and
    every layer above it), or comma-separated block names (those blocks only)."""
    spec = str(spec).strip()
    if spec.isdigit():
        return freezing.unfreeze_top(base, int(spec))
    names = [layer.name for layer in base.layers]
    if spec in names:
        return freezing.freeze_up_to(base, spec)
    blocks = [block.strip() for block in spec.split(",")]
    known = freezing.block_names(base)
    for block in blocks:
        if block not in known:
            raise ValueError(f"--unfreeze {block!r} is neither a layer nor a block of {base.name}; closest: "
                             f"{', '.join(close_matches(block, known)) or 'none'}. Give a number (the top N layers "
                             f"with weights), one layer name (it and all above it) or block names.")
    return freezing.unfreeze_blocks(base, blocks)


def set_trainable(base, unfreeze="all", freeze_bn=False):
    """Set the base's flags: ``unfreeze`` is ``"all"``, ``None`` (all frozen) or an :func:`unfreeze_part`
    choice; return the names of the layers with weights that now train."""
    if unfreeze is None:
        freezing.freeze_all(base)
    elif unfreeze == "all":
        freezing.unfreeze_all(base)
    else:
        unfreeze_part(base, unfreeze)
    if freeze_bn:
        freezing.freeze_batchnorm(base)
    return [layer.name for layer in base.layers if layer.trainable and layer.trainable_weights]


def layer_groups_multipliers(model, base, groups, lowest):
    """Discriminative rates: the base's training layers in ``groups`` (bottom to top) plus the head,
    with factors rising geometrically from ``lowest`` to 1.

    Returns the optimizer's ``{variable path: factor}`` and, for the report, ``[(layer names, factor)]``.
    """
    training = [layer.name for layer in base.layers if layer.trainable_weights]
    head = [layer.name for layer in model.layers if layer.trainable_weights and not hasattr(layer, "layers")]
    chunks = optimizers.split_groups(training, min(groups, len(training))) if training else []
    factors = optimizers.discriminative_factors(len(chunks) + 1, lowest)
    by_layer = {name: factor for chunk, factor in zip(chunks + [head], factors) for name in chunk}
    return optimizers.layer_multipliers(model, by_layer), list(zip(chunks + [head], factors))


# ----------------------------------------------------------------------------- the recipe's settings


@dataclasses.dataclass
class Stage:
    """One ``fit``: its name, epochs, learning rate and whether the base may train."""

    name: str
    epochs: int
    learning_rate: float
    base_trains: bool


@dataclasses.dataclass
class Recipe:
    """The settings of the two-stage recipe (fastai's ``fine_tune`` defaults, in Keras terms).

    ``freeze_epochs`` of the head alone, then ``epochs`` with the ``unfreeze`` choice training at
    ``learning_rate / 10`` (``unfreeze=None``: the head stage only, ``epochs`` long). With
    ``from_scratch`` there is one stage, every layer training at ``learning_rate`` from the start.
    ``lr_ratio < 1`` gives discriminative rates over ``lr_groups`` groups; ``lora_rank > 0`` trains
    LoRA factors instead of the unfrozen Conv2D/Dense kernels.
    """

    epochs: int = 4
    freeze_epochs: int = 2
    learning_rate: float = 1e-3
    lr_ratio: float = 1.0
    lr_groups: int = 3
    unfreeze: object = "all"
    freeze_bn: bool = False
    lora_rank: int = 0
    lora_alpha: float = None
    optimizer: str = "adam"
    patience: int = 3
    from_scratch: bool = False
    jit_compile: object = "auto"
    seed: int = 0

    def __post_init__(self):
        for name in ("epochs", "patience", "lr_groups"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1; got {getattr(self, name)}.")
        if self.freeze_epochs < 0 or self.lora_rank < 0:
            raise ValueError(f"freeze_epochs and lora_rank must be 0 or more; got {self.freeze_epochs}, "
                             f"{self.lora_rank}.")
        if not (np.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(f"learning_rate must be a finite number > 0; got {self.learning_rate}.")
        if not 0 < self.lr_ratio <= 1:
            raise ValueError(f"lr_ratio must be > 0 and at most 1; got {self.lr_ratio}.")

    def stages(self):
        """The stages: ``scratch`` alone, ``head`` alone, or ``head`` then ``fine_tune`` at lr / 10."""
        if self.from_scratch:
            return [Stage("scratch", self.epochs, self.learning_rate, True)]
        if self.unfreeze is None:
            return [Stage("head", self.epochs, self.learning_rate, False)]
        head = [Stage("head", self.freeze_epochs, self.learning_rate, False)] if self.freeze_epochs else []
        return head + [Stage("fine_tune", self.epochs, self.learning_rate * FINE_TUNE_LR_FACTOR, True)]


def lora_targets(base, recipe):
    """The layers that get LoRA factors: those the recipe unfreezes that support LoRA (an error if none)."""
    if not recipe.lora_rank:
        return []
    tuned = set_trainable(base, recipe.unfreeze, recipe.freeze_bn)
    targets = [name for name in tuned if lora.supports_lora(base.get_layer(name))]
    if not targets:
        raise ValueError(f"None of the {len(tuned)} layers that train supports LoRA; unfreeze some Conv2D or "
                         f"Dense layers.")
    return targets


def compile_stage(model, base, stage, recipe, targets=()):
    """Set what trains in ``stage`` (frozen base, the recipe's ``unfreeze`` choice, LoRA on ``targets``)
    and compile ``model`` at the stage's learning rate (layer-wise with ``lr_ratio``); return the rate groups.

    Keras reads ``trainable`` flags in ``compile``: every change of flags needs this recompile.
    """
    if stage.base_trains:
        set_trainable(base, "all" if recipe.from_scratch else recipe.unfreeze, recipe.freeze_bn)
        if recipe.lora_rank:
            lora.add_lora(base, recipe.lora_rank, list(targets), alpha=recipe.lora_alpha)
    else:
        freezing.freeze_all(base)
    multipliers, groups = {}, []
    if stage.base_trains and recipe.lr_ratio < 1:
        multipliers, groups = layer_groups_multipliers(model, base, recipe.lr_groups, recipe.lr_ratio)
    model.compile(optimizer=optimizers.make_optimizer(recipe.optimizer, stage.learning_rate, multipliers),
                  loss="categorical_crossentropy", metrics=["accuracy"], jit_compile=recipe.jit_compile)
    return groups


# ----------------------------------------------------------------------------- one resumable stage


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
                         f"{len(losses)}. Lower the learning rate (--lr) and start again.")
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


def make_pipelines(source, image_size, splits, num_classes, batch_size=32, mix="none", mix_alpha=0.0, seed=0,
                   shard=False):
    """tf.data pipelines for train (shuffled, optionally mixed), validation and test; labels one-hot
    for train and validation (mixup and CutMix make soft labels), integers for test."""
    import tensorflow as tf

    def one_hot(images, labels):
        return images, tf.one_hot(labels, num_classes)

    def pipeline(image_set, shuffle=False):
        return data.make_pipeline(image_set, image_size, source.preprocess_input, batch_size, shuffle=shuffle,
                                  seed=seed)

    train = augment.mix_batches(pipeline(splits["train"], shuffle=True).map(one_hot), mix, mix_alpha, seed)
    validation = pipeline(splits["validation"]).map(one_hot)
    if shard:
        train, validation = distribute.shard_by_data(train), distribute.shard_by_data(validation)
    return train.prefetch(tf.data.AUTOTUNE), validation.prefetch(tf.data.AUTOTUNE), pipeline(splits["test"])


def predict_classes(model, dataset):
    """Predicted class of every image of ``dataset``, batch by batch, on this process alone.

    (``model.predict`` would shard the data across the workers of a multi-worker strategy.)
    """
    batches = [np.argmax(keras.ops.convert_to_numpy(model(images, training=False)), axis=-1)
               for images, _ in dataset]
    return np.concatenate(batches)


# ----------------------------------------------------------------------------- the one call


def fine_tune(model_or_source, train, validation, *, num_classes=None, image_size=None, augmentation=None,
              dropout=0.2, run_dir=None, callbacks=(), strategy=None, verbose=1, **settings):
    """The two-stage recipe in one call (fastai's ``fine_tune``); returns ``(model, stages)``.

    ``model_or_source``: a headless ImageNet base (a ``keras.Model``) or a source name such as
    ``"mobilenet"`` (built without its classifier at ``image_size``). ``train`` and ``validation``
    yield ``(images, one-hot labels)`` batches, already preprocessed for the source. ``settings``
    are :class:`Recipe` fields (``epochs``, ``freeze_epochs``, ``learning_rate``, ``lr_ratio``,
    ``unfreeze``, ``lora_rank``, ...). ``stages`` maps each stage's name to its summary, with the
    per-epoch ``history``. With ``run_dir`` the stages write their logs and checkpoints there, and
    a call interrupted and made again resumes; without it they go to a temporary folder.

    Every step can be taken by hand: :func:`build_classifier`, :func:`compile_stage`, :func:`fit_stage`.
    """
    recipe = Recipe(**settings)
    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    with scope:
        base = _base_model(model_or_source, image_size, recipe)
        num_classes = num_classes or int(train.element_spec[1].shape[-1])
        model = build_classifier(base, num_classes, augmentation, dropout, bn_inference=not recipe.from_scratch)
        targets = lora_targets(base, recipe)
    with contextlib.ExitStack() as stack:
        folder = pathlib.Path(run_dir) if run_dir is not None else pathlib.Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="keras_tl-fine_tune-")))
        stages = run_stages(model, base, recipe, train, validation, folder, targets, callbacks, strategy, verbose)
    return model, stages


def run_stages(model, base, recipe, train, validation, run_dir, targets=(), callbacks=(), strategy=None, verbose=1):
    """Compile and fit each of the recipe's stages in turn (files in ``run_dir/<stage>``); return their summaries.

    ``callbacks``: Keras callbacks for every stage, or a function of the :class:`Stage` that returns them.
    """
    scope = strategy.scope if strategy is not None else contextlib.nullcontext
    say = print if verbose else (lambda *_, **__: None)
    stages = recipe.stages()
    results = {}
    for number, stage in enumerate(stages, 1):
        with scope():
            groups = compile_stage(model, base, stage, recipe, targets)
        counts = freezing.parameter_counts(model)
        say(f"Stage {number}/{len(stages)} {stage.name}: {counts['trainable']:,} of {counts['total']:,} "
            f"parameters train, lr {stage.learning_rate:g}", flush=True)
        for layers, factor in groups:
            say(f"  lr x {factor:.3g}: {describe_layers(layers)}")
        stage_callbacks = [RestartLoRA(recipe.seed)] if recipe.lora_rank and stage.base_trains else []
        stage_callbacks += callbacks(stage) if callable(callbacks) else list(callbacks)
        with scope():
            result = fit_stage(model, pathlib.Path(run_dir) / stage.name, stage.epochs, train, validation,
                               recipe.patience, stage_callbacks, verbose=verbose)
        if result["epochs_trained_now"] == 0:
            say(f"  already done: best epoch {result['best_epoch']} of {result['epochs']}")
        results[stage.name] = {**result, **counts, "learning_rate": stage.learning_rate,
                               "lr_factors": [[layers[0], layers[-1], factor] for layers, factor in groups]}
    return results


def _base_model(model_or_source, image_size, recipe):
    if isinstance(model_or_source, keras.Model):
        return model_or_source
    from keras_tl.sources import get_source

    source = get_source(model_or_source)
    return source.build(weights=None if recipe.from_scratch else "imagenet", include_top=False,
                        image_size=image_size)


def describe_layers(names):
    """Layer names for a plan: all of them when few, else the first two, the last and the count."""
    if not names:
        return "none"
    return ", ".join(names) if len(names) <= 4 else f"{names[0]}, {names[1]}, ... {names[-1]} ({len(names)} layers)"
