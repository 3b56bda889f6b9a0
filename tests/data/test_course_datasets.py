"""The course datasets in their published layouts (``NAME:PATH``), on tiny replicas (tests/replicas.py)."""
import json
import os
import pathlib

import numpy as np
import pytest

from keras_tl import data
from keras_tl.data import course_datasets
from tests.replicas import NAMES, write_replica

PUBLISHED_SPLITS = [name for name in NAMES if name not in ("caltech101", "cats_vs_dogs")]


def load(spec, **options):
    return data.load_dataset(spec, verbose=False, **options)


@pytest.mark.parametrize("name", NAMES)
def test_each_layout_loads_with_its_published_split(name, tmp_path):
    expected = write_replica(name, tmp_path / "replica")
    dataset = load(f"{name}:{expected['path']}")
    assert dataset.name == name
    assert dataset.class_names == expected["classes"]
    assert (len(dataset.train), len(dataset.test)) == (expected["train"], expected["test"])
    if "files" in expected:  # the very files the split lists name, each in its split
        assert sorted(dataset.train.paths) == expected["files"]["train"]
        assert sorted(dataset.test.paths) == expected["files"]["test"]
    classes = len(expected["classes"])
    assert dataset.summary().startswith(f"{name}: {classes} classes, {expected['train']} train and "
                                        f"{expected['test']} test images (per class: ")


def test_labels_follow_the_published_classes(tmp_path):
    dogs = load("stanford_dogs:" + write_replica("stanford_dogs", tmp_path / "dogs")["path"])
    for path, label in zip(dogs.train.paths, dogs.train.labels):  # n02085620-Dog_breed_0/... is "Dog_breed_0"
        assert pathlib.Path(path).parent.name.split("-", 1)[1] == dogs.class_names[label]
    pets = load("oxford_pets:" + write_replica("oxford_pets", tmp_path / "pets")["path"])
    for path, label in zip(pets.test.paths, pets.test.labels):  # dog_breed_1_3.jpg is "dog_breed_1"
        assert pathlib.Path(path).stem.rsplit("_", 1)[0] == pets.class_names[label]
    cats = load("cats_vs_dogs:" + write_replica("cats_vs_dogs", tmp_path / "cats", train_per_class=8)["path"])
    for image_set in (cats.train, cats.test):
        assert [pathlib.Path(path).name.split(".")[0] for path in image_set.paths] == \
            [cats.class_names[label] for label in image_set.labels]


def test_cub_image_marked_0_is_a_test_image(tmp_path):
    root = pathlib.Path(write_replica("cub200", tmp_path)["path"])
    paths = dict(line.split() for line in (root / "images.txt").read_text().splitlines())
    dataset = load(f"cub200:{root}")
    for line in (root / "train_test_split.txt").read_text().splitlines():
        image_id, is_train = line.split()
        path = str(root / "images" / paths[image_id])
        assert (path in set(dataset.train.paths), path in set(dataset.test.paths)) == (is_train == "1", is_train == "0")


def test_dtd_takes_the_split_it_is_given(tmp_path):
    expected = write_replica("dtd", tmp_path, train_per_class=4, test_per_class=2)
    assert expected["splits"][1] != expected["splits"][7]  # the replica's splits differ
    for spec, number in ((expected["path"], 1), (f"{expected['path']}:1", 1), (f"{expected['path']}:7", 7)):
        dataset = load(f"dtd:{spec}")
        assert sorted(dataset.train.paths) == expected["splits"][number]["train"]  # train and val lists
        assert sorted(dataset.test.paths) == expected["splits"][number]["test"]


def test_caltech_takes_30_seeded_train_images_a_class_and_leaves_out_the_background(tmp_path):
    expected = write_replica("caltech101", tmp_path, classes=2, test_per_class=3)
    first, again, other = (load(f"caltech101:{expected['path']}", seed=seed) for seed in (0, 0, 1))
    assert first.class_names == ["category_0", "category_1"]  # no BACKGROUND_Google
    assert first.class_counts() == {"category_0": (30, 3), "category_1": (30, 3)}
    assert list(first.test.paths) == list(again.test.paths) and list(first.test.paths) != list(other.test.paths)
    assert not set(first.train.paths) & set(first.test.paths)
    categories = pathlib.Path(expected["path"]) / "101_ObjectCategories"
    assert load(f"caltech101:{categories}").class_counts() == first.class_counts()  # the folder itself works too


@pytest.mark.parametrize("name", PUBLISHED_SPLITS)
def test_a_missing_listed_file_is_one_error_naming_it(name, tmp_path):
    expected = write_replica(name, tmp_path)
    missing = expected["files"]["test"][0]
    os.remove(missing)
    with pytest.raises(FileNotFoundError, match=r"^1 listed image|^1 image\(s\) listed") as error:
        load(f"{name}:{expected['path']}")
    assert "/".join(pathlib.Path(missing).parts[-2:]) in str(error.value)  # mit67 names it under Images/


def test_a_damaged_listed_file_is_skipped_by_the_decode_check(tmp_path):
    expected = write_replica("cub200", tmp_path)
    damaged = expected["files"]["train"][0]
    pathlib.Path(damaged).write_bytes(b"not a jpeg")
    with pytest.warns(UserWarning, match="Skipping 1 unreadable"):
        dataset = load(f"cub200:{expected['path']}")
    assert [path for path, _ in dataset.skipped] == [damaged]
    assert len(dataset.train) == expected["train"] - 1 and damaged not in set(dataset.train.paths)


def test_unknown_name_lists_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match="Unknown dataset name 'cub20'") as error:
        load(f"cub20:{tmp_path}")
    message = str(error.value)
    assert f"dataset='cub20:{tmp_path}'" in message and "Did you mean cub200?" in message
    assert all(name in message for name in course_datasets.LOADERS)
    with pytest.raises(FileNotFoundError, match=r"Did you mean cub200:PATH\?"):  # the name alone is no folder
        load("cub200")


@pytest.mark.parametrize("number", ["0", "11", "x"])
def test_bad_dtd_split_number_names_the_form_and_the_range(number, tmp_path):
    path = write_replica("dtd", tmp_path)["path"]
    with pytest.raises(ValueError, match=r"expected dtd:PATH:N with N, the split, one of 1\.\.10"):
        load(f"dtd:{path}:{number}")


def test_a_folder_in_another_layout_says_what_it_lacks(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"lacks images\.txt, image_class_labels\.txt.*CUB_200_2011"):
        load(f"cub200:{tmp_path}")
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        load(f"food101:{tmp_path / 'nowhere'}")


@pytest.mark.parametrize("name", [name for name in NAMES if name != "mit67"])
def test_a_published_layout_is_recognised_without_its_name(name, tmp_path):
    expected = write_replica(name, tmp_path / "download")
    dataset = load(expected["path"])
    assert (dataset.name, len(dataset.train), len(dataset.test)) == (name, expected["train"], expected["test"])


@pytest.mark.parametrize("name, folder", [("cub200", "."), ("food101", "."), ("dtd", "."),
                                          ("caltech101", "101_ObjectCategories"), ("cats_vs_dogs", "train")])
def test_the_archive_folder_and_the_one_holding_it_both_work(name, folder, tmp_path):
    expected = write_replica(name, tmp_path)
    for path in (tmp_path, pathlib.Path(expected["path"]) / folder):
        for spec in (f"{name}:{path}", str(path)):
            dataset = load(spec)
            assert (dataset.name, len(dataset.train), len(dataset.test)) == (name, expected["train"], expected["test"])


def test_other_folders_keep_their_layouts(tmp_path):
    write_replica("cub200", tmp_path / "birds")  # a class-folder tree of its images/ is still class folders
    dataset = load(str(tmp_path / "birds" / "CUB_200_2011" / "images"))
    assert dataset.name == "images" and len(dataset.class_names) == 3
    assert course_datasets.recognise(tmp_path / "birds" / "CUB_200_2011" / "images") is None
    expected = write_replica("mit67", tmp_path / "scenes")  # any TrainImages.txt lists, as before: the folder's name
    dataset = load(expected["path"])
    assert dataset.name == "scenes" and sorted(dataset.test.paths) == expected["files"]["test"]


def test_a_name_with_a_colon_is_a_path_when_it_exists(tmp_path):
    assert course_datasets.parse_spec("cub200:/data/CUB_200_2011") == ("cub200", "/data/CUB_200_2011")
    assert course_datasets.parse_spec("dtd:/data/dtd:3") == ("dtd", "/data/dtd:3")
    assert course_datasets.parse_spec("C:\\data\\birds") is None  # a Windows drive
    folder = tmp_path / "food101:mine"
    folder.mkdir()
    assert course_datasets.parse_spec(str(folder)) is None
    assert course_datasets.parse_spec("animal_mnist") is None


def test_fne_job_on_a_replica(tmp_path, capsys):
    from keras_tl.jobs import fne

    expected = write_replica("cub200", tmp_path / "data", classes=2, train_per_class=3, test_per_class=2)
    argv = ["--dataset", f"cub200:{expected['path']}", "--source", "mobilenet", "--weights", "none",
            "--image-size", "32", "--methods", "last:l2", "--quiet", "--cache-dir", str(tmp_path / "cache")]
    assert fne.main(argv + ["--output-dir", str(tmp_path / "run")]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert (metrics["train_images"], metrics["test_images"]) == (expected["train"], expected["test"])
    assert np.asarray(metrics["methods"]["last:l2"]["confusion_matrix"]).sum() == expected["test"]
    capsys.readouterr()

    missing = expected["files"]["train"][1]
    os.remove(missing)
    assert fne.main(argv + ["--output-dir", str(tmp_path / "run2")]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: 1 image(s) listed in") and missing in errors[0]
