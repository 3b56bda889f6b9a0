"""Raw-image models (keras_tl/analysis/raw_images.py): the run's classifier of RGB 0..255 images of any size,
saved as raw_model.keras by both jobs, and the compiled path of ``load_run(...).predict``."""
import dataclasses
import json

import keras
import numpy as np
import pytest
from PIL import Image

from keras_tl import data
from keras_tl.analysis import raw_images, trained
from keras_tl.analysis.tta import tta_model


@pytest.fixture(scope="module")
def loaded_runs(request):
    """``loaded_runs("fne_run")``: that session run loaded once for this module (``load_run`` and tracing cost)."""
    cache = {}

    def load(name):
        if name not in cache:
            cache[name] = trained.load_run(request.getfixturevalue(name))
        return cache[name]

    return load


@pytest.fixture(scope="module", params=["fne_run", "fine_tune_run"])
def run_and_raw(request, loaded_runs):
    """``(run folder, loaded run, its saved raw_model.keras loaded with Keras alone)`` for each kind of run."""
    run_dir = request.getfixturevalue(request.param)
    raw = keras.models.load_model(run_dir / raw_images.RAW_MODEL_FILE, compile=False, safe_mode=True)
    return run_dir, loaded_runs(request.param), raw


def test_the_saved_raw_model_fed_decoded_files_agrees_with_predict(run_and_raw, colours):
    run_dir, run, raw = run_and_raw
    paths = data.image_files(colours / "test")
    decoded = np.stack([np.asarray(Image.open(path).convert("RGB"), dtype="float32") for path in paths])
    scores = run.predict(paths)
    np.testing.assert_allclose(raw(decoded), scores, atol=1e-4)  # so the same top-1
    info = json.loads((run_dir / ("model.json" if run.kind == "fne" else "metrics.json")).read_text())
    assert info["raw_model"] == "raw_model.keras"
    assert raw_images.class_names(raw) == run.classes == ["blue", "green", "red"]
    assert raw.get_layer("class_scores").score_name == run.score_name
    assert not list(run_dir.glob(".*.part*"))  # written to a temporary name, then renamed


def test_images_of_another_size_are_resized_in_the_graph(run_and_raw, colours):
    _, run, raw = run_and_raw
    paths = data.image_files(colours / "test")[:3]
    small = np.stack([np.asarray(Image.open(path).convert("RGB")) for path in paths])
    wide = np.stack([np.asarray(Image.fromarray(image).resize((56, 40), Image.BILINEAR)) for image in small])
    expected = run.predict(wide)  # load_images resizes an array as the pipeline resizes one
    np.testing.assert_allclose(raw(wide.astype("float32")), expected, atol=1e-4)
    assert raw.output_shape == (None, len(run.classes))


def test_predict_takes_paths_pil_images_and_uint8_arrays_alike(loaded_runs, colours, monkeypatch):
    run = loaded_runs("fne_run")
    paths = data.image_files(colours / "test")[:3]
    expected = run.predict(paths)
    monkeypatch.setattr(keras.Model, "predict", None)  # the compiled call, not model.predict, answers
    images = [Image.open(path) for path in paths]
    arrays = np.stack([np.asarray(image.convert("RGB")) for image in images])
    np.testing.assert_allclose(run.predict(images), expected, atol=1e-5)
    np.testing.assert_allclose(run.predict(arrays), expected, atol=1e-5)  # NHWC uint8
    np.testing.assert_allclose(run.predict(arrays[0]), expected[:1], atol=1e-5)  # one HWC image
    np.testing.assert_allclose(run.predict(images[1]), expected[1:2], atol=1e-5)  # one Pillow image
    np.testing.assert_allclose(run.predict(list(paths), batch_size=2), expected, atol=1e-5)  # batched in 2 + 1


def test_predict_with_test_time_augmentation_averages_the_image_and_its_mirror(loaded_runs, colours):
    run = loaded_runs("fine_tune_run")
    arrays = np.stack([np.asarray(Image.open(path).convert("RGB")) for path in data.image_files(colours / "test")[:2]])
    flipped = dataclasses.replace(run, model=tta_model(run.model, "flip"))  # as python -m keras_tl.predict --tta
    expected = (run.predict(arrays) + run.predict(arrays[:, :, ::-1])) / 2
    np.testing.assert_allclose(flipped.predict(arrays), expected, atol=1e-5)


def test_a_raw_model_names_a_bad_source_or_class_list():
    with pytest.raises(ValueError, match="mobilnet"):
        raw_images.SourcePreprocessing("mobilnet", 32)
    with pytest.raises(ValueError, match="below mobilenet's minimum of 32 pixels"):
        raw_images.SourcePreprocessing("mobilenet", 8)
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(inputs)))
    with pytest.raises(ValueError, match="class_names lists 2 classes, but the model has 3 outputs"):
        raw_images.raw_image_model(model, "mobilenet", 32, ["a", "b"])
