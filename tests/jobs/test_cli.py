"""What every job shares (``keras_tl.jobs.cli``): dataset specs checked before TensorFlow loads, and
library parameters shown as the job's flags."""
import subprocess
import sys

import pytest

from keras_tl.data import registry
from keras_tl.jobs import cli, fine_tune, fne


def errors_of(capsys):
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


@pytest.fixture
def no_tensorflow(monkeypatch):
    """A job that would start TensorFlow fails the test: its dataset check must come first."""
    def start_tensorflow(job, args):
        raise AssertionError("TensorFlow was started before the dataset was checked")

    monkeypatch.setattr(cli, "start_tensorflow", start_tensorflow)


@pytest.mark.parametrize("spec, message", [
    ("data/flowrs", "no such folder: {tmp}/data/flowrs. Did you mean {tmp}/data/flowers?"),
    ("data/flowrs/jpg", "no such folder: {tmp}/data/flowrs/jpg. Did you mean {tmp}/data/flowers/jpg?"),
    ("cub200:{tmp}/data/birds", "no such folder: {tmp}/data/birds (--dataset 'cub200:{tmp}/data/birds')."),
    ("dtd:{tmp}/data/texture:3", "no such folder: {tmp}/data/texture (--dataset 'dtd:{tmp}/data/texture:3')."),
    ("data/flowers/a.zip", "Dataset '{tmp}/data/flowers/a.zip' is a file, not a folder"),
])
def test_a_missing_dataset_folder_is_one_line_before_tensorflow(spec, message, tmp_path, capsys, no_tensorflow):
    (tmp_path / "data" / "flowers" / "jpg").mkdir(parents=True)
    (tmp_path / "data" / "flowers" / "a.zip").write_bytes(b"PK")
    spec = spec.format(tmp=tmp_path) if "{tmp}" in spec else str(tmp_path / spec)
    assert fne.main(["--dataset", spec, "--output-dir", str(tmp_path / "run")]) == 2
    errors = errors_of(capsys)
    assert len(errors) == 1 and errors[0].startswith(f"error: {message.format(tmp=tmp_path)}")
    assert not (tmp_path / "run").exists()


def test_the_fne_job_says_no_such_folder_without_importing_tensorflow(tmp_path):
    code = ("import sys; from keras_tl.jobs import cli; code = cli.main('fne', ['--dataset', sys.argv[1]]); "
            "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'; sys.exit(code)")
    finished = subprocess.run([sys.executable, "-c", code, str(tmp_path / "nope")], capture_output=True, text=True,
                              timeout=60)
    assert finished.returncode == 2, finished.stderr[-2000:]
    assert finished.stderr.splitlines() == [f"error: no such folder: {tmp_path / 'nope'}."]


@pytest.mark.parametrize("spec, path", [("./flowrs", True), ("~/flowrs", True), ("flowers.zip", True),
                                        ("a/b", True), ("animl_mnist", False), ("flowers", False)])
def test_a_spec_that_looks_like_a_path_is_one(spec, path):
    assert registry.looks_like_path(spec) is path


def test_two_layouts_in_one_folder_name_the_marker_files_of_each(tmp_path, capsys, no_tensorflow):
    for marker in ("images.txt", "train_test_split.txt", "imagelabels.mat", "setid.mat"):  # CUB-200 and Flowers-102
        (tmp_path / marker).write_text("")
    assert fne.main(["--dataset", str(tmp_path), "--output-dir", str(tmp_path / "run")]) == 2
    assert errors_of(capsys) == [
        f"error: Dataset folder {tmp_path} holds the marker files of 2 layouts: images.txt, train_test_split.txt "
        f"(cub200); imagelabels.mat, setid.mat (flowers102). Name the one you mean (cub200:{tmp_path} or "
        f"flowers102:{tmp_path}), or keep one dataset per folder."]
    (tmp_path / "setid.mat").unlink()
    (tmp_path / "TrainImages.txt").write_text("")
    (tmp_path / "TestImages.txt").write_text("")
    with pytest.raises(ValueError, match=r"TrainImages.txt, TestImages.txt \(mit67\)"):
        registry.find_reader(str(tmp_path))


def test_a_command_in_quotes_keeps_its_parameters():
    hint = ("ImageNet weights for mobilenet_v2 are not in /home/x/.keras/models and could not be downloaded.\n"
            "On a machine with internet, run\n"
            "    python -c \"import keras; keras.applications.MobileNetV2(weights='imagenet', include_top=False)\"\n"
            "then copy it here; or image_size=32, `fine_tune_model(unfreeze=3)`.")
    assert cli.flags_in_message(hint, fine_tune.make_parser()) == hint.replace("image_size=", "--image-size ")


def test_the_fine_tune_job_checks_its_dataset_before_tensorflow_too(tmp_path, capsys, no_tensorflow):
    assert fine_tune.main(["--dataset", str(tmp_path / "nope"), "--output-dir", str(tmp_path / "run")]) == 2
    assert errors_of(capsys) == [f"error: no such folder: {tmp_path / 'nope'}."]
