"""Test-time augmentation (TTA): score each image in several views and average the scores.

The views (Krizhevsky et al. 2012, section 4.1; fastai's ``learn.tta``):

- ``"none"``: the image alone;
- ``"flip"``: the image and its mirror image (left-right);
- ``"ten-crop"``: the image enlarged by 256/224 (the usual ImageNet evaluation ratio; bilinear,
  in the graph, from the model's input), then its four corner crops and centre crop at the
  model's size, and their mirror images (:func:`keras_tl.data.crops.ten_crops`).

The scores are averaged over the views: for a fine-tuned run's softmax outputs that is the
average in probability space; for an fne run's exported model it is the average of the linear
SVM's decision scores (they are no probabilities, but the average still ranks the classes).
An fne run's ``--ten-crop`` averages the *features* of the crops before the SVM instead.

>>> model = tta_model(trained.model, "flip")      # a Keras model: same inputs, averaged scores
>>> classifiers.predict_classes(model, test_pipeline)
"""
import keras
from keras import ops

from keras_tl import messages
from keras_tl.data.crops import TEN_CROP_SCALE, ten_crops

TTA_KINDS = ("none", "flip", "ten-crop")


def check_kind(kind):
    """A ``ValueError`` naming ``tta=`` for a kind that is not one of :data:`TTA_KINDS`."""
    if kind not in TTA_KINDS:
        raise ValueError(f"tta={kind!r} is not a kind of test-time augmentation; expected one of "
                         f"{', '.join(TTA_KINDS)}." + messages.did_you_mean(kind, TTA_KINDS))


def views(images, kind):
    """The views of a batch ``images`` (B, S, S, C) as one array (V, B, S, S, C): 1, 2 or 10 views."""
    check_kind(kind)
    if kind == "none":
        return ops.expand_dims(images, 0)
    if kind == "flip":
        return ops.stack([images, ops.flip(images, axis=2)])
    size = images.shape[1]
    enlarged = ops.image.resize(images, (round(size * TEN_CROP_SCALE),) * 2)
    return ten_crops(enlarged, size)


class TestTimeAugmentation(keras.Model):
    """``model`` scored on each :func:`views` of its input, the scores averaged over the views.

    It takes what ``model`` takes (preprocessed images) and returns what it returns, so it works
    wherever ``model`` does (``predict``, :func:`keras_tl.features.classifiers.predict_classes`). It is for
    predicting only: save ``model`` itself, not this wrapper.
    """

    def __init__(self, model, kind="flip", **kwargs):
        check_kind(kind)
        super().__init__(name=f"{model.name}_tta_{kind.replace('-', '_')}", **kwargs)
        self.classifier, self.kind = model, kind

    def call(self, images, training=False):
        stacked = views(images, self.kind)
        count = stacked.shape[0]
        scores = self.classifier(ops.reshape(stacked, (-1, *images.shape[1:])), training=False)
        return ops.mean(ops.reshape(scores, (count, -1, scores.shape[-1])), axis=0)


def tta_model(model, kind="flip"):
    """``model`` with test-time augmentation ``kind`` (:class:`TestTimeAugmentation`); ``model`` itself for "none"."""
    check_kind(kind)
    return model if kind == "none" else TestTimeAugmentation(model, kind)
