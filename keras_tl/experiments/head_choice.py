"""The ``heads`` study: other heads than the linear SVM (logistic, RBF SVM, k-NN, MLP) against the number
of training images per class.

The slides: "Linear SVM usually enough; kernel likely to overfit; if target data size allows, 1-3 FC
layers". Every head sees the same seeded splits, so the differences between heads are paired.
"""
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score

from keras_tl import distribute, plots
from keras_tl.experiments import common
from keras_tl.experiments.common import mean_std
from keras_tl.features import classifiers
from keras_tl.messages import progress_bar

HEAD_FEATURES = {"FNE": ("fne", "fne"), "last conv, L2": ("last", "l2")}  # name: (layers, ABLATION_STEPS post)
HEAD_BASELINE = "linear-svm"


def head_fit(pool, layers, post, head, train, test, seed=0):
    """One head of :data:`classifiers.CLASSIFIERS` on ``pool``'s ``layers`` after the ``post`` step of
    :data:`~keras_tl.experiments.common.ABLATION_STEPS`: its test and train accuracy, the seconds its fit
    took, and whether its solver stopped at its iteration cap (a ``ConvergenceWarning``, counted instead of shown).

    A linear head on fewer images than features is fitted in the span of the training rows
    (:class:`classifiers.RowSpace`: the same classifier, cheaper)."""
    columns = pool.select(layers)
    classifier = classifiers.make_classifier(common.ABLATION_STEPS[post](), seed=seed, classifier=head,
                                             row_space=head in classifiers.LINEAR and len(train) < len(columns))
    train_x, test_x = pool.features[train][:, columns], pool.features[test][:, columns]
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        classifier.fit(train_x, pool.labels[train])
    seconds = time.perf_counter() - started
    return {"test": float(accuracy_score(pool.labels[test], classifier.predict(test_x))),
            "train": float(accuracy_score(pool.labels[train], classifier.predict(train_x))), "seconds": seconds,
            "capped": any(issubclass(warning.category, ConvergenceWarning) for warning in caught)}


def heads_study(pool, shots, test_per_class, seeds, heads=tuple(classifiers.CLASSIFIERS), verbose=False):
    """Each head's test accuracy against training images per class, on the FNE and on the last layer
    (:data:`HEAD_FEATURES`): ``{features: {head: {shots: summary}}}``, each
    :func:`~keras_tl.features.classifiers.mean_std` with the train accuracy (``train``), the fit seconds
    (``seconds``) and the fits stopped at their cap (``capped``). Every head sees the same seeded splits,
    so differences between heads are paired."""
    results = {features: {head: {} for head in heads} for features in HEAD_FEATURES}
    fits = len(HEAD_FEATURES) * len(heads) * len(shots) * len(seeds)
    with progress_bar(fits, f"{pool.source} on {pool.dataset}: head fits", unit="fit", verbose=verbose) as progress:
        for features, (layers, post) in HEAD_FEATURES.items():
            for shot in shots:
                splits = [common.split_pool(pool.labels, shot, test_per_class, seed) for seed in seeds]
                for head in heads:
                    entries = []
                    for seed, (train, test) in zip(seeds, splits):
                        entries.append(head_fit(pool, layers, post, head, train, test, seed=seed))
                        progress.update(1)
                    results[features][head][int(shot)] = {
                        **classifiers.mean_std([entry["test"] for entry in entries]),
                        "train": classifiers.mean_std([entry["train"] for entry in entries]),
                        "seconds": classifiers.mean_std([entry["seconds"] for entry in entries]),
                        "capped": sum(entry["capped"] for entry in entries)}
    return results


def head_gain(curves, head, shot, baseline=HEAD_BASELINE):
    """:func:`~keras_tl.features.classifiers.mean_std` of ``head``'s accuracy minus ``baseline``'s at ``shot``,
    split by split (paired)."""
    return classifiers.mean_std(np.subtract(curves[head][shot]["values"], curves[baseline][shot]["values"]))


def gain_verdict(gain):
    """"better", "worse" or "tie": a paired gain counts when its mean is larger than its spread over seeds."""
    if abs(gain["mean"]) <= gain["std"] or gain["mean"] == 0:
        return "tie"
    return "better" if gain["mean"] > 0 else "worse"


def heads_verdicts(curves, baseline=HEAD_BASELINE):
    """The slides' three claims against one feature set's ``{head: {shots: summary}}``: ``{claim: (here, holds)}``.

    - "linear SVM usually enough": no head is better (:func:`gain_verdict`) at most shot counts;
    - "kernel likely to overfit": rbf-svm is worse than the linear SVM at the fewest shots;
    - "1-3 FC layers if the data allows": the fewest shots from which mlp is better at every larger count.
    """
    shots = sorted(curves[baseline])
    verdicts = {}
    better = {shot: [head for head in curves if head != baseline
                     and gain_verdict(head_gain(curves, head, shot, baseline)) == "better"] for shot in shots}
    beaten = [shot for shot in shots if better[shot]]
    verdicts["linear SVM usually enough"] = (
        "no head beats it" if not beaten else "beaten at " + "; ".join(
            f"{shot} ({', '.join(better[shot])})" for shot in beaten) + " images per class",
        "holds" if 2 * len(beaten) < len(shots) else "does not hold")
    if "rbf-svm" in curves:
        kernel = {shot: gain_verdict(head_gain(curves, "rbf-svm", shot, baseline)) for shot in shots}
        verdicts["kernel likely to overfit"] = (
            "rbf-svm against the linear SVM: " + ", ".join(f"{verdict} at {shot}" for shot, verdict in kernel.items()),
            "holds" if kernel[shots[0]] == "worse" else "does not hold")
    if "mlp" in curves:
        mlp = [gain_verdict(head_gain(curves, "mlp", shot, baseline)) for shot in shots]
        start = next((shots[i] for i in range(len(shots)) if all(v == "better" for v in mlp[i:])), None)
        verdicts["1-3 FC layers if the data allows"] = (
            f"mlp beats the linear SVM from {start} images per class" if start is not None
            else f"mlp does not beat the linear SVM up to {shots[-1]} images per class",
            "holds" if start is not None else "does not hold here")
    return verdicts


def report(settings, run_dir):
    """Per source and dataset: each head's accuracy against shots on the FNE and on the last layer (a table and
    a figure each), its paired gain over the linear SVM, then the slides' three claims about heads, one verdict
    each."""
    results, sections = {}, []
    shots = sorted(settings.shots)
    for source in settings.sources:
        results[source] = {}
        for dataset in settings.datasets:
            pool = common.pool_features(source, dataset, settings.image_size, max(settings.train_per_class, *shots),
                                        settings.test_per_class, settings.cache_dir, verbose=settings.verbose,
                                        strategy=distribute.make_strategy(settings.strategy),
                                        tfds_data_dir=settings.tfds_data_dir)
            result = results[source][dataset] = heads_study(pool, shots, settings.test_per_class, settings.seeds,
                                                            verbose=settings.verbose)
            for features, curves in result.items():
                figure = (f"figures/heads_{source}_{common.dataset_name(dataset)}_"
                          f"{features.split(',')[0].replace(' ', '_')}.png")
                plots.plot_few_shot(curves, path=run_dir / figure,
                                    title=f"{source} on {dataset}, {features}: heads against shots")
                rows = [[head, *[mean_std(curve[shot]) for shot in shots], mean_std(curve[shots[-1]]["train"]),
                         mean_std(curve[shots[-1]]["seconds"], ".2f"), sum(entry["capped"] for entry in curve.values())]
                        for head, curve in curves.items()]
                sections.append((f"{source} on {dataset}, {features}: test accuracy against training images per class",
                                 ["head", *[str(shot) for shot in shots], f"train accuracy at {shots[-1]}",
                                  f"fit s at {shots[-1]}", "fits at the iteration cap"], rows, figure))
                gains = [[head, *[mean_std(head_gain(curves, head, shot)) + " "
                                  + gain_verdict(head_gain(curves, head, shot)) for shot in shots]]
                         for head in curves if head != HEAD_BASELINE]
                sections.append((f"{source} on {dataset}, {features}: gain over the linear SVM (paired: same splits; "
                                 "better/worse when the mean exceeds the spread)",
                                 ["head", *[str(shot) for shot in shots]], gains, None))
                sections.append((f"{source} on {dataset}, {features}: the slides' claims",
                                 ["claim (slides)", "here", "holds?"],
                                 [[claim, here, holds] for claim, (here, holds) in heads_verdicts(curves).items()],
                                 None))
    sections.insert(0, ("The heads", ["head", "what it is"], list(map(list, classifiers.CLASSIFIERS.items())), None))
    return common.StudyReport(results, sections)
