"""The ``layers`` study: where transferable features live, layer by layer.

A linear SVM on each single layer's pooled, L2-normalised features, against depth (Yosinski et al.
2014; Azizpour et al. 2016: later layers transfer best to datasets close to the source;
Garcia-Gasulla et al. 2018: the Full-Network Embedding beats any single layer on datasets far from it).
"""
from keras_tl import distribute, plots
from keras_tl.experiments import common
from keras_tl.experiments.common import mean_std


def layer_study(pool, layers, train_per_class, test_per_class, seeds, verbose=False):
    """Accuracy of each single layer (L2-normalised) and of the FNE, each as mean ± std over ``seeds``."""
    with common.svm_fits_bar(pool, (len(layers) + 1) * len(seeds), verbose) as progress:
        return {"layers": {name: {"depth": pool.depth[name], "dimensions": len(pool.columns[name]),
                                  **common.svm_over_seeds(pool, [name], "l2", train_per_class, test_per_class, seeds,
                                                          progress)}
                           for name in layers},
                "fne": common.svm_over_seeds(pool, "fne", "fne", train_per_class, test_per_class, seeds, progress)}


def report(settings, run_dir):
    """Per source: every dataset's accuracy against relative depth (a table and a figure), and each
    dataset's best single layer against the FNE."""
    results, sections = {}, []
    for source in settings.sources:
        results[source] = {}
        for dataset in settings.datasets:
            pool = common.pool_features(source, dataset, settings.image_size, settings.train_per_class,
                                        settings.test_per_class, settings.cache_dir, verbose=settings.verbose,
                                        strategy=distribute.make_strategy(settings.strategy),
                                        tfds_data_dir=settings.tfds_data_dir)
            chosen = common.study_layers(pool, settings.layer_step)
            results[source][dataset] = layer_study(pool, chosen, settings.train_per_class, settings.test_per_class,
                                                   settings.seeds, verbose=settings.verbose)
        figure = f"figures/layers_{source}.png"
        plots.plot_layers({d: r["layers"] for d, r in results[source].items()},
                          {d: r["fne"] for d, r in results[source].items()}, path=run_dir / figure,
                          title=f"{source}: one linear SVM per layer ({settings.image_size} px)")
        rows = [[dataset, f"{layer} ({entry['depth']:.2f})", entry["dimensions"], mean_std(entry)]
                for dataset, result in results[source].items() for layer, entry in result["layers"].items()]
        rows += [[dataset, "FNE (all layers)", "", mean_std(result["fne"])]
                 for dataset, result in results[source].items()]
        best = [[dataset, max(r["layers"], key=lambda name: r["layers"][name]["mean"]),
                 mean_std(max(r["layers"].values(), key=lambda entry: entry["mean"])), mean_std(r["fne"])]
                for dataset, r in results[source].items()]
        sections.append((f"{source}: single layers (L2) and the FNE", ["target", "layer (relative depth)",
                                                                      "dimensions", "accuracy"], rows, figure))
        sections.append((f"{source}: best single layer against the FNE",
                         ["target", "best layer", "its accuracy", "FNE accuracy"], best, None))
    return common.StudyReport(results, sections)
