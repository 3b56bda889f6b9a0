"""The course datasets in their published layouts (``NAME:PATH``), on tiny replicas (tests/replicas.py)."""
import json
import os
import pathlib

import numpy as np
import pytest
import scipy.io
from PIL import Image

from keras_tl import data
from keras_tl.data import course_datasets
from keras_tl.data.course_datasets import DatasetListError
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


def _line(index, text):
    """An edit of a text list: line ``index`` becomes ``text`` (``{outside}``: an image outside the dataset)."""
    def edit(path, outside):
        lines = path.read_text().splitlines()
        lines[index] = text.format(outside=outside)
        path.write_text("\n".join(lines) + "\n")
    return edit


def _fields(**changes):
    """An edit of a ``.mat`` file: each field set to its value (None removes it); a callable gets the old value."""
    def edit(path, outside):
        fields = {key: value for key, value in scipy.io.loadmat(path).items() if not key.startswith("__")}
        for key, change in changes.items():
            fields[key] = change(fields[key], outside) if callable(change) else change
        scipy.io.savemat(path, {key: value for key, value in fields.items() if value is not None})
    return edit


def _first_cell(text):
    """A change of a cell array: its first cell becomes ``text`` (``{outside}`` as in :func:`_line`)."""
    def change(cells, outside):
        cells[0, 0] = np.array([text.format(outside=outside)])
        return cells
    return change


def _html(path, outside):
    path.write_text("<!DOCTYPE html>\n<html><body><h1>404 Not Found</h1></body></html>\n")


# ../ entries reach tmp_path/outside.jpg from the replica under tmp_path/data (CUB's images/ is one level deeper)
HOSTILE_LISTS = {
    "cub-dotdot": ("cub200", "images.txt", _line(0, "1 ../../../outside.jpg"),
                   r"images\.txt, image path: 1 value\(s\) leave the dataset folder, e\.g\. '\.\./\.\./\.\./outside"),
    "cub-absolute": ("cub200", "images.txt", _line(0, "1 {outside}.jpg"), r"image path: 1 value\(s\) leave the"),
    "cub-float-id": ("cub200", "images.txt", _line(2, "3.7 x/y.jpg"),
                     r"images\.txt line 3: expected '<id> <image path>'"),
    "cub-no-value": ("cub200", "image_class_labels.txt", _line(0, "1"),
                     r"image_class_labels\.txt line 1: expected '<id> <class id>'"),
    "cub-unknown-class": ("cub200", "image_class_labels.txt", _line(0, "1 201"),
                          r"image_class_labels\.txt, class id: 1 value\(s\) missing from classes\.txt, e\.g\. image 1: "
                          r"'201'"),
    "cub-flag-2": ("cub200", "train_test_split.txt", _line(0, "1 2"),
                   r"train_test_split\.txt, is_training_image: 1 value\(s\) not 0 or 1, e\.g\. image 1: '2'"),
    "pets-dotdot": ("oxford_pets", "annotations/trainval.txt", _line(3, "../../outside 1 1 1"),
                    r"trainval\.txt, Image: 1 value\(s\) leave the dataset folder, e\.g\. '\.\./\.\./outside'"),
    "pets-absolute": ("oxford_pets", "annotations/test.txt", _line(3, "{outside} 1 1 1"), r"test\.txt, Image: 1 value"),
    "pets-html": ("oxford_pets", "annotations/test.txt", _html,
                  r"test\.txt line 1: expected 'Image CLASS-ID SPECIES BREED-ID'"),
    "dogs-dotdot": ("stanford_dogs", "train_list.mat", _fields(file_list=_first_cell("../../outside.jpg")),
                    r"train_list\.mat, file_list: 1 value\(s\) leave the dataset folder"),
    "dogs-absolute": ("stanford_dogs", "test_list.mat", _fields(file_list=_first_cell("{outside}.jpg")),
                      r"test_list\.mat, file_list: 1 value\(s\) leave the dataset folder"),
    "dogs-numbers": ("stanford_dogs", "train_list.mat", _fields(file_list=np.array([[1.0], [2.0]])),
                     r"train_list\.mat, file_list: 2 value\(s\) not a string"),
    "dogs-no-field": ("stanford_dogs", "test_list.mat", _fields(file_list=None),
                      r"test_list\.mat has no field 'file_list'"),
    "flowers-float-id": ("flowers102", "setid.mat", _fields(trnid=np.array([[1, 3.7]])),
                         r"setid\.mat, trnid: 1 value\(s\) not a whole number in 1\.\.12, e\.g\. 3\.7"),
    "flowers-past-end": ("flowers102", "setid.mat", _fields(tstid=np.array([[11, 12, 13]])),
                         r"setid\.mat, tstid: 1 value\(s\) not a whole number in 1\.\.12, e\.g\. 13"),
    "flowers-keys": ("flowers102", "setid.mat", _fields(trnid=None), r"setid\.mat has no field 'trnid'"),
    "flowers-html": ("flowers102", "setid.mat", _html, r"setid\.mat is not a MATLAB file .*HTML page"),
    "flowers-label-type": ("flowers102", "imagelabels.mat", _fields(labels=np.array(["a", "b"])),
                           r"imagelabels\.mat, labels: expected class numbers"),
}


@pytest.mark.parametrize("name, listing, edit, message", HOSTILE_LISTS.values(), ids=HOSTILE_LISTS)
def test_a_hostile_or_malformed_list_is_one_error_naming_the_file_and_field(name, listing, edit, message, tmp_path):
    root = pathlib.Path(write_replica(name, tmp_path / "data")["path"])
    outside = tmp_path / "outside"
    Image.new("RGB", (8, 8)).save(outside.with_suffix(".jpg"))  # a real image, which an unchecked entry would read
    edit(root / listing, outside)
    with pytest.raises(DatasetListError, match=message) as error:
        load(f"{name}:{root}")
    assert str(root / listing) in str(error.value)


@pytest.mark.parametrize("name, lists", [("mit67", ("TrainImages.txt", "TestImages.txt")),
                                         ("food101", ("meta/train.txt", "meta/test.txt")),
                                         ("dtd", ("labels/train1.txt", "labels/test1.txt")),
                                         ("oxford_pets", ("annotations/trainval.txt", "annotations/test.txt")),
                                         ("flowers102", ("setid.mat", "setid.mat"))])
def test_an_image_listed_in_train_and_test_stays_only_in_test_with_a_warning(name, lists, tmp_path):
    expected = write_replica(name, tmp_path)
    root = pathlib.Path(expected["path"])
    if name == "flowers102":
        ids = scipy.io.loadmat(root / "setid.mat")
        _fields(tstid=np.append(ids["tstid"], ids["trnid"][0, 0]))(root / "setid.mat", None)
    else:
        train, test = (root / listing for listing in lists)
        first = next(line for line in train.read_text().splitlines() if not line.startswith("#"))
        test.write_text(test.read_text() + first + "\n")
    with pytest.warns(UserWarning, match=r"1 image\(s\) listed in both train and test") as caught:
        dataset = load(f"{name}:{root}")
    assert str(root / lists[0]) in str(caught[0].message)
    assert (len(dataset.train), len(dataset.test)) == (expected["train"] - 1, expected["test"] + 1)
    assert not set(dataset.train.paths) & set(dataset.test.paths)


@pytest.mark.parametrize("images", [25, 30])
def test_a_caltech_class_too_small_for_the_protocol_names_its_count(images, tmp_path):
    expected = write_replica("caltech101", tmp_path, classes=2, test_per_class=3)
    folder = pathlib.Path(expected["path"]) / "101_ObjectCategories"
    for path in sorted((folder / "category_1").iterdir())[images:]:
        path.unlink()
    with pytest.raises(ValueError, match=rf"each class needs at least 31 images; {folder} has 1 class\(es\) with "
                                         rf"fewer: category_1 \({images}\)\."):
        load(f"caltech101:{expected['path']}")


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
    with pytest.raises(FileNotFoundError, match="no such folder"):
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

    listing = pathlib.Path(expected["path"]) / "images.txt"  # a list entry that leaves the folder: one line too
    _line(0, "1 ../../../outside.jpg")(listing, None)
    assert fne.main(argv + ["--output-dir", str(tmp_path / "run3")]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith(f"error: {listing}, image path: 1 value(s) leave the dataset")
