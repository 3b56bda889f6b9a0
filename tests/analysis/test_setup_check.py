"""keras_tl.check: each planted mistake gives its finding; the toolkit's own set-up reports nothing wrong."""
import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import keras_tl
from keras_tl import data
from keras_tl.analysis import setup_check
from keras_tl.sources import get_source
from keras_tl.training import freezing, recipe

SIZE = 32
MOBILENET = get_source("mobilenet")


def problems(findings):
    return [finding for finding in findings if finding.severity != "info"]


def small_base():
    """A tiny conv base with BatchNormalization, named like a pretrained one."""
    return keras.Sequential([keras.Input((SIZE, SIZE, 3)), keras.layers.Conv2D(4, 3, name="conv1"),
                             keras.layers.BatchNormalization(name="conv1_bn"), keras.layers.ReLU(),
                             keras.layers.Conv2D(4, 3, name="conv2"), keras.layers.BatchNormalization(name="conv2_bn")],
                            name="backbone")


@pytest.fixture(scope="module")
def classifier():
    """The recipe's classifier around the tiny base: InferenceMode, frozen base (the head stage)."""
    keras.utils.set_random_seed(0)
    base = small_base()
    model = recipe.build_classifier(base, 3)
    freezing.freeze_all(base)
    return model


@pytest.fixture(scope="module")
def pixels():
    """In-memory 0..255 images of 3 classes, 10 each."""
    rng = np.random.default_rng(0)
    return data.ImageSet(labels=np.repeat(np.arange(3), 10), images=rng.integers(0, 256, (30, SIZE, SIZE, 3),
                                                                                  dtype=np.uint8))


def pipeline(image_set, preprocess=MOBILENET.preprocess_input):
    return data.make_pipeline(image_set, SIZE, preprocess, batch_size=8)


def test_raw_pixels_fed_to_mobilenet_are_an_error(classifier, pixels):
    findings = setup_check.check(classifier, pipeline(pixels, preprocess=None), "mobilenet", verbose=False)
    scale = findings[0]
    assert scale.severity == "error" and "raw 0..255 pixels" in scale.what and "preprocess_input" in scale.todo
    assert "fed 0..255" in scale.what and "gives -1..1" in scale.what


@pytest.mark.parametrize("rescale, words", [
    (lambda images: MOBILENET.preprocess_input(images) / 255.0, "a tiny range, scaled twice"),  # on top: +-0.004
    (lambda images: MOBILENET.preprocess_input(images / 255.0), "a tiny range, scaled twice"),  # -1..-0.992
    (lambda images: images / 255.0, "0..1 inputs, rescale=1/255 instead of preprocess_input")])
def test_rescale_on_top_of_or_instead_of_preprocess_input(classifier, pixels, rescale, words):
    findings = setup_check.check(classifier, pipeline(pixels, preprocess=rescale), "mobilenet", verbose=False)
    assert findings[0].severity == "error" and words in findings[0].what


def test_a_trainable_batchnorm_in_a_frozen_base_without_inference_mode(pixels):
    keras.utils.set_random_seed(0)
    base = small_base()
    model = recipe.build_classifier(base, 3, bn_inference=False)  # base(x) called plainly
    freezing.freeze_all(base)
    assert not problems(setup_check.check(model, pipeline(pixels), "mobilenet", verbose=False)[1:2])
    base.get_layer("conv2_bn").trainable = True
    findings = [finding for finding in setup_check.check(model, pipeline(pixels), "mobilenet", verbose=False)
                if "BatchNormalization" in finding.what]
    assert len(findings) == 1 and findings[0].severity == "error"
    assert "1 BatchNormalization layer(s) of backbone (conv2_bn)" in findings[0].what
    assert "2 of its layers with weights are frozen" in findings[0].what and "InferenceMode" in findings[0].todo


def test_inference_mode_makes_the_same_model_safe_and_training_true_is_found(pixels):
    keras.utils.set_random_seed(0)
    base = small_base()
    model = recipe.build_classifier(base, 3)  # InferenceMode
    freezing.unfreeze_top(base, 2)  # conv2 and conv2_bn train, conv1 frozen: the recipe's partial fine-tune
    assert not problems(setup_check.check(model, pipeline(pixels), "mobilenet", verbose=False))

    inputs = keras.Input((SIZE, SIZE, 3))
    called = keras.Model(inputs, base(inputs, training=True), name="student_model")
    findings = problems(setup_check.batchnorm_findings(called))
    assert [finding.severity for finding in findings] == ["error", "warning"]
    assert "student_model calls backbone with training=True" in findings[1].what


def test_nothing_trains_and_parameter_counts(classifier):
    counts = setup_check.parameter_findings(classifier)[0]
    assert counts.severity == "info" and counts.what.startswith(f"{4 * 3 + 3:,} of ")
    frozen = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    frozen.trainable = False
    assert setup_check.parameter_findings(frozen)[0].severity == "error"


def test_imbalanced_classes(classifier, pixels):
    labels = np.array([0] * 26 + [1] * 2 + [2] * 2)
    imbalanced = data.ImageSet(labels=labels, images=pixels.images)
    findings = setup_check.check(classifier, imbalanced, "mobilenet", verbose=False)
    balance = [finding for finding in findings if finding.what.startswith("Class sizes")]
    assert len(balance) == 1 and balance[0].severity == "warning" and "ratio 13.0" in balance[0].what
    assert setup_check.balance_findings(pixels.labels)[0].severity == "info"


def test_an_in_memory_duplicate_across_train_and_test(classifier, pixels):
    test = data.ImageSet(labels=np.array([0, 1]), images=np.stack([pixels.images[4], 255 - pixels.images[4]]))
    findings = setup_check.duplicate_findings(pixels, test)
    assert findings[0].severity == "error" and "1 test image(s)" in findings[0].what
    assert "test #0 = train #4" in findings[0].what


def write_png(path, size, value, vertical=False):
    """A black-to-white gradient (the full 0..255 range), told apart by one pixel of ``value``
    (the vertical one is a different image, not a near-copy)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.repeat(np.linspace(0, 255, size, dtype=np.uint8)[None, :, None], size, axis=0).repeat(3, axis=2)
    image = image.transpose(1, 0, 2).copy() if vertical else image
    image[0, 0] = value
    Image.fromarray(image).save(path)
    return str(path)


def test_files_duplicated_across_splits_and_tiny_files(classifier, tmp_path, capsys):
    train_paths = [write_png(tmp_path / "train" / f"{index}.png", SIZE, index * 20) for index in range(6)]
    train_paths.append(write_png(tmp_path / "train" / "tiny.png", 8, 7))
    test_paths = [write_png(tmp_path / "test" / "copy.png", SIZE, 40),
                  write_png(tmp_path / "test" / "new.png", SIZE, 3, vertical=True)]
    train = data.ImageSet(labels=np.array([0, 1, 0, 1, 0, 1, 0]), paths=np.array(train_paths))
    test = data.ImageSet(labels=np.array([0, 1]), paths=np.array(test_paths))
    findings = setup_check.check(classifier, train, "mobilenet", test=test, path=tmp_path / "check.json")
    by_kind = {finding.what.split(" ")[1]: finding for finding in problems(findings)}
    assert set(by_kind) == {"test", "of"}, findings  # "1 test image(s) ..." and "1 of 7 images ..."
    assert by_kind["test"].severity == "error" and f"= train {train_paths[2]}" in by_kind["test"].what
    assert by_kind["of"].severity == "warning" and "tiny.png, 8 px a side" in by_kind["of"].what
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].split() == ["severity", "finding", "what", "to", "do"]
    assert printed.index("error") < printed.index("warning") < printed.index("info")  # errors first
    written = json.loads((tmp_path / "check.json").read_text())["findings"]
    assert [item["what"] for item in written] == [finding.what for finding in findings]


def test_the_toolkits_own_set_up_reports_nothing_wrong(tiny_mobilenet):
    dataset = data.load_dataset("animal_mnist", seed=0, train_per_class=4, test_per_class=2, verbose=False)
    splits = dict(zip(("train", "validation"), data.split_validation(dataset.train, 0.25, 0)), test=dataset.test)
    train, _, _ = data.training_pipelines(MOBILENET, 48, splits, 10, batch_size=8)
    settings = recipe.Recipe()
    base, model, _ = recipe.build_model(tiny_mobilenet, 10, settings)
    findings = keras_tl.check(model, dataset, "mobilenet", pipeline=train, verbose=False)
    assert not problems(findings), findings
    assert {finding.what.split(" ")[0] for finding in findings} >= {"The", "Class", "No"}
    assert "as expected" in findings[0].what


def test_the_fne_job_checks_with_check_and_writes_check_json(tmp_path, capsys):
    """(The fine_tune job's --check: tests/test_lr_finder.py, in its one tiny run of that job.)"""
    from keras_tl.jobs import fne

    argv = ["--weights", "none", "--image-size", "32", "--train-per-class", "4", "--test-per-class", "2",
            "--methods", "last:l2", "--check", "--output-dir", str(tmp_path / "run"), "--cache-dir",
            str(tmp_path / "cache")]
    assert fne.main(argv) == 0
    findings = json.loads((tmp_path / "run" / "check.json").read_text())["findings"]
    assert not problems(setup_check.Finding(**item) for item in findings), findings
    assert "as expected" in findings[0]["what"] and not any("parameters" in item["what"] for item in findings)
    assert "severity  finding" in capsys.readouterr().out


def test_tf_data_pipelines_of_one_hot_labels_are_read(classifier, pixels):
    batches = pipeline(pixels).map(lambda images, labels: (images, tf.one_hot(labels, 3)))
    findings = setup_check.check(classifier, batches, "mobilenet", verbose=False)
    assert findings[0].severity == "info" and "as expected" in findings[0].what
    assert len(findings) == 2  # the scale and the parameter counts: no image sets given
