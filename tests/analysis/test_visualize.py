"""What the network sees (keras_tl.analysis.visualize): tiles, maps, active channels, top images, gradient ascent.

The inspect job that draws them all is tested in tests/jobs/test_inspect.py."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from keras_tl import data, sources
from keras_tl.analysis import visualize
from keras_tl.features.extraction import FeatureExtractor
from keras_tl.features.full_network_embedding import FNETransformer

MOBILENET = sources.get_source("mobilenet")


@pytest.fixture
def image_folder(tmp_path):
    """A folder dataset of 2 classes x 4 small PNG photos (crops of scikit-learn's two sample photos)."""
    from PIL import Image

    photos = data.sample_photos(64)
    for label, name in enumerate(("temple", "flower")):
        (tmp_path / "images" / name).mkdir(parents=True)
        for index in range(4):
            crop = photos[label][8 * index:8 * index + 40, 4 * index:4 * index + 40]
            Image.fromarray(crop).save(tmp_path / "images" / name / f"{index}.png")
    return tmp_path / "images"


def test_filters_one_colour_tile_per_output_channel(tiny_mobilenet, tmp_path):
    figure = visualize.plot_filters(tiny_mobilenet)
    first_conv = tiny_mobilenet.get_layer("conv1")
    assert len(figure.axes) == first_conv.kernel.shape[-1] == 32
    tiles = [axes.images[0].get_array() for axes in figure.axes]
    assert all(tile.shape == (3, 3, 3) and tile.min() == 0 and tile.max() == 1 for tile in tiles)  # per filter
    assert [axes.get_title() for axes in figure.axes] == [str(index) for index in range(32)]
    assert not list(tmp_path.iterdir())
    visualize.plot_filters(tiny_mobilenet, "conv1", path=tmp_path / "filters.png")
    assert (tmp_path / "filters.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="layer='conv_pw_1'.*3 input channels"):
        visualize.plot_filters(tiny_mobilenet, "conv_pw_1")
    with pytest.raises(ValueError, match="Closest layer names: conv1"):
        visualize.plot_filters(tiny_mobilenet, "conv_1")
    plt.close("all")


def test_feature_maps_show_the_asked_channels_of_each_layer(tiny_mobilenet, tmp_path):
    import keras

    image = np.random.default_rng(0).integers(0, 256, (60, 50, 3)).astype(np.uint8)  # resized to 48 px
    layers = ["conv1_relu", "conv_pw_3_relu"]
    figure = visualize.plot_feature_maps(tiny_mobilenet, image, layers, MOBILENET.preprocess_input, channels=[0, 3, 5])
    assert len(figure.subfigs) == 2 and not list(tmp_path.iterdir())
    for subfigure, layer in zip(figure.subfigs, layers):
        assert subfigure._suptitle.get_text().startswith(layer)
        assert [axes.get_title().split(":")[0] for axes in subfigure.axes] == ["0", "3", "5"]
    # Without channels: the max_channels most active ones of each layer, in channel order.
    figure = visualize.plot_feature_maps(tiny_mobilenet, image, layers, MOBILENET.preprocess_input, max_channels=4,
                                         path=tmp_path / "maps.png")
    pixels = keras.ops.image.resize(image.astype("float32"), (48, 48), antialias=True)
    for subfigure, layer in zip(figure.subfigs, layers):
        maps = keras.Model(tiny_mobilenet.input, tiny_mobilenet.get_layer(layer).output)(
            MOBILENET.preprocess_input(pixels[None]))[0]
        expected = sorted(np.argsort(-keras.ops.convert_to_numpy(maps).mean(axis=(0, 1)), kind="stable")[:4].tolist())
        assert [int(axes.get_title().split(":")[0]) for axes in subfigure.axes] == expected
    assert (tmp_path / "maps.png").is_file()
    with pytest.raises(ValueError, match="channel=99 is outside layer conv1_relu's channels 0..31"):
        visualize.plot_feature_maps(tiny_mobilenet, image, ["conv1_relu"], channels=[99])
    plt.close("all")


def test_top_images_are_the_argmax_k_of_the_cached_column_sorted(tiny_mobilenet, image_folder, tmp_path):
    dataset = data.load_dataset(image_folder, test_fraction=0.25, verbose=False)
    image_set = dataset.train
    extractor = FeatureExtractor(MOBILENET, "conv_pw_1_relu,conv_pw_13_relu", 48, weights=None, model=tiny_mobilenet)
    features, cache_file = extractor.extract(image_set, tmp_path / "cache", verbose=False)
    column_block = np.load(cache_file)[:, extractor.columns(["conv_pw_1_relu"])]
    channel = int(np.argmax(column_block.std(axis=0)))  # a channel whose images differ
    indices, activations = visualize.top_images(extractor, image_set, "conv_pw_1_relu", channel, k=3,
                                                cache_dir=tmp_path / "cache", verbose=False)
    column = column_block[:, channel]
    assert len(indices) == 3 and set(indices) <= set(range(len(image_set)))
    np.testing.assert_array_equal(indices, np.argsort(-column, kind="stable")[:3])
    np.testing.assert_allclose(activations, column[indices])
    assert np.all(np.diff(activations) <= 0) and activations[0] == column.max()
    # The same from the layer's features given as an array.
    same = visualize.top_images(column_block, image_set, channel=channel, k=3)
    np.testing.assert_array_equal(same[0], indices)

    figure = visualize.plot_top_images(image_set, indices, activations, dataset.class_names, image_size=40)
    assert len(figure.axes) == 3 and not (tmp_path / "top.png").exists()
    for axes, index, activation in zip(figure.axes, indices, activations):
        np.testing.assert_array_equal(axes.images[0].get_array(), data.load_image(image_set.paths[index], 40))
        assert axes.get_xlabel() == f"#{index}: {activation:.3g}"
        assert axes.get_title() == dataset.class_names[image_set.labels[index]]
    visualize.plot_top_images(image_set, indices, activations, path=tmp_path / "top.png")
    assert (tmp_path / "top.png").is_file()
    with pytest.raises(ValueError, match="one row per image of image_set"):
        visualize.top_images(column_block[:2], image_set, channel=0)
    plt.close("all")


def colour_detector():
    """A 1x1 conv and ReLU on 8x8 px RGB images with three planted channels: 0 a thresholded red detector
    (red - green - blue - 50), 1 always 1, 2 always 0 (dead)."""
    import keras

    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(3, 1, activation="relu", name="detector")])
    kernel = np.zeros((1, 1, 3, 3), "float32")
    kernel[0, 0, :, 0] = [1, -1, -1]
    model.get_layer("detector").set_weights([kernel, np.array([-50, 1, -1], "float32")])
    return model


def test_top_images_are_only_images_that_activate_the_channel_and_a_dead_one_is_named(tmp_path):
    import keras

    colours = [(30, 180, 40), (30, 40, 200), (128, 128, 128), (200, 30, 30), (180, 100, 60), (0, 0, 0),
               (120, 20, 20), (255, 255, 255)]  # red at 3 (200 - 60 - 50 = 90) and 6 (120 - 40 - 50 = 30) only
    images = np.stack([np.full((8, 8, 3), colour, np.uint8) for colour in colours])
    image_set = data.ImageSet(labels=np.array([0, 0, 0, 1, 0, 0, 1, 0]), images=images)
    features = keras.ops.convert_to_numpy(colour_detector()(images.astype("float32"))).mean(axis=(1, 2))

    means, active = visualize.channel_activity(features)
    np.testing.assert_allclose(means, [(90 + 30) / 8, 1, 0])
    np.testing.assert_array_equal(active, [2, 8, 0])
    np.testing.assert_array_equal(visualize.most_active_channels(features, 2), [0, 1])  # the dead one last
    # Four asked, two found: the red images, most active first; no zero-activation image fills the panel.
    indices, activations = visualize.top_images(features, image_set, channel=0, k=4)
    np.testing.assert_array_equal(indices, [3, 6])
    np.testing.assert_allclose(activations, [90, 30])
    figure = visualize.plot_top_images(image_set, indices, activations, ["other", "red"], k=4, title="red")
    assert figure._suptitle.get_text() == "red\nonly 2 of the 8 images activate this channel"
    shown = [axes for axes in figure.axes if axes.images]
    assert len(shown) == 2 and [axes.get_title() for axes in shown] == ["red", "red"]
    for axes, index in zip(shown, indices):
        np.testing.assert_array_equal(axes.images[0].get_array(), images[index])
    # In a row of k axes, the note goes into the empty ones.
    _, row = plt.subplots(1, 4)
    visualize.plot_top_images(image_set, indices, activations, k=4, ax=row)
    assert [bool(axes.images) for axes in row] == [True, True, False, False]
    assert [text.get_text() for text in row[1].texts] == ["only 2 of the 8 images activate this channel"]
    assert not row[2].get_frame_on() and not row[2].get_xticks().size
    # Asked for 4 of a channel every image activates: 4, no note.
    indices, _ = visualize.top_images(features, image_set, channel=1, k=4)
    np.testing.assert_array_equal(indices, [0, 1, 2, 3])  # all tie at 1: the dataset's order
    assert visualize.plot_top_images(image_set, indices, np.ones(4), k=4)._suptitle is None
    # The dead channel: no top image, named dead.
    indices, activations = visualize.top_images(features, image_set, channel=2, k=4)
    assert len(indices) == len(activations) == 0
    figure = visualize.plot_top_images(image_set, indices, activations, k=4, path=tmp_path / "dead.png")
    assert figure._suptitle.get_text() == "dead: none of the 8 images activates this channel"
    assert not any(axes.images for axes in figure.axes) and (tmp_path / "dead.png").is_file()
    # A higher threshold: only the brighter red.
    np.testing.assert_array_equal(visualize.top_images(features, image_set, channel=0, threshold=50)[0], [3])
    plt.close("all")


def test_gradient_ascent_raises_the_channel_tenfold_deterministically(imagenet_mobilenet_32, tmp_path):
    options = {"preprocess": MOBILENET.preprocess_input, "steps": 10, "seed": 0}
    image, before, after = visualize.maximize_activation(imagenet_mobilenet_32, "conv_pw_5_relu", 0, **options)
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8
    assert before > 0 and after >= 10 * before
    assert np.ptp(image) > 50  # no longer faint noise around grey
    again = visualize.maximize_activation(imagenet_mobilenet_32, "conv_pw_5_relu", 0, **options)
    np.testing.assert_array_equal(again[0], image)
    # Channels of one layer in one batch: each gets the image it gets alone.
    results = visualize.maximize_channels(imagenet_mobilenet_32, ["conv_pw_5_relu"], [0, 2], verbose=False, **options)
    assert [(result["layer"], result["channel"]) for result in results] == [("conv_pw_5_relu", 0),
                                                                            ("conv_pw_5_relu", 2)]
    assert np.abs(results[0]["image"].astype(int) - image).max() <= 1
    assert results[1]["after"] > results[1]["before"]
    figure = visualize.plot_maximized(results)
    assert len(figure.axes) == 2 and figure.axes[0].get_ylabel() == "conv_pw_5_relu"
    assert figure.axes[0].get_title() == f"0: {results[0]['before']:.2g} -> {results[0]['after']:.3g}"
    assert not list(tmp_path.iterdir())
    visualize.plot_maximized(results, path=tmp_path / "maximized.png")
    assert (tmp_path / "maximized.png").is_file()
    with pytest.raises(ValueError, match="image_size=64 does not fit"):
        visualize.maximize_activation(imagenet_mobilenet_32, "conv_pw_5_relu", 0, image_size=64)
    plt.close("all")


def test_feature_in_context_labels_overlap_no_tick_label():
    """Long tick labels (tiny raw values) on both panels: no axis label lies over any tick label."""
    labels = np.repeat(np.arange(10), 6)
    features = np.random.default_rng(1).gamma(2.0, 1e-4, size=(60, 3))
    names = [f"class number {index}" for index in range(10)]
    figure = visualize.plot_feature_in_context(features, labels, names, feature=1)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    texts = [label for axes in figure.axes[:2] for label in (axes.yaxis.label, axes.title) if label.get_text()]
    ticks = [tick for axes in figure.axes[:2] for tick in axes.get_yticklabels() + axes.get_xticklabels()
             if tick.get_text()]
    assert len(texts) == 3 and ticks  # one y-label, two panel titles
    overlapping = [(text.get_text(), tick.get_text()) for text in texts for tick in ticks
                   if text.get_window_extent(renderer).overlaps(tick.get_window_extent(renderer))]
    assert overlapping == []
    plt.close("all")


def test_feature_in_context_one_box_per_class_and_the_two_thresholds(tmp_path):
    random = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 12)
    features = random.normal(size=(36, 4)) + 3.0 * labels[:, None]  # far from mean 0, std 1
    figure = visualize.plot_feature_in_context(features, labels, ["ant", "bee", "cow"], feature=2)
    raw, standardised = figure.axes[:2]
    assert len(raw.patches) == len(standardised.patches) == 3  # one box per class in each panel
    assert [label.get_text() for label in standardised.get_xticklabels()] == ["ant", "bee", "cow"]
    thresholds = sorted(line.get_ydata()[0] for line in standardised.lines if line.get_linestyle() == "--")
    assert thresholds == [-0.25, 0.15] and not [line for line in raw.lines if line.get_linestyle() == "--"]
    values = FNETransformer(discretise=False).fit(features).transform(features)[:, 2]
    for box, label in zip(standardised.patches, range(3)):  # the box spans the class's quartiles, standardised
        heights = box.get_path().vertices[:, 1]
        np.testing.assert_allclose([heights.min(), heights.max()],
                                   np.percentile(values[labels == label], [25, 75]), rtol=1e-6)
    assert not list(tmp_path.iterdir())
    outer, axes = plt.subplots(1, 2)
    assert visualize.plot_feature_in_context(features, labels, ["ant", "bee", "cow"], 0, ax=axes,
                                             path=tmp_path / "context.png") is outer
    assert (tmp_path / "context.png").is_file()
    plt.close("all")
