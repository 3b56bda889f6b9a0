"""Crops for evaluation: the ten crops of Krizhevsky et al. (2012), used by feature extraction
(:mod:`keras_tl.features.extraction`, ``ten_crop=True``), its engines and test-time augmentation
(:mod:`keras_tl.analysis.tta`)."""
from keras import ops

TEN_CROP_SCALE = 256 / 224  # resize to 256 px, crop 224 px: the usual ImageNet evaluation ratio


def ten_crops(images, crop_size):
    """The four corner crops and the centre crop of each image, and their mirror images (Krizhevsky et al. 2012).

    ``images`` (B, S, S, C) with S >= crop_size; returns (10, B, crop_size, crop_size, C).
    """
    size = images.shape[1]
    far, centre = size - crop_size, (size - crop_size) // 2
    corners = [(0, 0), (0, far), (far, 0), (far, far), (centre, centre)]
    crops = [images[:, top:top + crop_size, left:left + crop_size, :] for top, left in corners]
    crops += [ops.flip(crop, axis=2) for crop in crops]
    return ops.stack(crops)
