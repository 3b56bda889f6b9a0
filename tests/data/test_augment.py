"""Augmentation: layers act only in training; mixup and CutMix labels match the pixels they mixed."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_tl.data import augment

CLASSES = 8


def flat_batch(size=16):
    """Image i is filled with the value i and labelled (one-hot) i, so a mix can be read off the pixels."""
    images = np.stack([np.full((12, 12, 3), index, np.float32) for index in range(CLASSES)])
    labels = np.eye(CLASSES, dtype=np.float32)
    return images, labels


def test_augmentation_layers_choice_and_training_only():
    assert augment.augmentation_layers(flip=None, zoom=0, rotation=0, translation=0) is None
    layers = augment.augmentation_layers(seed=1)
    assert [type(layer).__name__ for layer in layers.layers] == [
        "RandomFlip", "RandomZoom", "RandomRotation", "RandomTranslation"]
    images = np.random.default_rng(0).uniform(size=(4, 16, 16, 3)).astype("float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layers(images, training=False)), images)
    assert not np.allclose(keras.ops.convert_to_numpy(layers(images, training=True)), images)


def test_mixup_blends_images_and_labels_alike():
    images, labels = flat_batch()
    mixed_images, mixed_labels = augment.mixup(images, labels, seed=[1, 2], alpha=0.4)
    mixed_images, mixed_labels = mixed_images.numpy(), mixed_labels.numpy()
    np.testing.assert_allclose(mixed_labels.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(mixed_images.mean(axis=(1, 2, 3)), mixed_labels @ np.arange(CLASSES), rtol=1e-5)
    assert np.any((mixed_labels > 0.01) & (mixed_labels < 0.99))  # some images really are mixtures


def test_mixup_is_repeatable_from_its_seed():
    images, labels = flat_batch()
    first = augment.mixup(images, labels, seed=[3, 4])[1].numpy()
    np.testing.assert_array_equal(first, augment.mixup(images, labels, seed=[3, 4])[1].numpy())
    assert not np.array_equal(first, augment.mixup(images, labels, seed=[5, 6])[1].numpy())


def test_cutmix_label_weights_are_the_pasted_pixel_shares():
    images, labels = flat_batch()
    for seed in range(5):
        mixed_images, mixed_labels = augment.cutmix(images, labels, seed=[seed, 0], alpha=1.0)
        mixed_images, mixed_labels = mixed_images.numpy(), mixed_labels.numpy()
        pixel_shares = np.stack([(mixed_images[..., 0] == value).mean(axis=(1, 2)) for value in range(CLASSES)], 1)
        np.testing.assert_allclose(mixed_labels, pixel_shares, atol=1e-6)
        assert set(np.unique(mixed_images)) <= set(range(CLASSES))  # pasted, never blended


def test_mix_batches_changes_each_epoch_and_repeats_with_the_seed():
    images, labels = flat_batch()

    def first_two_epochs(seed):
        dataset = augment.mix_batches(tf.data.Dataset.from_tensor_slices((images, labels)).batch(8), "mixup", 0.4,
                                      seed=seed)
        return [np.concatenate([batch_labels.numpy() for _, batch_labels in dataset]) for _ in range(2)]

    epoch_one, epoch_two = first_two_epochs(seed=7)
    assert not np.allclose(epoch_one, epoch_two)
    np.testing.assert_array_equal(epoch_one, first_two_epochs(seed=7)[0])


def test_mix_batches_none_and_bad_input():
    dataset = tf.data.Dataset.from_tensor_slices(flat_batch()).batch(4)
    assert augment.mix_batches(dataset, "none", 0.0) is dataset
    with pytest.raises(ValueError, match="Unknown mixing method 'mixupp'"):
        augment.mix_batches(dataset, "mixupp", 0.2)
    with pytest.raises(ValueError, match="alpha must be > 0"):
        augment.mix_batches(dataset, "cutmix", 0.0)
