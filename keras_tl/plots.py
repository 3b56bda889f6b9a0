"""Matplotlib figures for runs and notebooks.

Every function draws into ``ax`` when given one (so figures can be combined), else into a new
figure; it returns the Figure, and saves it as PNG only when given ``path``. No backend is forced:
in a notebook the figure shows inline; in a script (matplotlib's headless Agg backend) a saved
figure is closed so that long jobs do not keep figures in memory.
"""
import matplotlib.pyplot as plt
import numpy as np
from matplotlib import ticker

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


def plot_word_map(points, words, path=None, title="Word map", groups=None, ax=None):
    """Words at their 2-D ``points`` (a PCA or t-SNE projection), coloured by ``groups`` (e.g. clusters)."""
    points = np.asarray(points)
    colours = np.zeros(len(words), dtype=int) if groups is None else np.asarray(groups)
    figure, axes = figure_and_axes(ax, (7, 6))
    axes.scatter(points[:, 0], points[:, 1], c=colours, cmap="tab10", vmin=0, vmax=9, s=25)
    for (x, y), word in zip(points, words):
        axes.annotate(word, (x, y), xytext=(3, 3), textcoords="offset points", fontsize=9)
    axes.set_title(title)
    axes.set_xticks([])
    axes.set_yticks([])
    return finish_figure(figure, path)


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
            panel.text(start, 0.98, f" {stage}", transform=panel.get_xaxis_transform(), va="top", ha="left",
                       color="grey", fontsize=8)
        panel.set_xlim(0.5, max(epochs, default=1) + 0.5)
        panel.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
        panel.set_xlabel("epoch")
        panel.set_ylabel(metric)
        panel.grid(alpha=0.3)
        panel.legend(fontsize=8)
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
