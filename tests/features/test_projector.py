"""The projector export: files TensorBoard's Embedding Projector reads, read back equal."""
import math
import re

import numpy as np
import pytest
from PIL import Image

from keras_tl.features import projector


def _read_back(folder):
    """``(tensor, metadata lines, sprite array or None, config text)`` of a projector folder."""
    tensor = np.loadtxt(folder / projector.TENSOR_FILE, delimiter="\t", dtype=np.float32, ndmin=2)
    lines = (folder / projector.METADATA_FILE).read_text(encoding="utf-8").split("\n")
    assert lines[-1] == ""  # every line ends with a line break
    sprite = folder / projector.SPRITE_FILE
    sprite = np.asarray(Image.open(sprite)) if sprite.exists() else None
    return tensor, lines[:-1], sprite, (folder / projector.CONFIG_FILE).read_text(encoding="utf-8")


def _colour(index):
    return (index * 30 % 256, 255 - index * 20, 7 * index % 256)


def _thumbnail_at(sprite, index, size, count):
    side = math.ceil(math.sqrt(count))
    row, column = divmod(index, side)
    return sprite[row * size:(row + 1) * size, column * size:(column + 1) * size]


def _leftovers(parent):
    return [path.name for path in parent.iterdir() if path.name.startswith(".")]


def test_files_read_back_equal_with_a_sprite_in_the_points_order(tmp_path):
    vectors = np.random.default_rng(0).normal(size=(7, 5)).astype(np.float32) * 1e3
    rows = [(f"class {index % 2}", f"file\t{index}.png") for index in range(7)]  # a tab inside a value
    images = [np.full((6, 4, 3), _colour(index), dtype=np.uint8) for index in range(6)]
    Image.fromarray(np.full((9, 9), 200, dtype=np.uint8)).save(tmp_path / "grey.png")  # a grey file, the 7th
    folder = projector.write_projector(tmp_path / "out", vectors, rows, metadata_header=("label", "file"),
                                       images=images + [tmp_path / "grey.png"], thumbnail_size=8, name='my "run"')
    tensor, lines, sprite, config = _read_back(folder)
    assert np.array_equal(tensor, vectors)  # float32 values exactly
    assert lines == ["label\tfile"] + [f"class {index % 2}\tfile {index}.png" for index in range(7)]
    assert sprite.shape == (24, 24, 3)  # 3 x 3 thumbnails of 8 px
    for index in (0, 3, 5):
        assert (_thumbnail_at(sprite, index, 8, 7) == _colour(index)).all()
    assert (_thumbnail_at(sprite, 6, 8, 7) == 200).all() and (_thumbnail_at(sprite, 7, 8, 7) == 0).all()
    assert 'tensor_name: "my \\042run\\042"' in config and "single_image_dim: 8" in config
    assert sorted(path.name for path in folder.iterdir()) == sorted(
        [projector.CONFIG_FILE, projector.TENSOR_FILE, projector.METADATA_FILE, projector.SPRITE_FILE])
    assert _leftovers(tmp_path) == []


def test_tensorboard_reads_the_config(tmp_path):
    projector_config = pytest.importorskip("tensorboard.plugins.projector.projector_config_pb2")
    from google.protobuf import text_format

    folder = projector.write_projector(tmp_path / "out", np.eye(3), ["a", "b", "c"], name="naïve",
                                       images=[np.zeros((2, 2), dtype=np.uint8)] * 3, thumbnail_size=4)
    config = text_format.Parse((folder / projector.CONFIG_FILE).read_text(), projector_config.ProjectorConfig())
    (embedding,) = config.embeddings
    assert (embedding.tensor_name, embedding.tensor_path, embedding.metadata_path) == (
        "naïve", projector.TENSOR_FILE, projector.METADATA_FILE)
    assert embedding.sprite.image_path == projector.SPRITE_FILE and list(embedding.sprite.single_image_dim) == [4, 4]


def test_one_column_has_no_header_and_no_sprite_without_images(tmp_path):
    folder = projector.write_projector(tmp_path / "out", [[1.5, 2], [3, 4]], ["cat", "new\nline"])
    tensor, lines, sprite, config = _read_back(folder)
    assert np.array_equal(tensor, [[1.5, 2], [3, 4]]) and lines == ["cat", "new line"]
    assert sprite is None and "sprite" not in config


def test_a_large_grid_gets_smaller_thumbnails(tmp_path, monkeypatch):
    monkeypatch.setattr(projector, "MAX_SPRITE_SIZE", 20)
    images = [np.full((3, 3, 3), _colour(index), dtype=np.uint8) for index in range(10)]
    folder = projector.write_projector(tmp_path / "out", np.ones((10, 2)), list("abcdefghij"), images=images)
    _, _, sprite, config = _read_back(folder)
    assert sprite.shape == (20, 20, 3) and "single_image_dim: 5" in config  # 4 a side, 20 // 4 px each
    assert (_thumbnail_at(sprite, 9, 5, 10) == _colour(9)).all()


@pytest.mark.parametrize("arguments, message", [
    ({"vectors": np.ones(3)}, "vectors= must be a 2-D array"),
    ({"vectors": [[1.0, np.nan], [1.0, 2.0]]}, "vectors= has NaN or infinity in 1 row(s)"),
    ({"metadata_rows": ["a"]}, "metadata_rows= needs one row per point: 2 points, 1 rows"),
    ({"metadata_rows": [("a", "b"), ("c",)], "metadata_header": ("x", "y")}, "row 1 has 1"),
    ({"metadata_header": ("only",)}, "metadata_header= names 1 column(s)"),
    ({"images": [np.zeros((2, 2), dtype=np.uint8)]}, "images= needs one image per point: 2 points, 1 images"),
])
def test_bad_arguments_are_clear_errors_and_write_nothing(tmp_path, arguments, message):
    given = {"vectors": np.ones((2, 3)), "metadata_rows": ["a", "b"], **arguments}
    with pytest.raises(ValueError, match=re.escape(message)):
        projector.write_projector(tmp_path / "out", **given)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_is_replaced_whole_and_kept_when_the_write_fails(tmp_path):
    folder = projector.write_projector(tmp_path / "out", np.ones((2, 2)), ["a", "b"],
                                       images=[np.zeros((2, 2), dtype=np.uint8)] * 2)
    projector.write_projector(folder, np.zeros((3, 2)), ["c", "d", "e"])
    tensor, lines, sprite, _ = _read_back(folder)
    assert tensor.shape == (3, 2) and lines == ["c", "d", "e"] and sprite is None  # no sprite left from before
    with pytest.raises(FileNotFoundError):
        projector.write_projector(folder, np.ones((1, 2)), ["f"], images=[tmp_path / "missing.png"])
    assert _read_back(folder)[1] == ["c", "d", "e"] and _leftovers(tmp_path) == []


def test_fne_projector_holds_every_image_as_the_exported_head_sees_it(fne_run, colours, tmp_path):
    """The fne_run's options with --projector (features from its cache): fne:fne, train then test."""
    from keras_tl.features.full_network_embedding import FNETransformer
    from keras_tl.jobs import fne

    run_dir = tmp_path / "run"
    assert fne.main(["--dataset", str(colours), "--weights", "none", "--image-size", "32", "--methods", "fne:fne",
                     "--quiet", "--projector", "--output-dir", str(run_dir),
                     "--cache-dir", str(fne_run.parent / "cache")]) == 0
    features = {split: np.load(fne_run / "features" / f"{split}.npy") for split in ("train", "test")}
    expected = FNETransformer().fit(features["train"]).transform(np.concatenate([features["train"],
                                                                                  features["test"]]))
    tensor, lines, sprite, config = _read_back(run_dir / "projector")
    assert np.array_equal(tensor, expected) and set(np.unique(tensor)) <= {-1, 0, 1}
    assert lines[0] == "label\tsplit\tfile" and len(lines) == 1 + 15 + 10
    assert lines[1].startswith("blue\ttrain\t") and lines[1].endswith("blue0.png")
    assert lines[-1].startswith("red\ttest\t") and lines[-1].endswith("red2.png")
    assert 'tensor_name: "mobilenet fne:fne"' in config and "single_image_dim: 32" in config
    for index in (0, 15, 24):  # a training image, the first test image, the last test image
        file = lines[1 + index].split("\t")[2]
        assert np.array_equal(_thumbnail_at(sprite, index, 32, 25), np.asarray(Image.open(file).convert("RGB")))


def _glove_file(tmp_path, write_file):
    return write_file(tmp_path / "tiny.txt", "the 1 2 3\nof 0.5 -1 2.25\ncat 4 5 6\ndog 4 5 7\nfrog -1 0 1\n")


def test_word_embeddings_projector_writes_the_first_words(tmp_path, write_file, capsys):
    from keras_tl.jobs import word_embeddings

    assert word_embeddings.main(["projector", "--words", "3", "--vectors", str(_glove_file(tmp_path, write_file)),
                                 "--quiet", "--output-dir", str(tmp_path / "run")]) == 0
    tensor, lines, sprite, config = _read_back(tmp_path / "run" / "projector")
    assert np.array_equal(tensor, [[1, 2, 3], [0.5, -1, 2.25], [4, 5, 6]]) and lines == ["the", "of", "cat"]
    assert sprite is None and "tensorboard --logdir" in capsys.readouterr().out


def test_word_embeddings_projector_of_a_list_leaves_unknown_words_out(tmp_path, write_file, capsys):
    from keras_tl.jobs import word_embeddings

    vectors = str(_glove_file(tmp_path, write_file))
    words = write_file(tmp_path / "words.txt", "frog\n\ncat\nkatze\ndog\n")
    with pytest.warns(UserWarning, match=r"words\.txt: 1 word\(s\) not in the vocabulary .*'katze' \(line 4\)"):
        assert word_embeddings.main(["projector", "--word-list", str(words), "--vectors", vectors, "--quiet",
                                     "--output-dir", str(tmp_path / "run")]) == 0
    tensor, lines, _, _ = _read_back(tmp_path / "run" / "projector")
    assert lines == ["frog", "cat", "dog"] and np.array_equal(tensor, [[-1, 0, 1], [4, 5, 6], [4, 5, 7]])
    capsys.readouterr()
    unknown = write_file(tmp_path / "unknown.txt", "katze\nhund\n")
    assert word_embeddings.main(["projector", "--word-list", str(unknown), "--vectors", vectors, "--quiet",
                                 "--output-dir", str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err.startswith("error: --word-list ") and not (tmp_path / "none").exists()
