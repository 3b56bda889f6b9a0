"""Use what you trained: load a finished run folder and predict on new images.

Like fastai's ``load_learner`` and ``learn.predict``: :func:`load_run` reads a run folder of
either image job and returns a :class:`TrainedModel` that knows its classes, its source, its
input size and its preprocessing, so new images need nothing else.

- a ``fine_tune`` run (``config.json``, ``metrics.json``, ``model.keras``) scores classes with
  softmax probabilities;
- an ``fne`` run (``model.json``, ``metrics.json``, ``model.keras``, see :mod:`keras_tl.export`)
  scores them with the linear SVM's decision values (not probabilities: larger is more likely).

>>> trained = load_run("runs/fine_tune-20260101-120000")
>>> trained.top_k(["photo.jpg"], k=3)   # [[("cat", 0.91), ("dog", 0.05), ("cow", 0.02)]]
"""
import dataclasses
import json
import os
import pathlib

import numpy as np

from keras_tl import data, sources

SCORE_NAMES = {"fine_tune": "probability", "fne": "svm score"}


@dataclasses.dataclass
class TrainedModel:
    """A trained classifier and what it needs: ``classes``, ``source`` (a :class:`~keras_tl.sources.Source`),
    ``image_size``, ``kind`` ("fine_tune" or "fne") and the Keras ``model`` (which takes preprocessed images)."""

    model: object
    kind: str
    classes: list
    source: sources.Source
    image_size: int
    run_dir: pathlib.Path

    @property
    def score_name(self):
        """What the scores are: "probability" (fine_tune) or "svm score" (fne)."""
        return SCORE_NAMES[self.kind]

    def load_images(self, images):
        """``images`` as a float32 RGB batch in 0..255 at the run's size, the way the jobs' pipelines make it.

        ``images``: a file path or a list of them; or an array in 0..255: one RGB image (H, W, 3),
        a batch (N, H, W, 3), or grey images (N, H, W) or (N, H, W, 1).
        """
        if isinstance(images, (str, os.PathLike)):
            images = [images]
        if isinstance(images, (list, tuple)) and images and isinstance(images[0], (str, os.PathLike)):
            return np.stack([data.load_image(path, self.image_size) for path in images]).astype("float32")
        import keras

        array = np.asarray(images, dtype="float32")
        if array.ndim == 3:
            array = array[None] if array.shape[-1] == 3 else array[..., None]
        if array.ndim != 4 or array.shape[-1] not in (1, 3):
            raise ValueError(f"Expected file paths, or images of shape (H, W, 3), (N, H, W, 3) or (N, H, W) with "
                             f"values in 0..255; got an array of shape {np.shape(images)}.")
        if array.shape[1:3] != (self.image_size, self.image_size):
            antialias = self.image_size < max(array.shape[1:3])  # as data.make_pipeline resizes
            array = keras.ops.convert_to_numpy(keras.ops.image.resize(
                array, (self.image_size, self.image_size), antialias=antialias))
        return np.repeat(array, 3, axis=-1) if array.shape[-1] == 1 else array

    def model_inputs(self, images):
        """The model's input: :meth:`load_images`, then the source's ``preprocess_input``."""
        return self.source.preprocess_input(self.load_images(images))

    def predict(self, images, batch_size=32):
        """Scores ``(N, classes)`` of ``images`` (see :meth:`load_images`): probabilities or SVM scores."""
        inputs = self.model_inputs(images)
        return self.model.predict(inputs, batch_size=batch_size, verbose=0)

    def top_k(self, images, k=5):
        """The ``k`` best ``(class, score)`` pairs of each image, best first."""
        scores = self.predict(images)
        best = np.argsort(-scores, axis=1, kind="stable")[:, :min(k, len(self.classes))]
        return [[(self.classes[index], float(row[index])) for index in order] for row, order in zip(scores, best)]


def run_kind(run_dir):
    """"fine_tune" or "fne" for a finished run folder; a ``ValueError`` saying what is missing otherwise."""
    run_dir = pathlib.Path(run_dir)
    if not run_dir.is_dir():
        raise ValueError(f"Run folder {run_dir} does not exist; give the folder that a fine_tune or fne run "
                         f"named in its last line ('Run folder: ...').")
    kind = "fne" if (run_dir / "model.json").is_file() else "fine_tune"
    needed = ("model.json" if kind == "fne" else "config.json", "metrics.json", "model.keras")
    missing = [name for name in needed if not (run_dir / name).is_file()]
    if missing:
        raise ValueError(f"{run_dir} is not a finished fine_tune or fne run: {', '.join(missing)} missing. "
                         f"Let the run finish (or rerun an fne run made before it exported model.keras), "
                         f"or give another run folder.")
    return kind


def load_run(run_dir):
    """The :class:`TrainedModel` of a finished ``fine_tune`` or ``fne`` run folder."""
    import keras

    import keras_tl

    keras_tl.register_custom_objects()  # also when TensorFlow imported Keras before keras_tl's import hook ran
    run_dir = pathlib.Path(run_dir)
    kind = run_kind(run_dir)
    if kind == "fne":
        info = json.loads((run_dir / "model.json").read_text())
        source_name, image_size, classes = info["source"], info["image_size"], info["class_names"]
    else:
        config = json.loads((run_dir / "config.json").read_text())
        source_name, image_size, classes = config["settings"]["source"], config["image_size"], config["class_names"]
    model = keras.models.load_model(run_dir / "model.keras", compile=False)
    return TrainedModel(model, kind, list(classes), sources.get_source(source_name), int(image_size), run_dir)
