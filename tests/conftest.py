"""Shared test set-up: quiet TensorFlow logs, headless matplotlib, and the fixtures several test files use:
image sets, tiny models, and two finished runs (an fne and a fine_tune run folder).

Building a MobileNet graph costs 7-15 s on a 2-core machine, so the models and runs are session-scoped:
built once for the whole run (once per worker with ``pytest -n``). Tests that change a model's weights
or flags build their own.
"""
import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def decode_cache(tmp_path, monkeypatch):
    """Every test keeps its decode-check cache in its own folder, never in the user's."""
    monkeypatch.setenv("KERAS_TL_CACHE", str(tmp_path / "decode_cache"))
    return tmp_path / "decode_cache"


@pytest.fixture(scope="session")
def feature_cache(tmp_path_factory):
    """One feature cache folder for the whole run: tests that extract the same features share them."""
    return tmp_path_factory.mktemp("feature_cache")


@pytest.fixture
def softmax_problem():
    """``(batches, make_model)``: 32 random rows of 5 features in 3 one-hot classes, in batches of 8, and
    ``make_model(learning_rate)``, a softmax layer compiled with Adam, with the same start every call."""
    import keras
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 5)).astype("float32"), np.eye(3, dtype="float32")[rng.integers(0, 3, 32)]

    def make_model(learning_rate):
        keras.utils.set_random_seed(0)
        net = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3, activation="softmax")])
        net.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="categorical_crossentropy")
        return net

    return tf.data.Dataset.from_tensor_slices((x, y)).batch(8), make_model


@pytest.fixture(scope="session")
def random_image_set():
    """``random_image_set(count, size=28, seed=2)``: an in-memory ImageSet of ``count`` random grey
    ``size`` x ``size`` images labelled 0, 1, 0, 1, ..."""
    import numpy as np

    from keras_tl import data

    def make(count, size=28, seed=2):
        images = np.random.default_rng(seed).integers(0, 255, (count, size, size), dtype=np.uint8)
        return data.ImageSet(labels=np.arange(count) % 2, images=images)

    return make


@pytest.fixture(scope="session")
def tiny_mobilenet():
    """MobileNet v1 with random weights at 48x48 px (27 fne layers), read-only for the tests."""
    import keras

    from keras_tl import sources

    keras.utils.set_random_seed(0)
    return sources.get_source("mobilenet").build(weights=None, image_size=48)


@pytest.fixture(scope="session")
def imagenet_mobilenet_32():
    """The ImageNet MobileNet (offline import) at 32x32 px, headless, to compare trained weights with."""
    from keras_tl import sources

    return sources.get_source("mobilenet").build("imagenet", image_size=32)


@pytest.fixture
def write_file():
    """``write_file(path, text_or_bytes)``: write a small input file (a vector file, a split list), return its path."""
    def write(path, content):
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return path

    return write


# ----------------------------------------------------------------------------- two finished runs

COLOURS = {"red": (200, 30, 30), "green": (30, 180, 40), "blue": (30, 40, 200)}
PLANTED = "planted_red0.png"  # test/red/red0.png, copied into test/blue/


@pytest.fixture(scope="session")
def colours(tmp_path_factory):
    """``train/<colour>/`` (5 images each) and ``test/<colour>/`` (3 each) of noisy 32x32 squares, and
    a planted mislabel: ``test/red/red0.png`` copied into ``test/blue/`` as ``planted_red0.png``."""
    import shutil

    import numpy as np
    from PIL import Image

    root = tmp_path_factory.mktemp("colours")
    rng = np.random.default_rng(0)
    for split, count in (("train", 5), ("test", 3)):
        for name, colour in COLOURS.items():
            (root / split / name).mkdir(parents=True)
            for index in range(count):
                pixels = np.clip(np.array(colour) + rng.normal(0, 25, (32, 32, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(root / split / name / f"{name}{index}.png")
    shutil.copy(root / "test" / "red" / "red0.png", root / "test" / "blue" / PLANTED)
    return root


@pytest.fixture(scope="session")
def fne_run(colours, tmp_path_factory):
    """An fne run on ``colours`` (random weights, fne:fne, 32 px): its run folder."""
    from keras_tl.jobs import fne

    folder = tmp_path_factory.mktemp("fne")
    assert fne.main(["--dataset", str(colours), "--weights", "none", "--image-size", "32", "--methods", "fne:fne",
                     "--quiet", "--output-dir", str(folder / "run"), "--cache-dir", str(folder / "cache")]) == 0
    return folder / "run"


@pytest.fixture(scope="session")
def fine_tune_run(colours, tmp_path_factory):
    """A fine_tune run on ``colours`` (one epoch of a new head on the ImageNet MobileNet, 32 px): its run folder."""
    from keras_tl.jobs import fine_tune

    run_dir = tmp_path_factory.mktemp("fine_tune") / "run"
    assert fine_tune.main(["--dataset", str(colours), "--image-size", "32", "--unfreeze", "none", "--epochs", "1",
                           "--min-steps", "0",
                           "--no-augment", "--batch-size", "8", "--quiet", "--output-dir", str(run_dir)]) == 0
    return run_dir
