"""Raw-image models: a run's classifier that takes RGB images as they come, and its fast compiled call.

A run's ``model.keras`` takes images already resized to the run's size and passed through the
source's ``preprocess_input``; whoever serves it must repeat both, and getting that wrong is the
classic cause of wrong predictions. :func:`raw_image_model` puts both steps into the graph, as the
Keras transfer-learning guide recommends ("models that take raw data"):

``RGB 0..255, any height and width -> SourcePreprocessing -> the run's model -> ClassScores``

- :class:`SourcePreprocessing` is the run's pipeline as a layer: it makes the image square as the run's
  ``resize`` says (squashed, its central square cropped, or padded with white; ``keras_tl.data.resize_batch``)
  and resizes it to ``image_size`` x ``image_size`` with bilinear interpolation, antialiased (what the
  pipelines do: Pillow's bilinear resize of a file, ``tf.image.resize`` of an array; both antialias
  when shrinking), then applies the source's ``preprocess_input``. Not ``keras.layers.Resizing``:
  its ``training=True`` default would put the BatchNorm layers behind it in training mode whenever
  the model is called as ``raw(images)``.
- the run's model is called with ``training=False``, so ``raw(images)`` predicts: the run's
  ``model.keras`` called as ``model(images)`` runs a fine-tuned model's augmentation layers and
  dropout (they default to training), unlike ``model.predict`` or ``model(images, training=False)``;
- :class:`ClassScores` passes the scores through and holds the class names (``class_names``), what
  the scores are (``score_name``) and, for a multi-label run, each class's threshold (``thresholds``: an image
  has every class whose score reaches it) in its config: the saved file carries them.

Every run saves it as ``raw_model.keras`` (:data:`RAW_MODEL_FILE`, :func:`save_raw_model`) beside
``model.keras``, which the engines and Grad-CAM keep using. It loads with
``keras.models.load_model`` once ``keras_tl`` is installed (its layers are registered when Keras is
imported). :func:`compiled_call` is the fast path that ``TrainedModel.predict`` uses: one traced
``tf.function``, BatchNorms folded and weights frozen into it, instead of ``model.predict`` per call (figures:
``bench/bench_predict.py``).

>>> raw = keras.models.load_model("runs/fine_tune-20260101-120000/raw_model.keras")
>>> scores = raw(np.asarray(PIL.Image.open("photo.jpg").convert("RGB"), "float32")[None])
>>> class_names(raw)[int(np.argmax(scores))]
"""
import keras

from keras_tl import runs

RAW_MODEL_FILE = "raw_model.keras"  # beside model.keras in every run folder
RAW_INPUT_NAME = "image"  # the raw model's input: float32 (batch, height, width, 3), RGB 0..255


@keras.saving.register_keras_serializable(package="keras_tl")
class SourcePreprocessing(keras.layers.Layer):
    """RGB floats in 0..255 of any size in; ``source``'s input out: made square as ``resize`` says (``"squash"``,
    ``"crop"`` or ``"pad"``, as the run's pipeline) and resized to ``image_size`` px (bilinear, ``antialias``), then
    the ``preprocess_input`` of ``source`` (a name, see :mod:`keras_tl.sources`). A saved layer without ``resize``
    in its config (written before the option) squashes, as every run did then."""

    def __init__(self, source, image_size, antialias=True, resize="squash", **kwargs):
        super().__init__(**kwargs)
        # imported here: this module is imported whenever Keras is, and sources imports much more
        from keras_tl import data, sources

        self.source = sources.get_source(source)  # a ValueError for a name that is not a source
        self.image_size, self.antialias = int(image_size), bool(antialias)
        self.source.input_shape(self.image_size)  # a ValueError for a size the source cannot take
        data.check_resize(resize)
        self.resize = resize

    def call(self, images):
        from keras_tl import data

        if tuple(images.shape[1:3]) != (self.image_size, self.image_size):  # unless known to be at the size already
            images = data.resize_batch(images, self.image_size, self.resize, self.antialias)
        return self.source.preprocess_input(images)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.image_size, self.image_size, 3)

    def get_config(self):
        return {**super().get_config(), "source": self.source.name, "image_size": self.image_size,
                "antialias": self.antialias, "resize": self.resize}


@keras.saving.register_keras_serializable(package="keras_tl")
class ClassScores(keras.layers.Layer):
    """The scores unchanged; the layer holds ``class_names`` (one per score), ``score_name`` (what the
    scores are: "probability", or "svm score" for an fne run's linear SVM) and ``thresholds`` (a multi-label
    run's threshold per class, else None) for whoever loads the model."""

    def __init__(self, class_names, score_name, thresholds=None, **kwargs):
        super().__init__(**kwargs)
        if not (isinstance(class_names, (list, tuple)) and all(isinstance(name, str) for name in class_names)):
            raise ValueError(f"class_names should be a list of strings; got {class_names!r:.200}.")
        self.class_names, self.score_name = list(class_names), str(score_name)
        self.thresholds = None if thresholds is None else [float(value) for value in thresholds]

    def call(self, scores):
        return scores

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "class_names": self.class_names, "score_name": self.score_name,
                "thresholds": self.thresholds}


def raw_image_model(model, source, image_size, class_names, score_name="probability", antialias=True,
                    name="raw_image_classifier", resize="squash", thresholds=None):
    """``model`` (which takes ``source``'s preprocessed images at ``image_size`` px) as a model of raw images:
    float32 RGB in 0..255, shape ``(batch, height, width, 3)``, any height and width.

    ``source``: a :class:`~keras_tl.sources.Source` or its name. ``antialias=False`` resizes with plain
    bilinear interpolation, an op that TensorFlow Lite and ONNX have built in; it differs from the
    run's pipeline only on images larger than ``image_size`` (aliasing). ``resize``: how the run's pipeline made
    images square (:data:`keras_tl.data.RESIZE_MODES`). ``thresholds``: a multi-label run's, one per class.
    """
    images = keras.Input((None, None, 3), dtype="float32", name=RAW_INPUT_NAME)
    preprocessed = SourcePreprocessing(getattr(source, "name", source), image_size, antialias, resize,
                                       name="preprocess")(images)
    scores = model(preprocessed, training=False)  # for predicting: a fine-tuned model's augmentation stays off
    if len(class_names) != scores.shape[-1]:
        raise ValueError(f"class_names lists {len(class_names)} classes, but the model has {scores.shape[-1]} outputs.")
    return keras.Model(images, ClassScores(class_names, score_name, thresholds, name="class_scores")(scores),
                       name=name)


def raw_image_model_of(run, antialias=True):
    """The raw-image model of a loaded run (a :class:`~keras_tl.analysis.trained.TrainedModel`)."""
    return raw_image_model(run.model, run.source, run.image_size, run.classes, run.score_name, antialias,
                           resize=run.resize, thresholds=run.thresholds)


def class_names(raw_model):
    """The class names a raw-image model holds (its :class:`ClassScores` layer), one per output."""
    return raw_model.get_layer("class_scores").class_names


def save_raw_model(model, run_dir, source, image_size, class_names, score_name="probability", resize="squash",
                   thresholds=None):
    """Write ``run_dir/raw_model.keras``: :func:`raw_image_model` of ``model``, atomically; return its file name."""
    with runs.atomic_path(run_dir / RAW_MODEL_FILE) as temporary:
        raw_image_model(model, source, image_size, class_names, score_name, resize=resize,
                        thresholds=thresholds).save(temporary)
    return RAW_MODEL_FILE


def compiled_call(model, input_shape=None):
    """``model`` (one float32 image input, one output) as a function of a numpy batch, compiled once: a
    ``tf.function`` whose input signature is ``input_shape`` (default: the model's; ``None`` sides take any size,
    so any batch size runs without retracing), numpy out. A raw-image model given ``(None, image_size,
    image_size, 3)`` skips its resize.

    Made for prediction: each BatchNorm after a convolution is folded into it
    (:func:`keras_tl.analysis.batchnorm_folding.fold_batch_norms`), and the weights are frozen into the traced
    graph as constants (TensorFlow's ``convert_variables_to_constants_v2``, what a frozen inference graph is), so
    TensorFlow's graph optimiser works out once what does not depend on the image. The function keeps the
    weights of the moment it was made."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    from keras_tl.analysis.batchnorm_folding import fold_batch_norms

    folded = fold_batch_norms(model)

    @tf.function(input_signature=[tf.TensorSpec(input_shape or model.input_shape, tf.float32)])
    def call(images):
        return folded(images, training=False)

    frozen = convert_variables_to_constants_v2(call.get_concrete_function())
    return lambda images: frozen(tf.convert_to_tensor(images, tf.float32))[0].numpy()
