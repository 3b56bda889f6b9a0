"""EfficientNet-Lite0 and SqueezeNet 1.1, imported offline from PyPI packages.

The Keras graphs are checked against an independent numpy forward pass written here straight
from the packaged arrays (PyTorch layout for EfficientNet-Lite0), then on two real photos.
"""
import collections
import io
import pickle
import sys
import types

import keras
import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from keras_tl import data, offline, sources
from keras_tl.offline import efficientnet_lite, squeezenet, torch_pickle

TEMPLE_LIKE = {832: "stupa", 538: "dome", 663: "monastery", 698: "palace", 442: "bell cote", 483: "castle"}
DAISY = 985


@pytest.fixture(scope="module")
def random_images():
    return np.random.default_rng(0).uniform(-1, 1, (2, 64, 64, 3)).astype("float32")


def top5(source_name):
    source = sources.get_source(source_name)
    model = source.build(include_top=True)
    photos = source.preprocess_input(data.sample_photos(source.default_size).astype("float32"))
    temple, flower = np.argsort(-model.predict(photos, verbose=0), axis=1)[:, :5]
    return set(temple.tolist()), set(flower.tolist())


def outputs(model, names, images):
    return keras.Model(model.input, [model.get_layer(name).output for name in names]).predict(images, verbose=0)


# ----------------------------------------------------------------------------- numpy reference


def windows(x, kernel, stride, padding):
    """(N, H, W, C) -> (N, H', W', C, k, k) patches; ``"same"`` pads like TensorFlow (extra at the end)."""
    if padding == "same":
        pads = []
        for size in x.shape[1:3]:
            total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
            pads.append((total // 2, total - total // 2))
        x = np.pad(x, [(0, 0), *pads, (0, 0)])
    return sliding_window_view(x, (kernel, kernel), axis=(1, 2))[:, ::stride, ::stride]


def torch_conv(x, weight, stride=1):
    """PyTorch-layout kernel (out, in, k, k), or depthwise (channels, 1, k, k), with TF "same" padding."""
    patches = windows(x, weight.shape[-1], stride, "same")
    if weight.shape[1] == 1 and weight.shape[0] == x.shape[-1] != 1:
        return np.einsum("nhwcij,cij->nhwc", patches, weight[:, 0])
    return np.einsum("nhwcij,ocij->nhwo", patches, weight)


def torch_batchnorm(x, state, key):
    scale = state[f"{key}.weight"] / np.sqrt(state[f"{key}.running_var"] + 1e-3)
    return (x - state[f"{key}.running_mean"]) * scale + state[f"{key}.bias"]


def lite0_reference(state, images):
    """EfficientNet-Lite0 in numpy from the PyTorch state dict: stem, first block and logits."""
    relu6 = lambda x: np.clip(x, 0, 6)  # noqa: E731
    x = relu6(torch_batchnorm(torch_conv(images.astype("float64"), state["_conv_stem.weight"], 2), state, "_bn0"))
    stem = x
    strides = [1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1]  # B0: the first block of stages 2, 3, 4 and 6
    for index, stride in enumerate(strides):
        block, inputs = f"_blocks.{index}", x
        if f"{block}._expand_conv.weight" in state:
            x = relu6(torch_batchnorm(torch_conv(x, state[f"{block}._expand_conv.weight"]), state, f"{block}._bn0"))
        x = relu6(torch_batchnorm(torch_conv(x, state[f"{block}._depthwise_conv.weight"], stride), state,
                                  f"{block}._bn1"))
        x = torch_batchnorm(torch_conv(x, state[f"{block}._project_conv.weight"]), state, f"{block}._bn2")
        if stride == 1 and x.shape == inputs.shape:
            x = x + inputs
        if index == 0:
            first_block = x
    x = relu6(torch_batchnorm(torch_conv(x, state["_conv_head.weight"]), state, "_bn1"))
    logits = x.mean(axis=(1, 2)) @ state["_fc.weight"].T + state["_fc.bias"]
    return stem, first_block, logits


def squeezenet_reference(arrays, images):
    """SqueezeNet 1.1 in numpy from the pickled Keras-layout arrays: conv1, the first fire module and logits."""
    def conv(x, name, stride=1, padding="same"):
        kernel, bias = arrays[name]
        patches = windows(x, kernel.shape[0], stride, padding)
        return np.maximum(np.einsum("nhwcij,ijco->nhwo", patches, kernel) + bias, 0)

    def max_pool(x):
        return windows(x, 3, 2, "valid").max(axis=(-2, -1))

    def fire(x, number):
        squeezed = conv(x, f"fire{number}/squeeze1x1")
        return np.concatenate([conv(squeezed, f"fire{number}/expand{size}x{size}") for size in (1, 3)], axis=-1)

    x = conv1 = conv(images.astype("float64"), "conv1", 2, "valid")
    x = fire2 = fire(max_pool(x), 2)
    for number in range(3, 10):
        x = fire(x, number)
        if number in (3, 5):
            x = max_pool(x)
    return conv1, fire2, conv(x, "conv10").mean(axis=(1, 2))


# ----------------------------------------------------------------------------- EfficientNet-Lite0


def test_efficientnet_lite0_matches_a_numpy_forward_pass_of_the_pytorch_arrays(random_images):
    model = efficientnet_lite.EfficientNetLite0(input_shape=(64, 64, 3))
    assert model.count_params() == efficientnet_lite.PARAMETERS
    expected = lite0_reference(efficientnet_lite.read_state_dict(), random_images)
    got = outputs(model, ["stem_activation", "block1a_project_bn", "logits"], random_images)
    for name, want, have in zip(("stem", "block1a", "logits"), expected, got):
        assert want.shape == have.shape, name
        assert np.max(np.abs(want - have)) < 1e-4 * max(1.0, np.max(np.abs(want))), name


def test_efficientnet_lite0_sees_a_daisy_and_a_temple():
    temple, flower = top5("efficientnet_lite0")
    assert DAISY in flower
    assert temple & set(TEMPLE_LIKE)


def test_efficientnet_lite0_in_the_registry_has_relu6_layer_sets_at_any_size():
    source = sources.get_source("EfficientNetLite0")
    assert source is sources.get_source("efficientnet_lite0") and source.default_size == 224
    np.testing.assert_allclose(source.preprocess_input(np.array([0.0, 127.5, 255.0], "float32")), [-1, 0, 1])
    model = source.build(image_size=96)
    assert isinstance(model, keras.Model) and model.input_shape == (None, 96, 96, 3)
    fne = sources.layer_names(model, "fne")
    assert len(fne) == 1 + 15 + 16 + 1 and all(isinstance(model.get_layer(name), keras.layers.ReLU) for name in fne)
    assert sources.layer_names(model, "last") == ["top_activation"] and sources.layer_names(model, "conv") == fne
    trained = efficientnet_lite.EfficientNetLite0(include_top=False)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model.get_layer("block3b_dwconv").kernel),
                                  keras.ops.convert_to_numpy(trained.get_layer("block3b_dwconv").kernel))
    inputs = keras.Input((96, 96, 3))  # as in a fine-tuning head: the base called as one layer
    head = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(model(inputs))))
    assert head.output_shape == (None, 3)


# ----------------------------------------------------------------------------- SqueezeNet 1.1


def test_squeezenet_matches_a_numpy_forward_pass_of_the_pickled_arrays(random_images):
    model = squeezenet.SqueezeNet1_1(input_shape=(64, 64, 3))
    assert model.count_params() == squeezenet.PARAMETERS
    images = random_images * 128  # the Caffe input scale
    expected = squeezenet_reference(squeezenet.read_arrays(), images)
    got = outputs(model, ["conv1_relu", "fire2_concat", "avg_pool"], images)
    for name, want, have in zip(("conv1", "fire2", "logits"), expected, got):
        assert want.shape == have.shape, name
        assert np.max(np.abs(want - have)) < 1e-4 * max(1.0, np.max(np.abs(want))), name


def test_squeezenet_sees_a_temple_and_lives_in_the_registry():
    temple, _flower = top5("squeezenet1_1")
    assert temple & set(TEMPLE_LIKE)
    source = sources.get_source("squeezenet1_1")
    assert source.default_size == 227
    # Caffe preprocessing: RGB -> BGR, minus the BGR mean.
    np.testing.assert_allclose(source.preprocess_input(np.array([[10.0, 20.0, 30.0]], "float32")),
                               [[30 - 104.006, 20 - 116.669, 10 - 122.679]], rtol=1e-6)
    model = source.build(image_size=64)
    assert sources.layer_names(model, "last") == ["fire9_expand3x3_relu"]
    assert len(sources.layer_names(model, "fne")) == 1 + 8 * 3
    with pytest.raises(ValueError, match="minimum of 32"):
        source.build(weights=None, image_size=31)


# ----------------------------------------------------------------------------- files and folders


def legacy_torch_bytes(monkeypatch, tensors):
    """A legacy ``torch.save`` file, written without PyTorch: stand-in ``torch`` globals and persistent ids.

    ``tensors``: ``{name: (flat storage values, dtype, offset, shape, strides)}``, one storage each.
    """
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called while writing")

    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    storage_classes = {"<f4": "FloatStorage", "<i8": "LongStorage"}
    for class_name in storage_classes.values():
        setattr(torch, class_name, type(class_name, (), {"__module__": "torch"}))
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)

    class Storage:
        def __init__(self, key, values):
            self.key, self.values = key, values

    class Tensor:
        def __init__(self, storage, offset, shape, strides):
            self.args = (storage, offset, shape, strides, False, collections.OrderedDict())

        def __reduce__(self):
            return _rebuild_tensor_v2, self.args

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, Storage):
                storage_type = getattr(torch, storage_classes[obj.values.dtype.str])
                return "storage", storage_type, obj.key, "cpu", obj.values.size, None
            return None

    state, storages = collections.OrderedDict(), []
    for key, (values, dtype, offset, shape, strides) in enumerate(tensors.values()):
        storages.append(Storage(str(key), np.asarray(values, dtype)))
        state[list(tensors)[key]] = Tensor(storages[-1], offset, shape, strides)
    file = io.BytesIO()
    for header in (torch_pickle.MAGIC_NUMBER, torch_pickle.PROTOCOL_VERSION, {"little_endian": True}):
        pickle.dump(header, file, protocol=2)
    Pickler(file, protocol=2).dump(state)
    pickle.dump([storage.key for storage in reversed(storages)], file, protocol=2)  # any order: the list decides
    for storage in reversed(storages):
        file.write(np.int64(storage.values.size).tobytes() + storage.values.tobytes())
    return file.getvalue()


def test_torch_reader_honours_offsets_and_strides_of_non_contiguous_tensors(monkeypatch):
    wanted = np.arange(6, dtype="float32").reshape(2, 3)
    stored_transposed = np.concatenate([[99, 99], wanted.T.ravel()])  # two elements before the tensor starts
    data = legacy_torch_bytes(monkeypatch, {"kernel": (stored_transposed, "<f4", 2, (2, 3), (1, 2)),
                                            "count": ([7], "<i8", 0, (), ())})
    monkeypatch.undo()  # reading needs no torch module, not even a stand-in
    state = torch_pickle.read_legacy_torch_file(data)
    np.testing.assert_array_equal(state["kernel"], wanted)
    assert state["kernel"].flags["C_CONTIGUOUS"] and state["count"] == 7 and state["count"].dtype == np.int64
    np.testing.assert_array_equal(stored_transposed[2:].reshape(2, 3), [[0, 3, 1], [4, 2, 5]])  # what a reshape gives


def test_torch_reader_reads_views_that_end_on_the_last_element_broadcast_or_are_scalars(monkeypatch):
    storage = np.arange(6, dtype="float32")
    data = legacy_torch_bytes(monkeypatch, {"corner": (storage, "<f4", 1, (2, 2), (1, 3)),  # reads 1, 2, 4, 5
                                            "repeated": (storage, "<f4", 5, (3, 2), (0, 0)),  # expand() of one value
                                            "scalar": (storage, "<f4", 5, (), ())})
    monkeypatch.undo()
    state = torch_pickle.read_legacy_torch_file(data)
    np.testing.assert_array_equal(state["corner"], [[1, 4], [2, 5]])
    np.testing.assert_array_equal(state["repeated"], np.full((3, 2), 5))
    assert state["scalar"].shape == () and state["scalar"] == 5


@pytest.mark.parametrize("offset, shape, strides, message", [
    (3, (1,), (1,), r"offset 3, shape \(1,\), strides \(1,\)\) in a storage of 3 elements reads element 3, past"),
    (4, (), (), r"reads element 4, past the end of its storage"),
    (0, (2, 2), (2, 1), r"shape \(2, 2\), strides \(2, 1\)\) in a storage of 3 elements reads element 3"),
    (0, (2,), (5,), r"reads element 5"),
    (2, (3,), (-1,), r"should be integers of 0 or more"),
    (-1, (1,), (1,), r"should be integers of 0 or more"),
    (0, (True,), (1,), r"should be integers of 0 or more"),
    (0, (3,), (1.0,), r"should be integers of 0 or more"),
    (0, (3,), (), r"shape and strides should have as many entries as the tensor has axes"),
])
def test_torch_reader_refuses_views_outside_their_storage(monkeypatch, offset, shape, strides, message):
    data = legacy_torch_bytes(monkeypatch, {"kernel": ([1, 2, 3], "<f4", offset, shape, strides)})
    monkeypatch.undo()
    with pytest.raises(ValueError, match=rf"^Tensor 'kernel' \(.*{message}"):
        torch_pickle.read_legacy_torch_file(data)


def test_torch_reader_refuses_truncated_storages(monkeypatch):
    data = legacy_torch_bytes(monkeypatch, {"kernel": (np.arange(4), "<f4", 0, (4,), (1,))})
    monkeypatch.undo()
    assert torch_pickle.read_legacy_torch_file(data)["kernel"].tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match=r"Storage '0' should hold 4 elements of 4 bytes \(16 bytes\); the file has "
                                         r"12: it is truncated"):
        torch_pickle.read_legacy_torch_file(data[:-4])
    with pytest.raises(ValueError, match=r"The file ends before storage '0' \(4 elements\); it is truncated"):
        torch_pickle.read_legacy_torch_file(data[:-16 - 4])
    with pytest.raises(ValueError, match=r"Storage '0' holds -1 elements; the state dict expects 4"):
        torch_pickle.read_legacy_torch_file(data[:-24] + np.int64(-1).tobytes() + data[-16:])


def test_torch_reader_refuses_a_storage_list_or_type_that_does_not_match_the_tensors(monkeypatch):
    data = legacy_torch_bytes(monkeypatch, {"kernel": ([1, 2], "<f4", 0, (2,), (1,))})
    monkeypatch.undo()
    listed, values = pickle.dumps(["0"], protocol=2), data[-16:]
    assert data.endswith(listed + values)
    with pytest.raises(ValueError, match=r"Tensor 'kernel' uses a storage that is not in the file's list"):
        torch_pickle.read_legacy_torch_file(data.replace(listed + values, pickle.dumps([], protocol=2)))
    with pytest.raises(ValueError, match=r"Storage '1' is in the file's list of storages, but no tensor uses it"):
        torch_pickle.read_legacy_torch_file(data.replace(listed, pickle.dumps(["1"], protocol=2)))
    with pytest.raises(pickle.UnpicklingError, match=r"unsupported persistent id .*OrderedDict"):  # not a storage type
        torch_pickle.read_legacy_torch_file(data.replace(b"ctorch\nFloatStorage\n", b"ccollections\nOrderedDict\n"))


def test_pickles_may_build_arrays_but_nothing_else():
    class Evil:
        def __reduce__(self):
            return print, ("this should never run",)

    with pytest.raises(pickle.UnpicklingError, match="refusing to load .*print"):
        torch_pickle.read_legacy_torch_file(pickle.dumps(Evil(), protocol=2))


def test_second_build_reads_the_converted_file_not_the_package(monkeypatch):
    efficientnet_lite.EfficientNetLite0(include_top=False)  # the conversion exists after this

    def no_package(*args, **kwargs):
        raise AssertionError("the package was needed again")

    monkeypatch.setattr(efficientnet_lite, "read_packaged_file", no_package)
    monkeypatch.setattr(offline, "_writable", no_package)  # so a read-only folder holding the file is fine
    assert efficientnet_lite.EfficientNetLite0(include_top=False, input_shape=(48, 48, 3)).output_shape[-1] == 1280


def test_unwritable_models_folder_without_the_file_says_where_and_how(monkeypatch, tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where KERAS_HOME should be a folder")
    monkeypatch.setenv("KERAS_HOME", str(blocker))
    with pytest.raises(sources.WeightsUnavailableError) as error:
        sources.get_source("squeezenet1_1").build()
    assert isinstance(error.value, FileNotFoundError)
    message = str(error.value)
    assert str(blocker / "models" / squeezenet.WEIGHTS_FILE) in message
    assert "KERAS_HOME" in message and "python -m keras_tl.offline --source squeezenet1_1" in message
    assert offline.keras_models_dir() == blocker / "models"
