"""The ``tradeoff`` study: feature extraction against fine-tuning against training from scratch, with and
without augmentation (and fine-tuning with L2-SP), each with its cost: wall and CPU time, images per
second, trainable parameters, energy.
"""
import time

import keras
import numpy as np
from sklearn.metrics import accuracy_score

from keras_tl import data, messages, plots, sources
from keras_tl.data import augment
from keras_tl.experiments import common
from keras_tl.experiments.common import mean_std
from keras_tl.features import classifiers, extraction
from keras_tl.features.full_network_embedding import postprocessor
from keras_tl.training import recipe

TRADEOFF_METHODS = {  # name: what it is, for the report
    "extraction": "FNE features of the frozen ImageNet network + linear SVM",
    "fine-tune": "ImageNet network, new head, then every layer at lr/10 (keras_tl.fine_tune_model)",
    "fine-tune+aug": "the same, with flip, zoom, rotation and translation",
    "fine-tune+l2-sp": "fine-tune with L2-SP (alpha 0.1 towards the ImageNet weights, beta 0.01 on the head; "
                       "keras_tl.training.l2_sp)",
    "scratch": "the same network with random weights, every layer trains",
    "scratch+aug": "the same, with augmentation",
}
TRADEOFF_L2_SP = (0.1, 0.01)  # (alpha, beta) of the fine-tune+l2-sp row: the paper's usual choice
WATTS_PER_CPU_CORE = 15.0  # energy estimate without codecarbon: CPU seconds x this power


class CostMeter:
    """Wall seconds, process CPU seconds and an energy estimate of the block it measures.

    Energy: ``codecarbon``'s measurement when it is installed, else CPU seconds x
    :data:`WATTS_PER_CPU_CORE` (an assumed per-core power, said in the report).
    """

    def __enter__(self):
        try:
            from codecarbon import OfflineEmissionsTracker
        except ImportError:
            self._tracker = None
        else:
            self._tracker = OfflineEmissionsTracker(country_iso_code="ESP", log_level="error", save_to_file=False)
            self._tracker.start()
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall_seconds = time.perf_counter() - self._wall
        self.cpu_seconds = time.process_time() - self._cpu
        if self._tracker is not None:
            self._tracker.stop()
            self.energy_joules = float(self._tracker.final_emissions_data.energy_consumed) * 3.6e6  # kWh -> J
            self.energy_method = "codecarbon"
        else:
            self.energy_joules = self.cpu_seconds * WATTS_PER_CPU_CORE
            self.energy_method = f"CPU seconds x {WATTS_PER_CPU_CORE:g} W"
        return False


def tradeoff_run(method, run, freeze_epochs=2):
    """One method on one seeded split (``run``, a :class:`~keras_tl.experiments.common.RunSettings`): test
    accuracy and cost (wall and CPU seconds, images per second, trainable parameters, energy, epochs the
    network trained: early stopping may end a stage sooner; fine-tuning trains ``freeze_epochs`` of the new
    head first). Fine-tuning and scratch hold out a fifth of train for validation; extraction trains its SVM
    on the same part (the validation images unused), so all see the same images."""
    if method not in TRADEOFF_METHODS:
        raise ValueError(f"Unknown tradeoff method {method!r}; choose from {', '.join(TRADEOFF_METHODS)}.")
    keras.utils.set_random_seed(run.seed)
    source = sources.get_source(run.source)
    dataset = run.load_dataset()
    train_set, validation_set = data.split_validation(dataset.train, 0.2, run.seed)
    splits = {"train": train_set, "validation": validation_set, "test": dataset.test}
    with CostMeter() as meter:
        if method.startswith("extraction"):
            accuracy, params, images, network_epochs = _extraction(source, run, splits)
        else:
            accuracy, params, images, network_epochs = _fine_tune(method, source, run, splits,
                                                                  len(dataset.class_names), freeze_epochs)
    return {"accuracy": accuracy, "trainable_params": params, "network_epochs": network_epochs,
            "wall_seconds": meter.wall_seconds,
            "cpu_seconds": meter.cpu_seconds, "images_per_second": images / meter.wall_seconds,
            "energy_joules": meter.energy_joules, "energy_method": meter.energy_method,
            "train_images": len(train_set), "test_images": len(dataset.test)}


def _extraction(source, run, splits):
    extractor = extraction.FeatureExtractor(source, "fne", run.image_size, batch_size=run.batch_size)
    train_x, _ = extractor.extract(splits["train"], verbose=False)
    test_x, _ = extractor.extract(splits["test"], verbose=False)
    classifier = classifiers.make_classifier(postprocessor("fne"), seed=run.seed).fit(train_x, splits["train"].labels)
    accuracy = float(accuracy_score(splits["test"].labels, classifier.predict(test_x)))
    svm = classifier.named_steps["svm"]
    return accuracy, int(svm.coef_.size + svm.intercept_.size), len(train_x) + len(test_x), 0


def _fine_tune(method, source, run, splits, num_classes, freeze_epochs):
    train, validation, test = data.training_pipelines(source, run.image_size, splits, num_classes, run.batch_size,
                                                      seed=run.seed)
    augmentation = augment.augmentation_layers(seed=run.seed) if method.endswith("+aug") else None
    model, stages = recipe.fine_tune_model(source.name, train, validation, num_classes=num_classes,
                                           image_size=run.image_size, augmentation=augmentation, verbose=0,
                                           epochs=run.epochs, freeze_epochs=freeze_epochs,
                                           from_scratch=method.startswith("scratch"), seed=run.seed,
                                           l2_sp=TRADEOFF_L2_SP if method.endswith("+l2-sp") else None)
    accuracy = float(np.mean(classifiers.predict_classes(model, test) == splits["test"].labels))
    network_epochs = sum(stage["epochs_trained_now"] for stage in stages.values())
    images = network_epochs * len(splits["train"]) + len(splits["test"])
    return accuracy, int(list(stages.values())[-1]["trainable"]), images, network_epochs


def report(settings, run_dir):
    """Per dataset: each method's accuracy and cost, mean ± std over seeds (a table and a figure of accuracy
    against wall time). Each finished run is kept in ``parts/`` (:func:`~keras_tl.experiments.common.part_key`: a
    rerun with other settings trains anew), so a rerun resumes."""
    results, sections = {}, []
    source = settings.sources[0]
    progress = messages.progress_bar(len(settings.datasets) * len(settings.methods) * len(settings.seeds), "runs",
                                     unit="run", verbose=settings.verbose)
    with progress:
        for dataset in settings.datasets:
            results[dataset] = {}
            for method in settings.methods:
                per_seed = []
                for seed in settings.seeds:
                    run = settings.run_settings(source, dataset, seed)
                    per_seed.append(common.part_or_run(run_dir, common.part_key("tradeoff", run, method=method),
                                                       lambda: tradeoff_run(method, run)))
                    progress.update(1)
                results[dataset][method] = {key: classifiers.mean_std([entry[key] for entry in per_seed])
                                            for key in per_seed[0] if isinstance(per_seed[0][key], (int, float))}
                results[dataset][method]["energy_method"] = per_seed[0]["energy_method"]
            figure = f"figures/tradeoff_{common.dataset_name(dataset)}.png"
            plots.plot_tradeoff(results[dataset], path=run_dir / figure,
                                title=f"{source} on {dataset}: accuracy against wall time")
            rows = [[method, mean_std(entry["accuracy"]), mean_std(entry["network_epochs"], ".1f"),
                     mean_std(entry["wall_seconds"], ".1f"),
                     mean_std(entry["images_per_second"], ".0f"), f"{entry['trainable_params']['mean']:,.0f}",
                     mean_std(entry["energy_joules"], ".0f")] for method, entry in results[dataset].items()]
            headers = ["method", "accuracy", "network epochs", "wall s", "images/s", "trainable params", "energy J"]
            sections.append((f"{source} on {dataset}: extraction against fine-tuning against scratch "
                             f"(up to {settings.epochs} epochs)", headers, rows, figure))
    notes = ["", f"Energy: measured by codecarbon when installed, else process CPU seconds x "
                 f"{WATTS_PER_CPU_CORE:g} W (an assumed power per busy core). images/s: images "
                 "passed through the network (training images x epochs, plus test) per wall second.", ""]
    notes += [f"- {name}: {TRADEOFF_METHODS[name]}" for name in settings.methods]
    return common.StudyReport(results, sections, notes)
