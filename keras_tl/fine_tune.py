"""Fine-tuning an ImageNet network on a new image task: ``python -m keras_tl.fine_tune``.

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

Modes (``--mode``): ``head`` (stage head only: feature extraction plus a trained head);
``partial`` (``--unfreeze``: the top N layers that have weights, a layer and everything above it,
or named blocks); ``full`` (every layer); ``scratch`` (random weights, every layer trains from the
start: the baseline that shows what the ImageNet weights are worth).

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
import argparse
import csv
import dataclasses
import importlib.util
import json
import pathlib
import sys
import time

import keras
import numpy as np

from keras_tl import augment, distribute, freezing, lora, optimizers, runs
from keras_tl import messages
from keras_tl.messages import close_matches

MODES = ("head", "partial", "full", "scratch")
FINE_TUNE_LR_FACTOR = 0.1  # stage fine_tune runs at a tenth of the head's learning rate
DEFAULT_UNFREEZE = "8"  # partial: the top 8 layers with weights (MobileNet: its last two blocks)
MIX_ALPHA = {"mixup": 0.2, "cutmix": 1.0}  # the papers' usual choices for ImageNet
NOT_SETTINGS = ("output_dir", "quiet", "tensorboard")  # options that may change when a run resumes

EXAMPLES = """examples:
  python -m keras_tl.fine_tune                      # MobileNet on Animal-MNIST, full, a few minutes on a CPU
  python -m keras_tl.fine_tune --mode head          # frozen base + trained head (feature extraction)
  python -m keras_tl.fine_tune --mode partial       # the top 8 layers that have weights (MobileNet's last 2 blocks)
  python -m keras_tl.fine_tune --mode partial --unfreeze 20          # the top 20 layers that have weights
  python -m keras_tl.fine_tune --mode partial --unfreeze conv_dw_11  # conv_dw_11 and every layer above it
  python -m keras_tl.fine_tune --mode partial --unfreeze conv_dw_13,conv_pw_13   # these blocks only
  python -m keras_tl.fine_tune --mode full --lr-ratio 0.01        # discriminative rates: bottom at lr/100
  python -m keras_tl.fine_tune --mode full --lora-rank 4          # LoRA on the 1x1 convolutions
  python -m keras_tl.fine_tune --mode scratch --epochs 20         # the "hero" baseline, random weights
  python -m keras_tl.fine_tune --mix cutmix --rotation 0          # CutMix, no rotations
  python -m keras_tl.fine_tune --dataset ~/data/flowers --source resnet50 --output-dir runs/flowers
  python -m keras_tl.fine_tune --strategy mirrored --mixed-precision --batch-size 64   # all GPUs of a node

A run that is interrupted resumes when started again with the same command (same --output-dir,
or none: then the newest unfinished run with the same settings is picked up).
"""


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
    """Apply an ``--unfreeze`` choice to ``base``: ``"N"`` (the top N layers with weights), a layer
    name (that layer and every layer above it), or comma-separated block names (those blocks only)."""
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


def set_trainable(base, mode, unfreeze=DEFAULT_UNFREEZE, freeze_bn=False):
    """Set the base's flags for ``mode``; return the names of the layers with weights that now train."""
    if mode == "head":
        freezing.freeze_all(base)
    elif mode == "partial":
        unfreeze_part(base, unfreeze)
    else:
        freezing.unfreeze_all(base)
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


def read_log(path):
    """The rows of a CSVLogger file as dicts of floats, one per epoch (a repeated epoch keeps its last row)."""
    path = pathlib.Path(path)
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        rows = {int(row["epoch"]): {key: float(value) for key, value in row.items() if value != ""}
                for row in csv.DictReader(handle)}
    return [rows[epoch] for epoch in sorted(rows)]


def fit_stage(model, stage_dir, epochs, train, validation, patience=3, callbacks=(), verbose=0):
    """``model.fit`` for one stage, with its files in ``stage_dir``, resumable; returns a summary dict.

    Callbacks, in this order: CSVLogger (``log.csv``), ModelCheckpoint of the best epoch on
    validation loss (``best.keras``), BackupAndRestore (``backup/``: weights, optimizer state and
    epoch after every epoch), EarlyStopping. After ``fit`` the best epoch is loaded back: that is
    EarlyStopping's "restore best weights", and it also holds when a resumed run's EarlyStopping
    never saw the best epoch. ``done.json`` marks a finished stage, which a rerun only loads.
    """
    stage_dir = pathlib.Path(stage_dir)
    log_path, best_path, done_path = stage_dir / "log.csv", stage_dir / "best.keras", stage_dir / "done.json"
    stage_dir.mkdir(parents=True, exist_ok=True)
    if done_path.exists():
        model.optimizer.build(model.trainable_variables)
        model.load_weights(best_path)
        return {**json.loads(done_path.read_text()), "history": read_log(log_path), "train_seconds": 0.0,
                "epochs_trained_now": 0}
    best_so_far = min((row["val_loss"] for row in read_log(log_path) if "val_loss" in row), default=None)
    clock = TrainingClock()
    fit_callbacks = [
        keras.callbacks.CSVLogger(str(log_path), append=True),
        keras.callbacks.ModelCheckpoint(str(best_path), monitor="val_loss", save_best_only=True,
                                        initial_value_threshold=best_so_far),
        keras.callbacks.BackupAndRestore(str(stage_dir / "backup"), double_checkpoint=True),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience),
        clock, *callbacks,
    ]
    # shuffle=False: the tf.data pipeline shuffles; fit cannot shuffle a dataset (and warns if asked to).
    model.fit(train, validation_data=validation, epochs=epochs, callbacks=fit_callbacks, verbose=verbose,
              shuffle=False)
    if best_path.exists():
        model.load_weights(best_path)
    else:  # no epoch had a finite validation loss: keep the last one
        with runs.atomic_path(best_path) as temporary:
            model.save(temporary)
    history = read_log(log_path)
    best = min(history, key=lambda row: row.get("val_loss", np.inf))
    summary = {"epochs": len(history), "best_epoch": int(best["epoch"]) + 1,
               "best_val_loss": best.get("val_loss"), "best_val_accuracy": best.get("val_accuracy")}
    runs.write_json(done_path, summary)
    return {**summary, "history": history, "train_seconds": clock.seconds, "epochs_trained_now": clock.epochs}


# ----------------------------------------------------------------------------- the job


@dataclasses.dataclass
class Stage:
    """One ``fit``: its name, epochs, learning rate and whether the base may train."""

    name: str
    epochs: int
    learning_rate: float
    base_trains: bool


def plan_stages(mode, epochs, freeze_epochs, learning_rate):
    """The stages of a mode: ``head`` or ``scratch`` alone, or ``head`` then ``fine_tune`` at lr / 10."""
    if mode in ("head", "scratch"):
        return [Stage(mode, epochs, learning_rate, mode == "scratch")]
    stages = [Stage("head", freeze_epochs, learning_rate, False)] if freeze_epochs else []
    return stages + [Stage("fine_tune", epochs, learning_rate * FINE_TUNE_LR_FACTOR, True)]


def settings_of(args):
    """The options that define a run (what must match for a rerun to resume it)."""
    return {key: value for key, value in vars(args).items() if key not in NOT_SETTINGS}


def choose_run_dir(output_dir, settings):
    """The run folder and whether it resumes one: ``output_dir`` (an error if it holds a run with
    other settings) or, when None, the newest unfinished ``runs/fine_tune-*`` with the same settings."""
    if output_dir is None:
        for candidate in sorted(pathlib.Path("runs").glob("fine_tune-*"), reverse=True):
            config_path = candidate / "config.json"
            if (config_path.exists() and not (candidate / "metrics.json").exists()
                    and json.loads(config_path.read_text()).get("settings") == settings):
                return candidate, True
        return runs.make_run_dir(None, "fine_tune"), False
    run_dir = runs.make_run_dir(output_dir, "fine_tune")
    config_path = run_dir / "config.json"
    if not config_path.exists():
        return run_dir, False
    stored = json.loads(config_path.read_text()).get("settings", {})
    changed = sorted(key for key in set(stored) | set(settings) if stored.get(key) != settings.get(key))
    if changed:
        listing = ", ".join(f"{key}: {stored.get(key)!r} there, {settings.get(key)!r} now" for key in changed)
        raise ValueError(f"{run_dir} holds a run with other settings ({listing}). Choose another --output-dir "
                         f"or delete that folder.")
    return run_dir, True


def make_pipelines(source, image_size, splits, num_classes, batch_size, mix, mix_alpha, seed, shard):
    """tf.data pipelines for train (shuffled, optionally mixed), validation and test; labels one-hot
    for train and validation (mixup and CutMix make soft labels), integers for test."""
    import tensorflow as tf

    from keras_tl import data

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


def configure_stage(model, base, stage, args, lora_targets):
    """Set what trains in ``stage`` (frozen base, the ``--mode`` choice, LoRA) and compile ``model``
    with the stage's learning rate (layer-wise with ``--lr-ratio``); returns the rate groups.

    Keras reads ``trainable`` flags in ``compile``: every change of flags needs this recompile.
    """
    if stage.base_trains:
        set_trainable(base, args.mode, args.unfreeze or DEFAULT_UNFREEZE, args.freeze_bn)
        if args.lora_rank:
            lora.add_lora(base, args.lora_rank, lora_targets, alpha=args.lora_alpha)
    else:
        freezing.freeze_all(base)
    multipliers, groups = {}, []
    if stage.base_trains and args.lr_ratio < 1:
        multipliers, groups = layer_groups_multipliers(model, base, args.lr_groups, args.lr_ratio)
    model.compile(optimizer=optimizers.make_optimizer(args.optimizer, stage.learning_rate, multipliers),
                  loss="categorical_crossentropy", metrics=["accuracy"],
                  jit_compile=True if args.jit_compile else "auto")
    return groups


def describe_layers(names):
    """Layer names for the plan: all of them when few, else the first two, the last and the count."""
    if not names:
        return "none"
    return ", ".join(names) if len(names) <= 4 else f"{names[0]}, {names[1]}, ... {names[-1]} ({len(names)} layers)"


def run(args):
    """The whole job; returns the metrics dict (also written to ``metrics.json``)."""
    from keras_tl import classify, data, plots
    from keras_tl.sources import get_source

    started = time.perf_counter()
    verbose = not args.quiet
    say = print if verbose else (lambda *_, **__: None)
    strategy = distribute.make_strategy(args.strategy)  # first: multi-worker must precede any TF operation
    distribute.set_mixed_precision(args.mixed_precision)
    keras.utils.set_random_seed(args.seed)

    source = get_source(args.source)
    image_size = args.image_size or source.default_size
    source.input_shape(image_size)  # an error below the source's minimum size
    multi_worker = args.strategy == "multi-worker"
    if args.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise ValueError("--tensorboard needs the tensorboard package (TensorFlow no longer installs it): "
                         "pip install tensorboard")
    if multi_worker and args.output_dir is None:
        raise ValueError("--strategy multi-worker needs --output-dir: every worker must use the same folder.")
    dataset = data.load_dataset(args.dataset, seed=args.seed, train_per_class=args.train_per_class or None,
                                test_per_class=args.test_per_class or None)
    train_set, validation_set = data.split_validation(dataset.train, args.validation_fraction, args.seed)
    batch_size = distribute.global_batch_size(args.batch_size, strategy)
    if batch_size > len(train_set):
        raise ValueError(f"The batch ({batch_size} images: --batch-size {args.batch_size} x "
                         f"{strategy.num_replicas_in_sync} replica(s)) is larger than the training set "
                         f"({len(train_set)} images after holding out validation); use a smaller --batch-size.")
    stages = plan_stages(args.mode, args.epochs, args.freeze_epochs, args.lr)
    mix_alpha = args.mix_alpha or MIX_ALPHA.get(args.mix, 0.0)

    with strategy.scope():
        base = source.build(weights=None if args.mode == "scratch" else "imagenet", include_top=False,
                            image_size=image_size)
        tuned_layers = set_trainable(base, args.mode, args.unfreeze or DEFAULT_UNFREEZE, args.freeze_bn)
        lora_targets = [name for name in tuned_layers if lora.supports_lora(base.get_layer(name))]
        if args.lora_rank and not lora_targets:
            raise ValueError(f"None of the layers that train ({describe_layers(tuned_layers)}) supports LoRA; "
                             f"unfreeze some Conv2D or Dense layers.")
        augmentation = None if args.no_augment else augment.augmentation_layers(
            None if args.flip == "none" else args.flip, args.zoom, args.rotation, args.translation, seed=args.seed)
        model = build_classifier(base, len(dataset.class_names), augmentation, args.dropout,
                                 bn_inference=args.mode != "scratch")
    freezing.unfreeze_all(base)
    full_fine_tune_params = freezing.parameter_counts(model)["trainable"]

    settings = settings_of(args)
    run_dir, resuming = choose_run_dir(args.output_dir, settings)
    if multi_worker and not distribute.is_chief(strategy):
        run_dir = runs.make_run_dir(run_dir / f"worker-{strategy.cluster_resolver.task_id}", "fine_tune")
    splits = {"train": train_set, "validation": validation_set, "test": dataset.test}
    sizes = {split: len(image_set) for split, image_set in splits.items()}
    runs.write_json(run_dir / "config.json", {
        "settings": settings, "image_size": image_size, "global_batch_size": batch_size, "sizes": sizes,
        "class_names": dataset.class_names, "stages": [dataclasses.asdict(stage) for stage in stages],
        "layers_tuned": tuned_layers, "strategy": distribute.describe(strategy), "keras": keras.__version__})

    say(f"{'Resuming' if resuming else 'Fine-tuning'} in {run_dir}")
    say(f"  source:    {source.name} ({'random' if args.mode == 'scratch' else 'ImageNet'} weights), "
        f"{image_size}x{image_size} px, mode {args.mode}")
    say(f"  trains:    {'the head only' if args.mode == 'head' else describe_layers(tuned_layers)}"
        + (f"; LoRA rank {args.lora_rank} on {len(lora_targets)} layers" if args.lora_rank else "")
        + ("; BatchNorm frozen" if args.freeze_bn else ""))
    say(f"  data:      {dataset.name}, {len(dataset.class_names)} classes: {sizes['train']} train, "
        f"{sizes['validation']} validation (held out from train), {sizes['test']} test images")
    say(f"  batches:   {args.batch_size} per replica x {strategy.num_replicas_in_sync} = {batch_size}; "
        f"{distribute.describe(strategy)}" + (", mixed precision" if args.mixed_precision else ""))
    say(f"  augment:   {'none' if augmentation is None else ', '.join(layer.name for layer in augmentation.layers)}"
        + (f"; {args.mix} (alpha {mix_alpha})" if args.mix != "none" else ""))
    say("  stages:    " + "; ".join(f"{stage.name}: up to {stage.epochs} epochs at lr {stage.learning_rate:g}"
                                    for stage in stages), flush=True)

    train, validation, test = make_pipelines(source, image_size, splits, len(dataset.class_names), batch_size,
                                             args.mix, mix_alpha, args.seed, shard=multi_worker)
    results, history = {}, []
    for number, stage in enumerate(stages, 1):
        with strategy.scope():
            groups = configure_stage(model, base, stage, args, lora_targets)
        counts = freezing.parameter_counts(model)
        say(f"Stage {number}/{len(stages)} {stage.name}: {counts['trainable']:,} of {counts['total']:,} "
            f"parameters train, lr {stage.learning_rate:g}")
        for layers, factor in groups:
            say(f"  lr x {factor:.3g}: {describe_layers(layers)}")
        callbacks = [RestartLoRA(args.seed)] if args.lora_rank and stage.base_trains else []
        if args.tensorboard:
            callbacks.append(keras.callbacks.TensorBoard(str(run_dir / "tensorboard" / stage.name)))
        with strategy.scope():
            result = fit_stage(model, run_dir / stage.name, stage.epochs, train, validation, args.patience,
                               callbacks, verbose=(1 if sys.stdout.isatty() else 2) if verbose else 0)
        if result["epochs_trained_now"] == 0:
            say(f"  already done: best epoch {result['best_epoch']} of {result['epochs']}")
        first_epoch = len(history) + 1
        history += [{**row, "epoch": first_epoch + index, "stage": stage.name}
                    for index, row in enumerate(result.pop("history"))]
        results[stage.name] = {**result, **counts, "learning_rate": stage.learning_rate,
                               "lr_factors": [[layers[0], layers[-1], factor] for layers, factor in groups]}
    with runs.atomic_path(run_dir / "layers.txt") as temporary:
        temporary.write_text(freezing.trainable_report(model, expand_nested=True) + "\n")

    predicted = predict_classes(model, test)
    evaluation = classify.evaluate_predictions(dataset.test.labels, predicted, dataset.class_names)
    accuracy, matrix = evaluation["accuracy"], evaluation["confusion_matrix"]
    with runs.atomic_path(run_dir / "model.keras") as temporary:
        model.save(temporary)
    title = f"{source.name} {args.mode} on {dataset.name}"
    plots.plot_learning_curves(history, run_dir / "figures" / "learning_curves.png", title=title)
    plots.plot_confusion_matrix(matrix, dataset.class_names, run_dir / "figures" / "confusion_matrix.png",
                                title=f"{title}: test accuracy {accuracy:.3f}")

    train_seconds = sum(result["train_seconds"] for result in results.values())
    images_trained = sum(result["epochs_trained_now"] for result in results.values()) * sizes["train"]
    final = results[stages[-1].name]
    cost = {"wall_seconds": time.perf_counter() - started, "train_seconds": train_seconds,
            "train_images_per_second": images_trained / train_seconds if train_seconds else None,
            "trainable_params": final["trainable"], "total_params": final["total"],
            "full_fine_tune_trainable_params": full_fine_tune_params}
    metrics = {"test_accuracy": accuracy, "test_images": sizes["test"], "stages": results, "history": history,
               "confusion_matrix": matrix, "report": evaluation["report"], "class_names": dataset.class_names,
               "cost": cost}
    runs.write_json(run_dir / "metrics.json", metrics)

    rows = [[name, result["epochs"], result["best_epoch"], result["best_val_accuracy"], result["trainable"],
             result["train_seconds"]] for name, result in results.items()]
    print(messages.format_table(rows, ["stage", "epochs", "best epoch", "val accuracy", "trainable params", "train s"]))
    speed = f"{cost['train_images_per_second']:.0f} train images/s" if train_seconds else "no epoch trained now"
    print(f"Test accuracy: {accuracy:.4f} on {sizes['test']} images")
    print(f"Cost: {cost['wall_seconds']:.0f} s wall, {speed}; {final['trainable']:,} of {final['total']:,} "
          f"parameters trainable (a full fine-tune trains {full_fine_tune_params:,})")
    print(f"Run folder: {run_dir}")
    return metrics


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m keras_tl.fine_tune", description=__doc__.split("\n\n")[0],
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = parser.add_argument_group("source and data")
    what.add_argument("--source", default="mobilenet", help="keras.applications model (default: mobilenet)")
    what.add_argument("--dataset", default="animal_mnist",
                      help="animal_mnist, fashion_mnist, openclipart or a folder (see datasets/)")
    what.add_argument("--image-size", type=int, default=None,
                      help="input size in pixels (default: 96 for the built-in default, else the source's)")
    what.add_argument("--train-per-class", type=int, default=None,
                      help="keep N train images per class (default: 200 for the built-in default, else all)")
    what.add_argument("--test-per-class", type=int, default=None,
                      help="keep N test images per class (default: 100 for the built-in default, else all)")
    what.add_argument("--validation-fraction", type=float, default=0.2,
                      help="share of the train images held out for validation (default 0.2)")
    how = parser.add_argument_group("what trains")
    how.add_argument("--mode", choices=MODES, default="full",
                     help="head, partial, full or scratch (default full, like fastai's fine_tune: the head "
                          "first, then every layer)")
    how.add_argument("--unfreeze", default=None, metavar="N|LAYER|BLOCKS",
                     help="partial mode: top N layers with weights, a layer and all above it, or comma-separated "
                          f"block names (default {DEFAULT_UNFREEZE})")
    how.add_argument("--freeze-bn", action="store_true", help="keep BatchNorm scale and offset frozen too")
    how.add_argument("--lora-rank", type=int, default=0, help="train LoRA factors of this rank instead of the "
                     "unfrozen Conv2D/Dense kernels (partial or full; default 0: off)")
    how.add_argument("--lora-alpha", type=float, default=None, help="LoRA scale alpha (default: the rank)")
    how.add_argument("--dropout", type=float, default=0.2, help="dropout before the new classifier (default 0.2)")
    fit = parser.add_argument_group("training")
    fit.add_argument("--epochs", type=int, default=4,
                     help="epochs of the main stage: fine_tune, or the only stage of head/scratch (default 4)")
    fit.add_argument("--freeze-epochs", type=int, default=2,
                     help="partial/full: epochs of the head stage first (0 skips it; default 2)")
    fit.add_argument("--patience", type=int, default=3, help="early stopping patience in epochs (default 3)")
    fit.add_argument("--batch-size", type=int, default=32, help="images per replica per step (default 32)")
    fit.add_argument("--optimizer", choices=optimizers.OPTIMIZERS, default="adam")
    fit.add_argument("--lr", type=float, default=1e-3, help="learning rate of the head stage; fine_tune "
                     "uses a tenth (default 1e-3)")
    fit.add_argument("--lr-ratio", type=float, default=1.0, help="discriminative rates: the bottom layer group "
                     "learns at this fraction of the head's rate (default 1: one rate for all)")
    fit.add_argument("--lr-groups", type=int, default=3, help="layer groups of the base for --lr-ratio (default 3)")
    aug = parser.add_argument_group("augmentation")
    aug.add_argument("--no-augment", action="store_true", help="no flip, zoom, rotation or translation")
    aug.add_argument("--flip", choices=["horizontal", "vertical", "horizontal_and_vertical", "none"],
                     default="horizontal")
    aug.add_argument("--zoom", type=float, default=0.1, help="random zoom, a fraction of the size (0: off)")
    aug.add_argument("--rotation", type=float, default=0.05, help="random rotation, a fraction of a turn (0: off)")
    aug.add_argument("--translation", type=float, default=0.1, help="random shift, a fraction of the size (0: off)")
    aug.add_argument("--mix", choices=augment.MIX_METHODS, default="none", help="mixup or CutMix of batches")
    aug.add_argument("--mix-alpha", type=float, default=None, help="Beta(alpha, alpha) of the mix "
                     "(default 0.2 for mixup, 1 for cutmix)")
    hardware = parser.add_argument_group("hardware")
    hardware.add_argument("--strategy", choices=distribute.STRATEGIES, default="auto",
                          help="tf.distribute strategy (default auto: all GPUs of this machine, or the CPU)")
    hardware.add_argument("--mixed-precision", action="store_true", help="mixed_float16 (GPU only)")
    hardware.add_argument("--jit-compile", action="store_true", help="compile the train step with XLA")
    out = parser.add_argument_group("output")
    out.add_argument("--output-dir", default=None, help="run folder (default runs/fine_tune-<time>)")
    out.add_argument("--tensorboard", action="store_true", help="write TensorBoard logs into the run folder")
    out.add_argument("--seed", type=int, default=0)
    out.add_argument("--quiet", action="store_true", help="no plan and no progress bars")
    args = parser.parse_args(argv)

    if args.dataset == parser.get_default("dataset"):
        for name, default in (("train_per_class", 200), ("test_per_class", 100), ("image_size", 96)):
            if getattr(args, name) is None:
                setattr(args, name, default)
    if not args.lr > 0:
        parser.error(f"--lr must be > 0; got {args.lr}.")
    for name in ("epochs", "patience", "batch_size", "lr_groups"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1; got {getattr(args, name)}.")
    if args.freeze_epochs < 0 or args.lora_rank < 0:
        parser.error("--freeze-epochs and --lora-rank must be 0 or more.")
    if not 0 < args.validation_fraction < 1:
        parser.error(f"--validation-fraction must be between 0 and 1; got {args.validation_fraction}.")
    if not 0 < args.lr_ratio <= 1:
        parser.error(f"--lr-ratio must be > 0 and at most 1; got {args.lr_ratio}.")
    if args.mix_alpha is not None and not args.mix_alpha > 0:
        parser.error(f"--mix-alpha must be > 0; got {args.mix_alpha}.")
    if args.unfreeze is not None and args.mode != "partial":
        parser.error(f"--unfreeze chooses layers for --mode partial; this is --mode {args.mode}.")
    if args.freeze_bn and args.mode == "scratch":
        parser.error("--freeze-bn keeps ImageNet's BatchNorm statistics; --mode scratch has none to keep.")
    if args.lora_rank and args.mode not in ("partial", "full"):
        parser.error(f"--lora-rank adapts the unfrozen layers of --mode partial or full; this is --mode {args.mode}.")
    return args


def main(argv=None):
    return runs.run_cli(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
