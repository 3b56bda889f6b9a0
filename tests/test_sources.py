import dataclasses

import keras
import numpy as np
import pytest

from keras_tl import data, sources
from keras_tl.offline import mobilenet, write_legacy_h5


@pytest.fixture(scope="module")
def imagenet_mobilenet():
    return sources.get_source("mobilenet").build(include_top=True)


def test_vgg16_full_network_embedding_has_12416_dimensions():
    model = sources.get_source("vgg16").build(weights=None, include_top=True)
    names = sources.layer_names(model, "fne")
    assert len(names) == 15 and names[-2:] == ["fc1", "fc2"]
    assert sources.feature_size(model, "fne") == 4224 + 4096 + 4096 == 12416  # 13 conv layers, fc1, fc2
    assert sources.layer_names(model, "last") == ["block5_conv3"]
    assert sources.layer_names(model, "fc") == ["fc1", "fc2"]


def test_mobilenet_without_top_has_27_relu_layers_and_10944_dimensions():
    model = sources.get_source("MobileNet").build(weights=None, image_size=64)
    names = sources.layer_names(model, "fne")
    assert len(names) == 27 and all(name.endswith("relu") for name in names)
    assert sources.feature_size(model, "fne") == 10944
    info = sources.feature_info(model, ["conv1_relu", "conv_pw_13_relu"])
    assert info == [{"name": "conv1_relu", "channels": 32, "reduction": 2},
                    {"name": "conv_pw_13_relu", "channels": 1024, "reduction": 32}]


def test_registry_lists_the_promised_sources_with_their_preprocessing():
    assert {"vgg16", "vgg19", "resnet50", "mobilenet", "mobilenet_v2", "efficientnet_b0",
            "inception_v3"} <= set(sources.SOURCES)
    pixels = np.array([[[0.0, 127.5, 255.0]]], dtype="float32")
    np.testing.assert_allclose(sources.get_source("mobilenet").preprocess_input(pixels.copy()), [[[-1, 0, 1]]])
    # Caffe-style VGG preprocessing flips RGB to BGR and subtracts the ImageNet means.
    np.testing.assert_allclose(sources.get_source("vgg16").preprocess_input(pixels.copy()),
                               [[[255 - 103.939, 127.5 - 116.779, 0 - 123.68]]], rtol=1e-5)
    assert sources.get_source("inception_v3").default_size == 299


def test_unknown_source_and_layer_names_suggest_close_matches():
    with pytest.raises(ValueError, match="Did you mean mobilenet"):
        sources.get_source("mobilnet")
    model = sources.get_source("mobilenet").build(weights=None, image_size=32)
    with pytest.raises(ValueError, match="conv_pw_13_relu"):
        sources.layer_names(model, "conv_pw_13_rel")
    with pytest.raises(ValueError, match="Layer sets: fne, conv, fc, last. Did you mean fne?"):
        sources.layer_names(model, "fnee")  # a mistyped layer set


def test_image_sizes_that_would_exhaust_memory_are_refused():
    with pytest.raises(ValueError, match="image_size=1000000 is above 4096 pixels"):
        sources.get_source("mobilenet").input_shape(1_000_000)


def test_image_size_below_the_minimum_is_refused():
    with pytest.raises(ValueError, match="minimum of 75"):
        sources.get_source("inception_v3").build(weights=None, image_size=64)


def test_missing_weights_give_the_file_name_and_how_to_copy_it(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))

    def offline(**kwargs):
        raise Exception("URL fetch failure on https://example.invalid: None -- [Errno -3] no network")

    monkeypatch.setattr(keras.applications, "VGG16", offline)
    with pytest.raises(sources.WeightsUnavailableError) as error:
        sources.get_source("vgg16").build()
    message = str(error.value)
    assert "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
    assert str(tmp_path / "models") in message and "scp" in message


def test_imported_mobilenet_is_the_real_imagenet_classifier(imagenet_mobilenet):
    assert imagenet_mobilenet.count_params() == 4_253_864
    photos = sources.get_source("mobilenet").preprocess_input(data.sample_photos(224).astype("float32"))
    top5 = np.argsort(-imagenet_mobilenet.predict(photos, verbose=0), axis=1)[:, :5]
    temple, flower = top5
    # The temple photo: "palace" (698) and "bell cote" (442) are among the five best of 1000 classes.
    assert {698, 442} <= set(temple)
    # The flower is a dahlia, which ImageNet lacks: MobileNet v1 sees a rounded organic shape
    # (stinkhorn 994, hen-of-the-woods 996, coral fungus 991); random weights would not.
    assert {994, 996, 991} <= set(flower)


def test_imported_weights_match_the_frozen_graph(imagenet_mobilenet):
    graph = mobilenet.read_graph_bytes()
    photos = sources.get_source("mobilenet").preprocess_input(data.sample_photos(224).astype("float32"))
    expected = mobilenet.graph_probabilities(graph, photos)
    np.testing.assert_allclose(imagenet_mobilenet.predict(photos, verbose=0), expected, atol=1e-5)


def test_weights_written_in_legacy_h5_load_into_plain_keras(tmp_path, imagenet_mobilenet):
    path = write_legacy_h5(imagenet_mobilenet, tmp_path / "copy.h5")
    fresh = keras.applications.MobileNet(weights=None, include_top=True)
    fresh.load_weights(path)
    for expected, loaded in zip(imagenet_mobilenet.weights, fresh.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(expected), keras.ops.convert_to_numpy(loaded))
    assert mobilenet.mobilenet_weights_present()
    plain = keras.applications.MobileNet(weights="imagenet", include_top=False)  # offline, from the import
    assert plain.count_params() == 3_228_864


def test_other_sizes_reuse_the_weights_by_layer_name(imagenet_mobilenet):
    small = sources.get_source("mobilenet").build(image_size=96)
    assert small.input_shape == (None, 96, 96, 3)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(small.get_layer("conv_pw_7").kernel),
                                  keras.ops.convert_to_numpy(imagenet_mobilenet.get_layer("conv_pw_7").kernel))


def test_source_is_a_frozen_dataclass():
    source = sources.get_source("resnet50")
    with pytest.raises(dataclasses.FrozenInstanceError):
        source.default_size = 10
