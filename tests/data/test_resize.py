"""How a non-square image becomes square (``resize=``, ``--resize squash|crop|pad``): in the pipelines, the raw-image
model, and a run's ``predict``. One 64x32 image: its left 8 columns green (a marker), the rest of its left half
red, its right half blue; at 32 px, crop keeps the central 32x32 (no marker), pad adds white above and below."""
import json
import shutil

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_tl import data, sources
from keras_tl.analysis import raw_images, trained
from keras_tl.jobs import fine_tune, fne

SIZE = 32
GREEN, RED, BLUE, WHITE = (0, 255, 0), (255, 0, 0), (0, 0, 255), (255, 255, 255)


@pytest.fixture(scope="module")
def wide():
    """The 64x32 test image as a (32, 64, 3) uint8 array."""
    image = np.zeros((32, 64, 3), np.uint8)
    image[:, :8], image[:, 8:32], image[:, 32:] = GREEN, RED, BLUE
    return image


@pytest.fixture(scope="module")
def wide_file(wide, tmp_path_factory):
    path = tmp_path_factory.mktemp("resize") / "wide.png"
    Image.fromarray(wide).save(path)
    return path


def seen(image_set, resize=None, preprocess=None):
    """The first image of ``make_pipeline(image_set, SIZE, ...)``: what the network gets."""
    options = {} if resize is None else {"resize": resize}
    return next(iter(data.make_pipeline(image_set, SIZE, preprocess, batch_size=1, **options)))[0].numpy()[0]


def both_sets(wide, wide_file):
    """The image as a file (decoded by Pillow) and in memory (resized in the graph)."""
    return (data.ImageSet(labels=np.zeros(1, int), paths=np.array([str(wide_file)])),
            data.ImageSet(labels=np.zeros(1, int), images=wide[None]))


def test_squash_is_the_default_and_todays_output(wide, wide_file):
    files, arrays = both_sets(wide, wide_file)
    today = np.asarray(Image.open(wide_file).convert("RGB").resize((SIZE, SIZE), Image.BILINEAR), "float32")
    np.testing.assert_array_equal(seen(files), today)
    np.testing.assert_array_equal(seen(files, "squash"), today)
    np.testing.assert_array_equal(seen(arrays), tf.image.resize(wide[None], (SIZE, SIZE), antialias=True)[0])
    np.testing.assert_array_equal(seen(arrays, "squash"), seen(arrays))
    for image in (seen(files, "squash"), seen(arrays, "squash")):  # the whole width, squeezed
        np.testing.assert_allclose([image[0, 0], image[0, -1]], [GREEN, BLUE], atol=1e-3)


def test_crop_keeps_the_central_square(wide, wide_file):
    for image in (seen(files_or_arrays, "crop") for files_or_arrays in both_sets(wide, wide_file)):
        np.testing.assert_allclose(image[:, :16], np.broadcast_to(RED, (SIZE, 16, 3)), atol=1e-3)
        np.testing.assert_allclose(image[:, 16:], np.broadcast_to(BLUE, (SIZE, 16, 3)), atol=1e-3)
        assert not (image[..., 1] > 1e-3).any()  # the green marker, outside the central square, is gone


def test_pad_centres_the_image_on_white(wide, wide_file):
    for image in (seen(files_or_arrays, "pad") for files_or_arrays in both_sets(wide, wide_file)):
        # 64x64 with the image in rows 16..47, halved: white rows 0..7 and 24..31 (one row each side blended)
        np.testing.assert_allclose(image[np.r_[0:7, 25:32]], data.PAD_VALUE, atol=1e-3)
        np.testing.assert_allclose([image[12, 1], image[12, 10], image[12, 24]], [GREEN, RED, BLUE], atol=1e-3)


def test_a_tall_image_is_cropped_and_padded_the_other_way(wide):
    tall = data.ImageSet(labels=np.zeros(1, int), images=wide.transpose(1, 0, 2)[None])  # 32 wide, 64 high
    cropped, padded = seen(tall, "crop"), seen(tall, "pad")
    assert not (cropped[..., 1] > 1e-3).any()
    np.testing.assert_allclose([cropped[0, 0], cropped[-1, 0], padded[1, 12]], [RED, BLUE, GREEN], atol=1e-3)
    np.testing.assert_allclose(padded[:, np.r_[0:7, 25:32]], data.PAD_VALUE, atol=1e-3)


@pytest.mark.parametrize("resize", data.RESIZE_MODES)
def test_the_raw_model_layer_resizes_as_the_pipeline(resize, wide, wide_file):
    source = sources.get_source("mobilenet")
    layer = raw_images.SourcePreprocessing("mobilenet", SIZE, resize=resize)
    out = np.asarray(layer(wide[None].astype("float32")))[0]
    files, arrays = both_sets(wide, wide_file)
    np.testing.assert_allclose(out, seen(arrays, resize, source.preprocess_input), atol=1e-5)
    np.testing.assert_allclose(out, seen(files, resize, source.preprocess_input), atol=2 / 127.5)  # Pillow rounds
    restored = raw_images.SourcePreprocessing.from_config(layer.get_config())
    assert restored.resize == resize


def test_a_raw_model_saved_before_the_option_squashes():
    config = raw_images.SourcePreprocessing("mobilenet", SIZE).get_config()
    del config["resize"]
    assert raw_images.SourcePreprocessing.from_config(config).resize == "squash"


def test_a_bad_mode_names_the_parameter(wide):
    arrays = data.ImageSet(labels=np.zeros(1, int), images=wide[None])
    for make in (lambda: data.make_pipeline(arrays, SIZE, resize="zoom"), lambda: data.load_image("x.png", 8, "zoom"),
                 lambda: raw_images.SourcePreprocessing("mobilenet", SIZE, resize="zoom")):
        with pytest.raises(ValueError, match="resize='zoom' is not one of squash, crop, pad"):
            make()


@pytest.mark.parametrize("job", [fne, fine_tune])
def test_the_jobs_take_resize_and_refuse_a_bad_one(job, capsys):
    assert job.parse_args([]).resize == "squash" and job.parse_args(["--resize", "pad"]).resize == "pad"
    with pytest.raises(SystemExit) as stop:
        job.parse_args(["--resize", "zoom"])
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert stop.value.code == 2 and len(errors) == 1 and "argument --resize: invalid choice: 'zoom'" in errors[0]


@pytest.mark.parametrize("kind, name, info, field", [
    ("fne", "model.json", {"source": "mobilenet"}, "resize"),
    ("fine_tune", "config.json", {"settings": {"source": "mobilenet"}}, "settings.resize"),
])
def test_a_run_records_its_resize_and_an_old_run_squashes(kind, name, info, field, tmp_path):
    path = tmp_path / name
    where = info if kind == "fne" else info["settings"]
    for recorded, expected in ((None, "squash"), ("pad", "pad"), ("crop", "crop")):
        where.pop("resize", None)
        if recorded:
            where["resize"] = recorded
        path.write_text(json.dumps({**info, "image_size": SIZE, "class_names": ["a", "b"]}))
        assert trained.read_run_info(path, kind)[-1] == expected
    where["resize"] = "zoom"
    path.write_text(json.dumps({**info, "image_size": SIZE, "class_names": ["a", "b"]}))
    with pytest.raises(ValueError, match=f"{name}, field {field}: expected one of squash, crop, pad; got 'zoom'"):
        trained.read_run_info(path, kind)


def test_predict_uses_the_runs_resize(fne_run, wide, wide_file, tmp_path):
    assert json.loads((fne_run / "model.json").read_text())["resize"] == "squash"  # what the job recorded
    cropped_run = shutil.copytree(fne_run, tmp_path / "run")
    info = json.loads((cropped_run / "model.json").read_text())
    (cropped_run / "model.json").write_text(json.dumps({**info, "resize": "crop"}))
    cropping = trained.load_run(cropped_run)
    assert cropping.resize == "crop" and cropping.raw_model.get_layer("preprocess").resize == "crop"
    centre = cropping.predict(wide[None, :, 16:48])  # at the run's size already: nothing to crop
    np.testing.assert_allclose(cropping.predict(wide[None]), centre, atol=1e-5)
    np.testing.assert_allclose(cropping.predict([wide_file]), centre, atol=1e-5)
    np.testing.assert_allclose(cropping.predict(Image.open(wide_file)), centre, atol=1e-5)
    squashed = np.asarray(Image.fromarray(wide).resize((SIZE, SIZE), Image.BILINEAR))  # what the run saw before
    assert not np.allclose(cropping.predict(squashed), centre, atol=1e-3)
