"""Which images a trained run gets wrong, and how wrong: fastai's ``ClassificationInterpretation`` for any run.

:class:`Interpretation` scores a labelled image set (a split of :func:`keras_tl.data.load_dataset`,
with file paths or arrays) with a run from :func:`keras_tl.analysis.trained.load_run` and keeps, per image,
its true and predicted class, its scores and its loss. Then, with fastai's names
(docs.fast.ai/interpret.html; course.fast.ai, lesson 2):

- :meth:`~Interpretation.top_losses`: the images the model is most wrong about (often a wrong label);
- :meth:`~Interpretation.most_confused`: the (true, predicted, count) pairs off the confusion matrix's diagonal;
- :meth:`~Interpretation.per_class_accuracy`, :meth:`~Interpretation.plot_top_losses`,
  :meth:`~Interpretation.plot_per_class_accuracy`, :meth:`~Interpretation.plot_confusion_matrix`;
- :meth:`~Interpretation.write_csv`: the likely mislabelled and the most uncertain images, to check by hand.

Scores and losses depend on what the run's model outputs (its ``score_name``):

- probabilities (a ``fine_tune`` run, or an ``fne`` run with a logistic head): the loss is the
  cross-entropy ``-log p(true class)``, as in training;
- an ``fne`` run's linear SVM decision values (no probabilities): the loss is
  the multi-class margin ``max over the other classes of their score - score(true class)``
  (Crammer & Singer 2001): above 0 for a wrong image (how far the predicted class beats the true
  one: "confidently wrong"), below 0 for a right one (how far the true class is ahead).

"Uncertain" means a small gap between the best and the second-best score, for either kind.

>>> interpretation = Interpretation.from_run("runs/fine_tune-20260101-120000")   # its own test split
>>> interpretation.most_confused()[:3]        # [("cat", "dog", 4), ("cow", "horse", 2), ...]
>>> interpretation.plot_top_losses(9)
"""
import csv
import json
import math
import pathlib

import matplotlib.pyplot as plt
import numpy as np

from keras_tl import data, messages, plots, runs
from keras_tl.analysis import trained
from keras_tl.analysis.tta import tta_model
from keras_tl.features import classifiers

SPLITS = ("test", "train", "all")
CROSS_ENTROPY_EPSILON = 1e-7  # probabilities are clipped here first, as Keras's cross-entropy does


def run_dataset(run_dir, dataset=None, verbose=True):
    """The labelled images to interpret a run on, as an :class:`~keras_tl.data.ImageDataset`.

    Without ``dataset``: the dataset the run recorded in its ``config.json`` (name or folder, seed
    and images per class), so its test split is the one the run was scored on (and its train split
    holds a fine_tune run's validation images too). With ``dataset`` (a name or folder, see
    :func:`keras_tl.data.load_dataset`): every image of it, no per-class limit, split with the run's seed.
    """
    path = pathlib.Path(run_dir) / "config.json"
    if not path.is_file():
        if dataset is None:
            raise FileNotFoundError(f"{path} not found: a run records its dataset there. Give dataset= (a name "
                                    f"or folder) to choose the images.")
        return data.load_dataset(dataset, verbose=verbose)
    try:
        info = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON ({error}); it is damaged. Give dataset= (a name or folder) "
                         f"to choose the images.") from None
    settings = info.get("settings", info) if isinstance(info, dict) else {}  # fine_tune: under "settings"; fne: top
    seed = settings.get("seed", 0)
    if dataset is not None:
        return data.load_dataset(dataset, seed=seed, verbose=verbose)
    if "dataset" not in settings:
        raise ValueError(f"{path} records no dataset; give dataset= (a name or folder) to choose the images.")
    try:
        return data.load_dataset(settings["dataset"], seed=seed, train_per_class=settings.get("train_per_class"),
                                 test_per_class=settings.get("test_per_class"), verbose=verbose,
                                 **{name: settings.get(name) for name in data.registry.TABLE_OPTIONS})
    except FileNotFoundError as error:
        raise FileNotFoundError(f"{path} records the dataset {settings['dataset']!r}, which is not found here "
                                f"({error}). Give dataset= (its name or folder here).") from None


def split_of(dataset, split="test"):
    """The ``"test"`` or ``"train"`` :class:`~keras_tl.data.ImageSet` of ``dataset``, or ``"all"`` of its images."""
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is not a split; expected one of {', '.join(SPLITS)}."
                         + messages.did_you_mean(split, SPLITS))
    if split != "all":
        return getattr(dataset, split)
    return data.ImageSet.concatenate([dataset.train, dataset.test])


def labels_in_model_order(labels, class_names, model_classes):
    """``labels`` (indices into ``class_names``) as indices into ``model_classes`` (multi-hot rows: their columns in
    the order of ``model_classes``); a ``ValueError`` for a class the model lacks."""
    missing = [name for name in class_names if name not in model_classes]
    if missing:
        shown = ", ".join(model_classes[:10]) + (", ..." if len(model_classes) > 10 else "")
        raise ValueError(f"The images' classes {', '.join(map(repr, missing[:5]))} are not among the run's "
                         f"{len(model_classes)} classes ({shown})."
                         f"{messages.did_you_mean(missing[0], model_classes) if len(missing) == 1 else ''} "
                         f"Give images of the classes the run was trained on (dataset=).")
    order = np.array([model_classes.index(name) for name in class_names], dtype=int)
    labels = np.asarray(labels, dtype=int)
    if labels.ndim == 2:
        in_model_order = np.zeros((len(labels), len(model_classes)), dtype=int)
        in_model_order[:, order] = labels
        return in_model_order
    return order[labels]


class Interpretation:
    """A run's predictions on a labelled image set, image by image (see the module docstring).

    Args:
        model: a :class:`~keras_tl.analysis.trained.TrainedModel` (:func:`keras_tl.analysis.trained.load_run`).
        image_set: a :class:`~keras_tl.data.ImageSet` (file paths or arrays, integer labels).
        class_names: the names of ``image_set``'s labels (default: the run's classes, in its order).
        tta: test-time augmentation, ``"none"``, ``"flip"`` or ``"ten-crop"``
            (:mod:`keras_tl.analysis.tta`): the scores are averaged over the views.

    Per image (arrays in image-set order): ``files`` (the path, or ``#index`` for images held in
    an array), ``true_labels``, ``predicted``, ``scores`` (N, classes), ``losses``, ``gaps`` (the best
    score minus the second best: small is uncertain); and ``classes`` (the run's), ``score_name``
    ("probability" or "svm score"), ``accuracy``.
    """

    def __init__(self, model, image_set, class_names=None, tta="none", batch_size=32, verbose=True):
        if not len(image_set):
            raise ValueError("image_set= holds no images; give a split with labelled images (dataset.test).")
        self.model, self.image_set, self.tta = model, image_set, tta
        self.classes = list(model.classes)
        self.score_name = model.score_name
        self.true_labels = labels_in_model_order(image_set.labels, class_names or self.classes, self.classes)
        self.files = ([str(path) for path in image_set.paths] if image_set.paths is not None
                      else [f"#{index}" for index in range(len(image_set))])
        self.scores = self._predict(batch_size, verbose)
        self.predicted = np.argmax(self.scores, axis=1)
        true_scores = self.scores[np.arange(len(self.scores)), self.true_labels]
        if self.score_name == trained.PROBABILITY:
            self.losses = -np.log(np.clip(true_scores, CROSS_ENTROPY_EPSILON, 1.0))
        else:
            others = self.scores.copy()
            others[np.arange(len(others)), self.true_labels] = -np.inf
            self.losses = others.max(axis=1) - true_scores
        best_two = np.sort(self.scores, axis=1)[:, ::-1][:, :2]
        self.gaps = best_two[:, 0] - best_two[:, 1]
        self.evaluation = classifiers.evaluate_predictions(self.true_labels, self.predicted, self.classes)
        self.accuracy = self.evaluation["accuracy"]

    @classmethod
    def from_run(cls, run_dir, dataset=None, split="test", tta="none", batch_size=32, verbose=True):
        """The interpretation of the run in ``run_dir`` on ``split`` of :func:`run_dataset` (by default the
        run's own test split)."""
        model = trained.load_run(run_dir)
        labelled = run_dataset(run_dir, dataset, verbose=verbose)
        return cls(model, split_of(labelled, split), labelled.class_names, tta, batch_size, verbose)

    def _predict(self, batch_size, verbose):
        """Scores (N, classes) of every image, batch by batch through the run's pipeline (and TTA)."""
        model = tta_model(self.model.model, self.tta)
        pipeline = data.make_pipeline(self.image_set, self.model.image_size, self.model.source.preprocess_input,
                                      batch_size, resize=self.model.resize)
        batches = []
        with messages.progress_bar(len(self.image_set), "predicting", verbose=verbose) as progress:
            for images, _ in pipeline:
                batches.append(np.asarray(model.predict_on_batch(images), dtype=np.float64))
                progress.update(len(batches[-1]))
        return np.concatenate(batches)

    def top_losses(self, k=None):
        """``(losses, indices)`` of the ``k`` images with the largest loss (all when None), largest first."""
        order = np.argsort(-self.losses, kind="stable")[:k]
        return self.losses[order], order

    def most_uncertain(self, k=None):
        """Indices of the ``k`` images with the smallest gap between their two best scores, smallest first."""
        return np.argsort(self.gaps, kind="stable")[:k]

    def confusion_matrix(self):
        """Counts (classes, classes): rows the true class, columns the predicted one."""
        return self.evaluation["confusion_matrix"]

    def most_confused(self, min_count=1):
        """``[(true class, predicted class, count)]`` of the mistakes made at least ``min_count`` times, most first."""
        matrix = self.confusion_matrix()
        pairs = [(self.classes[true], self.classes[predicted], int(matrix[true, predicted]))
                 for true, predicted in zip(*np.nonzero(matrix)) if true != predicted
                 and matrix[true, predicted] >= min_count]
        return sorted(pairs, key=lambda pair: -pair[2])

    def per_class_accuracy(self):
        """``{class: accuracy}`` over the images of each class (the recall), for the classes that have images."""
        matrix = self.confusion_matrix()
        counts = matrix.sum(axis=1)
        return {name: float(matrix[index, index] / counts[index]) for index, name in enumerate(self.classes)
                if counts[index]}

    def row(self, index):
        """One image's ``[file, true, predicted, score of predicted, score of true, loss]``."""
        true, predicted = self.true_labels[index], self.predicted[index]
        return [self.files[index], self.classes[true], self.classes[predicted], float(self.scores[index, predicted]),
                float(self.scores[index, true]), float(self.losses[index])]

    def mislabelled_rows(self, k=10):
        """Rows (:meth:`row` and a reason) of the ``k`` wrong images with the largest loss ("confidently wrong",
        likely mislabelled) and the ``k`` most uncertain images; an image in both has both reasons."""
        wrong = [index for index in self.top_losses()[1] if self.predicted[index] != self.true_labels[index]][:k]
        reasons = {int(index): ["confidently wrong"] for index in wrong}
        for index in self.most_uncertain(k):
            reasons.setdefault(int(index), []).append("uncertain")
        return [self.row(index) + ["; ".join(reason)] for index, reason in reasons.items()]

    def write_csv(self, path, k=10):
        """Write :meth:`mislabelled_rows` to ``path`` (atomically): ``file, true, predicted, <score>_predicted,
        <score>_true, loss, reason``, the score named as :attr:`score_name` is (``probability``, ``svm_score``)."""
        score = self.score_name.replace(" ", "_")
        return _write_csv(path, ["file", "true", "predicted", f"{score}_predicted", f"{score}_true", "loss", "reason"],
                          self.mislabelled_rows(k))

    def write_most_confused(self, path, min_count=1):
        """Write :meth:`most_confused` to ``path`` (atomically): ``true, predicted, count``."""
        return _write_csv(path, ["true", "predicted", "count"], self.most_confused(min_count))

    def plot_top_losses(self, k=9, path=None, columns=None):
        """A grid of the ``k`` images with the largest loss, each titled with its true / predicted class, the
        score of the predicted class, the loss and its file name; returns the Figure."""
        losses, indices = self.top_losses(k)
        columns = columns or max(1, math.ceil(math.sqrt(len(indices))))
        rows = max(1, math.ceil(len(indices) / columns))
        figure, axes = plt.subplots(rows, columns, figsize=(2.8 * columns, 3.5 * rows), squeeze=False)
        for panel, index, loss in zip(axes.flat, indices, losses):
            source = ([self.files[index]] if self.image_set.paths is not None
                      else self.image_set.images[index:index + 1])
            panel.imshow(np.clip(self.model.load_images(source)[0], 0, 255).astype(np.uint8))
            _, true, predicted, score, _, _ = self.row(index)
            panel.set_title(f"{true} / {predicted}\n{self.score_name} {score:.2f}, loss {loss:.2f}\n"
                            f"{pathlib.Path(self.files[index]).name}", fontsize=8,
                            color="black" if true == predicted else "firebrick")
        for panel in axes.flat:
            panel.axis("off")
        figure.suptitle(f"Top losses (true / predicted): {len(indices)} of {len(self.files)} images")
        figure.tight_layout()
        return plots.finish_figure(figure, path)

    def plot_per_class_accuracy(self, path=None, ax=None):
        """Accuracy of each class as a bar, its image count beside its name ("fish (2)": a small class's accuracy
        moves in large steps), the overall accuracy dashed; returns the Figure."""
        accuracies = self.per_class_accuracy()
        counts = dict(zip(self.classes, self.confusion_matrix().sum(axis=1)))
        figure, axes = plots.figure_and_axes(ax, (6, 1.5 + 0.3 * len(accuracies)))
        names = list(accuracies)[::-1]  # the first class on top
        bars = axes.barh([f"{name} ({counts[name]})" for name in names], [accuracies[name] for name in names],
                         color="tab:blue")
        axes.bar_label(bars, [f"{accuracies[name]:.2f}" for name in names], padding=3, fontsize=8,
                       bbox=dict(facecolor="white", edgecolor="none", pad=1))  # above the dashed line
        axes.axvline(self.accuracy, color="grey", linestyle="--")
        axes.set_xlim(0, 1.12)
        axes.set_xticks(np.linspace(0, 1, 6))
        axes.set_xlabel("accuracy (images of the class)")
        axes.set_ylabel("class (images)")
        axes.set_title(f"Per-class accuracy on {len(self.files)} images\n(dashed: overall accuracy "
                       f"{self.accuracy:.3f})")
        return plots.finish_figure(figure, path)

    def plot_confusion_matrix(self, path=None, ax=None):
        """The confusion matrix (:func:`keras_tl.plots.plot_confusion_matrix`) of these predictions."""
        return plots.plot_confusion_matrix(self.confusion_matrix(), self.classes, path=path, ax=ax,
                                           title=f"Confusion matrix: accuracy {self.accuracy:.3f}")


def _write_csv(path, header, rows):
    """``header`` and ``rows`` as a CSV file at ``path``, written atomically; floats with 6 significant digits."""
    with runs.atomic_path(path) as temporary, open(temporary, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows([f"{cell:.6g}" if isinstance(cell, float) else cell for cell in row] for row in rows)
    return pathlib.Path(path)
