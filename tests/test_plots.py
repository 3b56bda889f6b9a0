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
