"""The extractor's other engines (keras_tl.features.engines): OpenVINO and ONNX Runtime against TensorFlow.

The converted models are built once for the module (a MobileNet with random weights at 32 px, its
first three pointwise layers, 20 Animal-MNIST images; a one-convolution model for the damaged caches);
an engine that is not installed is skipped.
"""
import dataclasses
import json
import re
import shutil
import sys

import numpy as np
import pytest

from keras_tl import data
from keras_tl.analysis import trained
from keras_tl.features import engines, extraction
from keras_tl.features.full_network_embedding import FNETransformer

LAYERS = ["conv_pw_1_relu", "conv_pw_2_relu", "conv_pw_3_relu"]
INSTALLED = [engine for engine in ("openvino", "onnxruntime") if engines.installed(engine)]
needs_engine = pytest.mark.parametrize("engine", [pytest.param(engine) for engine in INSTALLED] or [
    pytest.param("openvino", marks=pytest.mark.skip(reason="no engine installed: pip install openvino"))])


@pytest.fixture(scope="module")
def tiny_model():
    import keras

    from keras_tl import sources

    keras.utils.set_random_seed(0)  # as `fne --seed 0 --weights none` builds it
    return sources.get_source("mobilenet").build(weights=None, image_size=32)


@pytest.fixture(scope="module")
def images():
    return data.load_dataset("animal_mnist", seed=0, train_per_class=1, test_per_class=1, verbose=False)


@pytest.fixture(scope="module")
def features(tiny_model, images, tmp_path_factory):
    """``{engine: (train, test)}`` features, and ``"cache"``: the keras_tl cache folder holding the conversions."""
    cache = tmp_path_factory.mktemp("keras_tl_cache")
    found = {"cache": cache}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KERAS_TL_CACHE", str(cache))
        for engine in ["tensorflow"] + INSTALLED:
            extractor = extraction.FeatureExtractor("mobilenet", LAYERS, 32, None, model=tiny_model, engine=engine)
            found[engine] = tuple(np.array(extractor.extract(getattr(images, split), verbose=False)[0])
                                  for split in ("train", "test"))
    return found


@needs_engine
def test_engine_features_agree_with_tensorflow(features, engine):
    reference, computed = np.concatenate(features["tensorflow"]), np.concatenate(features[engine])
    assert computed.shape == reference.shape == (20, 64 + 128 + 128) and computed.dtype == np.float32
    assert np.abs(computed - reference).max() <= 1e-4 * np.abs(reference).max()


@needs_engine
def test_fne_features_of_an_engine_flip_rarely(features, engine):
    transformer = FNETransformer().fit(features["tensorflow"][0])
    reference, computed = transformer.transform(features["tensorflow"][1]), transformer.transform(features[engine][1])
    assert set(np.unique(reference)) <= {-1.0, 0.0, 1.0}
    flipped = np.mean(reference != computed)
    print(f"{engine}: {flipped:.4%} of the discretised FNE features differ from TensorFlow's")
    assert flipped < 0.01


@needs_engine
def test_converted_model_is_reused_by_a_second_extractor(features, tiny_model, images, engine, monkeypatch):
    monkeypatch.setenv("KERAS_TL_CACHE", str(features["cache"]))
    converted = sorted((features["cache"] / "engines").glob(f"{engine}-mobilenet-*/model.*"))
    assert converted, "the first extractor should have left its converted model in $KERAS_TL_CACHE/engines"
    modified = [path.stat().st_mtime_ns for path in converted]

    def convert_again(*args):
        raise AssertionError("converted again although the converted model is cached")

    monkeypatch.setattr(engines, "convert", convert_again)
    extractor = extraction.FeatureExtractor("mobilenet", LAYERS, 32, None, model=tiny_model, engine=engine)
    train, _ = extractor.extract(images.train, verbose=False)
    np.testing.assert_array_equal(train, features[engine][0])
    assert [path.stat().st_mtime_ns for path in converted] == modified


def test_cache_key_names_the_engine(tiny_model, images):
    tensorflow = extraction.FeatureExtractor("mobilenet", LAYERS, 32, None, model=tiny_model)
    keys = {"tensorflow": tensorflow.cache_key(images.train)}
    for engine in INSTALLED:
        keys[engine] = extraction.FeatureExtractor("mobilenet", LAYERS, 32, None, model=tiny_model,
                                                engine=engine).cache_key(images.train)
        assert engine in keys[engine]
    assert len(set(keys.values())) == len(keys)
    assert "tensorflow" not in keys["tensorflow"]  # TensorFlow's keys are those of earlier versions


def test_missing_engine_names_the_pip_command(tiny_model, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino now fails as if not installed
    with pytest.raises(ModuleNotFoundError) as error:
        extraction.FeatureExtractor("mobilenet", LAYERS, 32, None, model=tiny_model, engine="openvino")
    assert "engine='openvino'" in str(error.value) and "pip install openvino" in str(error.value)
    assert "pip install -e '.[openvino]'" in str(error.value)
    assert not engines.installed("openvino")


def test_engine_names_and_strategies_are_checked(monkeypatch):
    import tensorflow as tf

    with pytest.raises(ValueError, match="engine='openvno' is not one of.*Did you mean openvino"):
        engines.resolve_engine("openvno")
    assert engines.resolve_engine("tensorflow", tf.distribute.OneDeviceStrategy("/cpu:0")) == "tensorflow"
    monkeypatch.setattr(engines, "installed", lambda engine: engine == "openvino")
    monkeypatch.setattr(engines.distribute, "has_gpu", lambda: False)
    assert engines.resolve_engine("auto") == "openvino"  # the fastest installed, on a CPU
    assert engines.resolve_engine("auto", tf.distribute.get_strategy()) == "openvino"
    assert engines.resolve_engine("auto", tf.distribute.OneDeviceStrategy("/cpu:0")) == "tensorflow"
    monkeypatch.setattr(engines.distribute, "has_gpu", lambda: True)
    assert engines.resolve_engine("auto") == "tensorflow"
    if INSTALLED:
        with pytest.raises(ValueError, match=f"engine='{INSTALLED[0]}' runs on this machine's CPU"):
            engines.resolve_engine(INSTALLED[0], tf.distribute.OneDeviceStrategy("/cpu:0"))


def test_fne_job_and_its_model_run_with_an_engine(features, tmp_path, monkeypatch, capsys):
    pytest.importorskip("openvino")
    from keras_tl.jobs import fne

    monkeypatch.setenv("KERAS_TL_CACHE", str(features["cache"]))  # the same weights: the conversion is reused
    run_dir, cache = tmp_path / "run", tmp_path / "cache"
    argv = ["--weights", "none", "--image-size", "32", "--train-per-class", "1", "--test-per-class", "1",
            "--methods", ",".join(LAYERS) + ":fne", "--engine", "openvino", "--output-dir", str(run_dir),
            "--cache-dir", str(cache)]
    assert fne.main(argv) == 0
    out = capsys.readouterr().out
    assert "engine openvino" in out and "converting" not in out
    assert json.loads((run_dir / "config.json").read_text())["engine"] == "openvino"
    assert len(list(cache.glob("mobilenet-None-openvino-*.npy"))) == 2  # train and test, under the engine's key
    train = np.load(run_dir / "features" / "train.npy")
    np.testing.assert_allclose(train, features["openvino"][0], atol=1e-6)
    pictures = np.random.default_rng(0).uniform(0, 255, (5, 32, 32, 3)).astype(np.float32)
    run = trained.load_run(run_dir)  # its model.keras: backbone, pooling, FNE and the SVM in one model
    scores = dataclasses.replace(run, engine="openvino").predict(pictures, batch_size=2)
    np.testing.assert_allclose(scores, run.predict(pictures), atol=1e-4 * np.abs(scores).max())


# ----------------------------------------------------------------------------- caches that heal


@pytest.fixture(scope="module")
def small_model():
    import keras

    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3), keras.layers.GlobalAveragePooling2D()],
                            name="small")


@pytest.fixture(scope="module")
def conversions(small_model, tmp_path_factory):
    """``{engine: folder}``: ``small_model`` converted once for each installed engine, as the conversion wrote it."""
    found = {}
    for engine in INSTALLED:
        cache = tmp_path_factory.mktemp(engine)
        engines.compile_model(small_model, engine, ("small",), cache, verbose=False)
        found[engine] = next(path for path in cache.iterdir() if path.is_dir())
    return found


def copying_convert(good, converted):
    """A stand-in for engines.convert: the good conversion copied into place, each target noted in ``converted``."""
    def convert(model, engine, folder):
        assert not list(folder.parent.glob(f".{folder.name}.*.part")), "a killed conversion's part is still there"
        converted.append(folder)
        shutil.copytree(good, folder)

    return convert


@needs_engine
@pytest.mark.parametrize("damage", ["truncated", "deleted"])
def test_a_damaged_conversion_is_set_aside_with_a_warning_and_converted_again(conversions, small_model, engine,
                                                                              damage, tmp_path, monkeypatch):
    good, images = conversions[engine], np.random.default_rng(0).uniform(size=(2, 8, 8, 3)).astype(np.float32)
    for name in sorted(path.name for path in good.iterdir()):  # model.xml and model.bin; model.onnx
        folder = tmp_path / name / good.name  # the cache folder of small_model, one file damaged
        shutil.copytree(good, folder)
        if damage == "truncated":
            (folder / name).write_bytes((good / name).read_bytes()[:(good / name).stat().st_size // 2])
        else:
            (folder / name).unlink()
        converted = []
        monkeypatch.setattr(engines, "convert", copying_convert(good, converted))
        with pytest.warns(UserWarning, match=re.escape(f"The converted model in {folder} does not load (")) as caught:
            run = engines.compile_model(small_model, engine, ("small",), folder.parent, verbose=False)
        said = [str(warning.message) for warning in caught if "converted model" in str(warning.message)]
        assert len(said) == 1 and said[0].endswith(f"moved to {good.name}.damaged and converted again.")
        assert converted == [folder] and (folder.parent / f"{good.name}.damaged").is_dir()
        np.testing.assert_allclose(run(images), small_model(images), atol=1e-5)


@needs_engine
def test_a_killed_conversion_leaves_no_part_behind_on_the_next_run(conversions, small_model, engine, tmp_path,
                                                                   monkeypatch):
    from filelock import FileLock

    good = conversions[engine]
    killed = tmp_path / f".{good.name}.k1ll3d.part"  # a conversion of small_model killed mid-export left it
    running = tmp_path / f".{engine}-other-0123.x_y.part"  # another model's, converted by a process that runs
    for part in (killed, running):
        part.mkdir()
        (part / "model.bin").write_bytes(b"half")
    converted = []
    monkeypatch.setattr(engines, "convert", copying_convert(good, converted))
    with FileLock(str(tmp_path / f"{engine}-other-0123.lock")):
        engines.compile_model(small_model, engine, ("small",), tmp_path, verbose=False)
    assert converted == [tmp_path / good.name] and not killed.exists()
    assert running.is_dir()  # its conversion holds its lock: left alone
    engines.compile_model(small_model, engine, ("small",), tmp_path, verbose=False)
    assert converted == [tmp_path / good.name] and not running.exists()  # its lock free: stale, removed
