"""Figures (keras_tl.plots): each returns its Figure, draws into given axes, and saves only when asked."""
import numpy as np

from keras_tl import plots


def test_plots_return_figures_take_axes_and_save_only_when_asked(tmp_path):
    import matplotlib.pyplot as plt

    figure = plots.plot_confusion_matrix(np.array([[3, 1], [0, 4]]), ["cat", "dog"])
    assert isinstance(figure, plt.Figure) and not list(tmp_path.iterdir())
    assert [text.get_text() for text in figure.axes[0].texts] == ["3", "1", "0", "4"]
    outer, (left, right) = plt.subplots(1, 2)
    assert plots.plot_few_shot({"fne": {1: {"mean": 0.5, "std": 0.1}, 5: {"mean": 0.8, "std": 0.05}}},
                               ax=right) is outer
    assert len(right.lines) >= 1 and not left.lines
    plots.plot_word_map(np.zeros((2, 2)), ["a", "b"], tmp_path / "map.png")
    assert (tmp_path / "map.png").read_bytes()[:4] == b"\x89PNG"
    plt.close("all")


def text_box(label):
    """The window extent of an annotation's text alone (an Annotation's own extent includes its line)."""
    from matplotlib.text import Text

    label.get_window_extent()  # places the text (and its line) for the current axes limits
    return Text.get_window_extent(label)


def test_word_map_labels_do_not_overlap_and_the_axes_are_named():
    import matplotlib.pyplot as plt

    crowded = np.random.default_rng(0).normal(scale=0.01, size=(12, 2))  # twelve words on almost one spot
    points = np.vstack([crowded, [[1, 1], [-1, 1], [1, -1]]])
    words = [f"word{index}" for index in range(12)] + ["north", "west", "south"]
    figure = plots.plot_word_map(points, words)
    axes = figure.axes[0]
    assert (axes.get_xlabel(), axes.get_ylabel()) == ("first principal component", "second principal component")
    assert axes.get_title() == "PCA map of 15 words"
    labels = axes.texts
    assert [label.get_text() for label in labels] == words
    boxes = [text_box(label) for label in labels]
    frame = axes.get_window_extent()
    for index, box in enumerate(boxes):
        assert frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1), words[index]
        assert not [words[other] for other in range(index) if box.overlaps(boxes[other])], words[index]
    dots = axes.transData.transform(points)
    for label, box, dot in zip(labels[12:], boxes[12:], dots[12:]):  # room around a lone word: its label beside it
        assert label.arrow_patch is None and np.hypot(*(np.mean(box.get_points(), axis=0) - dot)) < 40
    assert any(label.arrow_patch is not None for label in labels[:12])  # pushed away: a line to its dot
    tsne = plots.plot_word_map(points[12:], words[12:], method="tsne", title="t-SNE")
    assert (tsne.axes[0].get_xlabel(), tsne.axes[0].get_ylabel(), tsne.axes[0].get_title()) == ("t-SNE 1", "t-SNE 2",
                                                                                                 "t-SNE")
    plt.close("all")


def test_histories_give_every_run_its_colour_and_marker_and_continue_a_stage():
    import matplotlib.pyplot as plt

    def history(epochs, start):
        values = list(np.linspace(start, start + 0.2, epochs))
        return {"accuracy": values, "val_accuracy": values, "loss": values[::-1], "val_loss": values[::-1]}

    histories = {"scratch": history(3, 0.1), "scratch + augmentation": history(3, 0.1),  # the same numbers
                 "feature extraction": history(3, 0.5), "fine-tuning": history(3, 0.7)}
    figure = plots.plot_histories(histories, first_epochs={"fine-tuning": 4})
    accuracy, loss = figure.axes
    validation = [line for line in accuracy.lines if line.get_linestyle() == "-"]
    assert [line.get_label() for line in validation] == list(histories)
    assert len({(line.get_color(), line.get_marker()) for line in validation}) == 4
    assert len({line.get_marker() for line in validation}) == 4  # apart in black and white too
    assert list(validation[3].get_xdata()) == [4, 5, 6] and list(validation[2].get_xdata()) == [1, 2, 3]
    training = [line for line in loss.lines if line.get_linestyle() == "--"]
    assert len(training) == 4 and [line.get_marker() for line in training] == [line.get_marker() for line in validation]
    assert [list(line.get_xdata()) for line in accuracy.lines if line.get_linestyle() == ":"] == [[3.5, 3.5]]
    legend = loss.get_legend()
    assert {text.get_text() for text in legend.get_texts()} == set(histories) | {"validation", "training"}
    assert legend.get_window_extent().x0 >= loss.get_window_extent().x1  # outside the axes: hides no line
    plt.close("all")


def test_mixed_labels_read_as_weighted_classes():
    import matplotlib.pyplot as plt

    classes = ["cat", "dog", "cow"]
    assert plots.label_text([0, 1, 0], classes) == "dog"
    assert plots.label_text([0.3, 0, 0.7], classes) == "0.70 cow +\n0.30 cat"
    images = np.zeros((2, 8, 8, 3))
    rows = {"original": (images, np.eye(3)[:2]), "mixup": (images, [[0.25, 0.75, 0], [0, 0.4, 0.6]])}
    figure = plots.plot_image_rows(rows, classes, title="preview")
    assert [axes.get_title() for axes in figure.axes] == ["cat", "dog", "0.75 dog +\n0.25 cat", "0.60 cow +\n0.40 dog"]
    assert [axes.get_ylabel() for axes in figure.axes[::2]] == ["original", "mixup"]
    plt.close("all")
