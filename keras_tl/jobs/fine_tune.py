"""The fine-tuning job, ``python -m keras_tl.fine_tune``: the recipe of :mod:`keras_tl.training.recipe` on a dataset.

What trains after the head stage (``--unfreeze``, the recipe's ``unfreeze``): ``all`` (every
layer, the default), ``none`` (the head only: feature extraction plus a trained head), ``N`` (the
top N layers that have weights), a layer and everything above it, or named blocks.
``--from-scratch``: random weights, every layer trains from the start (the baseline that shows
what the ImageNet weights are worth). The older ``--mode head|partial|full|scratch`` still works.

Each stage trains at least ``--min-steps`` batches (default 100, :data:`keras_tl.training.recipe.MIN_STEPS`):
on a small dataset its epochs are raised, and the plan shows its steps. A stage that ends with its
validation loss still falling is named in a ``warning:`` line and in ``metrics.json``
(``still_improving``).

The job loads the data, holds out a validation part of train, builds the model under the
``tf.distribute`` strategy, runs the stages (resumable: a killed run started again with the same
command goes on from its last finished epoch), evaluates once on the test set and writes the run
folder: ``config.json``, ``metrics.json``, ``model.keras``, ``layers.txt``, per-stage logs and figures.
The test accuracy is reported plain and with test-time augmentation (``--tta``, default ``flip``: the
mean probabilities of each image and its mirror image, which the default training flips too; use
``--tta none`` for tasks where a mirror image means something else, such as text), each with its 95 %
Wilson interval (:func:`keras_tl.features.classifiers.wilson_interval`), and beside it the balanced
accuracy (the mean of the recalls per class) and each class's recall.

Imbalanced classes: ``--class-weight auto`` weighs each image's loss by n / (k x the training images of
its class) in every stage (the recipe's ``class_weight``); ``--balanced-sampling`` instead draws every
class equally often (:func:`keras_tl.data.pipelines.balanced_order`). A small dataset: ``--folds K`` trains K
models, one per stratified fold of train and test joined, each in its own run folder (``fold-1`` ...),
and reports each fold and mean ± std.

Before training, ``figures/batch.png`` shows the first training images with their labels, plain and
augmented (:func:`keras_tl.analysis.batches.show_batch`): a wrong label or a broken pipeline shows there.
After it, a temperature fitted on the validation part calibrates the probabilities
(:mod:`keras_tl.training.calibration`): ``calibration.json`` (which ``python -m keras_tl.predict`` uses),
``figures/reliability.png`` and the expected calibration error on test before and after in ``metrics.json``.

Several labels per image (a multi-label table, :mod:`keras_tl.data.csv_labels`): a sigmoid head trained with the
binary cross-entropy of each class (the recipe's ``multi_label``); a threshold per class chosen on the validation
part (the one that maximises the class's F1, :func:`keras_tl.features.multi_label.choose_thresholds`), written to
``thresholds.json`` (which ``python -m keras_tl.predict`` uses) and into ``raw_model.keras``; ``metrics.json`` holds
micro and macro F1, the mean average precision and each class's AP on test (``multi_label``; also with ``--tta``),
and ``test_scores.npy`` and ``test_labels.npy`` the test scores and labels they come from. No confusion matrix
and no temperature calibration then; ``--class-weight auto``, ``--balanced-sampling`` and ``--folds`` need one
label per image.
"""
import argparse
import dataclasses
import importlib.util
import json
import pathlib
import sys
import time

import numpy as np

from keras_tl import data, messages, runs
from keras_tl.jobs import cli

TTA_KINDS = cli.library_constant("keras_tl.analysis.tta", "TTA_KINDS")
OPTIMIZERS = cli.library_constant("keras_tl.training.optimizers", "OPTIMIZERS")
SCHEDULES = cli.library_constant("keras_tl.training.schedules", "SCHEDULES")
MIX_METHODS = cli.library_constant("keras_tl.data.augment", "MIX_METHODS")
STRATEGIES = cli.library_constant("keras_tl.distribute", "STRATEGIES")
MIN_STEPS = cli.library_constant("keras_tl.training.recipe", "MIN_STEPS")

MODES = ("head", "partial", "full", "scratch")  # the older --mode, still read: what each means in --unfreeze
MODE_UNFREEZE = {"head": "none", "full": "all", "scratch": "all"}
FIND = "find"  # --learning-rate find: the rate lr_find suggests
MAX_EPOCHS = 1000  # of a stage (a ResNet trained from scratch on CIFAR-10 takes 182, He et al. 2016)
MAX_MIN_STEPS = 100_000  # batches of a stage
MAX_LORA_RANK = 1024  # a rank at or above a layer's width is a full-rank update (MobileNet's widest: 1024)
DEFAULT_UNFREEZE = "8"  # --mode partial: the top 8 layers with weights (MobileNet: its last two blocks)
MIX_ALPHA = {"mixup": 0.2, "cutmix": 1.0}  # the papers' usual choices for ImageNet
# options that may change when a run resumes
NOT_SETTINGS = ("output_dir", "quiet", "tensorboard", "verbose", "tta", "check")

EXAMPLES = """examples:
  python -m keras_tl.fine_tune                      # MobileNet on Animal-MNIST, every layer, a few minutes on a CPU
  python -m keras_tl.fine_tune --unfreeze none      # frozen base + trained head (feature extraction)
  python -m keras_tl.fine_tune --unfreeze 8         # the top 8 layers that have weights (MobileNet's last 2 blocks)
  python -m keras_tl.fine_tune --unfreeze conv_dw_11               # conv_dw_11 and every layer above it
  python -m keras_tl.fine_tune --unfreeze conv_dw_13,conv_pw_13    # these blocks only
  python -m keras_tl.fine_tune --lr-ratio 0.01      # discriminative rates: the bottom at a hundredth of the rate
  python -m keras_tl.fine_tune --lora-rank 4        # LoRA on the 1x1 convolutions
  python -m keras_tl.fine_tune --from-scratch --epochs 20         # the "hero" baseline, random weights
  python -m keras_tl.fine_tune --mix cutmix --rotation 0          # CutMix, no rotations
  python -m keras_tl.fine_tune --dataset ~/data/flowers --source resnet50 --output-dir runs/flowers
  python -m keras_tl.fine_tune --dataset ~/data/photos --class-weight auto --folds 5   # imbalanced, small
  python -m keras_tl.fine_tune --strategy mirrored --mixed-precision --batch-size 64   # all GPUs of a node

A run that is interrupted resumes when started again with the same command (same --output-dir,
or none: then the newest unfinished run with the same settings is picked up).
"""


def make_parser():
    """The job's options, in groups: source and data, what trains, training, augmentation, hardware, output."""
    parser = argparse.ArgumentParser(
        prog="python -m keras_tl.fine_tune", description="Fine-tune an ImageNet network on a new image task: "
        "a new head first, then part or all of the network at a tenth of the learning rate.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = parser.add_argument_group("source and data")
    cli.add_source_options(what, "96 for the built-in default, else the source's training size")
    cli.add_resize_option(what)
    cli.add_dataset_options(what, ("200 for the built-in default, else all", "100 for the built-in default, "
                                   "else all"))
    what.add_argument("--validation-fraction", type=float, default=0.2,
                      help="share of the train images held out for validation (default 0.2)")
    what.add_argument("--folds", type=int, default=None, metavar="K",
                      help="train K models, one per stratified fold of train and test joined (each fold the test "
                           "part once; run folders fold-1 ... fold-K), and report each fold and mean ± std")
    parser.set_defaults(fold=None)  # [fold, K] in one fold's run, which run_folds starts
    what.add_argument("--check", action="store_true", help="check the set-up first (input scale, BatchNorm, "
                      "class balance, test images copied from train, tiny images): a table and check.json")
    how = parser.add_argument_group("what trains")
    how.add_argument("--unfreeze", default=None, metavar="all|none|N|LAYER|BLOCKS",
                     help="what trains after the head stage: all (default, like fastai's fine_tune), none (the "
                          "head only), the top N layers with weights, a layer and all above it, or "
                          "comma-separated block names")
    how.add_argument("--from-scratch", action="store_true",
                     help="random weights, every layer trains from the start (the 'hero' baseline)")
    cli.add_alias(how, "--mode", "mode", choices=MODES)
    how.add_argument("--freeze-bn", action="store_true", help="keep BatchNorm scale and offset frozen too")
    how.add_argument("--lora-rank", type=int, default=0, help="train LoRA factors of this rank instead of the "
                     "unfrozen Conv2D/Dense kernels (partial or full; default 0: off)")
    how.add_argument("--lora-alpha", type=float, default=None, help="LoRA scale alpha (default: the rank)")
    how.add_argument("--l2-sp", type=float, nargs=2, default=None, metavar=("ALPHA", "BETA"),
                     help="L2-SP (Li et al. 2018): penalty alpha/2 ||w - w0||^2 towards the ImageNet weights and "
                          "beta/2 ||w||^2 on the new head (the paper: 0.1 0.01; default: off)")
    how.add_argument("--dropout", type=float, default=0.2, help="dropout before the new classifier (default 0.2)")
    fit = parser.add_argument_group("training")
    fit.add_argument("--epochs", type=int, default=4,
                     help="epochs of the main stage: fine_tune, or the only stage of head/scratch (default 4; "
                          "more on a small dataset, see --min-steps)")
    fit.add_argument("--freeze-epochs", type=int, default=2,
                     help="partial/full: epochs of the head stage first (0 skips it; default 2; more on a small "
                          "dataset, see --min-steps)")
    fit.add_argument("--min-steps", type=int, default=MIN_STEPS,
                     help=f"each stage trains at least this many batches: on a small dataset its epochs are raised "
                          f"to ceil(min-steps / batches per epoch) (default {MIN_STEPS}; 0: epochs as given)")
    fit.add_argument("--patience", type=int, default=3, help="early stopping patience in epochs (default 3)")
    fit.add_argument("--batch-size", type=int, default=32, help="images per replica per step (default 32)")
    fit.add_argument("--optimizer", choices=OPTIMIZERS, default="adam")
    fit.add_argument("--learning-rate", type=learning_rate_or_find, default=1e-3, metavar="RATE|find",
                     help="learning rate of the head stage; fine_tune uses a tenth (default 1e-3); find: run the "
                          "range test lr_find on the first stage and use its suggestion (figures/lr_find.png)")
    cli.add_alias(fit, "--lr", "learning_rate", type=learning_rate_or_find)
    fit.add_argument("--schedule", choices=SCHEDULES, default="constant",
                     help="each stage's rate over its steps: constant (default), one-cycle (Smith & Topin 2018) or "
                          "cosine (with a 10%% warm-up)")
    fit.add_argument("--lr-ratio", type=float, default=1.0, help="discriminative rates: the bottom layer group "
                     "learns at this fraction of the head's rate (default 1: one rate for all)")
    fit.add_argument("--lr-groups", type=int, default=3, help="layer groups of the base for --lr-ratio (default 3)")
    fit.add_argument("--class-weight", choices=["none", "auto"], default="none",
                     help="auto: weigh each image's loss by n / (k x the training images of its class) in every "
                          "stage, for imbalanced classes (default none)")
    fit.add_argument("--balanced-sampling", action="store_true",
                     help="draw the training images of every class equally often (small classes repeated within an "
                          "epoch), the other remedy for imbalanced classes")
    aug = parser.add_argument_group("augmentation")
    aug.add_argument("--no-augment", action="store_true", help="no flip, zoom, rotation or translation")
    aug.add_argument("--flip", choices=["horizontal", "vertical", "horizontal_and_vertical", "none"],
                     default="horizontal")
    aug.add_argument("--zoom", type=float, default=0.1, help="random zoom, a fraction of the size (0: off)")
    aug.add_argument("--rotation", type=float, default=0.05, help="random rotation, a fraction of a turn (0: off)")
    aug.add_argument("--translation", type=float, default=0.1, help="random shift, a fraction of the size (0: off)")
    aug.add_argument("--mix", choices=MIX_METHODS, default="none", help="mixup or CutMix of batches")
    aug.add_argument("--mix-alpha", type=float, default=None, help="Beta(alpha, alpha) of the mix "
                     "(default 0.2 for mixup, 1 for cutmix)")
    hardware = parser.add_argument_group("hardware")
    hardware.add_argument("--strategy", choices=STRATEGIES, default="auto",
                          help="tf.distribute strategy (default auto: all GPUs of this machine, or the CPU)")
    hardware.add_argument("--mixed-precision", action="store_true", help="mixed_float16 (GPU only)")
    hardware.add_argument("--jit-compile", action="store_true",
                          help="compile the train step with XLA (on a GPU; on a CPU it is slower)")
    out = parser.add_argument_group("output")
    out.add_argument("--tensorboard", action="store_true", help="write TensorBoard logs into the run folder")
    out.add_argument("--tta", choices=TTA_KINDS, default="flip", help="test-time augmentation of the second "
                     "test score (test_accuracy_tta): flip (default), ten-crop or none")
    cli.add_output_options(out, "fine_tune")
    return parser


def parse_args(argv=None):
    """Parse and check ``argv``: a bad value stops here, before any work, with one ``error:`` line."""
    parser = make_parser()
    args = parser.parse_args(argv)
    cli.fill_defaults(args, {"train_per_class": 200, "test_per_class": 100, "image_size": 96},
                      when=args.dataset == parser.get_default("dataset"))
    cli.check_options(parser, args, image_size=cli.IMAGE_SIZE, train_per_class=cli.AT_LEAST_ONE,
                      test_per_class=cli.AT_LEAST_ONE, validation_fraction=cli.FRACTION,
                      lora_rank=(cli.NOT_NEGATIVE, cli.at_most(MAX_LORA_RANK)), lora_alpha=cli.POSITIVE,
                      dropout=cli.FRACTION_OR_ZERO, epochs=(cli.AT_LEAST_ONE, cli.at_most(MAX_EPOCHS)),
                      freeze_epochs=(cli.NOT_NEGATIVE, cli.at_most(MAX_EPOCHS)),
                      min_steps=(cli.NOT_NEGATIVE, cli.at_most(MAX_MIN_STEPS)), patience=cli.AT_LEAST_ONE,
                      batch_size=cli.BATCH_SIZE,
                      learning_rate=() if args.learning_rate == FIND else cli.POSITIVE, lr_ratio=cli.UP_TO_ONE,
                      lr_groups=cli.AT_LEAST_ONE,
                      zoom=cli.FRACTION_OR_ZERO, rotation=cli.FRACTION_OR_ZERO, translation=cli.FRACTION_OR_ZERO,
                      mix_alpha=cli.POSITIVE)
    read_mode(parser, args)
    if args.folds is not None and args.folds < 2:
        parser.error(f"--folds must be at least 2; got {args.folds}.")
    if args.balanced_sampling and args.class_weight == "auto":
        parser.error("--balanced-sampling and --class-weight auto both correct for imbalanced classes; give one.")
    if args.folds and args.strategy == "multi-worker":
        parser.error("--folds trains its folds one after another in this process; use it without --strategy "
                     "multi-worker.")
    if args.freeze_bn and args.from_scratch:
        parser.error("--freeze-bn keeps ImageNet's BatchNorm statistics; --from-scratch has none to keep.")
    if args.lora_rank and (args.from_scratch or args.unfreeze == "none"):
        parser.error("--lora-rank adapts the unfrozen layers of a pretrained base; "
                     + ("--from-scratch trains every weight itself." if args.from_scratch
                        else "--unfreeze none trains the head only."))
    if args.learning_rate == FIND and args.lora_rank and args.freeze_epochs == 0:
        parser.error("--learning-rate find runs on the first stage, which adds LoRA here; give --freeze-epochs 1 "
                     "or more (it then runs on the head stage) or a rate.")
    return args


def learning_rate_or_find(text):
    """``--learning-rate``: a number, or ``find`` (the range test of :mod:`keras_tl.training.lr_finder`)."""
    if text.strip().lower() == FIND:
        return FIND
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or {FIND}; got {text!r}") from None


def read_mode(parser, args):
    """Turn the older ``--mode`` into ``--unfreeze`` and ``--from-scratch``; ``--unfreeze`` defaults to all."""
    mode = vars(args).pop("mode", None)
    if mode is not None:
        if args.unfreeze is not None and mode != "partial":
            parser.error(f"--unfreeze chooses layers for --mode partial; this is --mode {mode}.")
        args.unfreeze = args.unfreeze or MODE_UNFREEZE.get(mode, DEFAULT_UNFREEZE)
        args.from_scratch = args.from_scratch or mode == "scratch"
    if args.from_scratch and args.unfreeze not in (None, "all"):
        parser.error(f"--from-scratch trains every layer; --unfreeze {args.unfreeze} has nothing to choose.")
    args.unfreeze = args.unfreeze or "all"


def mix_alpha_of(args):
    """``--mix-alpha``, or the usual alpha of the ``--mix`` method when it is not given."""
    return args.mix_alpha or MIX_ALPHA.get(args.mix, 0.0)


def describe_training(args):
    """What trains, in a few words: "from scratch", "the head only", "all layers" or "unfreeze <spec>"."""
    if args.from_scratch:
        return "from scratch"
    return {"none": "the head only", "all": "all layers"}.get(args.unfreeze, f"unfreeze {args.unfreeze}")


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


def recipe_of(args):
    """The :class:`keras_tl.training.recipe.Recipe` that the training options describe."""
    from keras_tl.training import recipe

    learning_rate = recipe.Recipe.learning_rate if args.learning_rate == FIND else args.learning_rate  # found later
    return recipe.Recipe(epochs=args.epochs, freeze_epochs=args.freeze_epochs, learning_rate=learning_rate,
                         lr_ratio=args.lr_ratio, lr_groups=args.lr_groups,
                         unfreeze=None if args.unfreeze == "none" else args.unfreeze, freeze_bn=args.freeze_bn,
                         lora_rank=args.lora_rank, lora_alpha=args.lora_alpha, optimizer=args.optimizer,
                         patience=args.patience, from_scratch=args.from_scratch,
                         jit_compile=True if args.jit_compile else "auto", seed=args.seed, schedule=args.schedule,
                         l2_sp=args.l2_sp, min_steps=args.min_steps)


def compile_first_stage(model, base, settings, targets, strategy):
    """Set what trains in the first stage and compile it at a constant rate, for lr_find and ``--check``
    (the stage compiles again itself; LoRA, which is added once, is left to it)."""
    from keras_tl.training import recipe

    first = settings.stages()[0]
    if not (first.base_trains and settings.lora_rank):
        with strategy.scope():
            recipe.compile_stage(model, base, first, dataclasses.replace(settings, schedule="constant"), targets)


def find_learning_rate(args, model, base, settings, targets, train, run_dir, strategy, say):
    """``--learning-rate find``: the recipe with the rate lr_find suggests for its first stage.

    The test's record goes to ``lr_find.json`` (and its curve to ``figures/lr_find.png``); a resumed
    run reads the suggestion from there instead of testing again.
    """
    from keras_tl.training import lr_finder

    record_path = run_dir / "lr_find.json"
    if record_path.is_file():
        record = json.loads(record_path.read_text())
        say(f"lr_find: suggestion {record['suggestion']:.3g} ({record['rule']} rule), from {record_path}")
    else:
        first = settings.stages()[0]
        say(f"lr_find (Smith 2015) on the {first.name} stage: one batch per rate, from {lr_finder.START:g} up to "
            f"{lr_finder.END:g} or until the loss diverges", flush=True)
        compile_first_stage(model, base, settings, targets, strategy)
        with strategy.scope():
            result = lr_finder.lr_find(model, train, verbose=not args.quiet)
        lr_finder.plot_lr_find(result, path=run_dir / "figures" / "lr_find.png")
        record = {**result.as_dict(), "stage": first.name,
                  "learning_rate": settings.learning_rate * result.suggestion / first.learning_rate}
        runs.write_json(record_path, record)
        say(f"lr_find: suggestion {result.suggestion:.3g} ({result.rule} rule; a heuristic), curve in "
            f"{run_dir / 'figures' / 'lr_find.png'}")
    return dataclasses.replace(settings, learning_rate=record["learning_rate"])


def check_environment(args):
    """Errors that need no data: a missing TensorBoard, a multi-worker run without a shared folder."""
    if args.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise ValueError("--tensorboard needs the tensorboard package (TensorFlow no longer installs it): "
                         "pip install tensorboard")
    if args.strategy == "multi-worker" and args.output_dir is None:
        raise ValueError("--strategy multi-worker needs --output-dir: every worker must use the same folder.")


def load_splits(args, strategy):
    """The dataset and its train / validation (held out from train) / test image sets; in one fold's run
    (:func:`run_folds`), train and test are those of the fold."""
    from keras_tl import distribute

    dataset = data.load_dataset(args.dataset, seed=args.seed, train_per_class=args.train_per_class,
                                test_per_class=args.test_per_class, verbose=not args.quiet,
                                tfds_data_dir=args.tfds_data_dir, **cli.table_options(args))
    check_multi_label_options(args, dataset)
    if args.fold is not None:
        dataset = fold_dataset(dataset, *args.fold, args.seed)
    train_set, validation_set = data.split_validation(dataset.train, args.validation_fraction, args.seed)
    batch_size = distribute.global_batch_size(args.batch_size, strategy)
    if batch_size > len(train_set):
        raise ValueError(f"The batch ({batch_size} images: --batch-size {args.batch_size} x "
                         f"{strategy.num_replicas_in_sync} replica(s)) is larger than the training set "
                         f"({len(train_set)} images after holding out validation); use a smaller --batch-size.")
    return dataset, {"train": train_set, "validation": validation_set, "test": dataset.test}


def check_multi_label_options(args, dataset):
    """A ``ValueError`` for an option that needs one label per image, when ``dataset`` has several (multi-label)."""
    refused = [flag for flag, given in (("--class-weight auto", args.class_weight == "auto"),
                                        ("--balanced-sampling", args.balanced_sampling),
                                        ("--folds", args.fold is not None)) if given]
    if dataset.multi_label and refused:
        raise ValueError(f"{refused[0]} needs one label per image, and {dataset.name} gives some images several "
                         f"(a multi-label table); leave {refused[0]} out.")


def build_model(args, source, image_size, num_classes, settings, strategy):
    """The base, the classifier around it (:func:`keras_tl.training.recipe.build_model`), the layers the recipe
    tunes, the LoRA targets and the augmentation layers."""
    from keras_tl.data import augment
    from keras_tl.training import freezing, recipe

    with strategy.scope():
        augmentation = None if args.no_augment else augment.augmentation_layers(
            None if args.flip == "none" else args.flip, args.zoom, args.rotation, args.translation, seed=args.seed)
        base, model, targets = recipe.build_model(source.name, num_classes, settings, image_size, augmentation,
                                                  args.dropout)
        tuned = freezing.set_trainable(base, settings.unfrozen, settings.freeze_bn)
    return base, model, tuned, targets, augmentation


def print_plan(say, args, run_dir, resuming, source, image_size, dataset, sizes, tuned, targets, augmentation,
               strategy, batch_size, stages, class_weight=None):
    """What the run will do, before it starts (the design notes' convention); a stage a line, with its steps."""
    from keras_tl import distribute

    mix_alpha = mix_alpha_of(args)
    say(f"{'Resuming' if resuming else 'Fine-tuning'} in {run_dir}")
    say(f"  source:    {source.name} ({'random' if args.from_scratch else 'ImageNet'} weights), "
        f"{image_size}x{image_size} px ({args.resize}), {describe_training(args)}")
    say(f"  trains:    {'the head only' if args.unfreeze == 'none' else messages.describe_layers(tuned)}"
        + (f"; LoRA rank {args.lora_rank} on {len(targets)} layers" if args.lora_rank else "")
        + ("; BatchNorm frozen" if args.freeze_bn else "")
        + (f"; L2-SP alpha {args.l2_sp[0]:g}, beta {args.l2_sp[1]:g}" if args.l2_sp else ""))
    say(f"  data:      {dataset.name}, {len(dataset.class_names)} classes: {sizes['train']} train, "
        f"{sizes['validation']} validation (held out from train), {sizes['test']} test images")
    say(f"  batches:   {args.batch_size} per replica x {strategy.num_replicas_in_sync} = {batch_size}; "
        f"{distribute.describe(strategy)}" + (", mixed precision" if args.mixed_precision else "")
        + ("; every class drawn equally often (balanced sampling)" if args.balanced_sampling else ""))
    say(f"  augment:   {'none' if augmentation is None else ', '.join(layer.name for layer in augmentation.layers)}"
        + (f"; {args.mix} (alpha {mix_alpha})" if args.mix != "none" else ""))
    if class_weight:
        low, high = min(class_weight, key=class_weight.get), max(class_weight, key=class_weight.get)
        say("  weights:   each class's loss x n / (k x its train images): " + (
            f"{class_weight[low]:.3g} ({dataset.class_names[low]}) .. {class_weight[high]:.3g} "
            f"({dataset.class_names[high]})" if class_weight[low] < class_weight[high] else "1 (classes of one size)"))
    say("  stages:    " + "\n             ".join(stage.describe() for stage in stages), flush=True)


def run(args):
    """The whole job; returns the metrics dict (also written to ``metrics.json``)."""
    import keras

    from keras_tl import distribute
    from keras_tl.analysis import setup_check
    from keras_tl.sources import get_source
    from keras_tl.training import freezing, recipe

    if args.folds:
        return run_folds(args)  # which runs this for each fold
    started = time.perf_counter()
    say = print if not args.quiet else (lambda *_, **__: None)
    check_environment(args)
    strategy = distribute.make_strategy(args.strategy)  # first: multi-worker must precede any TF operation
    distribute.warn_if_xla_without_gpu(args.jit_compile)
    distribute.set_mixed_precision(args.mixed_precision)
    keras.utils.set_random_seed(args.seed)
    source = get_source(args.source)
    image_size = args.image_size or source.default_size
    source.input_shape(image_size)  # an error below the source's minimum size
    settings = recipe_of(args)
    dataset, splits = load_splits(args, strategy)
    settings = dataclasses.replace(settings, multi_label=dataset.multi_label)
    if args.class_weight == "auto":  # counted from the labels, without a pass over the images
        settings = dataclasses.replace(settings, class_weight=recipe.balanced_class_weight(
            np.bincount(splits["train"].labels, minlength=len(dataset.class_names))))
    base, model, tuned, targets, augmentation = build_model(args, source, image_size, len(dataset.class_names),
                                                            settings, strategy)
    freezing.unfreeze_all(base)
    full_fine_tune_params = freezing.parameter_counts(model)["trainable"]

    run_dir, resuming = choose_run_dir(args.output_dir, settings_of(args))
    if args.strategy == "multi-worker" and not distribute.is_chief(strategy):
        run_dir = runs.make_run_dir(run_dir / f"worker-{strategy.cluster_resolver.task_id}", "fine_tune")
    with runs.locked_run_dir(run_dir):  # a second run on this folder stops here with one error line
        sizes = {split: len(image_set) for split, image_set in splits.items()}
        batch_size = distribute.global_batch_size(args.batch_size, strategy)
        if args.learning_rate == FIND:  # first: the plan and config.json show the rates it finds
            settings = find_learning_rate(args, model, base, settings, targets, data.training_pipelines(
                source, image_size, splits, len(dataset.class_names), batch_size, args.mix, mix_alpha_of(args),
                args.seed, balanced=args.balanced_sampling, resize=args.resize)[0], run_dir, strategy, say)
        train, validation, test = data.training_pipelines(source, image_size, splits, len(dataset.class_names),
                                                          batch_size, args.mix, mix_alpha_of(args), args.seed,
                                                          shard=args.strategy == "multi-worker",
                                                          balanced=args.balanced_sampling, resize=args.resize)
        stages = settings.stages(recipe.steps_per_epoch_of(train))  # what run_stages will train
        runs.write_json(run_dir / "config.json", {
            "settings": settings_of(args), "learning_rate": settings.learning_rate, "image_size": image_size,
            "global_batch_size": batch_size, "sizes": sizes,
            "class_names": dataset.class_names, "stages": [dataclasses.asdict(stage) for stage in stages],
            "layers_tuned": tuned, "strategy": distribute.describe(strategy), "keras": keras.__version__,
            "class_weight": settings.class_weight, "multi_label": dataset.multi_label})
        print_plan(say, args, run_dir, resuming, source, image_size, dataset, sizes, tuned, targets, augmentation,
                   strategy, batch_size, stages, settings.class_weight)
        show_training_batch(args, source, image_size, splits, dataset.class_names, batch_size, augmentation, run_dir)
        if args.check:
            compile_first_stage(model, base, settings, targets, strategy)
            setup_check.check(model, dataset, source, pipeline=train, path=run_dir / "check.json",
                              verbose=not args.quiet)
        tensorboard = (lambda stage: [keras.callbacks.TensorBoard(str(run_dir / "tensorboard" / stage.name))]
                       ) if args.tensorboard else ()
        results = recipe.run_stages(model, base, settings, train, validation, run_dir, targets, tensorboard, strategy,
                                    verbose=(1 if sys.stdout.isatty() else 2) if not args.quiet else 0)
        with runs.atomic_path(run_dir / "layers.txt") as temporary:
            temporary.write_text(freezing.trainable_report(model, expand_nested=True) + "\n")
        metrics = evaluate_and_save(args, model, test, dataset, results, run_dir, source, sizes, validation, splits)
        metrics["calibration"] = None if dataset.multi_label else calibrate(model, validation, test, splits, run_dir,
                                                                            f"{source.name} on {dataset.name}")
        metrics["cost"] = cost_of(results, sizes, time.perf_counter() - started, full_fine_tune_params)
        runs.write_json(run_dir / "metrics.json", metrics)
        print_summary(results, metrics, run_dir)
        return metrics


def evaluate_and_save(args, model, test, dataset, results, run_dir, source, sizes, validation=None, splits=None):
    """Test accuracy, ``model.keras`` and the figures; the metrics without their cost (multi-label: those of
    :func:`evaluate_multi_label_run`)."""
    from keras_tl import plots
    from keras_tl.analysis import raw_images
    from keras_tl.analysis.tta import tta_model
    from keras_tl.features import classifiers

    history = []
    for name, result in results.items():
        first_epoch = len(history) + 1
        history += [{**row, "epoch": first_epoch + index, "stage": name}
                    for index, row in enumerate(result.pop("history"))]
    title = f"{source.name} ({describe_training(args)}) on {dataset.name}"
    thresholds = None
    if dataset.multi_label:
        metrics, thresholds = evaluate_multi_label_run(args, model, validation, test, splits, dataset, run_dir)
    else:
        predicted = classifiers.predict_classes(model, test)
        evaluation = classifiers.evaluate_predictions(dataset.test.labels, predicted, dataset.class_names)
        tta = None if args.tta == "none" else classifiers.evaluate_predictions(
            dataset.test.labels, classifiers.predict_classes(tta_model(model, args.tta), test), dataset.class_names)
        plots.plot_confusion_matrix(evaluation["confusion_matrix"], dataset.class_names,
                                    path=run_dir / "figures" / "confusion_matrix.png",
                                    title=f"{title}: test accuracy {evaluation['accuracy']:.3f}")
        metrics = {"test_accuracy": evaluation["accuracy"], "test_accuracy_interval": evaluation["accuracy_interval"],
                   "test_accuracy_tta": tta["accuracy"] if tta else None,
                   "test_accuracy_tta_interval": tta["accuracy_interval"] if tta else None, "tta": args.tta,
                   "test_balanced_accuracy": evaluation["balanced_accuracy"],
                   "confusion_matrix": evaluation["confusion_matrix"], "per_class": evaluation["per_class"],
                   "report": evaluation["report"]}
    with runs.atomic_path(run_dir / "model.keras") as temporary:
        model.save(temporary)
    raw_model = raw_images.save_raw_model(model, run_dir, source, args.image_size, dataset.class_names,
                                          resize=args.resize, thresholds=thresholds)
    plots.plot_learning_curves(history, path=run_dir / "figures" / "learning_curves.png", title=title)
    return {**metrics, "test_images": sizes["test"], "stages": results, "history": history,
            "class_names": dataset.class_names, "skipped_files": dataset.skipped, "raw_model": raw_model}


def evaluate_multi_label_run(args, model, validation, test, splits, dataset, run_dir):
    """A multi-label run's test metrics (:func:`keras_tl.features.multi_label.evaluate_multi_label`, with ``--tta``
    too) at thresholds chosen on the validation part (0.5 without one), written to ``thresholds.json``; the test
    scores and labels in ``test_scores.npy`` and ``test_labels.npy``. Returns ``(metrics, thresholds)``."""
    from keras_tl.analysis.tta import tta_model
    from keras_tl.features import multi_label
    from keras_tl.training import calibration

    if validation is None:
        thresholds, chosen_on = np.full(len(dataset.class_names), 0.5), "nothing (no validation part): 0.5 each"
    else:
        thresholds = multi_label.choose_thresholds(splits["validation"].labels,
                                                   calibration.model_outputs(model, validation))
        chosen_on = f"{len(splits['validation'])} validation images, each class's best F1"
    multi_label.write_thresholds(run_dir, thresholds, dataset.class_names, chosen_on)
    scores = calibration.model_outputs(model, test)
    runs.write_array(run_dir / "test_scores.npy", scores)
    runs.write_array(run_dir / "test_labels.npy", dataset.test.labels)
    evaluation = multi_label.evaluate_multi_label(dataset.test.labels, scores, thresholds, dataset.class_names)
    tta = None if args.tta == "none" else multi_label.evaluate_multi_label(
        dataset.test.labels, calibration.model_outputs(tta_model(model, args.tta), test), thresholds,
        dataset.class_names)
    return {"multi_label": evaluation, "multi_label_tta": tta, "tta": args.tta,
            "thresholds_chosen_on": chosen_on}, thresholds


def show_training_batch(args, source, image_size, splits, class_names, batch_size, augmentation, run_dir):
    """``figures/batch.png``: the first training images as the network gets them, with their labels (mixed ones
    too) and augmented (:func:`keras_tl.analysis.batches.show_batch`), before any training. It reads a pipeline
    of its own, so the training's shuffles and augmentations stay as they were."""
    from keras_tl.analysis import batches

    train = data.training_pipelines(source, image_size, splits, len(class_names), batch_size, args.mix,
                                    mix_alpha_of(args), args.seed, resize=args.resize)[0]
    batches.show_batch(train, class_names, augment=augmentation, source=source, seed=args.seed,
                       path=run_dir / "figures" / "batch.png")


def calibrate(model, validation, test, splits, run_dir, title):
    """Temperature scaling fitted on the validation part (:mod:`keras_tl.training.calibration`): ``calibration.json``,
    ``figures/reliability.png`` and the metrics' entry with the test ECE before and after; None without a
    validation part."""
    from keras_tl.training import calibration

    if validation is None:
        return None
    fitted = calibration.Calibration.fit(calibration.model_outputs(model, validation), splits["validation"].labels,
                                         "temperature", f"{len(splits['validation'])} validation images")
    return calibration.write_calibration(run_dir, fitted, calibration.model_outputs(model, test),
                                         splits["test"].labels, title)


def cost_of(results, sizes, wall_seconds, full_fine_tune_params):
    """Wall and training time, training speed and trainable parameters of the last stage."""
    train_seconds = sum(result["train_seconds"] for result in results.values())
    images_trained = sum(result["epochs_trained_now"] for result in results.values()) * sizes["train"]
    final = list(results.values())[-1]
    return {"wall_seconds": wall_seconds, "train_seconds": train_seconds,
            "train_images_per_second": images_trained / train_seconds if train_seconds else None,
            "trainable_params": final["trainable"], "total_params": final["total"],
            "full_fine_tune_trainable_params": full_fine_tune_params}


def print_summary(results, metrics, run_dir):
    """The per-stage table, the test accuracy (with its 95 % Wilson interval), the balanced accuracy and the recall
    per class, the cost and where the run folder is."""
    from keras_tl.features import classifiers
    from keras_tl.training import calibration

    rows = [[name, result["epochs"], result["best_epoch"], result["best_val_accuracy"],
             "yes" if result["still_improving"] else "no", result["trainable"], result["train_seconds"]]
            for name, result in results.items()]
    print(messages.format_table(rows, ["stage", "epochs", "best epoch", "val accuracy", "still improving",
                                       "trainable params", "train s"]))
    cost = metrics["cost"]
    speed = (f"{cost['train_images_per_second']:.0f} train images/s" if cost["train_seconds"]
             else "no epoch trained now")
    if "multi_label" in metrics:
        print_multi_label_summary(metrics)
    else:
        plain = classifiers.format_accuracy(metrics["test_accuracy"], metrics["test_accuracy_interval"])
        print(f"Test accuracy: {plain} on {metrics['test_images']} images"
              + (f"; {classifiers.format_accuracy(metrics['test_accuracy_tta'], metrics['test_accuracy_tta_interval'])}"
                 f" with {metrics['tta']} TTA" if metrics["test_accuracy_tta"] is not None else "")
              + " ([low, high]: the 95 % Wilson score interval, Wilson 1927)")
        print(f"Balanced accuracy: {metrics['test_balanced_accuracy']:.3f}, the mean of the recalls per class (test "
              f"images): {classifiers.format_recalls(metrics['per_class'])}")
    if metrics["skipped_files"]:
        print(f"Skipped {len(metrics['skipped_files'])} unreadable file(s), listed in metrics.json")
    print(f"Cost: {cost['wall_seconds']:.0f} s wall, {speed}; {cost['trainable_params']:,} of "
          f"{cost['total_params']:,} parameters trainable (a full fine-tune trains "
          f"{cost['full_fine_tune_trainable_params']:,})")
    if metrics["calibration"]:
        print(calibration.describe(metrics["calibration"]))
    print(f"Run folder: {run_dir}")


def print_multi_label_summary(metrics):
    """A multi-label run's test metrics (and with TTA), then each class's AP, F1 and threshold."""
    from keras_tl.features import multi_label

    evaluation, tta = metrics["multi_label"], metrics["multi_label_tta"]
    print(f"Test (multi-label, {metrics['test_images']} images): {multi_label.format_evaluation(evaluation)}"
          + (f"; {multi_label.format_evaluation(tta)} with {metrics['tta']} TTA" if tta else ""))
    print(multi_label.per_class_table(evaluation))
    print(f"Thresholds chosen on {metrics['thresholds_chosen_on']} (thresholds.json); F1 at them, AP over all of them.")


# ----------------------------------------------------------------------------- --folds K


def run_folds(args):
    """``--folds K``: one ordinary run per fold, in ``fold-1`` ... ``fold-K`` of the run folder, one after another
    (each resumable; a finished fold is read back, not trained again); then each fold's test scores, and their
    mean ± std, in ``metrics.json`` and a table. Returns the metrics."""
    import keras

    from keras_tl import distribute
    from keras_tl.features import classifiers

    check_environment(args)
    load_splits(fold_arguments(args, 1, None), distribute.make_strategy(args.strategy))  # errors before any folder
    run_dir, _ = choose_run_dir(args.output_dir, settings_of(args))
    with runs.locked_run_dir(run_dir):
        runs.write_json(run_dir / "config.json", {"settings": settings_of(args),
                                                  "folds": [f"fold-{fold}" for fold in range(1, args.folds + 1)]})
        fold_metrics = []
        for fold in range(1, args.folds + 1):
            done = run_dir / f"fold-{fold}" / "metrics.json"
            if done.is_file():
                fold_metrics.append(json.loads(done.read_text()))
                continue
            keras.backend.clear_session()  # each fold's model starts as the first did
            fold_metrics.append(run(fold_arguments(args, fold, run_dir / f"fold-{fold}")))
        metrics = classifiers.summarise_folds([
            {"accuracy": entry["test_accuracy"], "balanced_accuracy": entry["test_balanced_accuracy"],
             "images": entry["test_images"], "per_class": entry["per_class"]} for entry in fold_metrics])
        for entry in metrics["folds"]:
            entry["run_dir"] = f"fold-{entry['fold']}"
        runs.write_json(run_dir / "metrics.json", metrics)
        print_folds_summary(metrics, run_dir)
        return metrics


def fold_arguments(args, fold, output_dir):
    """The options of fold ``fold``'s run: those of the whole, with its fold and its own folder."""
    return argparse.Namespace(**{**vars(args), "folds": None, "fold": [fold, args.folds],
                                 "output_dir": None if output_dir is None else str(output_dir)})


def fold_dataset(dataset, fold, folds, seed):
    """Fold ``fold`` (1..``folds``) of ``dataset``'s train and test images joined: its stratified fold
    (:func:`keras_tl.features.classifiers.stratified_folds`, seeded) is the test part, the other folds train."""
    from keras_tl.features import classifiers

    pool = data.ImageSet.concatenate([dataset.train, dataset.test])
    train, test = classifiers.stratified_folds(pool.labels, folds, seed)[fold - 1]
    return dataclasses.replace(dataset, train=pool.subset(train), test=pool.subset(test))


def print_folds_summary(metrics, run_dir):
    """Each fold's test accuracy and balanced accuracy, and their mean ± std."""
    from keras_tl.features import classifiers

    rows = [[entry["fold"], entry["images"], f"{entry['accuracy']:.3f}", f"{entry['balanced_accuracy']:.3f}",
             entry["run_dir"]] for entry in metrics["folds"]]
    rows.append(["mean ± std", sum(entry["images"] for entry in metrics["folds"]),
                 classifiers.format_mean_std(metrics["accuracy"]),
                 classifiers.format_mean_std(metrics["balanced_accuracy"]), ""])
    print(messages.format_table(rows, ["fold", "test images", "test accuracy", "balanced", "run folder"]))
    print(f"{len(metrics['folds'])} stratified folds of the train and test images joined, each the test part once "
          f"(its model trained on the others): mean ± std over the folds. Run folder: {run_dir}")


def main(argv=None):
    return cli.run_cli(parse_args, run, argv, make_parser=make_parser)
