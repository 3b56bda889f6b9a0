"""Matplotlib figures for runs and notebooks.

Every function draws into ``ax`` when given one (so figures can be combined), else into a new
figure; it returns the Figure, and saves it as PNG only when given ``path``. No backend is forced:
in a notebook the figure shows inline; in a script (matplotlib's headless Agg backend) a saved
figure is closed so that long jobs do not keep figures in memory.
"""
import itertools

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import ticker
from matplotlib.lines import Line2D
from matplotlib.transforms import Bbox

from keras_tl.runs import atomic_path


def figure_and_axes(ax, figsize):
    """``(figure, axes)``: the given axes ``ax`` and their figure, or a new figure of ``figsize`` with one axes.

    The first line of every figure function that draws into ``ax=`` when given one.
    """
    if ax is not None:
        return ax.figure, ax
    return plt.subplots(figsize=figsize)


def finish_figure(figure, path=None, dpi=120):
    """Save ``figure`` as PNG at ``path`` (atomically) when a path is given; return the figure.

    Outside interactive sessions (scripts, jobs) a saved figure is closed.
    """
    if path is not None:
        with atomic_path(path) as tmp:
            figure.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
        if not plt.isinteractive():
            plt.close(figure)
    return figure


def plot_confusion_matrix(matrix, class_names, path=None, title="Confusion matrix", ax=None):
    """Row-normalised confusion matrix (scikit-learn's ``ConfusionMatrixDisplay``), counts in the cells."""
    from sklearn.metrics import ConfusionMatrixDisplay

    matrix = np.asarray(matrix)
    normalised = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.5 * len(class_names) + 2)
    figure, axes = figure_and_axes(ax, (size, size))
    display = ConfusionMatrixDisplay(normalised, display_labels=list(class_names))
    display.plot(ax=axes, cmap="Blues", colorbar=False, include_values=False, xticks_rotation=45)
    display.im_.set_clim(0, 1)
    figure.colorbar(display.im_, ax=axes, fraction=0.046, pad=0.04, label="fraction of the true class")
    plt.setp(axes.get_xticklabels(), ha="right")
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    if len(class_names) <= 30:
        for row, column in np.ndindex(matrix.shape):
            colour = "white" if normalised[row, column] > 0.5 else "black"
            axes.text(column, row, int(matrix[row, column]), ha="center", va="center", color=colour, fontsize=8)
    return finish_figure(figure, path)


def plot_few_shot(curves, path=None, title="Few-shot accuracy", ax=None):
    """Accuracy (mean ± std over repeats) against training images per class, one line per method.

    ``curves`` maps a method name to ``{shots: {"mean": ..., "std": ...}}``.
    """
    figure, axes = figure_and_axes(ax, (6, 4))
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
    return finish_figure(figure, path)


def plot_distance_matrix(matrix, labels, path=None, title="Pairwise distances", ax=None):
    """Heat map of a square matrix of distances between ``labels`` (word vectors), values in the cells."""
    matrix = np.asarray(matrix)
    size = max(4.0, 0.5 * len(labels) + 2)
    figure, axes = figure_and_axes(ax, (size + 1, size))
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
    return finish_figure(figure, path)


MAP_AXES = {"pca": ("first principal component", "second principal component"), "tsne": ("t-SNE 1", "t-SNE 2")}
LABEL_DIRECTIONS = ((1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1))  # NE, SE, NW, SW, E, ...
LABEL_DISTANCES = (4, 10, 16, 25, 36, 50)  # points from a word's dot to its label, the nearest tried first


def plot_word_map(points, words, path=None, title=None, groups=None, method="pca", ax=None):
    """Words at their 2-D ``points`` (:func:`keras_tl.word_vectors.project_words`), coloured by ``groups``
    (e.g. clusters), labelled without overlaps (:func:`place_labels`); ``method`` ("pca" or "tsne") names the axes."""
    points = np.asarray(points, dtype=float)
    colours = np.zeros(len(words), dtype=int) if groups is None else np.asarray(groups)
    figure, axes = figure_and_axes(ax, (7, 6))
    axes.scatter(points[:, 0], points[:, 1], c=colours, cmap="tab10", vmin=0, vmax=9, s=25, zorder=3)
    axes.set_title(title or f"{'PCA' if method == 'pca' else 't-SNE'} map of {len(words)} words")
    axes.set_xlabel(MAP_AXES[method][0])
    axes.set_ylabel(MAP_AXES[method][1])
    axes.set_xticks([])
    axes.set_yticks([])
    axes.margins(0.15)  # room for the labels of the outer words
    axes.set_xlim(axes.get_xlim())  # fixed: the labels are placed in screen space
    axes.set_ylim(axes.get_ylim())
    place_labels(axes, points, words)
    return finish_figure(figure, path)


def place_labels(axes, points, words, fontsize=9, dot_radius=2.5):
    """Write each word beside its point, greedily: the first place, nearest first (``LABEL_DISTANCES`` in 8
    directions), whose text overlaps no label placed before, no dot and stays inside the axes (else the least
    overlapping place); a label placed far gets a thin line to its dot. Returns the Annotations.

    Place the labels after the axes limits are final: the places are measured in pixels.
    """
    to_pixels = axes.figure.dpi / 72
    radius = dot_radius * to_pixels
    dots = [Bbox.from_extents(x - radius, y - radius, x + radius, y + radius)
            for x, y in axes.transData.transform(points)]
    frame = axes.get_window_extent()
    boxes, labels = [], []
    for point, word in zip(points, words):
        probe = axes.annotate(word, point, xytext=(0, 0), textcoords="offset points", fontsize=fontsize)
        best = None
        for distance, (dx, dy) in itertools.product(LABEL_DISTANCES, LABEL_DIRECTIONS):
            probe.set(position=(dx * distance, dy * distance), **_alignment(dx, dy))
            box = probe.get_window_extent().padded(to_pixels)
            cost = _area(box) - _overlap(box, frame) + sum(_overlap(box, other) for other in boxes + dots)
            if best is None or cost < best[0]:
                best = (cost, distance, dx, dy, box)
            if cost == 0:
                break
        probe.remove()
        _, distance, dx, dy, box = best
        line = dict(arrowstyle="-", color="grey", linewidth=0.6, shrinkA=1, shrinkB=dot_radius)
        labels.append(axes.annotate(word, point, xytext=(dx * distance, dy * distance), textcoords="offset points",
                                    fontsize=fontsize, arrowprops=line if distance > LABEL_DISTANCES[1] else None,
                                    **_alignment(dx, dy)))
        boxes.append(box)
    return labels


def _alignment(dx, dy):
    """The text alignment that puts a label on the ``(dx, dy)`` side of its anchor (each -1, 0 or 1)."""
    return {"ha": ("right", "center", "left")[dx + 1], "va": ("top", "center", "bottom")[dy + 1]}


def _area(box):
    """The area of a matplotlib ``Bbox``, in square pixels."""
    return max(box.width, 0) * max(box.height, 0)


def _overlap(box, other):
    """The area two ``Bbox``es share (0 when they do not meet)."""
    shared = Bbox.intersection(box, other)
    return 0.0 if shared is None else _area(shared)


def plot_learning_curves(history, path=None, title="Learning curves", ax=None):
    """Train and validation loss and accuracy per epoch; a dotted line marks where each new stage starts.

    ``history`` is a list of per-epoch dicts with ``epoch`` (counted across stages, from 1),
    ``stage``, ``loss``, ``accuracy`` and, when there was validation, ``val_loss`` and ``val_accuracy``.
    ``ax``: two axes (loss, accuracy) to draw into, instead of a new figure.
    """
    epochs = [row["epoch"] for row in history]
    starts = [(row["epoch"] - 0.5, row["stage"]) for index, row in enumerate(history)
              if index == 0 or row["stage"] != history[index - 1]["stage"]]
    if ax is None:
        figure, ax = plt.subplots(1, 2, figsize=(11, 4))
        figure.suptitle(title)
    else:
        figure = ax[0].figure
    for panel, metric in zip(ax, ("loss", "accuracy")):
        for prefix, style in (("", "-o"), ("val_", "--s")):
            values = np.array([row.get(prefix + metric, np.nan) for row in history], dtype=float)
            if not np.all(np.isnan(values)):
                panel.plot(epochs, values, style, markersize=4, label=f"{'validation' if prefix else 'train'} {metric}")
        for index, (start, stage) in enumerate(starts):
            if index:
                panel.axvline(start, color="grey", linestyle=":")
            panel.text(start, 1.01, f" {stage}", transform=panel.get_xaxis_transform(), va="bottom", ha="left",
                       color="grey", fontsize=8)  # above the frame: clear of the curves
        panel.set_xlim(0.5, max(epochs, default=1) + 0.5)
        panel.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
        panel.set_xlabel("epoch")
        panel.set_ylabel(metric)
        panel.grid(alpha=0.3)
        panel.legend(fontsize=8)
    return finish_figure(figure, path)


RUN_MARKERS = "osD^vPX*"  # with the colour cycle: every run its own colour and marker


def plot_histories(histories, path=None, title="Learning curves", first_epochs=None, ax=None):
    """Accuracy and loss per epoch of several runs: validation solid, training dashed, each run in its own colour
    and marker, the legend outside the axes.

    ``histories`` maps a run's name to its Keras ``History.history`` (``accuracy``, ``loss`` and their ``val_``);
    ``first_epochs`` maps a run that continues another (fine-tuning after feature extraction) to the epoch it
    starts at: it is drawn from there, after a dotted line. ``ax``: two axes (accuracy, loss) to draw into.
    """
    first_epochs = first_epochs or {}
    if ax is None:
        figure, ax = plt.subplots(1, 2, figsize=(12, 4))
        figure.suptitle(title)
    else:
        figure = ax[0].figure
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    run_handles = []
    for index, (name, history) in enumerate(histories.items()):
        style = dict(color=colours[index % len(colours)], marker=RUN_MARKERS[index % len(RUN_MARKERS)], markersize=5)
        epochs = np.arange(len(history["loss"])) + first_epochs.get(name, 1)
        for panel, metric in zip(ax, ("accuracy", "loss")):
            if f"val_{metric}" in history:
                panel.plot(epochs, history[f"val_{metric}"], linestyle="-", label=name, **style)
            panel.plot(epochs, history[metric], linestyle="--", markerfacecolor="none", alpha=0.7, **style)
        run_handles.append(Line2D([], [], linestyle="-", label=name, **style))
    last_epoch = max(len(history["loss"]) + first_epochs.get(name, 1) - 1 for name, history in histories.items())
    for panel, metric in zip(ax, ("accuracy", "loss")):
        for name, first in first_epochs.items():
            panel.axvline(first - 0.5, color="grey", linestyle=":")
            panel.text(first - 0.5, 1.01, f"{name} starts", transform=panel.get_xaxis_transform(), va="bottom",
                       ha="center", color="grey", fontsize=8)  # above the frame: clear of the curves
        panel.set_xlim(0.5, last_epoch + 0.5)
        panel.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
        panel.set_xlabel("epoch")
        panel.set_ylabel(metric)
        panel.grid(alpha=0.3)
    kinds = [Line2D([], [], color="black", linestyle="-", label="validation"),
             Line2D([], [], color="black", linestyle="--", label="training")]
    ax[-1].legend(handles=run_handles + kinds, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0, fontsize=8)
    return finish_figure(figure, path)


def label_text(weights, class_names):
    """A label as words: its class ("cat") or, for a blend of two (mixup, CutMix), the weights of both, the larger
    first ("0.70 cat +\n0.30 dog"). ``weights``: a one-hot or mixed label, one weight per class."""
    weights = np.asarray(weights, dtype=float)
    shown = [index for index in np.argsort(-weights, kind="stable")[:2] if weights[index] >= 0.005]
    if len(shown) == 1:
        return class_names[shown[0]]
    return " +\n".join(f"{weights[index]:.2f} {class_names[index]}" for index in shown)


def plot_image_rows(rows, class_names, path=None, title=None):
    """One row of images per entry of ``rows`` (name -> ``(images, labels)``: RGB in 0..255, one-hot or mixed
    labels), each image titled with its label (:func:`label_text`): an augmentation preview."""
    columns = max(len(images) for images, _ in rows.values())
    figure, axes = plt.subplots(len(rows), columns, figsize=(1.9 * columns, 2.3 * len(rows)), squeeze=False)
    for row, (name, (images, labels)) in zip(axes, rows.items()):
        for panel, image, label in zip(row, np.asarray(images), np.asarray(labels)):
            panel.imshow(np.clip(image, 0, 255).astype(np.uint8))
            panel.set_title(label_text(label, class_names), fontsize=8)
        for panel in row:
            panel.set_xticks([])
            panel.set_yticks([])
        row[0].set_ylabel(name)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return finish_figure(figure, path)


def plot_grad_cam(image, heat_map, path=None, title="Grad-CAM", ax=None):
    """The image with its Grad-CAM heat map (0..1, any resolution) scaled up and laid over it, half transparent."""
    image = np.clip(np.asarray(image), 0, 255).astype(np.uint8)  # RGB in 0..255
    figure, axes = figure_and_axes(ax, (4, 4))
    axes.imshow(image)
    overlay = axes.imshow(np.asarray(heat_map), cmap="jet", alpha=0.45, vmin=0, vmax=1, interpolation="bilinear",
                          extent=(-0.5, image.shape[1] - 0.5, image.shape[0] - 0.5, -0.5))
    figure.colorbar(overlay, ax=axes, fraction=0.046, pad=0.04, label="Grad-CAM (1: most important)")
    axes.set_title(title)
    axes.set_xticks([])
    axes.set_yticks([])
    return finish_figure(figure, path)


def plot_layers(curves, fne, path=None, title="Accuracy of single layers", ax=None):
    """Accuracy (mean ± std) against relative depth, one curve per target, the FNE as a dashed line.

    ``curves`` maps a target to :func:`keras_tl.experiments.single_layers.layer_study`'s ``["layers"]``; ``fne`` maps
    it to the FNE's summary.
    """
    figure, axes = figure_and_axes(ax, (7, 4.5))
    for target, layers in curves.items():
        entries = sorted(layers.values(), key=lambda entry: entry["depth"])
        line = axes.errorbar([entry["depth"] for entry in entries], [entry["mean"] for entry in entries],
                             yerr=[entry["std"] for entry in entries], marker="o", capsize=3, label=target)
        axes.axhline(fne[target]["mean"], color=line[0].get_color(), linestyle="--", label=f"{target}: FNE")
    axes.set_xlabel("relative depth of the layer (0 = input, 1 = last layer)")
    axes.set_ylabel("test accuracy")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    return finish_figure(figure, path)


def plot_tradeoff(results, cost="wall_seconds", path=None, title="Accuracy against cost", ax=None):
    """Accuracy against a cost (log scale), one point (mean ± std on both axes) per method.

    ``results`` maps a method to ``{"accuracy": summary, cost: summary, ...}``.
    """
    figure, axes = figure_and_axes(ax, (6.5, 4.5))
    for method, entry in results.items():
        axes.errorbar(entry[cost]["mean"], entry["accuracy"]["mean"], xerr=entry[cost]["std"],
                      yerr=entry["accuracy"]["std"], marker="o", capsize=3, linestyle="none", label=method)
    axes.set_xscale("log")
    axes.xaxis.set_major_locator(ticker.LogLocator(subs=(1, 2, 5)))  # 5, 10, 20, 50, ...
    axes.xaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
    axes.xaxis.set_minor_formatter(ticker.NullFormatter())
    axes.set_xlabel(cost.replace("_", " ") + " (log scale)")
    axes.set_ylabel("test accuracy")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    return finish_figure(figure, path)


def plot_against_paper(ours, paper, path=None, title="Ours against the paper", ax=None):
    """Grouped bars per dataset: each method's accuracy here (mean ± std, solid) beside the paper's (hatched).

    ``ours`` maps a dataset to ``{method: {"mean", "std"}}`` (fractions); ``paper`` maps it to
    ``{method: percent}``; a method the paper has no number for gets no hatched bar.
    """
    datasets = list(ours)
    methods = list(dict.fromkeys(method for entry in ours.values() for method in entry))
    width = 0.8 / (2 * len(methods))
    figure, axes = figure_and_axes(ax, (max(6.0, 1.6 * len(datasets) + 2), 4.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, method in enumerate(methods):
        offsets = np.arange(len(datasets)) - 0.4 + (2 * index + 0.5) * width
        colour = colours[index % len(colours)]
        axes.bar(offsets, [100 * ours[d][method]["mean"] for d in datasets], width,
                 yerr=[100 * ours[d][method]["std"] for d in datasets], capsize=3, color=colour,
                 label=f"{method} (ours)")
        known = [position for position, d in enumerate(datasets) if method in paper.get(d, {})]
        axes.bar(offsets[known] + width, [paper[datasets[position]][method] for position in known], width,
                 color="white", edgecolor=colour, hatch="//", label=f"{method} (paper)" if known else None)
    axes.set_xticks(np.arange(len(datasets)), datasets)
    axes.set_ylabel("test accuracy (%)")
    axes.set_ylim(0, 100)
    axes.set_title(title)
    axes.grid(alpha=0.3, axis="y")
    axes.legend(fontsize="small", ncols=len(methods), loc="upper center", bbox_to_anchor=(0.5, -0.1))
    return finish_figure(figure, path)


def plot_depth(curves, scratch, path=None, title="Transfer against the number of layers kept", ax=None):
    """Accuracy (mean ± std) against n, the layers kept from the source: one curve per method (Yosinski
    et al. 2014's AnB, frozen, and AnB+, fine-tuned), the from-scratch baseline as a dashed line and band.

    ``curves`` maps a method to ``{label: {"layers_kept": n, "mean", "std"}}``; ``scratch`` is a summary.
    """
    figure, axes = figure_and_axes(ax, (7, 4.5))
    for method, entries in curves.items():
        points = sorted(entries.values(), key=lambda entry: entry["layers_kept"])
        axes.errorbar([entry["layers_kept"] for entry in points], [entry["mean"] for entry in points],
                      yerr=[entry["std"] for entry in points], marker="o", capsize=3, label=method)
    axes.axhline(scratch["mean"], color="gray", linestyle="--", label="scratch (n = 0)")
    axes.axhspan(scratch["mean"] - scratch["std"], scratch["mean"] + scratch["std"], color="gray", alpha=0.15)
    axes.set_xlabel("n: layers kept from ImageNet (the layers above are re-initialised)")
    axes.set_ylabel("test accuracy")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    return finish_figure(figure, path)


def plot_rank_correlations(taus, path=None, title="Rank correlation of each score with accuracy", ax=None):
    """Grouped bars: each score's Kendall's tau with the accuracy (mean ± std over seeds), one bar per target.

    ``taus`` maps a target to ``{score: {"mean", "std"}}`` (:func:`keras_tl.experiments.source_selection.select_study`'s
    ``tau``); a score without a tau (``mean`` None: every candidate scored the same) gets an "n/a" mark.
    """
    scores = list(dict.fromkeys(score for entry in taus.values() for score in entry))
    width = 0.8 / max(len(taus), 1)
    figure, axes = figure_and_axes(ax, (max(6.0, 1.5 * len(scores) + 2), 4.5))
    for index, (target, entry) in enumerate(taus.items()):
        offsets = np.arange(len(scores)) - 0.4 + (index + 0.5) * width
        means = [entry[score]["mean"] for score in scores]
        bars = axes.bar(offsets, [0 if mean is None else mean for mean in means], width, label=target,
                        yerr=[0 if mean is None else entry[score]["std"] for score, mean in zip(scores, means)],
                        capsize=3)
        for offset, mean in zip(offsets, means):
            if mean is None:
                axes.text(offset, 0.02, "n/a", ha="center", va="bottom", fontsize=8, color=bars[0].get_facecolor())
    axes.axhline(0, color="black", linewidth=0.8)
    axes.set_xticks(np.arange(len(scores)), scores)
    axes.set_ylim(-1, 1)
    axes.set_ylabel("Kendall's tau with the SVM's accuracy")
    axes.set_title(title)
    axes.grid(alpha=0.3, axis="y")
    axes.legend(fontsize="small")
    return finish_figure(figure, path)
