"""Benchmark: a LinearSVC on FNE features, fitted on all columns against fitted in the span of the
training rows (``classifiers.make_classifier(..., row_space=True)``, see :class:`keras_tl.features.classifiers.RowSpace`).

The features are real: MobileNet's 27 FNE layers (10,944 columns) on Animal-MNIST at 64 px, the pool
of the studies (``keras_tl.experiments.common.pool_features``, cached in ``runs/feature_cache``), one seeded
split of 20 train and 20 test images per class. For each post-processing step the two fits run
interleaved in one process, best of ``--rounds``. Prints seconds for both, the speed-up, the largest
difference of their decision values (relative to the largest value) and liblinear's passes for both
(expected: equal, since the dual solver takes the same steps).

    python bench/bench_row_space.py
"""
import argparse
import time

import numpy as np

from keras_tl import messages
from keras_tl.experiments import common
from keras_tl.features import classifiers


def timed_fit(classifier, train_x, train_y):
    start = time.perf_counter()
    classifier.fit(train_x, train_y)
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="animal_mnist")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)

    pool = common.pool_features("mobilenet", args.dataset, 64, 20, 20, "runs/feature_cache")
    train, test = common.split_pool(pool.labels, 20, 20, seed=0)
    columns = pool.select("fne")
    train_x, test_x = pool.features[train][:, columns], pool.features[test][:, columns]
    train_y = pool.labels[train]
    print(f"Row-space benchmark: mobilenet on {pool.dataset}, {len(train_x)} train images x {train_x.shape[1]:,} "
          f"features; best of {args.rounds} rounds")
    rows = []
    for post in ("fne", "standardise", "none"):
        fits = {"all columns": classifiers.make_classifier(common.ABLATION_STEPS[post](), row_space=False),
                "row space": classifiers.make_classifier(common.ABLATION_STEPS[post](), row_space=True)}
        seconds = {name: min(timed_fit(model, train_x, train_y) for _ in range(args.rounds))
                   for name, model in fits.items()}
        decisions = {name: model.decision_function(test_x) for name, model in fits.items()}
        difference = (np.abs(decisions["row space"] - decisions["all columns"]).max()
                      / np.abs(decisions["all columns"]).max())
        passes = [int(model.named_steps["svm"].n_iter_) for model in fits.values()]
        rows.append([post, f"{seconds['all columns']:.2f}", f"{seconds['row space']:.2f}",
                     f"{seconds['all columns'] / seconds['row space']:.1f}x", f"{difference:.1e}",
                     f"{passes[0]} / {passes[1]}"])
    print(messages.format_table(rows, ["post-processing", "all columns s", "row space s", "speed-up",
                                       "max decision difference", "liblinear passes"]))


if __name__ == "__main__":
    main()
