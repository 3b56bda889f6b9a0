"""Labels from a table (``keras_tl.data.csv_labels``): a .csv/.tsv of image paths, labels and an optional split,
or a DataFrame, read with the checks and reporting of folders; every bad column, cell or option is one error."""
import json
import pathlib
import re

import numpy as np
import pytest
from PIL import Image

from keras_tl import data
from keras_tl.data import registry
from keras_tl.jobs import fne

COLOURS = {"red": (200, 30, 30), "blue": (30, 40, 200)}


def _images(root, per_class=4):
    """``root/img/<colour><i>.png``: ``per_class`` small noisy images of each colour; their relative paths."""
    rng = np.random.default_rng(0)
    (root / "img").mkdir(parents=True)
    paths = {}
    for name, colour in COLOURS.items():
        for index in range(per_class):
            pixels = np.clip(np.array(colour) + rng.normal(0, 20, (16, 16, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / "img" / f"{name}{index}.png")
            paths[f"img/{name}{index}.png"] = name
    return paths


def _table(root, lines, name="labels.csv"):
    (root / name).write_text("\n".join(lines) + "\n")
    return str(root / name)


@pytest.fixture
def pets(tmp_path):
    """A table with train and test rows (the last image of each colour is test), a missing file and a bad image."""
    root = tmp_path / "pets"
    rows = [f"{path},{label},{'test' if path.endswith('3.png') else 'Train'}" for path, label in _images(root).items()]
    (root / "img" / "bad.png").write_text("not an image")
    return _table(root, ["Image,Class,split", *rows, "img/bad.png,red,train", "img/gone.png,blue,test"])


def test_a_table_loads_with_the_checks_and_reporting_of_folders(pets, tmp_path):
    with pytest.warns(UserWarning, match=r"Skipping 2 unreadable image file\(s\)") as caught:
        dataset = data.load_dataset(pets, verbose=False)
    assert len(caught) == 1 and caught[0].filename == __file__  # one warning, at the caller's line
    root = tmp_path / "pets"
    assert str(root / "img" / "bad.png") in str(caught[0].message)
    assert f"{root / 'img' / 'gone.png'} (FileNotFoundError" in str(caught[0].message)
    assert [path for path, _ in dataset.skipped] == [str(root / "img" / "bad.png"), str(root / "img" / "gone.png")]
    assert dataset.name == "pets/labels.csv" and dataset.class_names == ["blue", "red"]
    assert dataset.class_counts() == {"blue": (3, 1), "red": (3, 1)}
    assert sorted(dataset.test.paths) == [str(root / "img" / "blue3.png"), str(root / "img" / "red3.png")]
    assert [dataset.class_names[label] for label in dataset.test.labels] == ["blue", "red"]
    assert dataset.summary().endswith("2 unreadable file(s) skipped")


def test_without_a_split_column_the_seeded_stratified_split_of_folders(tmp_path):
    labels = _images(tmp_path / "pets")
    table = _table(tmp_path / "pets", ["file;label;set", *[f"{path};{label};A" for path, label in labels.items()]])
    for name in COLOURS:  # the same images as class folders
        (tmp_path / "folders" / name).mkdir(parents=True)
        for path in [path for path, label in labels.items() if label == name]:
            (tmp_path / "folders" / name / path[4:]).write_bytes((tmp_path / "pets" / path).read_bytes())
    from_table = data.load_dataset(table, split_column="none", test_fraction=0.5, seed=3, verbose=False)
    from_folders = data.load_dataset(tmp_path / "folders", test_fraction=0.5, seed=3, verbose=False)
    for split in ("train", "test"):
        names = [[path.rpartition("/")[2] for path in getattr(dataset, split).paths]
                 for dataset in (from_table, from_folders)]
        assert names[0] == names[1]
    with pytest.raises(ValueError, match=r"8 row\(s\) whose 'set' is not a split: line 2 \('A'\), line 3 \('A'\), "
                                         r"line 4 \('A'\) and 5 more\. Expected train, "):
        data.load_dataset(table)  # "set" is found as the split column, and its values are no splits


@pytest.mark.parametrize("split_cells, counts", [
    (("train", "valid", "validation", "valid"), {"blue": (1, 3), "red": (1, 3)}),  # no test rows: valid is test
    (("training", "valid", "valid", "Test"), {"blue": (3, 1), "red": (3, 1)}),  # test rows too: valid joins train
])
def test_validation_rows_are_the_test_split_unless_there_are_test_rows(split_cells, counts, tmp_path):
    labels = _images(tmp_path)
    table = _table(tmp_path, ["path\tlabel\tfold", *[f"{path}\t{label}\t{split_cells[int(path[-5])]}"
                                                     for path, label in labels.items()]], name="labels.tsv")
    if "Test" in split_cells:
        with pytest.warns(UserWarning, match="4 validation row"):
            dataset = data.load_dataset(table, split_column="fold", verbose=False)
    else:
        dataset = data.load_dataset(table, split_column="fold", verbose=False)
    assert dataset.class_counts() == counts


def test_a_dataframe_with_fastais_is_valid_column_and_paths_as_they_are(tmp_path):
    pandas = pytest.importorskip("pandas")
    labels = _images(tmp_path)
    frame = pandas.DataFrame({"fname": [str(tmp_path / path) for path in labels], "label": list(labels.values()),
                              "is_valid": [path.endswith(("2.png", "3.png")) for path in labels]})
    dataset = data.load_dataset(frame, verbose=False)
    assert dataset.name == "DataFrame" and dataset.class_counts() == {"blue": (2, 2), "red": (2, 2)}
    frame.loc[5, "label"] = None
    with pytest.raises(ValueError, match=r"the DataFrame: 1 row\(s\) with no label: row 5 \(''\)"):
        data.load_dataset(frame)


def test_repeated_rows_are_kept_once_and_an_image_in_both_splits_is_left_out_of_train(tmp_path):
    labels = _images(tmp_path)
    rows = [f"{path},{label},{'test' if path.endswith('3.png') else 'train'}" for path, label in labels.items()]
    table = _table(tmp_path, ["path,label,split", *rows, rows[0], "img/red3.png,red,train"])
    with pytest.warns(UserWarning) as caught:
        dataset = data.load_dataset(table, verbose=False)
    assert [str(warning.message) for warning in caught] == [
        f"{table}: dropped 1 repeated row(s) (same path, label and split).",
        f"{table}: 1 image(s) in both train and test, e.g. {tmp_path / 'img' / 'red3.png'}; leaving them out of "
        f"train, so that no test image is trained on."]
    assert dataset.class_counts() == {"blue": (3, 1), "red": (3, 1)}


@pytest.mark.parametrize("header, options, message", [
    ("Image,Class,split", {"label_column": "breed"},
     "label_column='breed': {table} has no such column; its columns are 'Image', 'Class', 'split'."),
    ("picture,Class,split", {}, "{table} has no column named one of path, file, filename, "),
    ("picture,Class,split", {}, "its columns are 'picture', 'Class', 'split'. Name the column with path_column=."),
    ("path,label,class", {}, "{table} has 2 columns that could be the one of label_column= ('label', 'class')"),
    ("path,label,split", {"label_column": "path"}, "name the same column of {table}: 'path', 'path', 'split'"),
    ("path,label,split", {"label_delimiter": ""}, "label_delimiter='': expected the character(s) between"),
])
def test_bad_column_names_and_options_are_an_error_naming_the_columns(header, options, message, tmp_path):
    table = _table(tmp_path, [header, "a.png,cat,train", "b.png,dog,test"])
    with pytest.raises(ValueError) as error:
        data.load_dataset(table, **options)
    assert message.format(table=table) in str(error.value)


@pytest.mark.parametrize("row, options, message", [
    ("/etc/cat.png,cat,train", {}, "1 row(s) whose path leaves the table's folder: line 3 ('/etc/cat.png')"),
    ("img/../../cat.png,cat,train", {}, "1 row(s) whose path leaves the table's folder: line 3"),
    (",cat,train", {}, "1 row(s) with no path: line 3 (''). Give every row the path of its image in column 'path'."),
    ("a.png, ,train", {}, "1 row(s) with no label: line 3"),
    ("a.png,cat,dev", {}, "1 row(s) whose 'split' is not a split: line 3 ('dev'). Expected train, training, test"),
    ("a.png,cat,train,extra", {}, "line 3 has 4 cell(s), the header 3"),
    ("a.png,cat,train", {}, "every class needs rows in train and in test; cat (no test row)"),
])
def test_bad_rows_are_an_error_naming_their_lines(row, options, message, tmp_path):
    table = _table(tmp_path, ["path,label,split", "b.png,dog,test", row, "c.png,dog,train"])
    with pytest.raises(ValueError) as error:
        data.load_dataset(table, **options)
    assert message in str(error.value)


def test_a_missing_table_is_no_such_file_and_table_options_need_a_table(tmp_path):
    _table(tmp_path, ["path,label"])
    with pytest.raises(FileNotFoundError, match=re.escape(f"no such file: {tmp_path / 'label.csv'}. Did you mean "
                                                          f"{tmp_path / 'labels.csv'}?")):
        registry.find_reader(str(tmp_path / "label.csv"))  # what jobs ask before TensorFlow loads
    with pytest.raises(ValueError, match="label_column='breed': only a .csv or .tsv table"):
        data.load_dataset("animal_mnist", label_column="breed")


def test_fne_runs_end_to_end_on_a_table_and_its_bad_options_are_one_error_line(pets, tmp_path, capsys):
    from keras_tl.analysis import interpret

    run_dir, table = tmp_path / "run", pathlib.Path(pets)
    table.write_text(table.read_text().replace("Image,Class,split", "Image,breed,split"))  # a name to give
    common = ["--dataset", pets, "--weights", "none", "--image-size", "32", "--quiet", "--output-dir", str(run_dir)]
    assert fne.main([*common, "--label-column", "kind"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert errors == [f"error: --label-column 'kind': {pets} has no such column; its columns are 'Image', 'breed', "
                      f"'split'."]
    # SqueezeNet's last layer: the cheapest job (this test is about the table, not the method)
    with pytest.warns(UserWarning, match=r"Skipping 2 unreadable image file\(s\)"):
        assert fne.main([*common, "--label-column", "breed", "--source", "squeezenet1_1", "--methods", "last:l2",
                         "--cache-dir", str(tmp_path / "cache")]) == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["train_images"] == 6 and metrics["test_images"] == 2
    assert [path.rpartition("/")[2] for path, _ in metrics["skipped_files"]] == ["bad.png", "gone.png"]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["dataset"] == pets and config["label_column"] == "breed"
    with pytest.warns(UserWarning, match="Skipping 2"):  # the run's dataset read again, with its columns
        assert interpret.run_dataset(run_dir, verbose=False).class_names == ["blue", "red"]
