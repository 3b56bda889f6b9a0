"""load_run on run folders that are damaged or hostile: one ``ValueError`` naming the file and the field.

The run folders here are written by hand around a small Keras classifier, so no job has to run.
"""
import json
import shutil
import zipfile

import keras
import numpy as np
import pytest

from keras_tl.analysis import trained
from keras_tl.jobs import predict

CLASSES = ["cat", "dog", "cow"]
CONFIG = {"settings": {"source": "mobilenet"}, "image_size": 32, "class_names": CLASSES}


def small_classifier(inputs=keras.layers.Identity):
    """A 3-class softmax classifier of 32x32 RGB images; ``inputs`` is the first layer after the input."""
    images = keras.Input((32, 32, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs()(images))
    return keras.Model(images, keras.layers.Dense(len(CLASSES), activation="softmax")(pooled))


class UnregisteredLayer(keras.layers.Layer):
    """A custom layer that was never registered with Keras, as in a model.keras from someone else's code."""

    def call(self, inputs):
        return inputs


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.keras"
    small_classifier().save(path)
    return path


def make_run(folder, model_file, config=CONFIG, name="config.json"):
    """A finished run folder: ``config`` in ``name`` (config.json: fine_tune, model.json: fne), metrics, model."""
    folder.mkdir()
    (folder / name).write_text(config if isinstance(config, str) else json.dumps(config))
    (folder / "metrics.json").write_text("{}")
    shutil.copy(model_file, folder / "model.keras")
    return folder


def with_changes(**changes):
    """CONFIG with some top-level fields replaced (a value of None removes the field)."""
    config = {**CONFIG, **changes}
    return {key: value for key, value in config.items() if value is not None}


def test_a_hand_made_fine_tune_run_loads_and_predicts(tmp_path, model_file):
    model = trained.load_run(make_run(tmp_path / "run", model_file))
    assert (model.kind, model.classes, model.image_size, model.source.name) == ("fine_tune", CLASSES, 32, "mobilenet")
    scores = model.predict(np.zeros((2, 40, 40, 3), "float32"))
    assert scores.shape == (2, 3) and np.allclose(scores.sum(axis=1), 1, atol=1e-5)


@pytest.mark.parametrize("config, message", [
    ("{not json", r"config.json is not valid JSON"),
    ([CLASSES], r"config.json has no field settings;"),
    (with_changes(settings={"seed": 0}), r"config.json has no field settings\.source"),
    (with_changes(class_names=None), r"config.json has no field class_names"),
    (with_changes(image_size=None), r"config.json has no field image_size"),
    (with_changes(class_names="catdogcow"), r"config.json, field class_names: expected a list of class names "
                                            r"\(strings\); got 'catdogcow'"),
    (with_changes(class_names=["cat", 2, "cow"]), r"field class_names: expected a list of class names"),
    (with_changes(class_names=["cat", "dog", "cat"]), r"field class_names: each class should be named once; "
                                                      r"'cat' appear more than once"),
    (with_changes(settings={"source": "mobilenett"}), r"config.json, field settings\.source: Unknown source "
                                                      r"'mobilenett'.*mobilenet"),
    (with_changes(image_size=100000), r"config.json, field image_size: expected a whole number of pixels from 32 "
                                      r"\(mobilenet's minimum\) to 4096; got 100000"),
    (with_changes(image_size=16), r"field image_size: .* from 32 .*; got 16\."),
    (with_changes(image_size="32"), r"field image_size: .*; got '32'\."),
    (with_changes(image_size=True), r"field image_size: .*; got True\."),
    (with_changes(class_names=["cat", "dog"]), r"config.json lists 2 class_names, but the model in .*model.keras "
                                               r"has 3 outputs"),
    (with_changes(image_size=128), r"config.json, field image_size: 128 px, but the model in .*model.keras takes "
                                   r"32x32 px images; the two files are from different runs"),
])
def test_a_bad_config_json_is_one_error_naming_the_file_and_field(tmp_path, model_file, config, message):
    run_dir = make_run(tmp_path / "run", model_file, config)
    with pytest.raises(ValueError, match=message) as error:
        trained.load_run(run_dir)
    assert str(run_dir / "config.json") in str(error.value)


def test_an_fne_run_is_checked_in_its_model_json(tmp_path, model_file):
    info = {"kind": "fne", "source": "mobilenet", "image_size": 32, "class_names": CLASSES}
    assert trained.load_run(make_run(tmp_path / "good", model_file, info, "model.json")).kind == "fne"
    with pytest.raises(ValueError, match=r"model.json, field image_size: 128 px, but the model in .*model.keras "
                                         r"takes 32x32 px images"):
        trained.load_run(make_run(tmp_path / "128px", model_file, {**info, "image_size": 128}, "model.json"))
    no_source = {key: value for key, value in info.items() if key != "source"}
    with pytest.raises(ValueError, match=r"model.json has no field source;"):
        trained.load_run(make_run(tmp_path / "no_source", model_file, no_source, "model.json"))
    with pytest.raises(ValueError, match=r"model.json lists 4 class_names, but .* has 3 outputs"):
        trained.load_run(make_run(tmp_path / "four", model_file, {**info, "class_names": CLASSES + ["ox"]},
                                  "model.json"))


@pytest.mark.parametrize("removed", [("model.json",), ("model.json", "model.keras")])
def test_an_fne_run_without_its_model_json_is_named_as_one(tmp_path, model_file, removed):
    """An fne run's config.json holds its options at the top (not a fine_tune run's settings): the error names
    the files missing, not a field of config.json."""
    run_dir = make_run(tmp_path / "run", model_file, {"methods": ["fne:fne"], "source": "mobilenet"})
    for name in removed:
        (run_dir / name).unlink(missing_ok=True)
    with pytest.raises(ValueError, match=rf"run is an fne run \(its config.json says so\) without "
                                         rf"{' or '.join(removed)}: the fne job writes its classifier") as error:
        trained.load_run(run_dir)
    assert "has no field" not in str(error.value)


def truncated(model_file, path):
    path.write_bytes(model_file.read_bytes()[:model_file.stat().st_size // 2])


def with_lambda_layer(model_file, path):
    small_classifier(lambda: keras.layers.Lambda(lambda images: images * 2)).save(path)


def with_unregistered_layer(model_file, path):
    small_classifier(UnregisteredLayer).save(path)


def naming_os_system(model_file, path):
    """The saved model, its Dense layer renamed to ``os.system`` in config.json, as a crafted file would."""
    with zipfile.ZipFile(model_file) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    config["config"]["layers"][-1].update(module="os", class_name="system", registered_name=None)
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)


@pytest.mark.parametrize("damage, reason", [
    (truncated, r"not a complete zip archive"),
    (with_lambda_layer, r"ValueError: Requested the deserialization of a `Lambda` layer"),
    (with_unregistered_layer, r"TypeError: Could not locate class 'UnregisteredLayer'"),
    (naming_os_system, r"TypeError: Could not locate class 'system'"),
])
def test_a_damaged_or_hostile_model_keras_is_one_error(tmp_path, model_file, damage, reason):
    run_dir = make_run(tmp_path / "run", model_file)
    damage(model_file, run_dir / "model.keras")
    with pytest.raises(ValueError, match=rf"model.keras cannot be loaded as a Keras model \({reason}.*\); "
                                         rf"it is damaged, from another version, or refused by Keras's safe mode"):
        trained.load_run(run_dir)


def test_a_model_with_two_outputs_is_not_a_classifier(tmp_path, model_file):
    images = keras.Input((32, 32, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(images)
    run_dir = make_run(tmp_path / "run", model_file)
    keras.Model(images, [keras.layers.Dense(3)(pooled), keras.layers.Dense(3)(pooled)]).save(run_dir / "model.keras")
    with pytest.raises(ValueError, match=r"model.keras should be a classifier with one output of shape"):
        trained.load_run(run_dir)


def test_a_model_of_grey_images_is_not_an_image_classifier_of_the_run(tmp_path, model_file):
    run_dir = make_run(tmp_path / "run", model_file)
    images = keras.Input((32, 32, 1))
    pooled = keras.layers.GlobalAveragePooling2D()(images)
    keras.Model(images, keras.layers.Dense(3)(pooled)).save(run_dir / "model.keras")
    with pytest.raises(ValueError, match=r"model.keras should take one batch of RGB images, of shape \(batch, "
                                         r"height, width, 3\); its input shape is \(None, 32, 32, 1\)"):
        trained.load_run(run_dir)


def test_predict_on_a_hostile_run_exits_2_with_one_error_line(tmp_path, model_file, capsys):
    run_dir = make_run(tmp_path / "run", model_file)
    with_lambda_layer(model_file, run_dir / "model.keras")
    assert predict.main([str(run_dir), str(tmp_path / "photo.png"), "--quiet"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith(f"error: {run_dir / 'model.keras'} cannot be loaded")
