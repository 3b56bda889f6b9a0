"""What the network sees: filters, feature maps, the images a channel likes, the input it likes most.

The course's "Knowledge inside DNN" slides follow Yosinski et al. 2015, "Understanding Neural
Networks Through Deep Visualization" (ICML Deep Learning workshop): the first layers detect edges
and colours, later ones textures, parts and objects. Four ways to look, from the simplest:

- :func:`plot_filters`: the first conv layer's kernels, drawn as small colour images;
- :func:`plot_feature_maps`: a layer's activation maps for one image;
- :func:`top_images` / :func:`plot_top_images`: the dataset images that activate a channel most
  (its pooled activation, read from the feature cache of :class:`keras_tl.features.extraction.FeatureExtractor`),
  and only images that activate it at all; :func:`channel_activity` and :func:`most_active_channels`
  say which channels fire on a dataset and which are dead on it;
- :func:`maximize_activation` / :func:`plot_maximized`: gradient ascent on the input, from faint
  noise to the pattern a channel responds to most, with the usual regularisers (jitter, blur,
  L2 decay), as in F. Chollet's keras.io example "Visualizing what convnets learn" and Yosinski et al.

And one feature "in context", as the FNE sees it (Garcia-Gasulla et al. 2018):
:func:`plot_feature_in_context` shows its values per class before and after standardisation, with
the thresholds that make them -1, 0 or 1.

Every function takes a Keras model whose layers can be looked up by name (a source's model, an
FNE run's ``model.keras``; for a fine-tuned classifier, :func:`backbone` finds its base), draws
into ``ax`` when given axes (a sequence of axes, one per tile, for the grids), returns the
Figure and saves a PNG only when given ``path`` (see :mod:`keras_tl.plots`). Gradient ascent
needs the TensorFlow backend.

>>> model = keras_tl.get_source("mobilenet").build("imagenet", image_size=128)
>>> keras_tl.plot_filters(model)                          # 32 colour tiles: edges and colour blobs
>>> maximized = keras_tl.maximize_channels(model, ["conv_pw_2_relu", "conv_pw_8_relu"], [0, 1, 2],
...                                        preprocess=keras_tl.get_source("mobilenet").preprocess_input)
>>> keras_tl.plot_maximized(maximized)
"""
import math
import os

import keras
import matplotlib.pyplot as plt
import numpy as np

from keras_tl import data, sources
from keras_tl.features.full_network_embedding import DEFAULT_THRESHOLDS, FNETransformer
from keras_tl.messages import progress_bar
from keras_tl.plots import finish_figure

GREY = 127.5  # the middle of 0..255: where gradient ascent starts, and what the L2 decay pulls towards


# ----------------------------------------------------------------------------- layers


def backbone(model):
    """The network inside ``model`` whose layers are the source's: ``model`` itself, or the base nested
    in a fine-tuned classifier (:func:`keras_tl.training.recipe.build_classifier` wraps it in ``InferenceMode``)."""
    for layer in reversed(model.layers):
        inner = getattr(layer, "model", layer)  # InferenceMode keeps the base as .model
        if isinstance(inner, keras.Model) and len(inner.output.shape) == 4:
            return inner
    return model


def layers_across_depth(model, count=4):
    """``count`` conv layers of ``model`` (its ``conv`` layer set) spread evenly from the first to the last."""
    conv = sources.layer_names(model, "conv")
    positions = np.linspace(0, len(conv) - 1, min(count, len(conv))).round().astype(int)
    return [conv[position] for position in positions]


def _check_channel(channel, channels, layer):
    if not (isinstance(channel, (int, np.integer)) and 0 <= channel < channels):
        raise ValueError(f"channel={channel} is outside layer {layer}'s channels 0..{channels - 1}.")


# ----------------------------------------------------------------------------- tiles


def _tiles(count, ax=None, columns=8, tile_inches=1.2, container=None, title=None):
    """``(figure, axes)``: ``count`` axes for a grid of tiles, ticks off.

    ``ax`` (a sequence of at least ``count`` axes) is used when given; else a grid is made in
    ``container`` (a figure or subfigure, default a new figure) with only the tiles needed.
    """
    if ax is not None:
        axes = list(np.ravel(ax))
        if len(axes) < count:
            raise ValueError(f"ax= holds {len(axes)} axes; this figure needs one per tile, {count}.")
        axes = axes[:count]
        figure = axes[0].figure
    else:
        columns = max(1, min(columns, count))
        rows = math.ceil(count / columns)
        if container is None:
            container = plt.figure(figsize=(columns * tile_inches, rows * tile_inches + (0.4 if title else 0)))
        grid = container.subplots(rows, columns, squeeze=False)
        for extra in grid.ravel()[count:]:
            extra.remove()
        axes, figure = list(grid.ravel()[:count]), container.figure if hasattr(container, "figure") else container
        if title:
            container.suptitle(title)
    for axes_item in axes:
        axes_item.set_xticks([])
        axes_item.set_yticks([])
    return figure, axes


def _to_unit_range(values):
    """``values`` scaled to 0..1 by their own minimum and maximum (a flat array gives 0.5)."""
    low, high = float(np.min(values)), float(np.max(values))
    return np.full_like(values, 0.5, dtype=float) if high <= low else (values - low) / (high - low)


# ----------------------------------------------------------------------------- filters and maps


def plot_filters(model, layer=None, columns=8, path=None, ax=None):
    """The kernels of the first conv layer (or of the conv layer ``layer``) as colour tiles, one per output channel.

    Each kernel (height, width, 3 input channels) is scaled to 0..1 by its own minimum and maximum,
    so each tile shows the colour pattern its filter responds to most (bright: its largest
    weights): oriented edges, colour blobs, colour-opponent pairs (Krizhevsky et al. 2012, Fig. 3;
    Yosinski et al. 2015). The layer must take the 3 colour channels (sources with Caffe
    preprocessing, such as ``squeezenet1_1``, take them as BGR, so their tiles show swapped colours).
    """
    if layer is None:
        chosen = next((candidate for candidate in model.layers if isinstance(candidate, keras.layers.Conv2D)
                       and candidate.kernel.shape[2] == 3), None)
        if chosen is None:
            raise ValueError(f"{model.name} has no Conv2D layer on the 3 colour channels; give layer= a conv layer.")
    else:
        sources.layer_names(model, [layer])
        chosen = model.get_layer(layer)
        shape = tuple(chosen.kernel.shape) if isinstance(chosen, keras.layers.Conv2D) else None
        if shape is None or shape[2] != 3:
            raise ValueError(f"layer={layer!r} is not a Conv2D layer on 3 input channels (kernel shape {shape}); "
                             f"plot_filters draws kernels as colour images.")
    kernels = keras.ops.convert_to_numpy(chosen.kernel)  # (height, width, 3, filters)
    figure, axes = _tiles(kernels.shape[-1], ax, columns, 0.8, title=f"{chosen.name}: {kernels.shape[-1]} filters "
                          f"of {kernels.shape[0]}x{kernels.shape[1]}x3")
    for index, axes_item in enumerate(axes):
        axes_item.imshow(_to_unit_range(kernels[..., index]), interpolation="nearest")
        axes_item.set_title(str(index), fontsize=7, pad=2)
    return finish_figure(figure, path)


def _image_array(image, size):
    """One image as a (size, size, 3) float32 RGB array in 0..255: a file path, or an array (grey or RGB)."""
    if isinstance(image, (str, os.PathLike)):
        return data.load_image(image, size).astype("float32")
    array = data.images.rgb_array(image, dtype="float32")
    if array is None:
        raise ValueError(f"image= should be a file path or an RGB (H, W, 3) or grey (H, W) array in 0..255; "
                         f"got shape {np.shape(image)}.")
    if array.shape[:2] != (size, size):
        array = keras.ops.convert_to_numpy(keras.ops.image.resize(array, (size, size), antialias=True))
    return array


def plot_feature_maps(model, image, layers, preprocess=None, max_channels=16, channels=None, columns=8,
                      path=None, ax=None):
    """The activation maps of ``layers`` for one image: a grid per layer, one tile per channel.

    ``image``: a file path, or an RGB (or grey) array in 0..255, resized to the model's input;
    ``preprocess``: the source's ``preprocess_input`` (None when the model takes pixels as they are).
    Each layer shows ``channels`` (indices, the same for every layer) or else its ``max_channels``
    most active channels for this image, in channel order; each map is scaled to its own range
    (dark: low, yellow: high; a flat map is all mid-green), with the channel and its mean
    activation above it. Early maps
    follow edges and colours of the image, deep ones are coarse and respond to parts.
    ``ax``: a sequence of axes, one per tile, layer after layer.
    """
    layers = [layers] if isinstance(layers, str) else list(layers)
    size = model.input_shape[1]
    pixels = _image_array(image, size)
    inputs = preprocess(pixels[None]) if preprocess is not None else pixels[None]
    names = sources.layer_names(model, layers)
    outputs = keras.Model(model.input, [model.get_layer(name).output for name in names])(inputs, training=False)
    outputs = [keras.ops.convert_to_numpy(output)[0] for output in (outputs if len(names) > 1 else [outputs])]
    shown = []
    for name, maps in zip(names, outputs):
        if maps.ndim != 3:
            raise ValueError(f"layers= holds {name!r}, whose output {maps.shape} is not a map (height, width, "
                             f"channels); choose conv layers.")
        if channels is not None:
            for channel in channels:
                _check_channel(channel, maps.shape[-1], name)
            chosen = list(channels)
        else:
            chosen = sorted(np.argsort(-maps.mean(axis=(0, 1)), kind="stable")[:max_channels].tolist())
        shown.append((name, maps, chosen))
    tile_axes, figure = list(np.ravel(ax)) if ax is not None else None, None
    if ax is None:
        rows = [math.ceil(len(chosen) / min(columns, len(chosen))) for _, _, chosen in shown]
        figure = plt.figure(figsize=(1.4 * min(columns, max(len(chosen) for _, _, chosen in shown)),
                                     sum(1.5 * row + 0.4 for row in rows)))
        containers = figure.subfigures(len(shown), 1, height_ratios=[row + 0.3 for row in rows], squeeze=False)
        containers = containers.ravel()
    start = 0
    for number, (name, maps, chosen) in enumerate(shown):
        if ax is None:
            _, tiles = _tiles(len(chosen), None, columns, container=containers[number],
                              title=f"{name}: {maps.shape[0]}x{maps.shape[1]} maps, {len(chosen)} of "
                                    f"{maps.shape[-1]} channels")
        else:
            _, tiles = _tiles(len(chosen), tile_axes[start:])
            figure = tiles[0].figure
        start += len(chosen)
        for channel, tile in zip(chosen, tiles):
            tile.imshow(_to_unit_range(maps[..., channel]), cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
            tile.set_title(f"{channel}: {maps[..., channel].mean():.2g}", fontsize=7, pad=2)
    return finish_figure(figure, path)


# ----------------------------------------------------------------------------- top images

ACTIVE_ABOVE = 0.0  # an image activates a channel when the channel's map, averaged over the image, is above this


def _layer_features(features, image_set=None):
    """``features`` as a float64 (images, channels) array, checked against ``image_set`` when given."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or (image_set is not None and len(features) != len(image_set)):
        expected = "" if image_set is None else f" of image_set ({len(image_set)} images)"
        raise ValueError(f"features= should be one layer's pooled features with one row per image{expected}; "
                         f"got an array of shape {features.shape}.")
    return features


def channel_activity(features, threshold=ACTIVE_ABOVE):
    """``(means, active)``, one entry per channel of one layer's pooled ``features`` (images, channels).

    ``means``: the channel's activation (its map averaged over an image) averaged over the images,
    how much it fires on them; ``active``: how many images activate it, with an activation above
    ``threshold`` (default 0: the channel fires somewhere in the image). A channel that no image
    activates is dead on these images: a ReLU gives it 0 everywhere, its top images are
    arbitrary and the input that "maximises" it is noise.
    """
    features = _layer_features(features)
    return features.mean(axis=0), np.count_nonzero(features > threshold, axis=0)


def most_active_channels(features, count=4):
    """The ``count`` channels of one layer's pooled ``features`` (images, channels) with the largest mean
    activation over the images (:func:`channel_activity`), most active first; ties: the lower channel first.

    On a given dataset many channels of a ReLU network are silent, and channels 0, 1, 2, ... are as
    likely to be silent as any other: the most active ones are the channels worth looking at first.
    """
    means, _ = channel_activity(features)
    return np.argsort(-means, kind="stable")[:count]


def top_images(extractor_or_features, image_set, layer=None, channel=0, k=9, cache_dir=None, verbose=True,
               threshold=ACTIVE_ABOVE):
    """``(indices, activations)``: the ``k`` images of ``image_set`` that activate ``channel`` most, most first.

    ``extractor_or_features``: a :class:`keras_tl.features.extraction.FeatureExtractor` whose layers include
    ``layer`` (the features of ``image_set`` are extracted, or read from its cache in ``cache_dir``,
    and the layer's spatially averaged channel is taken), or an array of one layer's pooled
    features of ``image_set``, one row per image (``layer`` is then not needed). Ties keep the
    dataset order.

    Only images that activate the channel are returned, those whose activation is above
    ``threshold`` (default 0: the channel fires somewhere in the image): fewer than ``k`` when fewer
    images activate it, none when it is dead on ``image_set``. An image with activation 0 is no
    "top" image, only one the channel ignores like the rest.

    >>> extractor = keras_tl.FeatureExtractor("mobilenet", "conv", image_size=96)
    >>> indices, activations = top_images(extractor, dataset.train, "conv_pw_13_relu", 7,
    ...                                   cache_dir="runs/feature_cache")
    """
    if hasattr(extractor_or_features, "extract"):
        if layer is None:
            raise ValueError("top_images() with a FeatureExtractor needs layer=: the layer whose channel to rank by.")
        features, _ = extractor_or_features.extract(image_set, cache_dir, verbose=verbose)
        features = features[:, extractor_or_features.columns([layer])]
    else:
        features = _layer_features(extractor_or_features, image_set)
    _check_channel(channel, features.shape[1], layer or "of these features")
    if not (isinstance(k, (int, np.integer)) and k >= 1):
        raise ValueError(f"k={k} should be a whole number of images, at least 1.")
    column = np.asarray(features[:, channel], dtype=np.float64)
    active = np.flatnonzero(column > threshold)
    indices = active[np.argsort(-column[active], kind="stable")][:k]
    return indices, column[indices]


def activity_note(found, total, k):
    """What a top-images panel says when fewer than ``k`` of the ``total`` images activate its channel ('' when
    ``found`` reaches ``k``)."""
    if found == 0:
        return f"dead: none of the {total} images activates this channel"
    return f"only {found} of the {total} images activate this channel" if found < k else ""


def _dataset_image(image_set, index, size):
    """Image ``index`` of ``image_set`` for display: a file read at ``size`` px, or the stored array."""
    if image_set.paths is not None:
        return data.load_image(image_set.paths[index], size)
    image = image_set.images[index]
    return image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image


def plot_top_images(image_set, indices, activations, class_names=None, image_size=96, columns=None, title=None,
                    k=None, path=None, ax=None):
    """The images :func:`top_images` found, in its order, with each one's activation under it.

    Files are read at ``image_size`` px (:func:`keras_tl.data.load_image`); in-memory sets show
    their arrays. With ``class_names``, each image is titled with its class. A channel whose top
    images share a shape, a texture or a class has learned that. ``k``: how many images were asked
    of :func:`top_images`; when it found fewer, the figure says how few of ``image_set``'s images
    activate the channel (:func:`activity_note`), and a channel that none activates is named dead.
    ``ax``: one axes per image; the note goes to the right of the last image (in the axes left
    empty, whose frames are hidden).
    """
    found = len(indices)
    note = activity_note(found, len(image_set), k or found)
    columns = columns or min(max(found, 1), max(3, math.ceil(math.sqrt(found))))
    heading = "\n".join(part for part in (title, note if ax is None else "") if part) or None
    figure, axes = _tiles(max(found, 1), ax, columns, 1.6, title=heading)
    for spare in (list(np.ravel(ax)) if ax is not None else axes)[found:]:
        spare.set_frame_on(False)
        spare.set_xticks([])
        spare.set_yticks([])
    for axes_item, index, activation in zip(axes, indices, activations):
        image = _dataset_image(image_set, int(index), image_size)
        axes_item.imshow(image, cmap="gray" if image.ndim == 2 else None)
        if class_names is not None:
            axes_item.set_title(class_names[int(image_set.labels[index])], fontsize=8, pad=2)
        axes_item.set_xlabel(f"#{int(index)}: {activation:.3g}", fontsize=8)
    if note and ax is not None:
        anchor, x = (axes[found - 1], 1.15) if found else (axes[0], 0.0)
        anchor.text(x, 0.5, note, transform=anchor.transAxes, ha="left", va="center", fontsize=8,
                    color="firebrick" if not found else "dimgrey")
    return finish_figure(figure, path)


# ----------------------------------------------------------------------------- activation maximisation


def _blur_kernel():
    """A 3x3 Gaussian ([1, 2, 1] / 4 in each direction), one per colour channel (a depthwise kernel)."""
    weights = np.outer([1, 2, 1], [1, 2, 1]).astype("float32") / 16
    return np.repeat(weights[:, :, None, None], 3, axis=2)


def maximize_activation(model, layer, channel, image_size=None, preprocess=None, steps=40, learning_rate=6.0,
                        jitter=2, blur_every=4, decay=0.01, noise=8.0, seed=0):
    """``(image, before, after)``: an input that ``channel`` of ``layer`` responds to strongly, by gradient ascent.

    Starts from grey with seeded uniform noise of ``noise`` pixels (0..255 scale) and, for ``steps``
    steps, moves the pixels up the gradient of the channel's mean activation (its map with the
    edges cropped, which the padding distorts), the gradient scaled to ``learning_rate`` pixels per
    step (root mean square). For a ReLU layer the ascent follows the ReLU's input (the channel's
    linear response), which has a gradient also where the ReLU gives 0 (or ReLU6 gives 6); the
    activations returned are the layer's own. The regularisers keep the image natural-looking
    (Yosinski et al. 2015; Chollet, keras.io, "Visualizing what convnets learn"):

    - ``jitter``: the image is shifted (rolled) by up to this many pixels each step, so no single
      pixel pattern overfits the filter grid;
    - ``blur_every``: a small Gaussian blur every so many steps removes high-frequency noise;
    - ``decay``: each step pulls the image towards grey by this fraction (L2 decay).

    ``preprocess`` is the source's ``preprocess_input`` (pixels in 0..255 in, the model's input
    out; None when the model takes pixels); pixels stay within 0..255. ``image_size`` defaults to
    the model's input size. Returns the uint8 RGB image (H, W, 3) and the channel's mean
    activation on the starting noise (``before``) and on the image (``after``).

    ``channel`` may be a list of channels: they are optimised together, one image each in one
    batch, and the result is ``(images, before, after)`` with one entry per channel; each channel
    starts from its own seeded noise, so it gets the same image alone or in a list.
    TensorFlow backend (``tf.GradientTape``).
    """
    import tensorflow as tf

    size = image_size or model.input_shape[1]
    if size is None:
        raise ValueError(f"{model.name} takes images of any size; give image_size= in pixels.")
    if model.input_shape[1] not in (None, size):
        raise ValueError(f"image_size={size} does not fit {model.name}, which takes {model.input_shape[1]} px images; "
                         f"leave image_size= out or build the model at that size.")
    for name, value in (("steps", steps), ("learning_rate", learning_rate)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name}={value} should be a positive number.")
    sources.layer_names(model, [layer])
    target = model.get_layer(layer)
    channels = list(np.ravel(channel))
    for one in channels:
        _check_channel(one, target.output.shape[-1], layer)
    # A ReLU's output has no gradient where it is 0 (and ReLU6 none above 6): ascend its input instead.
    objective = target.input if isinstance(target, (keras.layers.ReLU, keras.layers.Activation)) else target.output
    two_outputs = keras.Model(model.input, [objective, target.output], name=f"{layer}_objective")
    preprocess = preprocess or (lambda pixels: pixels)
    chosen = tf.one_hot(list(channels), int(target.output.shape[-1]))  # image b's channel: row b

    def channel_means(activation):
        """Each image's mean activation of its own channel, the map's edges cropped: shape (images,)."""
        if len(activation.shape) == 4:
            margin = min(2, (activation.shape[1] - 1) // 4)  # the edges, distorted by the padding
            height, width = activation.shape[1], activation.shape[2]
            activation = activation[:, margin:height - margin, margin:width - margin, :]
            return tf.reduce_mean(tf.reduce_sum(activation * chosen[:, None, None, :], axis=-1), axis=(1, 2))
        return tf.reduce_sum(activation * chosen, axis=-1)

    def mean_activations(pixels, of_objective=False):
        objective_value, output = two_outputs(preprocess(pixels), training=False)
        return channel_means(objective_value if of_objective else output)

    blur = tf.constant(_blur_kernel())

    @tf.function(reduce_retracing=True)
    def ascend(pixels, shift, smooth):
        with tf.GradientTape() as tape:
            tape.watch(pixels)
            loss = tf.reduce_sum(mean_activations(tf.roll(pixels, shift, axis=(1, 2)), of_objective=True))
        gradient = tape.gradient(loss, pixels)  # the images are independent: each gets its own channel's gradient
        gradient /= tf.sqrt(tf.reduce_mean(tf.square(gradient), axis=(1, 2, 3), keepdims=True)) + 1e-8
        pixels = GREY + (pixels + learning_rate * gradient - GREY) * (1.0 - decay)
        if smooth:
            padded = tf.pad(pixels, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="REFLECT")
            pixels = tf.nn.depthwise_conv2d(padded, blur, strides=[1, 1, 1, 1], padding="VALID")
        return tf.clip_by_value(pixels, 0.0, 255.0)

    start = np.stack([GREY + np.random.default_rng([seed, int(channel)]).uniform(-noise, noise, (size, size, 3))
                      for channel in channels]).astype("float32")  # each channel's own noise, batched or not
    before = mean_activations(tf.constant(start)).numpy()
    shifts = np.random.default_rng(seed).integers(-jitter, jitter + 1, size=(int(steps), 2)).astype("int32")
    pixels = tf.constant(start)
    for step in range(1, int(steps) + 1):
        pixels = ascend(pixels, tf.constant(shifts[step - 1]), tf.constant(blur_every > 0 and step % blur_every == 0))
    images = np.round(pixels.numpy()).astype(np.uint8)
    after = mean_activations(tf.constant(images.astype("float32"))).numpy()
    if np.ndim(channel) == 0:
        return images[0], float(before[0]), float(after[0])
    return images, before, after


def maximize_channels(model, layers, channels, image_size=None, preprocess=None, verbose=True, **options):
    """:func:`maximize_activation` for each of ``channels`` of each of ``layers``, with a progress bar.

    ``channels``: the same channels for every layer, or ``{layer: channels}`` (such as each layer's
    :func:`most_active_channels`; a layer with none is left out). The channels of one layer are
    optimised together, one image each in one batch (the same images as one at a time, faster).
    Returns a list of dicts ``{"layer", "channel", "image", "before", "after"}``, layer after
    layer, for :func:`plot_maximized`; ``options`` go to :func:`maximize_activation` (``steps``,
    ``learning_rate``, ``jitter``, ``blur_every``, ``decay``, ``noise``, ``seed``).
    """
    layers = [layers] if isinstance(layers, str) else list(layers)
    per_layer = {layer: list(channels[layer] if isinstance(channels, dict) else channels) for layer in layers}
    results = []
    with progress_bar(sum(map(len, per_layer.values())), "maximising", unit="channel",
                      verbose=verbose) as progress:
        for layer, chosen in per_layer.items():
            if not chosen:
                continue
            images, before, after = maximize_activation(model, layer, chosen, image_size, preprocess, **options)
            results += [{"layer": layer, "channel": int(channel), "image": image, "before": float(low),
                         "after": float(high)} for channel, image, low, high in zip(chosen, images, before, after)]
            progress.update(len(chosen))
    return results


def plot_maximized(maximized, path=None, ax=None):
    """The images of :func:`maximize_channels`: one row per layer, one tile per channel, with the channel's
    mean activation before (noise) and after (the image) above it.

    Shallow layers give colours and stripes, deeper ones textures and object parts. Each image is
    stretched to its own range for display (the optimised pixels stay near grey); ``ax``: one
    axes per image.
    """
    layers = list(dict.fromkeys(result["layer"] for result in maximized))
    columns = max(sum(result["layer"] == layer for result in maximized) for layer in layers)
    if ax is None:
        figure = plt.figure(figsize=(1.8 * columns, 2.0 * len(layers)))
        grid = figure.subplots(len(layers), columns, squeeze=False)
        axes = []
        for row, layer in enumerate(layers):
            used = sum(result["layer"] == layer for result in maximized)
            axes += list(grid[row, :used])
            for extra in grid[row, used:]:
                extra.remove()
            grid[row, 0].set_ylabel(layer, fontsize=8)
        figure.suptitle("Inputs that maximise a channel (gradient ascent)")
        _, axes = _tiles(len(maximized), axes)
    else:
        figure, axes = _tiles(len(maximized), ax)
    for axes_item, result in zip(axes, maximized):
        axes_item.imshow(_to_unit_range(result["image"].astype("float32")))
        axes_item.set_title(f"{result['channel']}: {result['before']:.2g} -> {result['after']:.3g}", fontsize=7,
                            pad=2)
    return finish_figure(figure, path)


# ----------------------------------------------------------------------------- one feature in context


def plot_feature_in_context(features, labels, class_names, feature, thresholds=DEFAULT_THRESHOLDS,
                            train_features=None, path=None, ax=None):
    """One feature's values per class, as extracted (left) and standardised as the FNE does (right).

    ``features`` (N, D) and ``labels`` (N,) of a set of images, ``feature`` a column index. The
    standardisation uses the mean and standard deviation of ``train_features`` (default:
    ``features``, the training set), with :class:`keras_tl.FNETransformer`; the dashed lines are the
    FNE ``thresholds``: below the lower one the feature becomes -1, above the upper one 1, else 0.
    After standardisation a feature reads "unusually high for this image", whatever its scale was:
    that is why the FNE can compare and discretise features of every layer alike (Garcia-Gasulla
    et al. 2018). ``ax``: two axes (raw, standardised).
    """
    features, labels = np.asarray(features), np.asarray(labels)
    if features.ndim != 2 or len(features) != len(labels):
        raise ValueError(f"features= should be (images, features) with one label per row; got shape "
                         f"{features.shape} and {len(labels)} labels.")
    if not (isinstance(feature, (int, np.integer)) and 0 <= feature < features.shape[1]):
        raise ValueError(f"feature={feature} is outside the {features.shape[1]} feature columns "
                         f"0..{features.shape[1] - 1}.")
    reference = features if train_features is None else np.asarray(train_features)
    transformer = FNETransformer(*thresholds, discretise=False).fit(reference[:, [feature]])
    values = {"extracted": features[:, feature], "standardised (FNE)": transformer.transform(
        features[:, [feature]])[:, 0]}
    present = [index for index in range(len(class_names)) if np.any(labels == index)]
    if ax is None:
        figure, ax = plt.subplots(1, 2, figsize=(max(8.0, 0.35 * len(present) + 4), 4))
        figure.suptitle(f"Feature {feature} in context: its values per class")
    else:
        figure = ax[0].figure
    for panel, (name, column) in zip(ax, values.items()):
        panel.boxplot([column[labels == index] for index in present], patch_artist=True,
                      boxprops={"facecolor": "lightsteelblue"}, medianprops={"color": "black"}, flierprops={
                          "markersize": 3})
        panel.set_xticks(np.arange(1, len(present) + 1), [class_names[index] for index in present], rotation=45,
                         ha="right", fontsize=8 if len(present) <= 30 else 5)
        panel.set_title(name, fontsize=10)
        panel.grid(alpha=0.3, axis="y")
    ax[0].set_ylabel(f"feature {feature}")  # one label, left of the left panel: never over the other's ticks
    lower, upper = thresholds
    ax[1].axhline(lower, color="tab:blue", linestyle="--", label=f"{lower:g}: below is -1")
    ax[1].axhline(upper, color="tab:red", linestyle="--", label=f"{upper:g}: above is 1")
    ax[1].legend(fontsize=8)
    return finish_figure(figure, path)
