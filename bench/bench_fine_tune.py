"""Benchmark: fine-tuning input pipeline speed, and head-only against partial and full fine-tuning.

1. ``pipeline``: training steps per second of the default fine-tuning model (MobileNet, ImageNet
   weights, partial mode, augmentation layers) fed by the real ``tf.data`` pipeline (resize,
   ``preprocess_input``, one-hot, shuffle, prefetch) against the same model fed the same batches
   already in memory as tensors. Interleaved rounds, best round of each. Target: pipeline >= 0.9x.
2. ``modes``: ``python -m keras_tl.fine_tune`` on its default target (Animal-MNIST) in ``head``,
   ``partial`` and ``full`` mode, same epochs in all (head: all of them with the base frozen): the
   time per epoch of the main stage, the trainable parameters and the test accuracy.
3. ``--xla``: the same model's training images/s without and with XLA (``jit_compile=True``) on
   the same in-memory batches, interleaved rounds, median of each, and the seconds the first
   (compiling) epoch of each took.

    python bench/bench_fine_tune.py [--rounds 3] [--steps 30] [--skip-modes] [--xla]
"""
import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def pipeline_speed(steps, rounds, image_size=96, batch_size=32):
    """Steps/s of one compiled model on the real pipeline and on in-memory tensors of the same batches."""
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_tl import data
    from keras_tl.data import augment
    from keras_tl.sources import get_source
    from keras_tl.training import freezing, optimizers, recipe

    keras.utils.set_random_seed(0)
    source = get_source("mobilenet")
    dataset = data.load_dataset("animal_mnist", seed=0, train_per_class=200)
    images = steps * batch_size
    train_set = dataset.train.subset(np.arange(images))
    splits = {"train": train_set, "validation": train_set, "test": train_set}
    train, _, _ = data.training_pipelines(source, image_size, splits, len(dataset.class_names), batch_size,
                                          "none", 0.0, seed=0, shard=False)
    base = source.build("imagenet", image_size=image_size)
    freezing.set_trainable(base, "8")
    model = recipe.build_classifier(base, len(dataset.class_names), augment.augmentation_layers(seed=0))
    model.compile(optimizer=optimizers.make_optimizer("adam", 1e-4), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    batches = list(train)
    in_memory_x = tf.constant(np.concatenate([x.numpy() for x, _ in batches]))
    in_memory_y = tf.constant(np.concatenate([y.numpy() for _, y in batches]))
    runs = {
        "pipeline": lambda: model.fit(train, epochs=1, verbose=0, shuffle=False),
        "in-memory": lambda: model.fit(in_memory_x, in_memory_y, batch_size=batch_size, epochs=1, verbose=0),
    }
    for run in runs.values():  # warm-up: trace each input signature once
        run()
    best = {}
    for _ in range(rounds):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            best[name] = max(best.get(name, 0.0), steps / (time.perf_counter() - started))
    return best


def xla_speed(steps, rounds, image_size=96, batch_size=32):
    """Training images/s of the default fine-tuning model without and with XLA, on the same in-memory
    batches, and the seconds of each one's first epoch (tracing, and XLA's compiling)."""
    import keras
    import numpy as np

    from keras_tl.sources import get_source
    from keras_tl.training import freezing, optimizers, recipe

    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (steps * batch_size, image_size, image_size, 3)).astype("float32")
    labels = np.eye(10, dtype="float32")[rng.integers(0, 10, steps * batch_size)]
    models, first_epoch = {}, {}
    for name, jit_compile in (("without XLA", False), ("XLA", True)):
        keras.utils.set_random_seed(0)
        base = get_source("mobilenet").build("imagenet", image_size=image_size)
        freezing.set_trainable(base, "8")
        models[name] = recipe.build_classifier(base, 10)
        models[name].compile(optimizer=optimizers.make_optimizer("adam", 1e-4), loss="categorical_crossentropy",
                             jit_compile=jit_compile)
        started = time.perf_counter()
        models[name].fit(images, labels, batch_size=batch_size, epochs=1, verbose=0)
        first_epoch[name] = time.perf_counter() - started
    rates = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            started = time.perf_counter()
            model.fit(images, labels, batch_size=batch_size, epochs=1, verbose=0)
            rates[name].append(len(images) / (time.perf_counter() - started))
    return [[name, float(np.median(rates[name])), first_epoch[name]] for name in models]


def compare_modes(epochs):
    """The job in head, partial and full mode on its default target; returns one row per mode."""
    from keras_tl.jobs import fine_tune

    rows = []
    for mode, extra in (("head", ["--epochs", str(epochs)]),
                        ("partial", ["--freeze-epochs", "2", "--epochs", str(epochs - 2)]),
                        ("full", ["--freeze-epochs", "2", "--epochs", str(epochs - 2)])):
        with tempfile.TemporaryDirectory() as folder:
            metrics = fine_tune.run(fine_tune.parse_args(["--mode", mode, "--quiet", "--patience", "99",
                                                          "--output-dir", folder, *extra]))
        main_stage = metrics["stages"]["head" if mode == "head" else "fine_tune"]
        rows.append([mode, main_stage["trainable"], main_stage["train_seconds"] / main_stage["epochs_trained_now"],
                     metrics["cost"]["wall_seconds"], metrics["test_accuracy"]])
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30, help="training steps per timed pipeline round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=6, help="epochs per mode in the comparison")
    parser.add_argument("--skip-modes", action="store_true", help="only the pipeline measurement")
    parser.add_argument("--xla", action="store_true", help="only training without against with XLA")
    args = parser.parse_args()

    from keras_tl.messages import format_table

    if args.xla:
        print(f"{os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f}; median of {args.rounds} rounds")
        print(format_table(xla_speed(args.steps, args.rounds), ["train step", "images/s", "first epoch s"]))
        return

    speed = pipeline_speed(args.steps, args.rounds)
    ratio = speed["pipeline"] / speed["in-memory"]
    print(format_table([[name, rate] for name, rate in speed.items()], ["input", "train steps/s"]))
    print(f"pipeline / in-memory: {ratio:.2f} (target >= 0.9: {'met' if ratio >= 0.9 else 'NOT met'})", flush=True)
    if not args.skip_modes:
        print(format_table(compare_modes(args.epochs),
                           ["mode", "trainable params", "s / epoch (main stage)", "wall s", "test accuracy"]))


if __name__ == "__main__":
    main()
