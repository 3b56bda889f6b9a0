"""``--dataset tfds:NAME``: TensorFlow Datasets read through the folder pipeline.

No download: ``tfds.testing.mock_data`` makes deterministic fake examples (every split expression
yields ``num_examples`` of them, the same ones) for registered datasets. The ``prepared`` fixture
writes the metadata tfds writes when it prepares a dataset (its splits), so split names are known
as they are for real data. Cassava: 5 classes, train/validation/test; cats_vs_dogs: train only.
"""
import json
import math
import os
import pathlib
import socket
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from keras_tl import data
from keras_tl.data import tfds_datasets
from keras_tl.jobs import fne

EXAMPLES = 12


@pytest.fixture
def prepared(tmp_path):
    """``prepared(name, splits)``: a tfds data_dir in which ``name`` looks prepared, with ``splits``."""
    def prepare(name, splits):
        data_dir = tmp_path / "tensorflow_datasets"
        builder = tfds.builder(name, data_dir=str(data_dir))
        builder.data_path.mkdir(parents=True)
        template = tfds.core.ShardedFileTemplate(data_dir=builder.data_path, dataset_name=name, split="train",
                                                 filetype_suffix="tfrecord")
        builder.info.set_splits(tfds.core.SplitDict([
            tfds.core.SplitInfo(name=split, shard_lengths=[EXAMPLES], num_bytes=0,
                                filename_template=template.replace(split=split)) for split in splits]))
        builder.info.write_to_directory(builder.data_path)
        return data_dir

    return prepare


def mocked(data_dir):
    return tfds.testing.mock_data(num_examples=EXAMPLES, data_dir=str(data_dir),
                                  policy=tfds.testing.MockPolicy.USE_FILES)


def test_a_dataset_loads_with_its_class_names_counts_and_the_very_pixels_tfds_gives(prepared):
    data_dir = prepared("cassava", ["train", "validation", "test"])
    with mocked(data_dir):
        dataset = data.load_dataset("tfds:cassava", tfds_data_dir=data_dir, verbose=False)
        expected = list(tfds.as_numpy(tfds.builder("cassava", data_dir=str(data_dir)).as_dataset(split="test")))
    names = tfds.builder("cassava", data_dir=str(data_dir)).info.features["label"].names
    assert dataset.name == "cassava" and dataset.class_names == sorted(names) and len(names) == 5
    assert len(dataset.train) == EXAMPLES and len(dataset.test) == EXAMPLES and dataset.skipped == []
    for path, label in zip(dataset.test.paths, dataset.test.labels):
        index = int(os.path.basename(path).split(".")[0])  # <label>/<index>.<format>
        image = np.asarray(data.decode_image(path))
        assert image.shape == expected[index]["image"].shape and image.shape[2] == 3
        np.testing.assert_array_equal(image, expected[index]["image"])
        assert dataset.class_names[label] == names[expected[index]["label"]]
    assert "train+validation" in dataset.train.paths[0]  # the default: train + validation / test
    assert data.load_image(dataset.test.paths[0], 16).shape == (16, 16, 3)


def test_exported_files_are_reused_without_reading_tfds_again(prepared, monkeypatch):
    data_dir = prepared("cassava", ["train", "test"])
    with mocked(data_dir):
        first = data.load_dataset("tfds:cassava:train/test", tfds_data_dir=data_dir, verbose=False)
        stamps = {path: os.stat(path).st_mtime_ns for path in [*first.train.paths, *first.test.paths]}

        def no_reading(*args, **kwargs):
            raise AssertionError("the dataset was read again")

        monkeypatch.setattr(tfds.core.DatasetBuilder, "as_dataset", no_reading)
        second = data.load_dataset("tfds:cassava:train/test", tfds_data_dir=data_dir, verbose=False)
    assert list(second.train.paths) == list(first.train.paths) and list(second.test.paths) == list(first.test.paths)
    assert {path: os.stat(path).st_mtime_ns for path in stamps} == stamps
    np.testing.assert_array_equal(second.train.labels, first.train.labels)


def test_a_dataset_without_a_test_split_gets_a_seeded_stratified_split(prepared):
    data_dir = prepared("cats_vs_dogs", ["train"])
    with mocked(data_dir):
        dataset = data.load_dataset("tfds:cats_vs_dogs", tfds_data_dir=data_dir, verbose=False, seed=3)
        again = data.load_dataset("tfds:cats_vs_dogs", tfds_data_dir=data_dir, verbose=False, seed=3)
    assert dataset.class_names == ["cat", "dog"]
    assert len(dataset.test) == math.ceil(0.2 * EXAMPLES) and len(dataset.train) + len(dataset.test) == EXAMPLES
    assert not set(dataset.train.paths) & set(dataset.test.paths)
    assert list(again.test.paths) == list(dataset.test.paths)


@pytest.mark.parametrize("spec, message", [
    ("tfds:cassava:trian/test", "has no split 'trian'; its splits are test, train, validation. Did you mean train"),
    ("tfds:cassava:train[abc/test", "'train[abc' of dataset 'tfds:cassava:train[abc/test' is not a tfds split"),
    ("tfds:cassava:train/test/validation", "is not tfds:NAME or tfds:NAME:TRAIN/TEST"),
    ("tfds:cassava:train/", "is not tfds:NAME or tfds:NAME:TRAIN/TEST"),
    ("tfds:", "is not tfds:NAME or tfds:NAME:TRAIN/TEST"),
    ("tfds:casava", "No tfds dataset named 'casava'.*Did you mean cassava"),
])
def test_bad_specs_are_one_clear_error(prepared, spec, message):
    data_dir = prepared("cassava", ["train", "validation", "test"])
    with mocked(data_dir), pytest.raises(ValueError, match=message.replace("[", r"\[")):
        data.load_dataset(spec, tfds_data_dir=data_dir, verbose=False)


def test_the_spec_takes_a_version_and_slices():
    assert tfds_datasets.parse_spec("tfds:cassava:0.1.0:train[:80%]/test") == ("cassava:0.1.0", "train[:80%]", "test")
    assert tfds_datasets.parse_spec("tfds:dtd/1:train") == ("dtd/1", "train", None)
    assert tfds_datasets.parse_spec("tfds:cassava") == ("cassava", None, None)


def test_a_dataset_without_image_and_label_is_refused(tmp_path):
    with tfds.testing.mock_data(num_examples=2, data_dir=str(tmp_path)), \
            pytest.raises(ValueError, match="'celeb_a' has the features image, landmarks, attributes, identity; "
                                            "an image classification dataset needs"):
        data.load_dataset("tfds:celeb_a", tfds_data_dir=tmp_path, verbose=False)


def test_offline_a_missing_dataset_says_where_it_looked_and_how_to_prepare_it(tmp_path, monkeypatch, capsys):
    import requests

    def offline(*args, **kwargs):
        raise requests.exceptions.ConnectionError("Failed to resolve 'storage.googleapis.com'")

    monkeypatch.setattr(tfds_datasets, "network_problem", lambda: None)  # tfds's host answers; the download fails
    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", offline)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "from_environment"))
    with pytest.raises(FileNotFoundError, match="'cassava' is not in .*from_environment/cassava/0.1.0 and could "
                                                "not be downloaded .*tfds build cassava --data_dir DIR"):
        data.load_dataset("tfds:cassava", verbose=False)
    argv = ["--dataset", "tfds:cassava", "--tfds-data-dir", str(tmp_path / "shared"), "--weights", "none",
            "--output-dir", str(tmp_path / "run"), "--quiet"]
    assert fne.main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and len(error.splitlines()) == 1
    assert f"{tmp_path / 'shared'}/cassava/0.1.0" in error and "point --tfds-data-dir (or $TFDS_DATA_DIR)" in error


def test_offline_the_job_fails_at_once_with_one_line_and_no_download(tmp_path, monkeypatch, capfd):
    def unreachable(address, timeout):
        assert timeout <= 5
        raise socket.gaierror(-2, "Name or service not known")

    def download(*args, **kwargs):
        raise AssertionError("a download was attempted offline")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", download)
    argv = ["--dataset", "tfds:cassava", "--tfds-data-dir", str(tmp_path / "empty"), "--weights", "none",
            "--output-dir", str(tmp_path / "run"), "--quiet"]
    assert fne.main(argv) == 2
    captured = capfd.readouterr()
    assert captured.err.splitlines() == [
        f"error: tfds dataset 'cassava' is not in {tmp_path / 'empty'}/cassava/0.1.0 and could not be downloaded "
        "(storage.googleapis.com cannot be reached: Name or service not known; the machine may be offline). On a "
        f"machine with internet, run tfds build cassava --data_dir DIR (or load it there once), then copy "
        f"DIR/cassava into {tmp_path / 'empty'} here, or point --tfds-data-dir (or $TFDS_DATA_DIR) at a shared "
        "copy."]


def test_a_damaged_export_list_is_named_set_aside_and_exported_again(prepared):
    data_dir = prepared("cassava", ["train", "test"])
    damages = {"cut short": lambda text: text[:len(text) // 2].encode(),
               "leaves its folder": lambda text: json.dumps({name: ["../../../outside.jpeg"]
                                                             for name in json.loads(text)}).encode(),
               "not UTF-8": lambda text: text.encode("utf-16")}
    with mocked(data_dir):
        first = data.load_dataset("tfds:cassava:train/test", tfds_data_dir=data_dir, verbose=False)
        manifest = pathlib.Path(first.test.paths[0]).parents[1] / tfds_datasets.MANIFEST
        text = manifest.read_text()
        for damage in damages.values():
            manifest.write_bytes(damage(text))
            with pytest.warns(UserWarning, match=f"{manifest} cannot be read .*set aside as complete.json.damaged, "
                                                 "the split is exported again"):
                second = data.load_dataset("tfds:cassava:train/test", tfds_data_dir=data_dir, verbose=False)
            assert list(second.test.paths) == list(first.test.paths) and manifest.read_text() == text
            assert manifest.with_name("complete.json.damaged").read_bytes() == damage(text)


def test_a_damaged_tfds_metadata_file_is_named(prepared):
    data_dir = prepared("cassava", ["train", "test"])
    info = next(data_dir.glob("cassava/*/dataset_info.json"))
    info.write_text(info.read_text()[:100])
    with pytest.raises(ValueError, match=f"a dataset_info.json under {data_dir / 'cassava'} is damaged .*; move "
                                         f"{data_dir / 'cassava'} aside and prepare it again"):
        data.load_dataset("tfds:cassava", tfds_data_dir=data_dir, verbose=False)


def test_without_the_package_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install tensorflow-datasets \(or pip install -e '.\[tfds\]'"):
        data.load_dataset("tfds:cassava")


def test_the_fne_job_runs_end_to_end_on_a_tfds_dataset(prepared, tmp_path):
    data_dir = prepared("cassava", ["train", "validation", "test"])
    run_dir = tmp_path / "run"
    with mocked(data_dir):
        assert fne.main(["--dataset", "tfds:cassava", "--tfds-data-dir", str(data_dir), "--source", "mobilenet",
                         "--weights", "none", "--image-size", "32", "--quiet", "--output-dir", str(run_dir),
                         "--cache-dir", str(tmp_path / "features")]) == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["train_images"] == EXAMPLES and metrics["test_images"] == EXAMPLES
    assert metrics["skipped_files"] == []
    assert np.asarray(metrics["methods"]["fne:fne"]["confusion_matrix"]).sum() == EXAMPLES
