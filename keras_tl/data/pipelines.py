"""``tf.data`` pipelines: :func:`make_pipeline` turns an image set into batches for a source (decode,
convert grey, RGBA, palette, CMYK, 16-bit and float images to 8-bit RGB, make square (``resize=``: squash,
crop or pad) and resize, apply the source's ``preprocess_input``, batch, prefetch); :func:`training_pipelines`
makes the train, validation and test pipelines of a fine-tuning run from them, the train one optionally class-balanced (:func:`balanced_order`).
TensorFlow (and Keras) are imported when a pipeline is made.
"""
import numpy as np

from keras_tl.data.images import PAD_VALUE, check_resize, load_image

MAX_IMAGE_SIZE = 4096  # pixels a side: a batch of 32 such float32 images is already 6 GiB
MAX_BATCH_SIZE = 4096  # images per batch


def check_sizes(image_size=None, batch_size=None):
    """A ``ValueError`` for an image or batch size that would exhaust memory (or is below 1), before any work."""
    for name, value, largest in (("image_size", image_size, MAX_IMAGE_SIZE), ("batch_size", batch_size,
                                                                              MAX_BATCH_SIZE)):
        if value is not None and not 1 <= value <= largest:
            raise ValueError(f"{name}={value} is outside 1..{largest}.")


def make_pipeline(image_set, image_size, preprocess=None, batch_size=32, shuffle=False, seed=0, balanced=False,
                  resize="squash"):
    """A ``tf.data.Dataset`` of ``(images, labels)`` batches, ready for a source's model.

    Files are decoded in parallel by :func:`load_image` (:func:`decode_image`, the decoder that
    :func:`load_dataset` checked them with); a file that fails anyway stops the pipeline with an error
    that names it. In-memory arrays are resized in the graph (:func:`resize_batch`). Images become float32
    RGB at ``image_size`` pixels, made square as ``resize`` says: ``"squash"`` stretches them, ``"crop"`` keeps
    their central square, ``"pad"`` centres them on a white square (:data:`~keras_tl.data.images.RESIZE_MODES`);
    then ``preprocess`` (the source's ``preprocess_input``) is applied to whole batches, and the next batches
    are prefetched. ``balanced``: every class drawn equally often, in a
    shuffled order (:func:`balanced_order`). Labels are int32 class indices, or float32 multi-hot rows for a
    multi-label set (:attr:`~keras_tl.data.ImageSet.multi_label`), which cannot be ``balanced``.
    """
    check_sizes(image_size=image_size, batch_size=batch_size)
    check_resize(resize)
    import tensorflow as tf

    autotune = tf.data.AUTOTUNE
    if balanced and image_set.multi_label:
        raise ValueError("balanced=True draws every class equally often, and an image of a multi-label set has "
                         "several classes; use it with one label per image.")
    labels = image_set.labels.astype(np.float32 if image_set.multi_label else np.int32)

    def order(dataset):
        if balanced:
            return balanced_order(dataset, labels, seed)
        return dataset.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True) if shuffle else dataset

    if image_set.paths is not None:
        dataset = order(tf.data.Dataset.from_tensor_slices((image_set.paths.astype(str), labels)))

        def read(name):
            try:
                return load_image(name.decode(), image_size, resize)
            except Exception as error:  # say which file: TensorFlow's traceback would not
                raise ValueError(f"Cannot decode {name.decode()}: {type(error).__name__}: {error}") from error

        def decode(path, label):
            image = tf.numpy_function(read, [path], tf.uint8)
            return tf.ensure_shape(image, (image_size, image_size, 3)), label

        dataset = dataset.map(decode, num_parallel_calls=autotune).batch(batch_size)
    else:
        images = image_set.images if image_set.images.ndim == 4 else image_set.images[..., None]
        antialias = image_size < max(images.shape[1:3])  # only shrinking needs it, and it is the slow kernel
        dataset = order(tf.data.Dataset.from_tensor_slices((images, labels)))

        def to_size(batch, label):
            batch = resize_batch(tf.cast(batch, tf.float32), image_size, resize, antialias)
            if batch.shape[-1] == 1:
                batch = tf.image.grayscale_to_rgb(batch)
            return batch, label

        dataset = dataset.batch(batch_size).map(to_size, num_parallel_calls=autotune)

    def finish(batch, label):
        batch = tf.cast(batch, tf.float32)
        return (preprocess(batch) if preprocess else batch), label

    return dataset.map(finish, num_parallel_calls=autotune).prefetch(autotune)


def resize_batch(images, image_size, resize="squash", antialias=True):
    """A float batch ``(N, H, W, C)`` at ``image_size`` x ``image_size`` px (bilinear, ``antialias``), made square
    as ``resize`` says: ``keras.ops.image.resize`` with ``crop_to_aspect_ratio`` or ``pad_to_aspect_ratio`` (filled
    with :data:`~keras_tl.data.images.PAD_VALUE`), the graph's twin of :func:`~keras_tl.data.images.resize_image`."""
    import keras

    check_resize(resize)
    return keras.ops.image.resize(images, (image_size, image_size), antialias=antialias,
                                  crop_to_aspect_ratio=resize == "crop", pad_to_aspect_ratio=resize == "pad",
                                  fill_value=PAD_VALUE)


def balanced_order(dataset, labels, seed=0):
    """``dataset`` (of ``(image, label)`` pairs, ``labels`` their labels) in an order that draws each class equally
    often: a class chosen at random for each image (``tf.data.Dataset.sample_from_datasets``), then the next of its
    images, which are reshuffled and repeated. An epoch is as long as ``dataset``: a small class is seen several
    times an epoch, a large one in part (oversampling; the alternative to weighing the loss by class)."""
    import tensorflow as tf

    per_class = [dataset.filter(lambda _, label, kept=int(kept): label == kept)
                 .shuffle(int(np.sum(labels == kept)), seed=seed, reshuffle_each_iteration=True).repeat()
                 for kept in np.unique(labels)]
    mixed = tf.data.Dataset.sample_from_datasets(per_class, seed=seed, rerandomize_each_iteration=True)
    return mixed.take(len(labels)).apply(tf.data.experimental.assert_cardinality(len(labels)))


def training_pipelines(source, image_size, splits, num_classes, batch_size=32, mix="none", mix_alpha=0.0, seed=0,
                       shard=False, balanced=False, resize="squash"):
    """tf.data pipelines for train (shuffled, optionally mixed), validation and test of ``splits``;
    labels one-hot for train and validation (mixup and CutMix make soft labels), integers for test (multi-label:
    multi-hot rows in all three).
    Without a ``"validation"`` split (a fixed schedule) the validation pipeline is None.

    ``shard``: split the training data across the workers of a multi-worker strategy. ``balanced``: train
    draws every class equally often (:func:`balanced_order`). ``resize``: how images become square
    (:func:`make_pipeline`).
    """
    import tensorflow as tf

    from keras_tl import distribute
    from keras_tl.data import augment  # both import Keras: only once a pipeline is made

    def one_hot(images, labels):
        return images, labels if splits["train"].multi_label else tf.one_hot(labels, num_classes)

    def pipeline(image_set, shuffle=False, balanced=False):
        return make_pipeline(image_set, image_size, source.preprocess_input, batch_size, shuffle=shuffle, seed=seed,
                             balanced=balanced, resize=resize)

    def for_fit(dataset):  # what fit reads: sharded across workers on request, prefetched
        return (distribute.shard_by_data(dataset) if shard else dataset).prefetch(tf.data.AUTOTUNE)

    train = for_fit(augment.mix_batches(pipeline(splits["train"], shuffle=True, balanced=balanced).map(one_hot), mix,
                                        mix_alpha, seed))
    validation = for_fit(pipeline(splits["validation"]).map(one_hot)) if "validation" in splits else None
    return train, validation, pipeline(splits["test"])
