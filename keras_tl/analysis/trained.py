"""Use what you trained: load a finished run folder and predict on new images.

Like fastai's ``load_learner`` and ``learn.predict``: :func:`load_run` reads a run folder of
either image job and returns a :class:`TrainedModel` that knows its classes, its source, its
input size and its preprocessing, so new images need nothing else.

- a ``fine_tune`` run (``config.json``, ``metrics.json``, ``model.keras``) scores classes with
  softmax probabilities;
- an ``fne`` run (``model.json``, ``metrics.json``, ``model.keras``, see :mod:`keras_tl.analysis.export`)
  scores them with the linear SVM's decision values (not probabilities: larger is more likely),
  or with probabilities when its head is logistic regression (``model.json``'s ``scores``).

A multi-label run (several labels per image) has ``thresholds.json``, a threshold per class
(:mod:`keras_tl.features.multi_label`): :meth:`TrainedModel.labels_above` gives each image every class whose
score reaches its threshold.

>>> trained = load_run("runs/fine_tune-20260101-120000")
>>> trained.top_k(["photo.jpg"], k=3)   # [[("cat", 0.91), ("dog", 0.05), ("cow", 0.02)]]
"""
import dataclasses
import json
import os
import pathlib
import reprlib
import zipfile

import numpy as np

from keras_tl import data, sources
from keras_tl.features import engines
from keras_tl.features.multi_label import THRESHOLDS_FILE, labels_above, read_thresholds
from keras_tl.training.calibration import CALIBRATION_FILE, read_calibration

PROBABILITY, SVM_SCORE = "probability", "svm score"  # what a run's model outputs
SCORE_NAMES = (PROBABILITY, SVM_SCORE)


@dataclasses.dataclass
class TrainedModel:
    """A trained classifier and what it needs: ``classes``, ``source`` (a :class:`~keras_tl.sources.Source`),
    ``image_size``, ``kind`` ("fine_tune" or "fne"), ``score_name`` (what the model outputs: "probability",
    or "svm score" for an fne run with a linear SVM) and the Keras ``model`` (which takes preprocessed images);
    ``method``: the ``LAYERS:POST`` method an fne run exported (``model.json``'s ``method``), else ``None``;
    ``calibration``: the run's :class:`~keras_tl.training.calibration.Calibration` (``calibration.json``), else
    ``None``; ``resize``: how the run's pipeline made images square (``"squash"``, ``"crop"`` or ``"pad"``, see
    :func:`keras_tl.data.make_pipeline`), which new images get too; ``thresholds``: a multi-label run's threshold
    per class (``thresholds.json``), else ``None``.

    ``engine`` runs :meth:`predict`: ``"tensorflow"``, or ``"openvino"`` / ``"onnxruntime"`` (the model
    converted once, see :mod:`keras_tl.features.engines`)."""

    model: object
    kind: str
    classes: list
    source: sources.Source
    image_size: int
    run_dir: pathlib.Path
    score_name: str = PROBABILITY
    engine: str = "tensorflow"
    method: str = None
    calibration: object = None
    resize: str = "squash"
    thresholds: np.ndarray = None
    _engine_run: object = dataclasses.field(default=None, init=False, repr=False, compare=False)
    _raw_model: object = dataclasses.field(default=None, init=False, repr=False, compare=False)
    _compiled_run: object = dataclasses.field(default=None, init=False, repr=False, compare=False)

    @property
    def multi_label(self):
        """Whether an image may have several classes: the run has a threshold per class."""
        return self.thresholds is not None

    @property
    def raw_model(self):
        """The run's classifier of raw images (RGB 0..255, any size; see :mod:`keras_tl.analysis.raw_images`),
        built once from :attr:`model`."""
        if self._raw_model is None:
            from keras_tl.analysis import raw_images

            self._raw_model = raw_images.raw_image_model_of(self)
        return self._raw_model

    def load_images(self, images):
        """``images`` as a float32 RGB batch in 0..255 at the run's size, the way the jobs' pipelines make it.

        ``images``: a file path, a Pillow image, or a list of them (each read as the pipeline reads a
        file: upright as its EXIF says, RGB, made square as :attr:`resize` says, Pillow's bilinear resize); or an
        array in 0..255 (uint8 or float): one RGB image (H, W, 3), a batch (N, H, W, 3), or grey images (N, H, W)
        or (N, H, W, 1), resized in the graph as the pipeline resizes arrays.
        """
        from PIL import Image

        if isinstance(images, (str, os.PathLike, Image.Image)):
            images = [images]
        if isinstance(images, (list, tuple)) and images and isinstance(images[0], (str, os.PathLike, Image.Image)):
            return np.stack([self._load_image(image) for image in images]).astype("float32")
        import keras

        array = np.array(images, dtype="float32")  # a copy: preprocess_input scales its argument in place
        if array.ndim == 3:
            array = array[None] if array.shape[-1] == 3 else array[..., None]
        if array.ndim != 4 or array.shape[-1] not in (1, 3):
            raise ValueError(f"Expected file paths, Pillow images, or images of shape (H, W, 3), (N, H, W, 3) or "
                             f"(N, H, W) with values in 0..255; got an array of shape {np.shape(images)}.")
        if array.shape[1:3] != (self.image_size, self.image_size):
            antialias = self.image_size < max(array.shape[1:3])  # as data.make_pipeline resizes
            array = keras.ops.convert_to_numpy(data.resize_batch(array, self.image_size, self.resize, antialias))
        return np.repeat(array, 3, axis=-1) if array.shape[-1] == 1 else array

    def _load_image(self, image):
        """One file or Pillow image as a (size, size, 3) uint8 array, as :func:`keras_tl.data.load_image` reads."""
        from PIL import Image, ImageOps

        if not isinstance(image, Image.Image):
            return data.load_image(image, self.image_size, self.resize)
        upright = data.to_rgb(data.to_8bit(ImageOps.exif_transpose(image)))
        return np.asarray(data.resize_image(upright, self.image_size, self.resize), dtype=np.uint8)

    def model_inputs(self, images):
        """The model's input: :meth:`load_images`, then the source's ``preprocess_input``."""
        return self.source.preprocess_input(self.load_images(images))

    def predict(self, images, batch_size=32):
        """Scores ``(N, classes)`` of ``images`` (see :meth:`load_images`): probabilities or SVM scores.

        With the TensorFlow engine, :attr:`raw_model` runs as one compiled ``tf.function`` of images at the
        run's size (:func:`keras_tl.analysis.raw_images.compiled_call`), ``batch_size`` images a call, with the
        weights of the first call frozen into it (a model trained on afterwards needs a new ``TrainedModel``)."""
        engine = engines.resolve_engine(self.engine)
        if engine == "tensorflow":
            from keras_tl.analysis import raw_images

            inputs = self.load_images(images)
            if self._compiled_run is None:
                self._compiled_run = raw_images.compiled_call(self.raw_model, (None, *inputs.shape[1:]))
            run = self._compiled_run
        else:
            inputs = self.model_inputs(images)
            if self._engine_run is None:
                self._engine_run = engines.compile_model(self.model, engine,
                                                         [self.kind, self.source.name, self.image_size])
            run = self._engine_run
        return np.concatenate([run(inputs[start:start + batch_size]) for start in range(0, len(inputs), batch_size)])

    def top_k(self, images, k=5, calibrated=False):
        """The ``k`` best ``(class, score)`` pairs of each image, best first; ``calibrated``, where the run has
        a :attr:`calibration`: ``(class, score, calibrated probability)`` triples, in the same order."""
        scores = self.predict(images)
        best = np.argsort(-scores, axis=1, kind="stable")[:, :min(k, len(self.classes))]
        if not (calibrated and self.calibration is not None):
            return [[(self.classes[index], float(row[index])) for index in order] for row, order in zip(scores, best)]
        probabilities = self.calibration.probabilities(scores)
        return [[(self.classes[index], float(row[index]), float(chances[index])) for index in order]
                for row, chances, order in zip(scores, probabilities, best)]

    def labels_above(self, images):
        """A multi-label run's answer: each image's ``(class, score)`` pairs whose score reaches the class's
        threshold, the highest first (an empty list when none does)."""
        if not self.multi_label:
            raise ValueError(f"{self.run_dir} is a single-label run (no {THRESHOLDS_FILE}): use top_k(images, k=1).")
        return labels_above(self.predict(images), self.thresholds, self.classes)


def run_kind(run_dir):
    """"fine_tune" or "fne" for a finished run folder; a ``ValueError`` saying what is missing otherwise."""
    run_dir = pathlib.Path(run_dir)
    if not run_dir.is_dir():
        raise ValueError(f"Run folder {run_dir} does not exist; give the folder that a fine_tune or fne run "
                         f"named in its last line ('Run folder: ...').")
    fne = (run_dir / "model.json").is_file() or _is_fne_config(run_dir / "config.json")
    needed = ("model.json" if fne else "config.json", "metrics.json", "model.keras")
    missing = [name for name in needed if not (run_dir / name).is_file()]
    if missing and fne:
        raise ValueError(f"{run_dir} is an fne run (its config.json says so) without {' or '.join(missing)}: "
                         f"the fne job writes its classifier, model.keras and model.json (classes, source, image "
                         f"size), last and only for a linear --classifier. Let it finish or run it again with the "
                         f"same options (its features are cached), or give another run folder.")
    if missing:
        raise ValueError(f"{run_dir} is not a finished fine_tune or fne run: {', '.join(missing)} missing. "
                         f"Let the run finish, or give another run folder.")
    return "fne" if fne else "fine_tune"


def _is_fne_config(path):
    """Whether ``path`` is the ``config.json`` an fne job writes (its options at the top level, ``methods`` among
    them; a fine_tune run's are under ``settings``)."""
    try:
        info = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(info, dict) and "methods" in info and "settings" not in info


def load_run(run_dir):
    """The :class:`TrainedModel` of a finished ``fine_tune`` or ``fne`` run folder.

    The folder may come from anyone, so its files are checked: one ``ValueError`` names the file
    and the field that is missing or wrong, and ``model.keras`` is read with Keras's safe mode on.
    """
    import keras_tl

    keras_tl.register_custom_objects()  # also when TensorFlow imported Keras before keras_tl's import hook ran
    run_dir = pathlib.Path(run_dir)
    kind = run_kind(run_dir)
    info_path = run_dir / ("model.json" if kind == "fne" else "config.json")
    source, image_size, classes, score_name, method, resize = read_run_info(info_path, kind)
    model_path = run_dir / "model.keras"
    model = load_keras_model(model_path)
    outputs = getattr(model, "output_shape", None)
    if not (isinstance(outputs, tuple) and len(outputs) == 2):
        raise ValueError(f"{model_path} should be a classifier with one output of shape (batch, classes); "
                         f"its output shape is {outputs}.")
    if outputs[1] != len(classes):
        raise ValueError(f"{info_path} lists {len(classes)} class_names, but the model in {model_path} has "
                         f"{outputs[1]} outputs; the two files are from different runs.")
    inputs = getattr(model, "input_shape", None)
    if not (isinstance(inputs, tuple) and len(inputs) == 4 and inputs[3] in (None, 3)):
        raise ValueError(f"{model_path} should take one batch of RGB images, of shape (batch, height, width, 3); "
                         f"its input shape is {inputs}.")
    if any(side not in (None, image_size) for side in inputs[1:3]):
        raise ValueError(f"{info_path}, field image_size: {image_size} px, but the model in {model_path} takes "
                         f"{inputs[1]}x{inputs[2]} px images; the two files are from different runs, or one was "
                         f"edited. Give another run folder.")
    calibration_path = run_dir / CALIBRATION_FILE
    calibration = read_calibration(calibration_path, len(classes)) if calibration_path.is_file() else None
    thresholds_path = run_dir / THRESHOLDS_FILE
    thresholds = read_thresholds(thresholds_path, classes) if thresholds_path.is_file() else None
    return TrainedModel(model, kind, classes, source, image_size, run_dir, score_name, method=method,
                        calibration=calibration, resize=resize, thresholds=thresholds)


def read_run_info(path, kind):
    """The checked ``(source, image_size, class_names, score_name, method, resize)`` of an fne run's ``model.json`` or a
    fine_tune run's ``config.json``. ``score_name``: one of :data:`SCORE_NAMES`; a fine_tune run's model
    gives probabilities, an fne run's what its ``scores`` field says (runs written before logistic heads
    were exported say "svm decision scores": an SVM's). ``method``: the fne run's exported ``LAYERS:POST``
    (``None`` for a fine_tune run, or where ``model.json`` names none). ``resize``: the field ``resize`` (a
    fine_tune run's ``settings.resize``), ``"squash"`` for a run written before the option."""
    try:
        info = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON ({error}); it is damaged. Give another run folder.") from None
    source_field = ("source",) if kind == "fne" else ("settings", "source")
    source_name = _field(info, path, source_field)
    image_size = _field(info, path, ("image_size",))
    classes = _field(info, path, ("class_names",))
    try:
        source = sources.get_source(source_name)
    except ValueError as error:
        raise ValueError(f"{path}, field {'.'.join(source_field)}: {error}") from None
    if not (isinstance(image_size, int) and not isinstance(image_size, bool)
            and source.min_size <= image_size <= data.MAX_IMAGE_SIZE):
        raise ValueError(f"{path}, field image_size: expected a whole number of pixels from {source.min_size} "
                         f"({source.name}'s minimum) to {data.MAX_IMAGE_SIZE}; got {reprlib.repr(image_size)}.")
    if not (isinstance(classes, list) and all(isinstance(name, str) for name in classes)):
        raise ValueError(f"{path}, field class_names: expected a list of class names (strings); "
                         f"got {reprlib.repr(classes)}.")
    repeated = sorted({name for name in classes if classes.count(name) > 1})
    if repeated:
        raise ValueError(f"{path}, field class_names: each class should be named once; "
                         f"{', '.join(map(repr, repeated))} appear more than once.")
    resize = (info if kind == "fne" else info["settings"]).get("resize", "squash")
    if resize not in data.RESIZE_MODES:
        raise ValueError(f"{path}, field {'' if kind == 'fne' else 'settings.'}resize: expected one of "
                         f"{', '.join(data.RESIZE_MODES)}; got {reprlib.repr(resize)}.")
    if kind != "fne":
        return source, image_size, classes, PROBABILITY, None, resize
    scores, method = info.get("scores"), info.get("method")
    return (source, image_size, classes, scores if scores in SCORE_NAMES else SVM_SCORE,
            method if isinstance(method, str) else None, resize)


def _field(info, path, keys):
    """``info[keys[0]][keys[1]]...``; a ``ValueError`` naming the file and the first key that is missing."""
    value = info
    for depth, key in enumerate(keys):
        if not isinstance(value, dict) or key not in value:
            raise ValueError(f"{path} has no field {'.'.join(keys[:depth + 1])}; it is damaged or not written by "
                             f"keras_tl. Give another run folder.")
        value = value[key]
    return value


def load_keras_model(path):
    """``keras.models.load_model(path)`` with safe mode on (no code from the file runs); a file that cannot
    be loaded is one ``ValueError``."""
    import keras

    try:
        return keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # whatever a damaged or hostile file makes Keras raise
        if not zipfile.is_zipfile(path):
            reason = "not a complete zip archive: it was cut short or overwritten"
        else:
            reason = f"{type(error).__name__}: {_first_sentence(error)}"
        raise ValueError(f"{path} cannot be loaded as a Keras model ({reason}); it is damaged, from another "
                         f"version, or refused by Keras's safe mode (it would run code). Rerun the job that "
                         f"wrote it, or give another run folder.") from None


def _first_sentence(error):
    """What went wrong, in at most 200 characters: Keras's errors go on with a whole model config."""
    text = str(error).strip()
    if "Exception encountered: " in text:  # Keras wraps the cause of a failed layer in a longer message
        text = text.partition("Exception encountered: ")[2]
    first_line = text.splitlines()[0] if text else "no details"
    return first_line.split(". ")[0][:200]
