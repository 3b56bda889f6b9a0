import gzip
import os
import pickle
import struct

import numpy as np
import pytest
from PIL import Image

from keras_tl import data


def _save(path, colour=(200, 30, 30), mode="RGB", size=(20, 16), fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour).save(path, format=fmt)
    return path


def _class_tree(root, classes=("cat", "dog"), per_class=4):
    for index, name in enumerate(classes):
        for image in range(per_class):
            _save(root / name / f"{image}.png", colour=(index * 100, 50, image * 10))
    return root


def test_bad_files_are_skipped_with_one_warning_naming_them(tmp_path):
    root = _class_tree(tmp_path / "photos", per_class=4)
    (root / "cat" / "empty.jpg").write_bytes(b"")
    (root / "cat" / "notes.png").write_text("not an image at all")
    good_jpeg = _save(tmp_path / "good.jpg", fmt="JPEG", size=(64, 64)).read_bytes()
    (root / "dog" / "truncated.jpg").write_bytes(good_jpeg[: len(good_jpeg) // 2])
    good_png = (root / "dog" / "0.png").read_bytes()
    (root / "dog" / "corrupt.png").write_bytes(good_png[:40] + b"\x00" * 20 + good_png[60:])
    with pytest.warns(UserWarning, match="Skipping 4 unreadable") as caught:
        dataset = data.load_dataset(root, test_fraction=0.5, seed=1)
    assert len(caught) == 1 and caught[0].filename == __file__  # points at the caller's line
    message = str(caught[0].message)
    for name in ("empty.jpg", "notes.png", "truncated.jpg", "corrupt.png"):
        assert name in message
    assert len(dataset.train) + len(dataset.test) == 8
    assert dataset.class_names == ["cat", "dog"]


def test_empty_class_folder_is_an_error_before_any_work(tmp_path):
    root = _class_tree(tmp_path / "photos")
    (root / "zebra").mkdir()
    with pytest.raises(ValueError, match="no images under .*zebra"):
        data.load_dataset(root)


def test_train_and_test_with_different_classes_are_refused(tmp_path):
    _class_tree(tmp_path / "set" / "train", classes=("cat", "dog"))
    _class_tree(tmp_path / "set" / "test", classes=("cat", "cow"))
    with pytest.raises(ValueError, match=r"only in train: \['dog'\]; only in test: \['cow'\]"):
        data.load_dataset(tmp_path / "set")


def test_a_single_class_is_refused(tmp_path):
    root = _class_tree(tmp_path / "one", classes=("cat",))
    with pytest.raises(ValueError, match="1 class .*'cat'.*at least 2: one sub-folder of images per class"):
        data.load_dataset(root)


def test_train_test_folders_keep_their_split(tmp_path):
    _class_tree(tmp_path / "set" / "train", per_class=3)
    _class_tree(tmp_path / "set" / "test", per_class=2)
    dataset = data.load_dataset(tmp_path / "set")
    assert (len(dataset.train), len(dataset.test)) == (6, 4)
    assert list(dataset.test.labels) == [0, 0, 1, 1]


def test_mit67_style_split_lists(tmp_path):
    root = tmp_path / "mit"
    _class_tree(root / "Images", classes=("bar", "kitchen"), per_class=3)
    (root / "TrainImages.txt").write_text("bar/0.png\nbar/1.png\nkitchen/0.png\nkitchen/1.png\n")
    (root / "TestImages.txt").write_text("bar/2.png\nkitchen/2.png\n")
    dataset = data.load_dataset(root)
    assert dataset.class_names == ["bar", "kitchen"]
    assert list(dataset.train.labels) == [0, 0, 1, 1] and list(dataset.test.labels) == [0, 1]
    assert dataset.test.paths[1].endswith("Images/kitchen/2.png")


def test_seeded_stratified_split_is_repeatable_and_balanced(tmp_path):
    root = _class_tree(tmp_path / "photos", per_class=10)
    first = data.load_dataset(root, test_fraction=0.3, seed=7)
    again = data.load_dataset(root, test_fraction=0.3, seed=7)
    assert list(first.test.paths) == list(again.test.paths)
    assert np.bincount(first.test.labels).tolist() == [3, 3]


def test_grey_rgba_palette_and_cmyk_become_rgb(tmp_path):
    grey = _save(tmp_path / "grey.png", colour=128, mode="L")
    transparent = _save(tmp_path / "clear.png", colour=(10, 20, 30, 0), mode="RGBA")
    cmyk = _save(tmp_path / "cmyk.jpg", colour=(0, 255, 255, 0), mode="CMYK", fmt="JPEG")
    palette = Image.new("P", (8, 8), 0)
    palette.putpalette([0, 0, 255] + [0] * 765)
    palette.save(tmp_path / "palette.gif")
    assert data.load_image(grey, 12).shape == (12, 12, 3)
    np.testing.assert_array_equal(data.load_image(grey, 4)[0, 0], [128, 128, 128])
    np.testing.assert_array_equal(data.load_image(transparent, 4)[0, 0], [255, 255, 255])  # on white
    red = data.load_image(cmyk, 4)[2, 2]
    assert red[0] > 200 and red[1] < 60 and red[2] < 60
    np.testing.assert_array_equal(data.load_image(tmp_path / "palette.gif", 4)[1, 1], [0, 0, 255])


def test_idx_reader(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / "images-idx3-ubyte.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(struct.pack(">HBB3I", 0, 8, 3, 2, 3, 4) + images.tobytes())
    np.testing.assert_array_equal(data.read_idx(path), images)
    bad = tmp_path / "short-idx1-ubyte"
    bad.write_bytes(struct.pack(">HBB1I", 0, 8, 1, 5) + b"\x01\x02")
    with pytest.raises(ValueError, match="holds 2 values"):
        data.read_idx(bad)


def test_pipeline_from_files_resizes_preprocesses_and_keeps_order(tmp_path):
    root = _class_tree(tmp_path / "photos", per_class=3)
    dataset = data.load_dataset(root, test_fraction=0.5, seed=0)
    batches = list(data.make_pipeline(dataset.train, 32, preprocess=lambda x: x / 255.0, batch_size=2))
    images = np.concatenate([np.asarray(batch[0]) for batch in batches])
    labels = np.concatenate([np.asarray(batch[1]) for batch in batches])
    assert images.shape == (len(dataset.train), 32, 32, 3) and images.dtype == np.float32
    assert labels.tolist() == dataset.train.labels.tolist()
    assert 0.0 <= images.min() and images.max() <= 1.0
    expected = data.load_image(dataset.train.paths[0], 32) / 255.0
    np.testing.assert_allclose(images[0], expected, atol=1e-6)


def test_pipeline_from_grey_arrays_gives_rgb():
    image_set = data.ImageSet(labels=np.array([0, 1, 1]), images=np.full((3, 28, 28), 255, dtype=np.uint8))
    images, labels = next(iter(data.make_pipeline(image_set, 40, batch_size=8)))
    assert tuple(images.shape) == (3, 40, 40, 3)
    np.testing.assert_allclose(np.asarray(images), 255.0, atol=1e-3)
    assert np.asarray(labels).tolist() == [0, 1, 1]


def test_animal_mnist_default_dataset_and_per_class_subsets():
    dataset = data.load_dataset("animal_mnist", train_per_class=5, test_per_class=2, seed=3)
    assert dataset.class_names[:3] == ["bear", "bird", "cat"] and len(dataset.class_names) == 10
    assert np.bincount(dataset.train.labels).tolist() == [5] * 10
    assert dataset.test.images.shape == (20, 28, 28)
    full = data.load_dataset("animal_mnist")
    assert len(full.train) + len(full.test) == 9716  # 10,000 less 284 exact duplicates
    assert not set(map(bytes, full.train.images[:50])) & set(map(bytes, full.test.images))


class _RunsCode:
    """Pickled, it asks the loader to call ``os.system`` (which writes ``marker``)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("content, message", [("code", r"posix\.system"), ("cut", "Compressed file ended"),
                                              ("list", "it holds a value of type list, not an array")])
def test_animal_mnist_data_that_is_not_an_array_is_refused_without_running_it(content, message, tmp_path, monkeypatch):
    from keras_tl.data import packaged

    marker = tmp_path / "ran"
    contents = {"code": gzip.compress(pickle.dumps(_RunsCode(marker))), "list": gzip.compress(pickle.dumps([1, 2])),
                "cut": gzip.compress(pickle.dumps(np.zeros((4, 28, 28), np.uint8)))[:-20]}
    data_file = tmp_path / packaged.ANIMAL_MNIST_FILES[0]
    data_file.write_bytes(contents[content])
    monkeypatch.setattr(packaged, "animal_mnist_folder", lambda: tmp_path)
    with pytest.raises(ValueError, match=rf"^{data_file} is not Animal-MNIST's data as published \(.*{message}"):
        data.load_dataset("animal_mnist")
    assert not marker.exists()


def test_unknown_dataset_names_the_choices():
    with pytest.raises(FileNotFoundError, match="animal_mnist, fashion_mnist, openclipart"):
        data.load_dataset("imagenet_tiny")


# ----------------------------------------------------------------------------- real-world files


def _photo_jpeg(path, seed=0):
    """A JPEG of smooth noise (so that its entropy-coded data is long), 96x96 pixels."""
    noise = np.random.default_rng(seed).integers(0, 255, (24, 24, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(noise).resize((96, 96), Image.BILINEAR).save(path, quality=90)
    return path


def _damaged_jpegs(good, folder):
    """Two damaged copies of ``good``, headers intact: cut to 60 %, and 8 bytes mid-scan set to 0xFF."""
    data_bytes = good.read_bytes()
    middle = (data_bytes.index(b"\xff\xda") + len(data_bytes)) // 2  # halfway through the entropy-coded data
    folder.mkdir(parents=True, exist_ok=True)
    truncated, flipped = folder / "truncated.jpg", folder / "flipped.jpg"
    truncated.write_bytes(data_bytes[: int(len(data_bytes) * 0.6)])
    flipped.write_bytes(data_bytes[:middle] + b"\xff" * 8 + data_bytes[middle + 8:])
    return truncated, flipped


def test_damaged_jpegs_pass_pillow_verify_but_fail_the_decode_check(tmp_path):
    good = _photo_jpeg(tmp_path / "good.jpg")
    truncated, flipped = _damaged_jpegs(good, tmp_path)
    for path in (truncated, flipped):
        with Image.open(path) as image:
            image.verify()  # the old check: no error
    bad = data.find_unreadable_images([good, truncated, flipped])
    assert sorted(bad) == [str(flipped), str(truncated)]
    assert "truncated" in bad[str(truncated)] and bad[str(flipped)].startswith("OSError")


def test_pipeline_runs_end_to_end_over_good_and_damaged_files(tmp_path):
    root = tmp_path / "photos"
    for index in range(4):
        _photo_jpeg(root / "cat" / f"{index}.jpg", seed=index)
        _photo_jpeg(root / "dog" / f"{index}.jpg", seed=10 + index)
    truncated, flipped = _damaged_jpegs(root / "cat" / "0.jpg", root / "dog")
    with pytest.warns(UserWarning, match="Skipping 2 unreadable"):
        dataset = data.load_dataset(root, test_fraction=0.25, seed=0, verbose=False)
    assert [path for path, _ in dataset.skipped] == [str(flipped), str(truncated)]
    assert "2 unreadable file(s) skipped" in dataset.summary()
    for image_set in (dataset.train, dataset.test):
        batches = list(data.make_pipeline(image_set, 32, batch_size=3))
        labels = np.concatenate([np.asarray(batch[1]) for batch in batches])
        assert labels.tolist() == image_set.labels.tolist()
    assert len(dataset.train) + len(dataset.test) == 8
    unchecked = data.ImageSet(labels=np.array([0, 1]), paths=np.array([str(root / "cat" / "1.jpg"), str(truncated)]))
    with pytest.raises(Exception, match="Cannot decode .*truncated.jpg"):  # without the check: the error names it
        list(data.make_pipeline(unchecked, 32, batch_size=2))


def test_16_bit_grey_png_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 65535], [257 * 100, 257 * 200]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode == "I;16"
    image = np.asarray(data.decode_image(tmp_path / "deep.png"))
    np.testing.assert_array_equal(image[..., 0], [[0, 255], [100, 200]])
    np.testing.assert_array_equal(image[..., 0], image[..., 2])  # grey: equal channels


def test_float_tiff_is_read_as_0_to_1_or_stretched_from_its_own_range(tmp_path):
    Image.fromarray(np.array([[0.0, 1.0], [0.5, 0.2]], dtype=np.float32)).save(tmp_path / "unit.tif")
    Image.fromarray(np.array([[-1.0, 3.0], [1.0, 0.0]], dtype=np.float32)).save(tmp_path / "wide.tif")
    Image.fromarray(np.array([[0.0, np.nan]], dtype=np.float32)).save(tmp_path / "nan.tif")
    np.testing.assert_array_equal(np.asarray(data.decode_image(tmp_path / "unit.tif"))[..., 1], [[0, 255], [128, 51]])
    np.testing.assert_array_equal(np.asarray(data.decode_image(tmp_path / "wide.tif"))[..., 1], [[0, 255], [128, 64]])
    assert "NaN" in data.find_unreadable_images([tmp_path / "nan.tif"])[str(tmp_path / "nan.tif")]


def test_hidden_files_and_folders_are_never_data(tmp_path):
    root = _class_tree(tmp_path / ".datasets" / "photos", per_class=2)  # a hidden folder above the root is fine
    _save(root / "cat" / ".hidden.png")
    _save(root / "cat" / ".ipynb_checkpoints" / "0-checkpoint.png")
    _save(root / "dog" / "more" / ".thumbs" / "1.png")
    _save(root / ".ipynb_checkpoints" / "2.png")
    _save(root / "dog" / "more" / "2.png")
    dataset = data.load_dataset(root, test_fraction=0.5, seed=0)
    assert dataset.class_names == ["cat", "dog"]
    paths = sorted(os.path.relpath(path, root) for path in [*dataset.train.paths, *dataset.test.paths])
    assert paths == ["cat/0.png", "cat/1.png", "dog/0.png", "dog/1.png", "dog/more/2.png"]


def test_a_class_whose_only_file_is_damaged_is_an_error_naming_it(tmp_path):
    root = _class_tree(tmp_path / "photos")
    (root / "zebra").mkdir()
    (root / "zebra" / "only.png").write_bytes((root / "cat" / "0.png").read_bytes()[:30])
    with pytest.warns(UserWarning, match="only.png"), pytest.raises(ValueError, match=r"class\(es\) zebra under"):
        data.load_dataset(root)


def test_split_lists_with_backslashes_crlf_blank_lines_and_duplicates(tmp_path):
    root = tmp_path / "mit"
    _class_tree(root / "Images", classes=("bar", "kitchen"), per_class=3)
    (root / "TrainImages.txt").write_bytes(b"bar\\0.png\r\nbar\\1.png\r\n\r\n  \r\nbar\\0.png\r\n"
                                           b"kitchen\\0.png\r\nkitchen/1.png\r\nkitchen\\1.png\r\n")
    (root / "TestImages.txt").write_bytes(b"\xef\xbb\xbfbar\\2.png\r\nkitchen\\2.png")  # with a UTF-8 BOM
    with pytest.warns(UserWarning, match="TrainImages.txt: dropped 2 duplicate") as caught:
        dataset = data.load_dataset(root)
    assert len(caught) == 1 and caught[0].filename == __file__
    assert dataset.class_names == ["bar", "kitchen"]
    assert [os.path.relpath(path, root) for path in dataset.train.paths] == [
        "Images/bar/0.png", "Images/bar/1.png", "Images/kitchen/0.png", "Images/kitchen/1.png"]
    assert list(dataset.train.labels) == [0, 0, 1, 1] and list(dataset.test.labels) == [0, 1]


def test_decode_check_is_cached_and_redone_when_a_file_changes(tmp_path, decode_cache, monkeypatch):
    root = _class_tree(tmp_path / "photos", per_class=3)
    decoded = []
    original = data.decode_image
    monkeypatch.setattr("keras_tl.data.images.decode_image", lambda path: decoded.append(str(path)) or original(path))
    first = data.load_dataset(root, test_fraction=0.5, seed=0)
    assert len(decoded) == 6 and (decode_cache / "decode_check.json").is_file()
    again = data.load_dataset(root, test_fraction=0.5, seed=0)
    assert len(decoded) == 6 and list(again.train.paths) == list(first.train.paths)
    touched = root / "dog" / "2.png"
    os.utime(touched, ns=(os.stat(touched).st_atime_ns, os.stat(touched).st_mtime_ns + 10**9))
    data.load_dataset(root, test_fraction=0.5, seed=0)
    assert decoded[6:] == [str(touched)]


def test_a_cache_that_cannot_be_written_only_warns(tmp_path, monkeypatch):
    root = _class_tree(tmp_path / "photos", per_class=2)
    (tmp_path / "a_file").write_text("")
    monkeypatch.setenv("KERAS_TL_CACHE", str(tmp_path / "a_file" / "cache"))
    with pytest.warns(UserWarning, match="Could not write the decode-check cache"):
        dataset = data.load_dataset(root, test_fraction=0.5, seed=0)
    assert len(dataset.train) + len(dataset.test) == 4 and dataset.skipped == []


def test_empty_folders_and_folders_without_images_say_what_was_expected(tmp_path):
    (tmp_path / "empty" / ".ipynb_checkpoints").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="Expected class sub-folders of images .* found nothing"):
        data.load_dataset(tmp_path / "empty")
    _save(tmp_path / "loose" / "a.png")
    _save(tmp_path / "loose" / "b.png")
    with pytest.raises(FileNotFoundError, match=r"found 2 image\(s\) but no sub-folders \(a.png, b.png\)"):
        data.load_dataset(tmp_path / "loose")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("hello")
    with pytest.raises(FileNotFoundError, match="no sub-folders and no image files, only: readme.txt"):
        data.load_dataset(tmp_path / "notes")
    for name in ("cat", "dog"):
        (tmp_path / "text" / name).mkdir(parents=True)
        (tmp_path / "text" / name / "notes.txt").write_text("no pictures")
    with pytest.raises(ValueError, match="no images under .*text: cat, dog"):
        data.load_dataset(tmp_path / "text")


def test_one_file_linked_into_two_classes_is_left_out_with_one_warning(tmp_path):
    """Debian's openclipart-png links one picture into several category folders: its label is ambiguous."""
    root = _class_tree(tmp_path / "photos", per_class=3)
    (root / "dog" / "shared.png").symlink_to(root / "cat" / "0.png")  # one picture, two classes
    (root / "dog" / "again.png").symlink_to(root / "dog" / "1.png")  # a second path to a picture of the same class
    (root / "cat" / "sub").mkdir()
    (root / "cat" / "sub" / "2.png").symlink_to(root / "cat" / "2.png")
    with pytest.warns(UserWarning, match="Leaving out 2 file") as caught:
        dataset = data.load_dataset(root, test_fraction=0.5, seed=0)
    assert len(caught) == 1 and "(in cat, dog)" in str(caught[0].message)
    paths = sorted(os.path.relpath(path, root) for path in [*dataset.train.paths, *dataset.test.paths])
    assert paths == ["cat/1.png", "cat/2.png", "dog/0.png", "dog/1.png", "dog/2.png"]


# ---------------------------------------------------------------------- untrusted split lists, links, degenerate splits
@pytest.mark.parametrize("entry", ["../outside/0.png", "/etc/passwd", "bar/../../0.png", "C:/x/0.png"])
def test_split_list_entries_that_leave_the_dataset_folder_are_an_error(tmp_path, entry):
    root = tmp_path / "mit"
    _class_tree(root / "Images", classes=("bar", "kitchen"), per_class=2)
    (root / "TrainImages.txt").write_text(f"bar/0.png\n{entry}\nkitchen/0.png\n")
    (root / "TestImages.txt").write_text("bar/1.png\nkitchen/1.png\n")
    with pytest.raises(ValueError, match="line.s. that leave the dataset folder.*no absolute paths, no '..'"):
        data.load_dataset(root)


def test_links_that_lead_nowhere_are_named_in_a_warning(tmp_path):
    root = _class_tree(tmp_path / "photos", per_class=3)
    (root / "cat" / "loop.png").symlink_to(root / "cat" / "loop.png")
    (root / "cat" / "gone.png").symlink_to(tmp_path / "deleted.png")
    with pytest.warns(UserWarning, match=r"Leaving out 2 link\(s\) .* that lead to no file .*gone.png, .*loop.png"):
        dataset = data.load_dataset(root)
    assert len(dataset.train) + len(dataset.test) == 6


def test_classes_left_without_a_train_or_test_image_are_a_warning_and_counts_are_in_the_summary():
    dataset = data.ImageDataset("tiny", ["cat", "dog", "cow"], data.ImageSet(labels=np.array([0, 0, 1, 2])),
                                data.ImageSet(labels=np.array([0, 1, 1])))
    assert dataset.class_counts() == {"cat": (2, 1), "dog": (1, 2), "cow": (1, 0)}
    assert dataset.summary() == "tiny: 3 classes, 4 train and 3 test images (per class: 1-2 train, 0-2 test)"
    with pytest.warns(UserWarning, match=r"1 class\(es\) with no train or no test image .*: cow \(1 train, 0 test\)"):
        dataset.warn_degenerate_classes()


def test_unknown_dataset_names_suggest_the_close_ones():
    with pytest.raises(FileNotFoundError, match="Did you mean animal_mnist"):
        data.load_dataset("animal_mnst")


def test_the_split_error_names_the_fraction_its_caller_set():
    with pytest.raises(ValueError, match="change test_fraction= or use more images"):
        data.stratified_split(np.repeat([0, 1, 2], 2), 0.2, seed=0)
    with pytest.raises(ValueError, match="change validation_fraction= or use more images"):
        data.split_validation(data.ImageSet(labels=np.repeat([0, 1, 2], 2)), 0.2, seed=0)


@pytest.mark.parametrize("sizes, message", [({"image_size": 100_000}, "image_size=100000 is outside 1..4096"),
                                            ({"batch_size": 0}, "batch_size=0 is outside 1..4096")])
def test_sizes_that_would_exhaust_memory_are_refused_before_any_work(sizes, message):
    with pytest.raises(ValueError, match=message):
        data.make_pipeline(data.ImageSet(labels=np.zeros(1, int), images=np.zeros((1, 4, 4), np.uint8)),
                           **{"image_size": 8, "batch_size": 1, **sizes})


def test_concatenate_joins_image_sets_in_order_of_files_in_memory_or_multi_hot():
    on_disk = [data.ImageSet(labels=np.array([0, 1]), paths=np.array(["a.png", "b.png"])),
               data.ImageSet(labels=np.array([2]), paths=np.array(["c.png"]))]
    joined = data.ImageSet.concatenate(on_disk)
    assert joined.labels.tolist() == [0, 1, 2] and joined.paths.tolist() == ["a.png", "b.png", "c.png"]
    assert joined.images is None
    in_memory = [data.ImageSet(labels=np.eye(3, dtype=int)[:2], images=np.zeros((2, 4, 4), np.uint8)),
                 data.ImageSet(labels=np.eye(3, dtype=int)[2:], images=np.ones((1, 4, 4), np.uint8))]
    joined = data.ImageSet.concatenate(in_memory)
    assert joined.multi_label and joined.labels.tolist() == np.eye(3, dtype=int).tolist()
    assert joined.paths is None and joined.images[:, 0, 0].tolist() == [0, 0, 1]
