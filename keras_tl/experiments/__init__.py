"""Experiments: the course's claims about transfer learning, measured as mean ± std over seeded splits.

Four experiments, each a function that returns plain dicts (the job ``python -m keras_tl.study``
turns them into a report):

- :func:`layer_study`: a linear SVM on each single layer's pooled, L2-normalised features,
  against depth (Yosinski et al. 2014; Azizpour et al. 2016: later layers transfer best to
  targets close to the source; Garcia-Gasulla et al. 2018: the Full-Network Embedding beats any
  single layer on targets far from it);
- :func:`fne_study`: the FNE against single-layer baselines, against the number of training
  images per class, and the ablation of its two post-processing steps;
- :func:`tradeoff_study`: feature extraction against fine-tuning against training from scratch,
  with and without augmentation, with the cost of each;
- :func:`depth_run`: how far features transfer, the first n ImageNet layers kept frozen or
  fine-tuned under re-initialised layers, against n (Yosinski et al. 2014);
- :func:`select_study`: transferability scores (LogME, H-score, LEEP, NCE) of every source and
  layer, ranked against the layers study's linear-SVM accuracies (Kendall's tau), with their cost;
- :func:`heads_study`: other heads than the linear SVM (logistic, RBF SVM, k-NN, MLP) against the
  number of training images per class (the slides: "Linear SVM usually enough; kernel likely to
  overfit; if target data size allows, 1-3 FC layers");
- :func:`paper_study`: the FNE paper's tables (fc6, fc7 and the FNE of VGG16 per course dataset,
  over its published splits), next to the paper's numbers (:data:`PAPER_RESULTS`).

Features are extracted once per source and target from a *pool* of images, through the
:class:`~keras_tl.features.extraction.FeatureExtractor` and its cache (the same cache entries as
``python -m keras_tl.fne``); every seed then draws its own
stratified train/test split from that pool (:func:`split_pool`), so the spread over seeds measures
how much a result depends on which images were drawn.
"""
import dataclasses
import pathlib
import time
import warnings

import keras
import numpy as np
from scipy.stats import kendalltau
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Normalizer

from keras_tl import data, sources
from keras_tl.data import augment, course_datasets
from keras_tl.features import classifiers, extraction, transferability
from keras_tl.training import freezing, optimizers, recipe
from keras_tl.messages import progress_bar
from keras_tl.features.full_network_embedding import DEFAULT_THRESHOLDS, FNETransformer, postprocessor

OFFLINE_TARGETS = ("animal_mnist", "fashion_mnist", "openclipart")
WATTS_PER_CPU_CORE = 15.0  # energy estimate without codecarbon: CPU seconds x this power


# ----------------------------------------------------------------------------- targets, pools, splits


def available_targets(names, tfds_data_dir=None):
    """``(available, missing)``: the targets that load here, and ``{name: reason}`` for the others."""
    available, missing = [], {}
    for name in names:
        try:
            data.load_dataset(name, train_per_class=1, test_per_class=1, verbose=False, tfds_data_dir=tfds_data_dir)
        except (FileNotFoundError, ValueError) as error:
            missing[name] = str(error).splitlines()[0]
        else:
            available.append(name)
    return available, missing


@dataclasses.dataclass
class Pool:
    """Pooled features of every ``fne`` layer for a pool of images of one target.

    ``columns[layer]`` are that layer's columns in ``features``; ``depth[layer]`` its relative
    depth, the position among the network's layers (0 at the input, 1 at the last one).
    """

    source: str
    target: str
    features: np.ndarray
    labels: np.ndarray
    class_names: list
    layers: list
    columns: dict
    depth: dict

    def select(self, layers):
        """The feature columns of ``layers`` (a layer set such as ``fne`` or ``last``, or a list of names)."""
        names = {"fne": self.layers, "last": self.layers[-1:]}[layers] if isinstance(layers, str) else layers
        return np.concatenate([self.columns[name] for name in names])


def pool_features(source_name, target, image_size, train_per_class, test_per_class, cache_dir=None, batch_size=32,
                  verbose=False, strategy=None, tfds_data_dir=None):
    """Extract (or read from the cache) the ``fne`` features of a pool: the target's first seeded
    ``train_per_class`` train and ``test_per_class`` test images per class (fewer where a class has fewer).

    The cache entries are those of the fne job with the same source, layers, size and images;
    ``strategy`` spreads the extraction over this machine's devices (see :mod:`keras_tl.features.extraction`).
    """
    dataset = data.load_dataset(target, seed=0, train_per_class=train_per_class,
                                test_per_class=test_per_class, verbose=verbose, tfds_data_dir=tfds_data_dir)
    extractor = extraction.FeatureExtractor(source_name, "fne", image_size, batch_size=batch_size, strategy=strategy)
    return extracted_pool(extractor, dataset, cache_dir, verbose)


def extracted_pool(extractor, dataset, cache_dir=None, verbose=False):
    """The :class:`Pool` of ``dataset``'s train then test images, extracted by ``extractor`` (with its cache)."""
    parts = [extractor.extract(image_set, cache_dir, verbose=verbose)[0] for image_set in (dataset.train, dataset.test)]
    info = extractor.feature_info
    return Pool(extractor.source.name, dataset.name, np.concatenate(parts),
                np.concatenate([dataset.train.labels, dataset.test.labels]), list(dataset.class_names),
                extractor.layers, {entry["name"]: extractor.columns([entry["name"]]) for entry in info},
                {entry["name"]: entry["depth"] for entry in info})


def split_pool(labels, train_per_class, test_per_class, seed):
    """A seeded stratified split of a pool: ``test_per_class`` test images per class, then up to
    ``train_per_class`` train images per class from the rest. Returns (train, test) indices."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        test.extend(members[:test_per_class])
        train.extend(members[test_per_class:test_per_class + train_per_class])
    return np.array(sorted(train)), np.array(sorted(test))


def summary(values):
    """``{"mean", "std", "values"}`` of a list of numbers (population std, 0 for one value)."""
    return {"mean": float(np.mean(values)), "std": float(np.std(values)), "values": [float(v) for v in values]}


# ----------------------------------------------------------------------------- post-processing


class GlobalDiscretizer(FNETransformer):
    """The FNE's discretisation without per-feature standardisation (the ablation's "discretise only").

    One mean and one standard deviation over *all* features of the training set put the thresholds
    on the features' overall scale; every feature is then cut at the same two raw values, so a
    feature that is always small stays 0 where the FNE would standardise it first.
    """

    def fit(self, X, y=None):
        super().fit(X, y)
        self.mean_ = np.full_like(self.mean_, X.mean())
        self.std_ = np.full_like(self.std_, X.std())
        return self


ABLATION_STEPS = {  # the post-processing steps the studies compare: name -> a new scikit-learn step
    "l2": lambda: postprocessor("l2"),
    "none": lambda: postprocessor("none"),
    "standardise": lambda: postprocessor("standardise"),
    "standardise+l2": lambda: make_pipeline(FNETransformer(discretize=False), Normalizer()),
    "discretise": lambda: GlobalDiscretizer(*DEFAULT_THRESHOLDS),
    "fne": lambda: postprocessor("fne"),
}


def svm_accuracy(pool, layers, post, train, test, seed=0):
    """Test accuracy of a LinearSVC on ``pool``'s ``layers`` after the ``post`` step of :data:`ABLATION_STEPS`,
    and whether liblinear converged within :data:`classifiers.SVM_MAX_ITER` passes.

    With fewer training images than features the SVM is fitted in the span of the training rows
    (:class:`classifiers.RowSpace`: the same classifier, much cheaper on raw 11,000-wide features).
    """
    columns = pool.select(layers)
    classifier = classifiers.make_classifier(ABLATION_STEPS[post](), seed=seed, row_space=len(train) < len(columns))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # counted instead, from n_iter_
        classifier.fit(pool.features[train][:, columns], pool.labels[train])
    converged = classifier.named_steps["svm"].n_iter_ < classifiers.SVM_MAX_ITER
    accuracy = float(accuracy_score(pool.labels[test], classifier.predict(pool.features[test][:, columns])))
    return accuracy, converged


def _over_seeds(pool, layers, post, train_per_class, test_per_class, seeds, progress):
    """:func:`summary` of the accuracy over ``seeds``, with ``unconverged``: the fits stopped at the cap."""
    fits = []
    for seed in seeds:
        fits.append(svm_accuracy(pool, layers, post, *split_pool(pool.labels, train_per_class, test_per_class, seed),
                                 seed=seed))
        progress.update(1)
    return {**summary([accuracy for accuracy, _ in fits]), "unconverged": sum(not done for _, done in fits)}


def _fits_bar(pool, fits, verbose):
    return progress_bar(fits, f"{pool.source} on {pool.target}: SVM fits", unit="fit", verbose=verbose)


# ----------------------------------------------------------------------------- the studies


def layer_study(pool, layers, train_per_class, test_per_class, seeds, verbose=False):
    """Accuracy of each single layer (L2-normalised) and of the FNE, each as mean ± std over ``seeds``."""
    with _fits_bar(pool, (len(layers) + 1) * len(seeds), verbose) as progress:
        return {"layers": {name: {"depth": pool.depth[name], "dimensions": len(pool.columns[name]),
                                  **_over_seeds(pool, [name], "l2", train_per_class, test_per_class, seeds, progress)}
                           for name in layers},
                "fne": _over_seeds(pool, "fne", "fne", train_per_class, test_per_class, seeds, progress)}


FNE_METHODS = {  # name: (layers, post-processing)
    "last conv, L2": ("last", "l2"),
    "last conv, standardised + L2": ("last", "standardise+l2"),
    "all layers, L2": ("fne", "l2"),
    "FNE (all layers, standardised + discretised)": ("fne", "fne"),
}
ABLATION = {"neither": "none", "standardise only": "standardise", "discretise only": "discretise", "both (FNE)": "fne"}
CURVE_METHODS = ("last conv, L2", "FNE (all layers, standardised + discretised)")


def fne_study(pool, train_per_class, test_per_class, shots, seeds, verbose=False):
    """The FNE against single-layer baselines, its accuracy against shots, and its post-processing ablation."""
    fits = (len(FNE_METHODS) + len(CURVE_METHODS) * len(shots) + len(ABLATION)) * len(seeds)
    with _fits_bar(pool, fits, verbose) as progress:
        return {
            "methods": {name: _over_seeds(pool, layers, post, train_per_class, test_per_class, seeds, progress)
                        for name, (layers, post) in FNE_METHODS.items()},
            "shots": {name: {int(shot): _over_seeds(pool, *FNE_METHODS[name], shot, test_per_class, seeds, progress)
                             for shot in shots} for name in CURVE_METHODS},
            "ablation": {name: _over_seeds(pool, "fne", post, train_per_class, test_per_class, seeds, progress)
                         for name, post in ABLATION.items()},
        }


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


def tradeoff_run(method, source_name, target, image_size, train_per_class, test_per_class, seed, epochs=8,
                 freeze_epochs=2, batch_size=16, tfds_data_dir=None):
    """One method on one seeded split: test accuracy and cost (wall and CPU seconds, images per second,
    trainable parameters, energy, epochs the network trained: early stopping may end a stage sooner).
    Fine-tuning and scratch hold out a fifth of train for validation; extraction trains its SVM on
    the same part (the validation images unused), so all see the same images."""
    if method not in TRADEOFF_METHODS:
        raise ValueError(f"Unknown tradeoff method {method!r}; choose from {', '.join(TRADEOFF_METHODS)}.")
    keras.utils.set_random_seed(seed)
    source = sources.get_source(source_name)
    dataset = data.load_dataset(target, seed=seed, train_per_class=train_per_class, test_per_class=test_per_class,
                                verbose=False, tfds_data_dir=tfds_data_dir)
    train_set, validation_set = data.split_validation(dataset.train, 0.2, seed)
    splits = {"train": train_set, "validation": validation_set, "test": dataset.test}
    with CostMeter() as meter:
        if method.startswith("extraction"):
            accuracy, params, images, network_epochs = _extraction(source, image_size, splits, seed, batch_size)
        else:
            accuracy, params, images, network_epochs = _fine_tune(method, source, image_size, splits,
                                                                  len(dataset.class_names), seed, epochs,
                                                                  freeze_epochs, batch_size)
    return {"accuracy": accuracy, "trainable_params": params, "network_epochs": network_epochs,
            "wall_seconds": meter.wall_seconds,
            "cpu_seconds": meter.cpu_seconds, "images_per_second": images / meter.wall_seconds,
            "energy_joules": meter.energy_joules, "energy_method": meter.energy_method,
            "train_images": len(train_set), "test_images": len(dataset.test)}


def _extraction(source, image_size, splits, seed, batch_size):
    extractor = extraction.FeatureExtractor(source, "fne", image_size, batch_size=batch_size)
    train_x, _ = extractor.extract(splits["train"], verbose=False)
    test_x, _ = extractor.extract(splits["test"], verbose=False)
    classifier = classifiers.make_classifier(postprocessor("fne"), seed=seed).fit(train_x, splits["train"].labels)
    accuracy = float(accuracy_score(splits["test"].labels, classifier.predict(test_x)))
    svm = classifier.named_steps["svm"]
    return accuracy, int(svm.coef_.size + svm.intercept_.size), len(train_x) + len(test_x), 0


def _fine_tune(method, source, image_size, splits, num_classes, seed, epochs, freeze_epochs, batch_size):
    train, validation, test = data.training_pipelines(source, image_size, splits, num_classes, batch_size, seed=seed)
    augmentation = augment.augmentation_layers(seed=seed) if method.endswith("+aug") else None
    model, stages = recipe.fine_tune_model(source.name, train, validation, num_classes=num_classes,
                                           image_size=image_size, augmentation=augmentation, verbose=0, epochs=epochs,
                                           freeze_epochs=freeze_epochs, from_scratch=method.startswith("scratch"),
                                           seed=seed, l2_sp=TRADEOFF_L2_SP if method.endswith("+l2-sp") else None)
    accuracy = float(np.mean(classifiers.predict_classes(model, test) == splits["test"].labels))
    network_epochs = sum(stage["epochs_trained_now"] for stage in stages.values())
    images = network_epochs * len(splits["train"]) + len(splits["test"])
    return accuracy, int(list(stages.values())[-1]["trainable"]), images, network_epochs


# ----------------------------------------------------------------------------- the FNE paper's tables

# The FNE paper's tables: Garcia-Gasulla et al., "An Out-of-the-box Full-network Embedding for
# Convolutional Neural Networks", IEEE ICBK 2018 (arXiv:1705.07706), its results tables: accuracy (%)
# of VGG16's fc6 and fc7 (each L2-normalised, linear SVM) and of the FNE, per dataset, as
# {"mit67": {"fc6": ..., "fc7": ..., "fne": ...}, ...}. Only numbers read in the paper belong here:
# the stored copy of the paper available when this was written held its opening only, not its
# tables, so none is filled in yet and every paper cell prints "—" (add a dataset's numbers here, with
# the table they come from, and the report and its verdicts use them).
PAPER_RESULTS = {}
PAPER_ALIASES = {"oxford_flowers102": "flowers102", "caltech_birds2011": "cub200", "oxford_iiit_pet": "oxford_pets"}
# The course slides: the FNE's average gains (points) over fc6 and over fc7 on tasks close to ImageNet.
SLIDES_FC6_GAIN, SLIDES_FC7_GAIN = 2.9, 4.2
PAPER_COLUMNS = {"fc6": "l2", "fc7": "l2", "fne": "fne"}  # column: post-processing (:data:`ABLATION_STEPS`)
PAPER_SETTING = {"source": "vgg16", "weights": "imagenet", "image_size": 224, "train_per_class": None,
                 "test_per_class": None}


def paper_key(spec, dataset_name):
    """The name a dataset has in :data:`PAPER_RESULTS`: NAME of ``NAME:PATH`` (``tfds:NAME``: NAME,
    in the course's spelling), else the loaded dataset's name (a folder's name)."""
    name, separator, rest = str(spec).partition(":")
    if separator and name == "tfds":
        name = rest.split(":")[0]
    elif not (separator and len(name) > 1 and name.replace("_", "").isalnum()):
        name = dataset_name
    return PAPER_ALIASES.get(name, name)


def paper_runs(spec, seeds, verbose=False, tfds_data_dir=None):
    """``[(dataset spec, seed)]``: the loads whose accuracies make one number of the paper's tables.

    ``dtd:PATH`` (or a DTD folder) is DTD's 10 published splits (``dtd:PATH:1`` .. ``dtd:PATH:10``); a
    dataset whose split is drawn from the seed (a folder of class folders, caltech101, cats_vs_dogs:
    seeds 0 and 1 give different test sets) is one load per seed; any other has one published split: one load.
    """
    name, _, path = str(spec).partition(":")
    if course_datasets.parse_spec(spec) is None and course_datasets.recognise(spec) == "dtd":
        name, path = "dtd", str(spec)
    if name == "dtd" and (":" not in path or pathlib.Path(path).expanduser().exists()):  # no split number given
        return [(f"dtd:{path}:{split}", seeds[0]) for split in course_datasets.DTD_SPLITS]
    if len(seeds) > 1:
        tests = [data.load_dataset(spec, seed=seed, verbose=verbose, tfds_data_dir=tfds_data_dir).test.fingerprint()
                 for seed in seeds[:2]]
        if tests[0] != tests[1]:
            return [(spec, seed) for seed in seeds]
    return [(spec, seeds[0])]


def paper_extractor(source_name, image_size=None, weights="imagenet", batch_size=32, strategy=None):
    """The FNE's extractor for the paper's tables: every ``fne`` layer of ``source_name``, with its
    fully connected top when ``image_size`` is its training size (VGG16: 13 conv layers, fc6 and fc7).
    ``strategy`` spreads the extraction over this machine's devices (see :mod:`keras_tl.features.extraction`)."""
    source = sources.get_source(source_name)
    size = int(image_size or source.default_size)
    return extraction.FeatureExtractor(source, "fne", size, weights=weights, include_top=size == source.default_size,
                                    batch_size=batch_size, strategy=strategy)


def paper_baselines(extractor):
    """``{"fc6": layer, "fc7": layer}``: the last two of the extractor's layers. For VGG16 with its top
    these are ``fc1`` and ``fc2`` (the paper's fc6 and fc7); for a network without fully connected
    layers, or built without its top, its last two conv activations stand in."""
    return dict(zip(("fc6", "fc7"), extractor.layers[-2:]))


def paper_study(extractor, spec, seeds, train_per_class=None, test_per_class=None, cache_dir=None, verbose=False,
                tfds_data_dir=None):
    """The paper's three numbers for one dataset: fc6 and fc7 (L2) and the FNE, each a linear SVM
    fitted on train and scored on test, as :func:`summary` over :func:`paper_runs` (with ``unconverged``);
    ``runs``: the ``[dataset spec, seed]`` of each."""
    baselines = paper_baselines(extractor)
    layers = {"fc6": [baselines["fc6"]], "fc7": [baselines["fc7"]], "fne": "fne"}
    fits = {column: [] for column in PAPER_COLUMNS}
    runs = paper_runs(spec, seeds, verbose, tfds_data_dir)
    for run_spec, seed in runs:
        dataset = data.load_dataset(run_spec, seed=seed, train_per_class=train_per_class,
                                    test_per_class=test_per_class, verbose=verbose, tfds_data_dir=tfds_data_dir)
        pool = extracted_pool(extractor, dataset, cache_dir, verbose)
        train, test = np.arange(len(dataset.train)), np.arange(len(dataset.train), len(pool.labels))
        for column, post in PAPER_COLUMNS.items():
            fits[column].append(svm_accuracy(pool, layers[column], post, train, test, seed=seed))
        if verbose:
            print(f"  {run_spec} (seed {seed}): " + ", ".join(f"{column} {fits[column][-1][0]:.3f}"
                                                           for column in PAPER_COLUMNS), flush=True)
    key = paper_key(spec, dataset.name)
    return {"dataset": key, "runs": [list(run) for run in runs], "layers": baselines,
            "paper_percent": PAPER_RESULTS.get(key, {}),
            **{column: {**summary([accuracy for accuracy, _ in entries]),
                        "unconverged": sum(not done for _, done in entries)} for column, entries in fits.items()}}


def paper_setting_differences(source, weights, image_size, train_per_class, test_per_class):
    """How a run's setting differs from the paper's (:data:`PAPER_SETTING`), as short phrases; [] if the same."""
    given = {"source": sources.get_source(source).name, "weights": str(weights),
             "image_size": int(image_size or sources.get_source(source).default_size),
             "train_per_class": train_per_class, "test_per_class": test_per_class}
    phrases = {"source": f"{given['source']}, not VGG16", "weights": "random weights",
               "image_size": f"{given['image_size']} px, not 224", "train_per_class": f"{train_per_class} train images "
               "per class", "test_per_class": f"{test_per_class} test images per class"}
    return [phrases[name] for name, value in PAPER_SETTING.items() if given[name] != value]


def paper_verdict(result, differences=()):
    """One line: the FNE's gain over fc7 here, in the paper and in the slides, and whether it is reproduced.

    Reproduced: the gain has the paper's sign. Not comparable: the setting differs from the
    paper's (``differences``, from :func:`paper_setting_differences`) or the paper has no number.
    """
    gain = 100 * (result["fne"]["mean"] - result["fc7"]["mean"])
    paper = result["paper_percent"]
    paper_gain = paper["fne"] - paper["fc7"] if {"fne", "fc7"} <= set(paper) else None
    line = (f"FNE beats fc7 by {gain:+.1f} points" if gain > 0 else f"FNE does not beat fc7 ({gain:+.1f} points)")
    line += f" (paper: {'—' if paper_gain is None else f'{paper_gain:+.1f}'}; slides' average: +{SLIDES_FC7_GAIN})"
    if differences:
        return f"{line}: not comparable at this size ({'; '.join(differences)})"
    if paper_gain is None:
        return f"{line}: not comparable, no paper number"
    return f"{line}: {'reproduced' if (gain > 0) == (paper_gain > 0) else 'not reproduced'}"


# ----------------------------------------------------------------------------- depth: how far features transfer

# Yosinski, Clune, Bengio & Lipson, "How transferable are features in deep neural networks?" (NeurIPS
# 2014), section 4: keep the first n layers of a network trained on task A, re-initialise those above,
# and train on task B, with the n layers frozen ("AnB") or fine-tuned too ("AnB+"). Their findings:
# frozen transfer falls off as n grows (the upper layers are specific to A, and cutting between
# co-adapted layers hurts), while fine-tuned transfer stays at or above training from scratch at every n.
DEPTH_METHODS = {
    "AnB": "the first n layers keep their ImageNet weights, frozen; the layers above are re-initialised and train",
    "AnB+": "the same, with the first n layers fine-tuned too",
    "scratch": "every layer re-initialised and trained (n = 0): the baseline",
}


def depth_cuts(base, count):
    """``count`` cut points spread evenly over ``base``'s convolution (and dense) layers, as indices into
    ``base.layers``: a cut at index n keeps ``base.layers[:n]``, as :func:`keras_tl.training.freezing.freeze_up_to` slices."""
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


def depth_run(method, source_name, target, image_size, cut, train_per_class, test_per_class, seed, epochs=6,
              pretrained=None, batch_size=16, learning_rate=1e-3, tfds_data_dir=None):
    """One :data:`DEPTH_METHODS` run on one seeded split: ``{"accuracy", "layers_kept", "cut_layer",
    "epochs"}``. Training: Adam at ``learning_rate`` for ``epochs`` epochs on every training image, the
    last epoch's weights tested, a fixed schedule as in the paper (early stopping on a fifth of ten
    images per class kept the first, near-chance epoch of most runs). ``pretrained``: the ImageNet
    base at ``image_size`` (built when None)."""
    if method not in DEPTH_METHODS:
        raise ValueError(f"Unknown depth method {method!r}; choose from {', '.join(DEPTH_METHODS)}.")
    source = sources.get_source(source_name)
    pretrained = pretrained or source.build("imagenet", image_size=image_size)
    dataset = data.load_dataset(target, seed=seed, train_per_class=train_per_class, test_per_class=test_per_class,
                                verbose=False, tfds_data_dir=tfds_data_dir)
    num_classes = len(dataset.class_names)
    train, _, test = data.training_pipelines(source, image_size, {"train": dataset.train, "test": dataset.test},
                                             num_classes, batch_size, seed=seed)
    base, model = depth_model(source, pretrained, 0 if method == "scratch" else cut, method == "AnB", num_classes,
                              image_size, seed)
    model.compile(optimizer=optimizers.make_optimizer("adam", learning_rate), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(train, epochs=epochs, verbose=0, shuffle=False)  # the tf.data pipeline shuffles
    kept = freezing.find_layer(base, 0 if method == "scratch" else cut)
    return {"accuracy": float(np.mean(classifiers.predict_classes(model, test) == dataset.test.labels)),
            "layers_kept": kept, "cut_layer": base.layers[kept].name, "epochs": epochs}


def depth_verdicts(curves, scratch):
    """The paper's two effects, each one line: does frozen transfer (AnB) fall off from the first cut to the
    last, and does fine-tuned transfer (AnB+) stay above scratch at every cut? ``curves``:
    ``{method: {cut: summary}}`` in cut order; ``scratch``: a :func:`summary`."""
    frozen, tuned = list(curves["AnB"].values()), curves["AnB+"]
    falls = frozen[-1]["mean"] < frozen[0]["mean"]
    below = [cut for cut, entry in tuned.items() if entry["mean"] <= scratch["mean"]]
    return [f"Frozen transfer (AnB) {'falls off' if falls else 'does not fall off'} with depth: "
            f"{frozen[0]['mean']:.3f} at the first cut, {frozen[-1]['mean']:.3f} at the last.",
            "Fine-tuned transfer (AnB+) " + ("stays above scratch at every cut" if not below else
                                             f"is not above scratch at {', '.join(map(str, below))}")
            + f" (scratch {scratch['mean']:.3f}; AnB+ from {min(e['mean'] for e in tuned.values()):.3f} "
              f"to {max(e['mean'] for e in tuned.values()):.3f})."]


# ----------------------------------------------------------------------------- select: transferability scores

# Each candidate (a source's single layer, L2-normalised, or its FNE: the layers study's SVMs) is
# scored on each seed's training images (:mod:`keras_tl.features.transferability`), and each score's ranking of
# the candidates is compared with the ranking by the linear SVM's test accuracy (Kendall's tau-b).
FEATURE_SCORES = {"LogME": transferability.logme, "H-score": transferability.h_score}  # on the SVM's features
PREDICTION_SCORES = {  # on the source's ImageNet probabilities: one value per source, the same for its layers
    "LEEP": transferability.leep,
    "NCE": lambda probabilities, labels: transferability.nce(np.argmax(probabilities, axis=1), labels),
}
FNE_CANDIDATE = "FNE"


def source_probabilities(source_name, target, train_per_class, test_per_class, cache_dir=None, batch_size=32,
                         verbose=False, strategy=None, tfds_data_dir=None):
    """The source's ImageNet class probabilities (N x 1000) for the images of :func:`pool_features`'s pool,
    in the same order, from the source built with its classifier (``include_top=True``) at its training
    size, cached like features. A source whose top has no weights here raises
    :class:`~keras_tl.offline.WeightsUnavailableError` (a FileNotFoundError)."""
    dataset = data.load_dataset(target, seed=0, train_per_class=train_per_class, test_per_class=test_per_class,
                                verbose=verbose, tfds_data_dir=tfds_data_dir)
    extractor = extraction.FeatureExtractor(source_name, ["predictions"], include_top=True, batch_size=batch_size,
                                         strategy=strategy)
    return np.concatenate([extractor.extract(image_set, cache_dir, verbose=verbose)[0]
                           for image_set in (dataset.train, dataset.test)])


def study_layers(pool, step):
    """The layers a layers study fits: every ``step``-th ``fne`` layer of ``pool``, and the last one."""
    return sorted(set(pool.layers[::step] + pool.layers[-1:]), key=pool.layers.index)


def select_study(pools, probabilities, layers, train_per_class, test_per_class, seeds, verbose=False):
    """Transferability scores against the linear SVM on one target, over ``seeds``.

    ``pools``: ``{source: Pool}`` of the target; ``probabilities``: ``{source: its ImageNet
    probabilities of the pool's images}``, None for a source without them (scored by LogME and
    H-score only); ``layers``: ``{source: the layers to score}``. The accuracies are
    :func:`layer_study`'s. Returns ``candidates`` (``"source:layer"`` -> its source, layer, depth,
    ``accuracy`` and ``scores``, each a :func:`summary`), ``tau`` (per score: Kendall's tau-b between
    its values and the accuracies over the candidates, a :func:`summary` over the seeds; a seed whose
    scores are all equal has no tau: ``undefined`` counts them) and ``seconds``: the mean seconds a score
    (post-processing included) or an SVM fit (``"SVM"``) takes per candidate and seed.
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
            train, _ = split_pool(pool.labels, train_per_class, test_per_class, seed)
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
                step = ABLATION_STEPS["fne" if layer == FNE_CANDIDATE else "l2"]()
                features = step.fit_transform(pool.features[train][:, columns], pool.labels[train])
                shared = time.perf_counter() - started  # the SVM's post-processing, shared by the scores
                for score, function in FEATURE_SCORES.items():
                    started = time.perf_counter()
                    values[f"{source}:{layer}"][score].append(function(features, pool.labels[train]))
                    seconds[score].append(shared + time.perf_counter() - started)
    for candidate, entry in candidates.items():
        entry["scores"] = {score: summary(series) for score, series in values[candidate].items()
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
    """:func:`summary` of the defined taus (mean and std None when there is none), ``undefined``: the others."""
    defined = [value for value in values if np.isfinite(value)]
    entry = summary(defined) if defined else {"mean": None, "std": None, "values": []}
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


# ----------------------------------------------------------------------------- heads beyond the linear SVM

# The slides: "Linear SVM usually enough; kernel likely to overfit; if target data size allows, 1-3 FC layers".
HEAD_FEATURES = {"FNE": ("fne", "fne"), "last conv, L2": ("last", "l2")}  # name: (layers, ABLATION_STEPS post)
HEAD_BASELINE = "linear-svm"


def head_fit(pool, layers, post, head, train, test, seed=0):
    """One head of :data:`classifiers.CLASSIFIERS` on ``pool``'s ``layers`` after the ``post`` step of
    :data:`ABLATION_STEPS`: its test and train accuracy, the seconds its fit took, and whether its
    solver stopped at its iteration cap (a ``ConvergenceWarning``, counted instead of shown).

    A linear head on fewer images than features is fitted in the span of the training rows
    (:class:`classifiers.RowSpace`: the same classifier, cheaper)."""
    columns = pool.select(layers)
    classifier = classifiers.make_classifier(ABLATION_STEPS[post](), seed=seed, classifier=head,
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
    (:data:`HEAD_FEATURES`): ``{features: {head: {shots: summary}}}``, each :func:`summary` with the
    train accuracy (``train``), the fit seconds (``seconds``) and the fits stopped at their cap
    (``capped``). Every head sees the same seeded splits, so differences between heads are paired."""
    results = {features: {head: {} for head in heads} for features in HEAD_FEATURES}
    fits = len(HEAD_FEATURES) * len(heads) * len(shots) * len(seeds)
    with progress_bar(fits, f"{pool.source} on {pool.target}: head fits", unit="fit", verbose=verbose) as progress:
        for features, (layers, post) in HEAD_FEATURES.items():
            for shot in shots:
                splits = [split_pool(pool.labels, shot, test_per_class, seed) for seed in seeds]
                for head in heads:
                    entries = []
                    for seed, (train, test) in zip(seeds, splits):
                        entries.append(head_fit(pool, layers, post, head, train, test, seed=seed))
                        progress.update(1)
                    results[features][head][int(shot)] = {
                        **summary([entry["test"] for entry in entries]),
                        "train": summary([entry["train"] for entry in entries]),
                        "seconds": summary([entry["seconds"] for entry in entries]),
                        "capped": sum(entry["capped"] for entry in entries)}
    return results


def head_gain(curves, head, shot, baseline=HEAD_BASELINE):
    """:func:`summary` of ``head``'s accuracy minus ``baseline``'s at ``shot``, split by split (paired)."""
    return summary(np.subtract(curves[head][shot]["values"], curves[baseline][shot]["values"]))


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
