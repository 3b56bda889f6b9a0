"""The ``depth`` study: how far ImageNet features transfer, the first n layers kept frozen or fine-tuned
under re-initialised layers, against n.

Yosinski, Clune, Bengio & Lipson, "How transferable are features in deep neural networks?" (NeurIPS
2014), section 4: keep the first n layers of a network trained on task A, re-initialise those above,
and train on task B, with the n layers frozen ("AnB") or fine-tuned too ("AnB+"). Their findings:
frozen transfer falls off as n grows (the upper layers are specific to A, and cutting between
co-adapted layers hurts), while fine-tuned transfer stays at or above training from scratch at every n.
"""
import keras
import numpy as np

from keras_tl import data, messages, plots, sources
from keras_tl.experiments import common
from keras_tl.experiments.common import mean_std
from keras_tl.features import classifiers
from keras_tl.training import freezing, optimizers, recipe

DEPTH_METHODS = {
    "AnB": "the first n layers keep their ImageNet weights, frozen; the layers above are re-initialised and train",
    "AnB+": "the same, with the first n layers fine-tuned too",
    "scratch": "every layer re-initialised and trained (n = 0): the baseline",
}


def depth_cuts(base, count):
    """``count`` cut points spread evenly over ``base``'s convolution (and dense) layers, as indices into
    ``base.layers``: a cut at index n keeps ``base.layers[:n]``, as
    :func:`keras_tl.training.freezing.freeze_up_to` slices."""
    weighted = [index for index, layer in enumerate(base.layers)
                if layer.weights and not isinstance(layer, keras.layers.BatchNormalization)]
    return [weighted[round(len(weighted) * part / (count + 1))] for part in range(1, count + 1)]


def depth_model(source, pretrained, cut, frozen, num_classes, image_size, seed, dropout=0.2):
    """``(base, model)`` of one depth run: ``source``'s architecture with fresh, seeded initial weights,
    its first n layers (n: ``cut``, a layer name or an index into ``base.layers``; 0: none) given the
    weights of ``pretrained`` (the same architecture with ImageNet weights) and frozen when ``frozen``,
    then the recipe's head (:func:`keras_tl.training.recipe.build_classifier`).

    BatchNorm: every BN layer that trains (all in AnB+ and scratch, the re-initialised ones in AnB)
    normalises with batch statistics and gets a short moving-average memory
    (:func:`~keras_tl.training.freezing.shorten_batchnorm_memory`): with Keras's 0.99, a run of 30 steps ends
    with statistics from its start, and inference puts every image in one class. Frozen BN layers run
    in inference mode with ImageNet's statistics (Keras does this for a frozen layer). Keeping AnB+'s
    BN layers in inference mode, as the fine-tuning recipe does, collapsed the deep cuts to one class.
    """
    keras.utils.set_random_seed(seed)
    base = source.build(weights=None, image_size=image_size)
    kept = freezing.find_layer(base, cut)
    for layer, source_layer in zip(base.layers[:kept], pretrained.layers[:kept]):  # the same architecture
        layer.set_weights(source_layer.get_weights())
    freezing.freeze_up_to(base, kept if frozen else 0)  # 0: nothing frozen
    freezing.shorten_batchnorm_memory(base)
    return base, recipe.build_classifier(base, num_classes, dropout=dropout, bn_inference=False)


def depth_run(method, cut, run, pretrained=None, learning_rate=1e-3):
    """One :data:`DEPTH_METHODS` run with the first layers up to ``cut`` kept (a layer name or an index into
    the source's layers) on one seeded split (``run``, a :class:`~keras_tl.experiments.common.RunSettings`):
    ``{"accuracy", "layers_kept", "cut_layer", "epochs"}``. Training: Adam at ``learning_rate`` for the run's
    ``epochs`` on every training image, the last epoch's weights tested, a fixed schedule as in the paper
    (early stopping on a fifth of ten images per class kept the first, near-chance epoch of most runs).
    ``pretrained``: the ImageNet base at the run's image size (built when None)."""
    if method not in DEPTH_METHODS:
        raise ValueError(f"Unknown depth method {method!r}; choose from {', '.join(DEPTH_METHODS)}.")
    source = sources.get_source(run.source)
    pretrained = pretrained or source.build("imagenet", image_size=run.image_size)
    dataset = run.load_dataset()
    num_classes = len(dataset.class_names)
    train, _, test = data.training_pipelines(source, run.image_size, {"train": dataset.train, "test": dataset.test},
                                             num_classes, run.batch_size, seed=run.seed)
    base, model = depth_model(source, pretrained, 0 if method == "scratch" else cut, method == "AnB", num_classes,
                              run.image_size, run.seed)
    model.compile(optimizer=optimizers.make_optimizer("adam", learning_rate), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(train, epochs=run.epochs, verbose=0, shuffle=False)  # the tf.data pipeline shuffles
    kept = freezing.find_layer(base, 0 if method == "scratch" else cut)
    return {"accuracy": float(np.mean(classifiers.predict_classes(model, test) == dataset.test.labels)),
            "layers_kept": kept, "cut_layer": base.layers[kept].name, "epochs": run.epochs}


def depth_verdicts(curves, scratch):
    """The paper's two effects, each one line: does frozen transfer (AnB) fall off from the first cut to the
    last, and does fine-tuned transfer (AnB+) stay above scratch at every cut? ``curves``:
    ``{method: {cut: summary}}`` in cut order; ``scratch``: a :func:`~keras_tl.features.classifiers.mean_std`."""
    frozen, tuned = list(curves["AnB"].values()), curves["AnB+"]
    falls = frozen[-1]["mean"] < frozen[0]["mean"]
    below = [cut for cut, entry in tuned.items() if entry["mean"] <= scratch["mean"]]
    return [f"Frozen transfer (AnB) {'falls off' if falls else 'does not fall off'} with depth: "
            f"{frozen[0]['mean']:.3f} at the first cut, {frozen[-1]['mean']:.3f} at the last.",
            "Fine-tuned transfer (AnB+) " + ("stays above scratch at every cut" if not below else
                                             f"is not above scratch at {', '.join(map(str, below))}")
            + f" (scratch {scratch['mean']:.3f}; AnB+ from {min(e['mean'] for e in tuned.values()):.3f} "
              f"to {max(e['mean'] for e in tuned.values()):.3f})."]


def report(settings, run_dir):
    """AnB and AnB+ against the cut, and scratch, per dataset: a table, a figure and the paper's two effects
    as verdicts. Each finished run is kept in ``parts/`` (:func:`~keras_tl.experiments.common.part_key`), so a
    rerun resumes."""
    source = sources.get_source(settings.sources[0])
    pretrained = source.build("imagenet", image_size=settings.image_size)
    cuts = settings.cuts or depth_cuts(pretrained, settings.cut_count)
    for cut in cuts:
        freezing.find_layer(pretrained, cut)  # an unknown layer is an error now, with the close names
    grid = [("scratch", 0)] + [(method, cut) for cut in cuts for method in ("AnB", "AnB+")]
    results, sections = {}, []
    with messages.progress_bar(len(settings.datasets) * len(grid) * len(settings.seeds), "runs", unit="run",
                               verbose=settings.verbose) as bar:
        for dataset in settings.datasets:
            result = results[dataset] = {"AnB": {}, "AnB+": {}}
            for method, cut in grid:
                per_seed = []
                for seed in settings.seeds:
                    run = settings.run_settings(source.name, dataset, seed)
                    per_seed.append(common.part_or_run(run_dir, common.part_key("depth", run, method=method, cut=cut),
                                                       lambda: depth_run(method, cut, run, pretrained=pretrained)))
                    bar.update(1)
                entry = classifiers.mean_std([finished["accuracy"] for finished in per_seed])
                if method == "scratch":
                    result["scratch"] = entry
                else:
                    result[method][per_seed[0]["cut_layer"]] = {"layers_kept": per_seed[0]["layers_kept"], **entry}
            result["verdicts"] = depth_verdicts(result, result["scratch"])
            figure = f"figures/depth_{common.dataset_name(dataset)}.png"
            plots.plot_depth({method: result[method] for method in ("AnB", "AnB+")}, result["scratch"],
                             path=run_dir / figure, title=f"{source.name} on {dataset}: ImageNet layers kept, "
                             f"{settings.image_size} px")
            rows = [[f"{entry['layers_kept']} (from {layer} up: new)", mean_std(entry), mean_std(result["AnB+"][layer])]
                    for layer, entry in result["AnB"].items()]
            rows.append(["0 (scratch)", mean_std(result["scratch"]), mean_std(result["scratch"])])
            sections.append((f"{source.name} on {dataset}: the first n layers from ImageNet, frozen (AnB) or "
                             f"fine-tuned (AnB+), {settings.epochs} epochs",
                             ["n: layers kept", "AnB (frozen)", "AnB+ (fine-tuned)"], rows, figure))
            sections.append((f"{source.name} on {dataset}: Yosinski et al. 2014's two effects", ["verdict"],
                             [[line] for line in result["verdicts"]], None))
    return common.StudyReport(results, sections)
