"""Augmentation: random changes to the training images, so the network never sees the same picture twice.

Two kinds:

- **Per image, inside the model** (:func:`augmentation_layers`): Keras preprocessing layers for
  flips, zoom (a random crop resized back to full size), rotation and translation. They act only
  while training (``model.fit``); ``predict`` and ``evaluate`` see the images unchanged.
  They move pixels but don't change values, so they work after the source's ``preprocess_input``.
- **Per batch, in the tf.data pipeline** (:func:`mix_batches`): each image is mixed with a
  partner from the same batch, and so are their one-hot labels.
  *mixup* (Zhang et al. 2018) blends the two images: ``lam * x_i + (1 - lam) * x_j``.
  *CutMix* (Yun et al. 2019) pastes a box of the partner into the image; the label weight is the
  share of pixels that came from each image.

Keras 3 also has ``keras.layers.MixUp`` and ``keras.layers.CutMix``. In Keras 3.15 CutMix weighs
the labels by the box's real-valued area, not by the pixels it actually pasted (they can differ
by several per cent on small images), so both are written here, a few lines each, in plain
TensorFlow (tf.data runs TensorFlow whatever the Keras backend) with stateless random numbers: the
same seed gives the same batches.
"""
import keras

MIX_METHODS = ("none", "mixup", "cutmix")


def augmentation_layers(flip="horizontal", zoom=0.1, rotation=0.05, translation=0.1, seed=None):
    """A ``keras.Sequential`` of random flip, zoom, rotation and translation; ``None`` if all are off.

    ``flip`` is ``"horizontal"``, ``"vertical"``, ``"horizontal_and_vertical"`` or ``None``;
    ``zoom`` and ``translation`` are fractions of the image size, ``rotation`` a fraction of a full
    turn (0.05 is 18 degrees); 0 turns one off. Edges are filled by reflecting the image.
    """
    layers = []
    if flip:
        layers.append(keras.layers.RandomFlip(flip, seed=seed))
    if zoom:
        layers.append(keras.layers.RandomZoom(zoom, seed=seed))
    if rotation:
        layers.append(keras.layers.RandomRotation(rotation, seed=seed))
    if translation:
        layers.append(keras.layers.RandomTranslation(translation, translation, seed=seed))
    return keras.Sequential(layers, name="augmentation") if layers else None


def _beta(shape, alpha, seed):
    """Stateless Beta(alpha, alpha) samples, from two Gamma(alpha) samples: g1 / (g1 + g2)."""
    import tensorflow as tf

    seeds = tf.random.experimental.stateless_split(seed, 2)
    first = tf.random.stateless_gamma(shape, seeds[0], alpha)
    second = tf.random.stateless_gamma(shape, seeds[1], alpha)
    return first / (first + second)


def _partners(size, seed):
    """A stateless random permutation of ``range(size)``: who each image is mixed with."""
    import tensorflow as tf

    return tf.argsort(tf.random.stateless_uniform([size], seed))


def mixup(images, labels, seed, alpha=0.2):
    """mixup (Zhang et al. 2018): blend each image and its one-hot label with a partner's.

    ``lam ~ Beta(alpha, alpha)``, one per image; small ``alpha`` keeps most images nearly pure.
    ``seed`` is a pair of integers (a stateless seed).
    """
    import tensorflow as tf

    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2)
    size = tf.shape(images)[0]
    partners = _partners(size, seeds[0])
    lam = _beta([size], alpha, seeds[1])
    images = tf.cast(images, tf.float32)
    labels = tf.cast(labels, tf.float32)
    mixed_images = lam[:, None, None, None] * images + (1 - lam[:, None, None, None]) * tf.gather(images, partners)
    mixed_labels = lam[:, None] * labels + (1 - lam[:, None]) * tf.gather(labels, partners)
    return mixed_images, mixed_labels


def cutmix(images, labels, seed, alpha=1.0):
    """CutMix (Yun et al. 2019): paste a random box of a partner image; labels weighted by pixel share.

    The box covers about ``1 - lam`` of the image, ``lam ~ Beta(alpha, alpha)``; its centre is
    uniform over the image and it is clipped at the border, so the label weight is computed from
    the pixels actually pasted.
    """
    import tensorflow as tf

    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 3)
    shape = tf.shape(images)
    size, height, width = shape[0], shape[1], shape[2]
    partners = _partners(size, seeds[0])
    side = tf.sqrt(1.0 - _beta([size], alpha, seeds[1]))  # box side as a fraction of the image side
    centre = tf.random.stateless_uniform([size, 2], seeds[2])
    extent = tf.cast(tf.stack([height, width]), tf.float32)
    low = tf.cast(tf.round((centre - side[:, None] / 2) * extent), tf.int32)
    high = tf.cast(tf.round((centre + side[:, None] / 2) * extent), tf.int32)
    rows = tf.range(height)[None, :, None]
    columns = tf.range(width)[None, None, :]
    inside = ((rows >= low[:, 0, None, None]) & (rows < high[:, 0, None, None])
              & (columns >= low[:, 1, None, None]) & (columns < high[:, 1, None, None]))
    pasted = tf.reduce_mean(tf.cast(inside, tf.float32), axis=[1, 2])
    images = tf.cast(images, tf.float32)
    mixed_images = tf.where(inside[..., None], tf.gather(images, partners), images)
    labels = tf.cast(labels, tf.float32)
    mixed_labels = (1 - pasted[:, None]) * labels + pasted[:, None] * tf.gather(labels, partners)
    return mixed_images, mixed_labels


def mix_batches(dataset, method, alpha, seed=0):
    """Apply ``"mixup"`` or ``"cutmix"`` to every batch of ``dataset`` (images, one-hot labels).

    Each batch draws its own random numbers, new ones every epoch, repeatable from ``seed``.
    ``"none"`` returns ``dataset`` unchanged.
    """
    import tensorflow as tf

    if method not in MIX_METHODS:
        raise ValueError(f"Unknown mixing method {method!r}; choose one of {', '.join(MIX_METHODS)}.")
    if method == "none":
        return dataset
    if not alpha > 0:
        raise ValueError(f"The {method} alpha must be > 0; got {alpha}.")
    mix = {"mixup": mixup, "cutmix": cutmix}[method]
    randoms = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    return tf.data.Dataset.zip(dataset, randoms).map(
        lambda batch, batch_seed: mix(batch[0], batch[1], batch_seed, alpha),
        num_parallel_calls=tf.data.AUTOTUNE)
