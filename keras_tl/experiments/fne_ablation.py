"""The ``fne`` study: the Full-Network Embedding against single-layer baselines, against the number of
training images per class, and the ablation of its two post-processing steps (Garcia-Gasulla et al. 2018:
standardise every feature, then discretise it to -1, 0, 1).
"""
from keras_tl import distribute, plots
from keras_tl.experiments import common
from keras_tl.experiments.common import mean_std
from keras_tl.features import classifiers

FNE_METHODS = {  # name: (layers, post-processing)
    "last conv, L2": ("last", "l2"),
    "last conv, standardised + L2": ("last", "standardise+l2"),
    "all layers, L2": ("fne", "l2"),
    "FNE (all layers, standardised + discretised)": ("fne", "fne"),
}
ABLATION = {"neither": "none", "standardise only": "standardise", "discretise only": "discretise", "both (FNE)": "fne"}
CURVE_METHODS = ("last conv, L2", "FNE (all layers, standardised + discretised)")
# How far each offline dataset is from ImageNet, in the course slides' terms: the FNE should gain more over
# a single layer on a dissimilar target (the slides: +2.9 over fc6 and +4.2 over fc7 on similar targets,
# +3.3 to +17.5 over fc7 on dissimilar ones).
TARGET_KINDS = {
    "tuxpaint_photos": "similar (photographs of objects)",
    "animal_mnist": "dissimilar (28-px silhouettes)",
    "fashion_mnist": "dissimilar (28-px grey clothes)",
    "openclipart": "dissimilar (clip art)",
}
SLIDES_GAINS = {"similar": "+2.9 / +4.2", "dissimilar": "+3.3 to +17.5"}


def fne_study(pool, train_per_class, test_per_class, shots, seeds, verbose=False):
    """The FNE against single-layer baselines, its accuracy against shots, and its post-processing ablation."""
    fits = (len(FNE_METHODS) + len(CURVE_METHODS) * len(shots) + len(ABLATION)) * len(seeds)
    with common.svm_fits_bar(pool, fits, verbose) as progress:
        return {
            "methods": {name: common.svm_over_seeds(pool, layers, post, train_per_class, test_per_class, seeds,
                                                    progress)
                        for name, (layers, post) in FNE_METHODS.items()},
            "shots": {name: {int(shot): common.svm_over_seeds(pool, *FNE_METHODS[name], shot, test_per_class, seeds,
                                                              progress)
                             for shot in shots} for name in CURVE_METHODS},
            "ablation": {name: common.svm_over_seeds(pool, "fne", post, train_per_class, test_per_class, seeds,
                                                     progress)
                         for name, post in ABLATION.items()},
        }


def fne_gain(result):
    """The FNE's gain over the last conv layer (L2), in accuracy points, split by split: a :func:`~keras_tl.features.classifiers.mean_std`."""
    last, fne = (result["methods"][name]["values"] for name in CURVE_METHODS)
    return classifiers.mean_std([100 * (with_fne - alone) for alone, with_fne in zip(last, fne)])


def gain_row(dataset, result):
    """``[dataset, its kind, the FNE's gain, the slides' gain for that kind]``, a row of the report."""
    kind, gain = TARGET_KINDS.get(dataset, "not classified"), fne_gain(result)
    return [dataset, kind, f"{gain['mean']:+.1f} ± {gain['std']:.1f}", SLIDES_GAINS.get(kind.split(" ")[0], "—")]


def report(settings, run_dir):
    """Per source: the methods and the ablation, a column per dataset; per source and dataset, the curve
    against shots (a table and a figure)."""
    results, sections = {}, []
    datasets = settings.datasets
    for source in settings.sources:
        results[source] = {}
        for dataset in datasets:
            pool = common.pool_features(source, dataset, settings.image_size,
                                        max(settings.train_per_class, *settings.shots), settings.test_per_class,
                                        settings.cache_dir, verbose=settings.verbose,
                                        strategy=distribute.make_strategy(settings.strategy),
                                        tfds_data_dir=settings.tfds_data_dir)
            result = results[source][dataset] = fne_study(pool, settings.train_per_class, settings.test_per_class,
                                                          settings.shots, settings.seeds, verbose=settings.verbose)
            figure = f"figures/shots_{source}_{common.dataset_name(dataset)}.png"
            plots.plot_few_shot(result["shots"], path=run_dir / figure,
                                title=f"{source} on {dataset}: accuracy against shots")
            sections.append((f"{source} on {dataset}: accuracy against training images per class",
                             ["method"] + [str(shot) for shot in settings.shots],
                             [[name] + [mean_std(curve[shot]) for shot in settings.shots]
                              for name, curve in result["shots"].items()], figure))
        sections.insert(0, (f"{source}: FNE against single-layer baselines ({settings.train_per_class} train images "
                            "per class)", ["method"] + datasets,
                            [[name] + [mean_std(results[source][d]["methods"][name]) for d in datasets]
                             for name in FNE_METHODS], None))
        sections.insert(1, (f"{source}: the FNE's gain over the last conv layer (points), by how far the dataset is "
                            "from ImageNet", ["dataset", "target", "FNE - last conv", "the slides"],
                            [gain_row(d, results[source][d]) for d in datasets], None))
        sections.insert(2, (f"{source}: the FNE's post-processing, ablated (all layers)",
                            ["post-processing"] + datasets,
                            [[name] + [mean_std(results[source][d]["ablation"][name]) for d in datasets]
                             for name in ABLATION], None))
    return common.StudyReport(results, sections)
