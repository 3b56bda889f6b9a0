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

How long a stage trains is counted in optimisation steps (batches), not only in epochs: on a
small dataset an epoch is a handful of batches, and a few epochs leave the new head untrained.
``min_steps`` raises a stage's epochs until it has that many steps (:func:`stage_epochs`;
:data:`MIN_STEPS` says why 100); early stopping still ends it sooner. A stage that ends with its
validation loss still falling is reported (:mod:`keras_tl.training.still_improving`), and so is one
whose training loss explodes (:mod:`keras_tl.training.exploding_loss`: a learning rate far too large).

What trains in stage fine_tune (:class:`Recipe` ``unfreeze``): every layer (``"all"``), part of
the base (the top N layers that have weights, a layer and everything above it, or named blocks),
or nothing (``None``: the head alone, which is feature extraction plus a trained head), as
:func:`keras_tl.training.freezing.set_trainable` reads it. With ``from_scratch`` the weights are random and
every layer trains from the start: the baseline that shows what the ImageNet weights are worth.
The command line is ``python -m keras_tl.fine_tune``; the one call is :func:`fine_tune_model`.

BatchNormalization: except from scratch, the base is always called with ``training=False``, so its
BN layers normalise with the moving mean and variance learned on ImageNet, also once they are
unfrozen (their scale and offset may train; their statistics never change). Batches from a new,
small dataset give noisy statistics, and a network normalised with statistics it never saw in
training loses what it learned (Ioffe & Szegedy 2015 for BN; the Keras guide for this rule).
In Keras 3 writing ``base(x, training=False)`` in a functional model is not enough: ``fit``
overrides it; :class:`keras_tl.training.freezing.InferenceMode` makes the call instead.
From scratch, BN trains on batch statistics and its moving averages get a short memory
(:func:`keras_tl.training.freezing.shorten_batchnorm_memory`), so that inference sees this run's statistics.

Imbalanced classes: ``class_weight="auto"`` weighs each image's loss by n / (k x the training images of
its class) in every stage (:func:`balanced_class_weight`, scikit-learn's ``"balanced"``), so that a
small class counts as much as a large one; early stopping still watches the unweighted validation loss.

Keras reads ``trainable`` flags when the model is compiled, so every stage recompiles. Each stage
is fitted by :func:`keras_tl.training.resumable_fit.fit_stage`, which writes into the run folder as it goes,
so a run killed mid-training and started again with the same command goes on from its last
finished epoch.
"""
import contextlib
import dataclasses
import math
import pathlib
import tempfile
import warnings

import keras
import numpy as np

from keras_tl.messages import describe_layers
from keras_tl.training import freezing, l2_sp, lora, optimizers, schedules, still_improving
from keras_tl.training.exploding_loss import ExplodingLoss
from keras_tl.training.resumable_fit import RestartLoRA, fit_stage

FINE_TUNE_LR_FACTOR = 0.1  # stage fine_tune runs at a tenth of the head's learning rate
MIN_STEPS = 100
"""The job's ``--min-steps``: each stage trains at least this many batches (:func:`stage_epochs`).

A new head starts random and needs a hundred steps or more at lr 1e-3 (Adam): fastai's
``fine_tune`` gives it one epoch, 92 batches of 64 on its Oxford-IIIT Pets example (5,912 images);
keras.io's guide "Transfer learning & fine-tuning" two epochs of 146 batches (20 of 291 in its
first version). 100 is that floor: the default job (Animal-MNIST, 1,600 training images in batches
of 32: 50 steps an epoch) already trains 2 x 50 = 100 and 4 x 50 = 200 steps, so it is unchanged;
a folder of 212 photographs (5 steps an epoch once test and validation are held out) gets 20
epochs a stage instead of 2 and 4. Where that is still too few, the stage ends with its
validation loss still falling and the run says so (:mod:`keras_tl.training.still_improving`; the
default job's two stages do, with ``--seed 0``). The recipe's own default is 0: a call trains the
epochs it asks for, as ``fit`` does, and is warned when they were too few.
"""


# ----------------------------------------------------------------------------- the model


def build_classifier(base, num_classes, augmentation=None, dropout=0.2, bn_inference=True, multi_label=False):
    """``inputs -> [augmentation] -> base -> average pooling -> dropout -> softmax Dense`` (``multi_label``: a
    sigmoid ``Dense``, each class's probability on its own).

    ``bn_inference`` wraps the base in :class:`~keras_tl.training.freezing.InferenceMode`, which calls it with
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
    outputs = keras.layers.Dense(num_classes, activation="sigmoid" if multi_label else "softmax", dtype="float32",
                                 name="classifier")(features)
    return keras.Model(inputs, outputs, name=f"{base.name}_classifier")


# ----------------------------------------------------------------------------- the recipe's settings


@dataclasses.dataclass
class Stage:
    """One ``fit``: its name, epochs, learning rate and whether the base may train; with the batches in
    an epoch (``steps_per_epoch``, None: not known), the recipe's ``min_steps`` and the epochs asked
    for before ``min_steps`` raised them (:func:`stage_epochs`)."""

    name: str
    epochs: int
    learning_rate: float
    base_trains: bool
    steps_per_epoch: int = None
    min_steps: int = 0
    requested_epochs: int = None

    def describe(self):
        """The plan of the stage in a line: "head: up to 20 epochs, raised from 2 (x 5 steps = 100 >= min 100) ..."."""
        raised = f", raised from {self.requested_epochs}" if self.requested_epochs not in (None, self.epochs) else ""
        if self.steps_per_epoch is None:
            steps = " (batches per epoch unknown: min_steps not applied)" if self.min_steps else ""
        else:
            total = self.epochs * self.steps_per_epoch
            steps = f" (x {self.steps_per_epoch} steps = {total}" + (
                f" >= min {self.min_steps})" if self.min_steps else ")")
        return f"{self.name}: up to {self.epochs} epochs{raised}{steps} at lr {self.learning_rate:g}"


def stage_epochs(epochs, steps_per_epoch, min_steps):
    """``epochs``, raised so that the stage trains at least ``min_steps`` batches:
    ``max(epochs, ceil(min_steps / steps_per_epoch))`` (``epochs`` when ``steps_per_epoch`` is None)."""
    if steps_per_epoch is None:
        return epochs
    return max(epochs, math.ceil(min_steps / steps_per_epoch))


def steps_per_epoch_of(train):
    """The batches in an epoch of ``train`` (a ``tf.data.Dataset`` or a ``keras.utils.PyDataset``), or None
    where it cannot tell (an infinite or unknown-length dataset)."""
    count = train.cardinality() if hasattr(train, "cardinality") else getattr(train, "num_batches", None)
    count = None if count is None else int(count)
    return count if count is not None and count > 0 else None


@dataclasses.dataclass
class Recipe:
    """The settings of the two-stage recipe (fastai's ``fine_tune`` defaults, in Keras terms).

    ``freeze_epochs`` of the head alone, then ``epochs`` with the ``unfreeze`` choice training at
    ``learning_rate / 10`` (``unfreeze=None``: the head stage only, ``epochs`` long); ``min_steps``
    raises the epochs of a stage on a small dataset until it trains that many batches (0, the
    default: epochs as given; the job's default is :data:`MIN_STEPS`). With
    ``from_scratch`` there is one stage, every layer training at ``learning_rate`` from the start.
    ``lr_ratio < 1`` gives discriminative rates over ``lr_groups`` groups; ``lora_rank > 0`` trains
    LoRA factors instead of the unfrozen Conv2D/Dense kernels. ``schedule``: each stage's rate over
    its own steps, ``"constant"``, ``"one-cycle"`` or ``"cosine"`` (:mod:`keras_tl.training.schedules`).
    ``l2_sp=(alpha, beta)``: the L2-SP penalty towards the starting weights (:mod:`keras_tl.training.l2_sp`).
    ``class_weight``: Keras's ``fit(class_weight=...)`` in every stage: None, ``"auto"`` (counted in one
    pass over the training labels: :func:`balanced_class_weight`) or a dict ``{class index: weight}``.
    ``multi_label``: several labels per image (multi-hot targets): a sigmoid head, the binary cross-entropy of
    each class, and the binary accuracy of the image-class decisions at 0.5 as ``accuracy``.
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
    schedule: str = "constant"
    l2_sp: tuple = None
    min_steps: int = 0
    class_weight: object = None
    multi_label: bool = False

    def __post_init__(self):
        for name in ("epochs", "patience", "lr_groups"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1; got {getattr(self, name)}.")
        for name in ("freeze_epochs", "lora_rank", "min_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more; got {getattr(self, name)}.")
        if not (np.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(f"learning_rate must be a finite number > 0; got {self.learning_rate}.")
        if not 0 < self.lr_ratio <= 1:
            raise ValueError(f"lr_ratio must be > 0 and at most 1; got {self.lr_ratio}.")
        if self.schedule not in schedules.SCHEDULES:
            raise ValueError(f"schedule={self.schedule!r} is not one of {', '.join(schedules.SCHEDULES)}.")
        self.l2_sp = l2_sp.check_l2_sp(self.l2_sp)
        if self.l2_sp and self.from_scratch:
            raise ValueError("l2_sp= pulls the weights towards their pretrained values; from_scratch=True has none.")
        check_class_weight(self.class_weight)
        if self.class_weight and self.multi_label:
            raise ValueError("class_weight= weighs each image by its class, and an image of a multi-label task has "
                             "several; use it with one label per image.")

    @property
    def unfrozen(self):
        """What trains in the stage that trains the base: ``"all"`` from scratch, else ``unfreeze``."""
        return "all" if self.from_scratch else self.unfreeze

    def stages(self, steps_per_epoch=None):
        """The stages: ``scratch`` alone, ``head`` alone, or ``head`` then ``fine_tune`` at lr / 10; given
        the batches in an epoch of the training data, each lasts at least ``min_steps`` of them."""
        if self.from_scratch:
            planned = [("scratch", self.epochs, self.learning_rate, True)]
        elif self.unfreeze is None:
            planned = [("head", self.epochs, self.learning_rate, False)]
        else:
            planned = ([("head", self.freeze_epochs, self.learning_rate, False)] if self.freeze_epochs else []) + [
                ("fine_tune", self.epochs, self.learning_rate * FINE_TUNE_LR_FACTOR, True)]
        return [Stage(name, stage_epochs(epochs, steps_per_epoch, self.min_steps), rate, base_trains,
                      steps_per_epoch, self.min_steps, epochs) for name, epochs, rate, base_trains in planned]


def check_class_weight(class_weight):
    """A ``ValueError`` unless ``class_weight`` is None, ``"auto"`` or ``{class index >= 0: finite weight > 0}``."""
    if class_weight is None or class_weight == "auto":
        return
    if not isinstance(class_weight, dict):
        raise ValueError(f"class_weight={class_weight!r} should be None, 'auto' (n / (k x images of the class)) "
                         "or a dict {class index: weight}.")
    for key, weight in class_weight.items():
        if not (isinstance(key, (int, np.integer)) and key >= 0 and isinstance(weight, (int, float, np.number))
                and np.isfinite(weight) and weight > 0):
            raise ValueError(f"class_weight= maps class indices (0, 1, ...) to finite weights > 0; got "
                             f"{key!r}: {weight!r}.")


def balanced_class_weight(counts):
    """``{class: n / (k x count)}`` from the images per class (``np.bincount(labels)``; soft counts of mixed
    labels alike): n images in k classes (those with an image), scikit-learn's ``class_weight="balanced"``.
    Every class then weighs as much in the loss as n / k images would; a class of the average size gets 1."""
    counts = np.asarray(counts, dtype=float)
    present = np.flatnonzero(counts > 0)
    return {int(index): float(counts.sum() / (len(present) * counts[index])) for index in present}


def label_counts(train, num_classes):
    """The images per class in ``train``'s batches of one-hot (or mixed) labels, in one pass over it."""
    counts = np.zeros(num_classes)
    for batch in train:
        counts += np.sum(keras.ops.convert_to_numpy(batch[1]), axis=0)
    return counts


def stage_class_weight(recipe, train, num_classes):
    """What ``fit`` gets as ``class_weight``: None, or a weight for each of the ``num_classes`` classes: the
    recipe's dict (1 where it gives none) or its ``"auto"``, counted from ``train``."""
    if not recipe.class_weight:
        return None
    weights = (balanced_class_weight(label_counts(train, num_classes)) if recipe.class_weight == "auto"
               else recipe.class_weight)
    if max(weights) >= num_classes:
        raise ValueError(f"class_weight= names class {max(weights)}, and the model has {num_classes} classes "
                         f"(0..{num_classes - 1}).")
    return {index: float(weights.get(index, 1.0)) for index in range(num_classes)}


def build_model(model_or_source, num_classes, recipe, image_size=None, augmentation=None, dropout=0.2):
    """``(base, model, lora_targets)``: the base, the classifier around it and the layers that get LoRA.

    ``model_or_source``: a headless ImageNet base (a ``keras.Model``) or a source name such as
    ``"mobilenet"``, built without its classifier at ``image_size`` (random weights ``from_scratch``).
    Call it inside a ``tf.distribute`` strategy's scope to place the variables on its devices.
    """
    if isinstance(model_or_source, keras.Model):
        base = model_or_source
    else:
        from keras_tl.sources import get_source

        base = get_source(model_or_source).build(weights=None if recipe.from_scratch else "imagenet",
                                                 include_top=False, image_size=image_size)
    if recipe.from_scratch:
        freezing.shorten_batchnorm_memory(base)  # random BN statistics: follow the batches quickly
    model = build_classifier(base, num_classes, augmentation, dropout, bn_inference=not recipe.from_scratch,
                             multi_label=recipe.multi_label)
    targets = lora.lora_targets(base, recipe.unfrozen, recipe.freeze_bn) if recipe.lora_rank else []
    return base, model, targets


def compile_stage(model, base, stage, recipe, targets=(), steps_per_epoch=None):
    """Set what trains in ``stage`` (frozen base, the recipe's ``unfreeze`` choice, LoRA on ``targets``)
    and compile ``model`` at the stage's learning rate (layer-wise with ``lr_ratio``; with the recipe's
    ``schedule`` over the stage's ``epochs x steps_per_epoch`` steps); return the rate groups.

    Keras reads ``trainable`` flags in ``compile``: every change of flags needs this recompile.
    """
    if stage.base_trains:
        freezing.set_trainable(base, recipe.unfrozen, recipe.freeze_bn)
        if recipe.lora_rank:
            lora.add_lora(base, recipe.lora_rank, list(targets), alpha=recipe.lora_alpha)
    else:
        freezing.freeze_all(base)
    multipliers, groups = {}, []
    if stage.base_trains and recipe.lr_ratio < 1:
        multipliers, groups = optimizers.layer_groups_multipliers(model, base, recipe.lr_groups, recipe.lr_ratio)
    rate = stage.learning_rate if recipe.schedule == "constant" else schedules.make_schedule(
        recipe.schedule, stage.learning_rate, stage.epochs * steps_of(steps_per_epoch))
    loss, accuracy = (("binary_crossentropy", keras.metrics.BinaryAccuracy(name="accuracy")) if recipe.multi_label
                      else ("categorical_crossentropy", "accuracy"))
    model.compile(optimizer=optimizers.make_optimizer(recipe.optimizer, rate, multipliers), loss=loss,
                  metrics=[accuracy], jit_compile=recipe.jit_compile)
    return groups


def steps_of(steps_per_epoch):
    """``steps_per_epoch`` as a whole number (a ``tf.data`` cardinality is a tensor); an error when unknown."""
    steps = -1 if steps_per_epoch is None else int(steps_per_epoch)
    if steps < 1:
        raise ValueError(f"A learning-rate schedule needs the number of batches per epoch; got {steps_per_epoch} "
                         f"(an infinite or unknown-length dataset); give steps_per_epoch= or a finite tf.data.Dataset.")
    return steps


def run_stages(model, base, recipe, train, validation, run_dir, targets=(), callbacks=(), strategy=None, verbose=1):
    """Compile and fit each of the recipe's stages in turn (files in ``run_dir/<stage>``); return their summaries.

    ``callbacks``: Keras callbacks for every stage, or a function of the :class:`Stage` that returns them.
    Every stage weighs the loss by ``recipe.class_weight`` (:func:`stage_class_weight`).
    Each stage lasts at least ``recipe.min_steps`` batches of ``train``; one that ends with its
    validation loss still falling is warned about, and its summary says ``still_improving``; one whose
    training loss explodes (:class:`~keras_tl.training.exploding_loss.ExplodingLoss`) is warned about instead,
    once: the stages after it start from its weights.
    """
    scope = strategy.scope if strategy is not None else contextlib.nullcontext
    say = print if verbose else (lambda *_, **__: None)
    stages = recipe.stages(steps_per_epoch_of(train))
    class_weight = stage_class_weight(recipe, train, model.output_shape[-1])
    if recipe.l2_sp:  # w0: the weights before any stage, kept in run_dir for a resume (keras_tl.training.l2_sp)
        with scope():
            l2_sp.add_l2_sp(model, base, *recipe.l2_sp, reference_path=pathlib.Path(run_dir) / l2_sp.REFERENCE_FILE)
    results, exploded = {}, False
    for number, stage in enumerate(stages, 1):
        with scope():
            groups = compile_stage(model, base, stage, recipe, targets, steps_per_epoch=stage.steps_per_epoch)
        counts = freezing.parameter_counts(model)
        say(f"Stage {number}/{len(stages)} {stage.describe()}"
            + ("" if recipe.schedule == "constant" else f" at the peak of its {recipe.schedule} schedule")
            + f"; {counts['trainable']:,} of {counts['total']:,} parameters train", flush=True)
        for layers, factor in groups:
            say(f"  lr x {factor:.3g}: {describe_layers(layers)}")
        watch = [] if exploded else [ExplodingLoss(f"stage {stage.name}", smaller_rate(stage))]  # warned once
        stage_callbacks = [RestartLoRA(recipe.seed)] if recipe.lora_rank and stage.base_trains else []
        stage_callbacks += [*watch, *(callbacks(stage) if callable(callbacks) else callbacks)]
        with scope():
            result = fit_stage(model, pathlib.Path(run_dir) / stage.name, stage.epochs, train, validation,
                               recipe.patience, stage_callbacks, verbose=verbose, class_weight=class_weight)
        if result["epochs_trained_now"] == 0:
            say(f"  already done: best epoch {result['best_epoch']} of {result['epochs']}")
        losses = [row["val_loss"] for row in result["history"] if "val_loss" in row]
        improving = still_improving.is_still_improving(losses)
        exploded = exploded or any(callback.exploded_at for callback in watch)  # later stages start from it
        if improving and not exploded:  # more steps would not mend an exploded loss
            warnings.warn(still_improving.warning_line(f"stage {stage.name}", losses, more_training(stage)),
                          stacklevel=2)
        results[stage.name] = {**result, **counts, "learning_rate": stage.learning_rate,
                               "lr_factors": [[layers[0], layers[-1], factor] for layers, factor in groups],
                               "planned_epochs": stage.epochs, "steps_per_epoch": stage.steps_per_epoch,
                               "still_improving": improving}
    return results


def smaller_rate(stage):
    """What to do about a stage whose training loss exploded: a smaller ``learning_rate=``, or the range test."""
    return (f"lower learning_rate= (this stage trained at {stage.learning_rate:g}), or choose it with the range "
            f"test (lr_find; in the fine_tune job, --learning-rate find)")


def more_training(stage):
    """What to do about a stage whose validation loss was still falling: twice its steps (``min_steps=``)."""
    if stage.steps_per_epoch is None:
        return "give it more epochs"
    steps = stage.epochs * stage.steps_per_epoch
    return f"give it more steps, for example min_steps={2 * steps} (twice its {steps})"


# ----------------------------------------------------------------------------- the one call


def fine_tune_model(model_or_source, train, validation, *, num_classes=None, image_size=None, augmentation=None,
                    dropout=0.2, run_dir=None, callbacks=(), strategy=None, verbose=1, **settings):
    """The two-stage recipe in one call (fastai's ``fine_tune``); returns ``(model, stages)``.

    ``model_or_source``: a headless ImageNet base (a ``keras.Model``) or a source name such as
    ``"mobilenet"`` (see :func:`build_model`). ``train`` and ``validation`` yield ``(images, one-hot
    labels)`` batches, already preprocessed for the source (:func:`keras_tl.data.training_pipelines`).
    ``settings`` are :class:`Recipe` fields (``epochs``, ``freeze_epochs``, ``learning_rate``,
    ``lr_ratio``, ``unfreeze``, ``lora_rank``, ``min_steps``, ...); on a small dataset give
    ``min_steps=MIN_STEPS`` (100), as the job does, so each stage gets enough steps. ``stages`` maps
    each stage's name to its summary, with the per-epoch ``history`` and ``still_improving``. With
    ``run_dir`` the stages write their logs and checkpoints there, and a call interrupted and made
    again resumes; without it they go to a temporary folder.

    Every step can be taken by hand: :func:`build_model`, :func:`compile_stage`,
    :func:`keras_tl.training.resumable_fit.fit_stage`. (It was ``keras_tl.fine_tune`` before that name became
    the command's module alone.)
    """
    recipe = Recipe(**settings)
    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    with scope:
        num_classes = num_classes or int(train.element_spec[1].shape[-1])
        base, model, targets = build_model(model_or_source, num_classes, recipe, image_size, augmentation, dropout)
    with contextlib.ExitStack() as stack:
        folder = pathlib.Path(run_dir) if run_dir is not None else pathlib.Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="keras_tl-fine_tune-")))
        stages = run_stages(model, base, recipe, train, validation, folder, targets, callbacks, strategy, verbose)
    return model, stages
