"""Matplotlib figures, saved as PNG. Uses the non-interactive Agg backend, so it runs headless."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from keras_tl.runs import atomic_path  # noqa: E402


def save_figure(figure, path, dpi=120):
    """Save ``figure`` as PNG at ``path`` (atomically) and close it."""
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    plt.close(figure)
    return path


def plot_confusion_matrix(matrix, class_names, path, title="Confusion matrix"):
    """Row-normalised confusion matrix with the counts written in each cell."""
    matrix = np.asarray(matrix)
    normalised = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.5 * len(class_names) + 2)
    figure, axes = plt.subplots(figsize=(size, size))
    image = axes.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="fraction of the true class")
    ticks = np.arange(len(class_names))
    axes.set_xticks(ticks, class_names, rotation=45, ha="right")
    axes.set_yticks(ticks, class_names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    if len(class_names) <= 30:
        for row, column in np.ndindex(matrix.shape):
            colour = "white" if normalised[row, column] > 0.5 else "black"
            axes.text(column, row, int(matrix[row, column]), ha="center", va="center", color=colour, fontsize=8)
    return save_figure(figure, path)


def plot_few_shot(curves, path, title="Few-shot accuracy"):
    """Accuracy (mean ± std over repeats) against training images per class, one line per method.

    ``curves`` maps a method name to ``{shots: {"mean": ..., "std": ...}}``.
    """
    figure, axes = plt.subplots(figsize=(6, 4))
    for name, curve in curves.items():
        shots = sorted(curve)
        means = np.array([curve[shot]["mean"] for shot in shots])
        stds = np.array([curve[shot]["std"] for shot in shots])
        axes.errorbar(shots, means, yerr=stds, marker="o", capsize=3, label=name)
    axes.set_xscale("log")
    every_shot = sorted({shot for curve in curves.values() for shot in curve})
    axes.set_xticks(every_shot, [str(shot) for shot in every_shot])
    axes.minorticks_off()
    axes.set_xlabel("training images per class")
    axes.set_ylabel("test accuracy")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    return save_figure(figure, path)


def plot_distance_matrix(matrix, labels, path, title="Pairwise distances"):
    """Heat map of a square matrix of distances between ``labels`` (word vectors), values in the cells."""
    matrix = np.asarray(matrix)
    size = max(4.0, 0.5 * len(labels) + 2)
    figure, axes = plt.subplots(figsize=(size + 1, size))
    image = axes.imshow(matrix, cmap="viridis")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="distance (dark: close)")
    ticks = np.arange(len(labels))
    axes.set_xticks(ticks, labels, rotation=45, ha="right")
    axes.set_yticks(ticks, labels)
    axes.set_title(title)
    if len(labels) <= 20:
        middle = (matrix.min() + matrix.max()) / 2
        for row, column in np.ndindex(matrix.shape):
            colour = "black" if matrix[row, column] > middle else "white"
            axes.text(column, row, f"{matrix[row, column]:.2f}", ha="center", va="center", color=colour, fontsize=7)
    return save_figure(figure, path)


def plot_word_map(points, words, path, title="Word map", groups=None):
    """Words at their 2-D ``points`` (a PCA or t-SNE projection), coloured by ``groups`` (e.g. clusters)."""
    points = np.asarray(points)
    colours = np.zeros(len(words), dtype=int) if groups is None else np.asarray(groups)
    figure, axes = plt.subplots(figsize=(7, 6))
    axes.scatter(points[:, 0], points[:, 1], c=colours, cmap="tab10", vmin=0, vmax=9, s=25)
    for (x, y), word in zip(points, words):
        axes.annotate(word, (x, y), xytext=(3, 3), textcoords="offset points", fontsize=9)
    axes.set_title(title)
    axes.set_xticks([])
    axes.set_yticks([])
    return save_figure(figure, path)


def plot_learning_curves(history, path, title="Learning curves"):
    """Train and validation loss and accuracy per epoch; a dotted line marks where each new stage starts.

    ``history`` is a list of per-epoch dicts with ``epoch`` (counted across stages, from 1),
    ``stage``, ``loss``, ``accuracy`` and, when there was validation, ``val_loss`` and ``val_accuracy``.
    """
    epochs = [row["epoch"] for row in history]
    starts = [(row["epoch"] - 0.5, row["stage"]) for index, row in enumerate(history)
              if index == 0 or row["stage"] != history[index - 1]["stage"]]
    figure, panels = plt.subplots(1, 2, figsize=(11, 4))
    for axes, metric in zip(panels, ("loss", "accuracy")):
        for prefix, style in (("", "-o"), ("val_", "--s")):
            values = np.array([row.get(prefix + metric, np.nan) for row in history], dtype=float)
            if not np.all(np.isnan(values)):
                axes.plot(epochs, values, style, markersize=4, label=f"{'validation' if prefix else 'train'} {metric}")
        for index, (start, stage) in enumerate(starts):
            if index:
                axes.axvline(start, color="grey", linestyle=":")
            axes.text(start, 0.98, f" {stage}", transform=axes.get_xaxis_transform(), va="top", ha="left",
                      color="grey", fontsize=8)
        axes.set_xlim(0.5, max(epochs, default=1) + 0.5)
        axes.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
        axes.set_xlabel("epoch")
        axes.set_ylabel(metric)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    figure.suptitle(title)
    return save_figure(figure, path)
