"""The ``select`` study: transferability scores (LogME, H-score, LEEP, NCE) of every source and layer,
ranked against the layers study's linear-SVM accuracies (Kendall's tau), with their cost.

Each candidate (a source's single layer, L2-normalised, or its FNE: the layers study's SVMs) is
scored on each seed's training images (:mod:`keras_tl.features.transferability`), and each score's
ranking of the candidates is compared with the ranking by the linear SVM's test accuracy (Kendall's tau-b).
"""
import time

import numpy as np
from scipy.stats import kendalltau

from keras_tl import data, distribute, plots
from keras_tl.experiments import common
from keras_tl.experiments.common import mean_std
from keras_tl.experiments.single_layers import layer_study
from keras_tl.features import classifiers, extraction, transferability
from keras_tl.offline import WeightsUnavailableError

FEATURE_SCORES = {"LogME": transferability.logme, "H-score": transferability.h_score}  # on the SVM's features
PREDICTION_SCORES = {  # on the source's ImageNet probabilities: one value per source, the same for its layers
    "LEEP": transferability.leep,
    "NCE": lambda probabilities, labels: transferability.nce(np.argmax(probabilities, axis=1), labels),
}
FNE_CANDIDATE = "FNE"
SELECT_NOTES = {
    "LogME": "LogME (You et al. 2021): the mean log evidence per training image of a Bayesian linear model on the "
             "features the SVM sees; no training, one SVD per candidate.",
    "H-score": "H-score (Bao et al. 2019): the between-class variance in units of the feature covariance (its "
               "pseudo-inverse). Where the centred features span all N - 1 directions of the N training images (a "
               "layer at least that wide, usually) it is C - 1 (C classes) whatever the layer: it cannot tell those "
               "apart.",
    "LEEP": "LEEP (Nguyen et al. 2020): how well the source's ImageNet predictions (at its training size, with its "
            "classifier) predict the target's classes. One value per source: it ranks sources, not layers, so every "
            "layer of a source ties.",
    "NCE": "NCE (Tran et al. 2019): -H(target class given the source's top ImageNet class); one value per source, "
           "as LEEP.",
}


def source_probabilities(source_name, dataset, train_per_class, test_per_class, cache_dir=None, batch_size=32,
                         verbose=False, strategy=None, tfds_data_dir=None):
    """The source's ImageNet class probabilities (N x 1000) for the images of
    :func:`~keras_tl.experiments.common.pool_features`'s pool, in the same order, from the source built with
    its classifier (``include_top=True``) at its training size, cached like features. A source whose top has
    no weights here raises :class:`~keras_tl.offline.WeightsUnavailableError` (a FileNotFoundError)."""
    images = data.load_dataset(dataset, seed=0, train_per_class=train_per_class, test_per_class=test_per_class,
                               verbose=verbose, tfds_data_dir=tfds_data_dir)
    extractor = extraction.FeatureExtractor(source_name, ["predictions"], include_top=True, batch_size=batch_size,
                                            strategy=strategy)
    return np.concatenate([extractor.extract(image_set, cache_dir, verbose=verbose)[0]
                           for image_set in (images.train, images.test)])


def select_study(pools, probabilities, layers, train_per_class, test_per_class, seeds, verbose=False):
    """Transferability scores against the linear SVM on one dataset, over ``seeds``.

    ``pools``: ``{source: Pool}`` of the dataset; ``probabilities``: ``{source: its ImageNet
    probabilities of the pool's images}``, None for a source without them (scored by LogME and
    H-score only); ``layers``: ``{source: the layers to score}``. The accuracies are
    :func:`~keras_tl.experiments.single_layers.layer_study`'s. Returns ``candidates`` (``"source:layer"`` ->
    its source, layer, depth, ``accuracy`` and ``scores``, each a :func:`~keras_tl.features.classifiers.mean_std`),
    ``tau`` (per score: Kendall's tau-b between its values and the accuracies over the candidates, a summary
    over the seeds; a seed whose scores are all equal has no tau: ``undefined`` counts them) and ``seconds``:
    the mean seconds a score (post-processing included) or an SVM fit (``"SVM"``) takes per candidate and seed.
    """
    candidates, svm_seconds, fits = {}, 0.0, 0
    for source, pool in pools.items():
        started = time.perf_counter()
        study = layer_study(pool, layers[source], train_per_class, test_per_class, seeds, verbose=verbose)
        svm_seconds += time.perf_counter() - started
        fits += (len(layers[source]) + 1) * len(seeds)
        for name, entry in [*study["layers"].items(), (FNE_CANDIDATE, study["fne"])]:
            candidates[f"{source}:{name}"] = {"source": source, "layer": name, "accuracy": entry,
                                              "depth": pool.depth.get(name)}
    names = [*FEATURE_SCORES, *PREDICTION_SCORES]
    values = {candidate: {score: [] for score in names} for candidate in candidates}
    seconds = {score: [] for score in names}
    for seed in seeds:
        for source, pool in pools.items():
            train, _ = common.split_pool(pool.labels, train_per_class, test_per_class, seed)
            for score, function in PREDICTION_SCORES.items():
                started = time.perf_counter()
                value = None if probabilities.get(source) is None else function(probabilities[source][train],
                                                                               pool.labels[train])
                seconds[score].append(time.perf_counter() - started)
                for layer in [*layers[source], FNE_CANDIDATE]:
                    values[f"{source}:{layer}"][score].append(value)
            for layer in [*layers[source], FNE_CANDIDATE]:
                started = time.perf_counter()
                columns = pool.select("fne" if layer == FNE_CANDIDATE else [layer])
                step = common.ABLATION_STEPS["fne" if layer == FNE_CANDIDATE else "l2"]()
                features = step.fit_transform(pool.features[train][:, columns], pool.labels[train])
                shared = time.perf_counter() - started  # the SVM's post-processing, shared by the scores
                for score, function in FEATURE_SCORES.items():
                    started = time.perf_counter()
                    values[f"{source}:{layer}"][score].append(function(features, pool.labels[train]))
                    seconds[score].append(shared + time.perf_counter() - started)
    for candidate, entry in candidates.items():
        entry["scores"] = {score: classifiers.mean_std(series) for score, series in values[candidate].items()
                           if None not in series}
    tau = {score: _tau_summary([_kendall_tau([values[c][score][index] for c in candidates],
                                             [candidates[c]["accuracy"]["values"][index] for c in candidates])
                                for index in range(len(seeds))]) for score in names}
    return {"candidates": candidates, "tau": tau,
            "seconds": {"SVM": svm_seconds / fits, **{score: float(np.mean(seconds[score])) for score in names}}}


def _kendall_tau(scores, accuracies):
    """Kendall's tau-b of the candidates that have a score; NaN when the scores (or accuracies) are all equal."""
    pairs = [(score, accuracy) for score, accuracy in zip(scores, accuracies) if score is not None]
    if len(pairs) < 2:
        return float("nan")
    return float(kendalltau(*zip(*pairs)).statistic)


def _tau_summary(values):
    """:func:`~keras_tl.features.classifiers.mean_std` of the defined taus (mean and std None when there is none),
    ``undefined``: the others."""
    defined = [value for value in values if np.isfinite(value)]
    entry = classifiers.mean_std(defined) if defined else {"mean": None, "std": None, "values": []}
    return {**entry, "values": [value if np.isfinite(value) else None for value in values],
            "undefined": len(values) - len(defined)}


def tau_verdict(tau):
    """One phrase for a mean Kendall's tau (None: no tau, every candidate scored the same)."""
    if tau is None:
        return "cannot rank: every candidate scored the same"
    if tau >= 0.6:
        return "ranks well"
    if tau >= 0.3:
        return "ranks roughly"
    return "does not rank (tau within ±0.3)" if tau > -0.3 else "ranks backwards"


def tau_cell(entry, seeds):
    """``mean ± std`` of one score's tau (:func:`select_study`); how many of ``seeds`` (a count) had none."""
    if entry["mean"] is None:
        return "— (every candidate scored the same)"
    cell = mean_std(entry, ".2f")
    return cell + (f" ({entry['undefined']} of {seeds} seeds: all scores equal)" if entry["undefined"] else "")


def report(settings, run_dir):
    """Per dataset: each score's Kendall's tau with the accuracy, a verdict, its cost against an SVM fit's,
    a figure, and every candidate's numbers."""
    strategy = distribute.make_strategy(settings.strategy)
    results, sections, without_top = {}, [], {}
    for dataset in settings.datasets:
        pools, probabilities = {}, {}
        for source in settings.sources:
            pools[source] = common.pool_features(source, dataset, settings.image_size, settings.train_per_class,
                                                 settings.test_per_class, settings.cache_dir,
                                                 verbose=settings.verbose, strategy=strategy,
                                                 tfds_data_dir=settings.tfds_data_dir)
            try:
                probabilities[source] = source_probabilities(
                    source, dataset, settings.train_per_class, settings.test_per_class, settings.cache_dir,
                    verbose=settings.verbose, strategy=strategy, tfds_data_dir=settings.tfds_data_dir)
            except WeightsUnavailableError as error:  # no ImageNet classifier here: LogME and H-score only
                probabilities[source], without_top[source] = None, str(error).splitlines()[0]
        layers = {source: common.study_layers(pool, settings.layer_step) for source, pool in pools.items()}
        results[dataset] = select_study(pools, probabilities, layers, settings.train_per_class,
                                        settings.test_per_class, settings.seeds, verbose=settings.verbose)
    scores = [*FEATURE_SCORES, *PREDICTION_SCORES]
    figure = "figures/select.png"
    plots.plot_rank_correlations({dataset: result["tau"] for dataset, result in results.items()},
                                 path=run_dir / figure,
                                 title=f"Kendall's tau of each score with the linear SVM's accuracy "
                                       f"({settings.image_size} px, {settings.train_per_class} train images per class)")
    rows = []
    for dataset, result in results.items():
        svm = result["seconds"]["SVM"]
        rows += [[score, dataset, tau_cell(result["tau"][score], len(settings.seeds)),
                  tau_verdict(result["tau"][score]["mean"]), f"{1000 * result['seconds'][score]:.2f}",
                  f"{svm / max(result['seconds'][score], 1e-9):,.0f}x"] for score in scores]
        rows.append(["linear SVM (the reference)", dataset, "1", "", f"{1000 * svm:.2f}", "1x"])
    sections.append((f"Transferability scores against the linear SVM, over "
                     f"{len(results[settings.datasets[0]]['candidates'])} candidates per target (each source's "
                     "layers, L2, and its FNE)",
                     ["score", "target", "Kendall's tau (mean ± std over seeds)", "verdict", "ms per candidate",
                      "faster than the SVM"], rows, figure))
    how_to_read = [SELECT_NOTES[score] for score in scores]
    how_to_read += [f"{source}: no ImageNet classifier here, so no LEEP or NCE ({reason})."
                    for source, reason in without_top.items()]
    sections.append(("How to read the scores", ["note"], [[note] for note in how_to_read], None))
    for dataset, result in results.items():
        rows = [[candidate, "" if entry["depth"] is None else f"{entry['depth']:.2f}", mean_std(entry["accuracy"])]
                + [f"{entry['scores'][score]['mean']:.3f}" if score in entry["scores"] else "—" for score in scores]
                for candidate, entry in result["candidates"].items()]
        sections.append((f"{dataset}: every candidate (means over seeds)",
                         ["candidate", "relative depth", "SVM accuracy", *scores], rows, None))
    return common.StudyReport(results, sections)
