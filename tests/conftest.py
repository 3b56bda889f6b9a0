"""Shared test set-up: quiet TensorFlow logs, headless matplotlib, and the fixtures several test files use.

Building a MobileNet graph costs 7-15 s on a 2-core machine, so the models are session-scoped:
built once for the whole run. Tests that change a model's weights or flags build their own.
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
