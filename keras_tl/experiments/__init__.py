"""Experiments: the course's claims about transfer learning, measured as mean ± std over seeded splits.

One module per study, each listed once in :data:`STUDIES` (read by ``python -m keras_tl.study``, its
``--help`` and ``python -m keras_tl``). A study module holds its computations, which return plain
dicts, and its ``report(settings, run_dir)``: the tables and figures of its part of ``report.md``.
What several studies share (their settings, pools of features and seeded splits, the linear SVM,
the post-processing steps, ``mean ± std``) is in :mod:`keras_tl.experiments.common`.

This file imports nothing, so the study job reads the list without loading Keras or scikit-learn.
"""

STUDIES = {  # name: (its module in keras_tl.experiments, the claim it tests)
    "layers": ("single_layers", "where transferable features live, layer by layer, and the FNE over them all"),
    "fne": ("fne_ablation", "the FNE against single-layer L2 baselines, against shots; its two steps ablated"),
    "tradeoff": ("tradeoff", "extraction against fine-tuning (and L2-SP) against scratch: accuracy, time, energy"),
    "paper": ("fne_paper", "the FNE paper's table: fc6, fc7 and the FNE, with the paper's and the slides' numbers"),
    "depth": ("transfer_depth", "Yosinski et al. 2014: the first n layers kept, frozen or fine-tuned, against scratch"),
    "select": ("source_selection", "LogME, H-score, LEEP and NCE ranking the sources and layers before any SVM"),
    "heads": ("head_choice", "\"Linear SVM usually enough; kernel likely to overfit; 1-3 FC layers if data allows\""),
}


def __getattr__(name):
    """The names this package held in keras_tl 0.1 (``layer_study``, ...), from their new modules, with a
    warning, for one release (:mod:`keras_tl.old_paths`)."""
    from keras_tl import old_paths

    return old_paths.moved_name(__name__, name)
