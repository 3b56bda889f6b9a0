"""What the studies share: their settings, pools of features and the seeded splits drawn from them,
the linear SVM every study fits, the post-processing steps they compare, and ``mean ± std``.

Features are extracted once per source and dataset from a *pool* of images, through the
:class:`~keras_tl.features.extraction.FeatureExtractor` and its cache (the same cache entries as
``python -m keras_tl.fne``); every seed then draws its own stratified train/test split from that
pool (:func:`split_pool`), so the spread over seeds measures how much a result depends on which
images were drawn.

The training studies (tradeoff, depth) keep each finished run in their run folder, as
``parts/<key>.json`` (:func:`part_key`: every setting the run's result depends on), so the same
command run again resumes, and a run with any other setting trains anew.
"""
import dataclasses
import hashlib
import json
import os
import pathlib
import re
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Normalizer

from keras_tl import data, runs
from keras_tl.features import classifiers, extraction
from keras_tl.features.full_network_embedding import DEFAULT_THRESHOLDS, FNETransformer, postprocessor
from keras_tl.messages import progress_bar

# ----------------------------------------------------------------------------- settings


@dataclasses.dataclass
class StudySettings:
    """What one study runs on; the study job fills it from its options, and each study reads the fields it needs.

    Every source of ``sources`` sees the images of every dataset of ``datasets`` at ``image_size`` px,
    ``train_per_class`` and ``test_per_class`` of them per class (None: all), split anew for each of
    ``seeds``. ``shots``: the training images per class of a curve (fne, heads); ``layer_step``: every
    Nth ``fne`` layer, and the last (layers, select); ``epochs``: of each training run (tradeoff,
    depth); ``methods``: tradeoff's; ``cuts``: depth's cut points (None: ``cut_count`` of them, spread);
    ``weights``: the paper study's source weights (None: random). ``cache_dir``: the feature cache;
    ``strategy``: a :func:`keras_tl.distribute.make_strategy` name; ``tfds_data_dir``: where
    TensorFlow Datasets are; ``verbose``: progress bars and lines.
    """

    sources: list
    datasets: list
    image_size: int
    train_per_class: int
    test_per_class: int
    seeds: list
    shots: list = None
    layer_step: int = None
    epochs: int = None
    methods: list = None
    cuts: list = None
    cut_count: int = 3
    weights: str = "imagenet"
    cache_dir: str = None
    strategy: str = None
    tfds_data_dir: str = None
    verbose: bool = False

    def run_settings(self, source, dataset, seed):
        """The :class:`RunSettings` of one training run of this study."""
        return RunSettings(source, dataset, self.image_size, self.train_per_class, self.test_per_class, seed,
                           self.epochs, tfds_data_dir=self.tfds_data_dir)


@dataclasses.dataclass
class RunSettings:
    """One training run of a study: ``source`` on the split of ``dataset`` drawn with ``seed``
    (``train_per_class`` and ``test_per_class`` images per class, fewer where a class has fewer) at
    ``image_size`` px, trained ``epochs`` epochs in batches of ``batch_size``. ``tfds_data_dir``: where
    TensorFlow Datasets are."""

    source: str
    dataset: str
    image_size: int
    train_per_class: int
    test_per_class: int
    seed: int = 0
    epochs: int = 8
    batch_size: int = 16
    tfds_data_dir: str = None

    def load_dataset(self):
        """The run's seeded split of its dataset (:func:`keras_tl.data.load_dataset`)."""
        return data.load_dataset(self.dataset, seed=self.seed, train_per_class=self.train_per_class,
                                 test_per_class=self.test_per_class, verbose=False, tfds_data_dir=self.tfds_data_dir)


@dataclasses.dataclass
class StudyReport:
    """What a study hands back: ``results`` (written to results.json), ``sections`` (each a
    ``(title, headers, rows, figure)``: one table of report.md, with its figure's path or None) and
    ``notes``: lines of report.md said under the settings."""

    results: dict
    sections: list
    notes: list = dataclasses.field(default_factory=list)


# ----------------------------------------------------------------------------- datasets, pools, splits


def available_datasets(names, tfds_data_dir=None):
    """``(available, missing)``: the datasets that load here, and ``{name: reason}`` for the others."""
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
    """Pooled features of every ``fne`` layer for a pool of images of one dataset.

    ``columns[layer]`` are that layer's columns in ``features``; ``depth[layer]`` its relative
    depth, the position among the network's layers (0 at the input, 1 at the last one).
    """

    source: str
    dataset: str
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


def pool_features(source_name, dataset, image_size, train_per_class, test_per_class, cache_dir=None, batch_size=32,
                  verbose=False, strategy=None, tfds_data_dir=None):
    """Extract (or read from the cache) the ``fne`` features of a pool: the dataset's first seeded
    ``train_per_class`` train and ``test_per_class`` test images per class (fewer where a class has fewer).

    The cache entries are those of the fne job with the same source, layers, size and images;
    ``strategy`` spreads the extraction over this machine's devices (see :mod:`keras_tl.features.extraction`).
    """
    images = data.load_dataset(dataset, seed=0, train_per_class=train_per_class, test_per_class=test_per_class,
                               verbose=verbose, tfds_data_dir=tfds_data_dir)
    extractor = extraction.FeatureExtractor(source_name, "fne", image_size, batch_size=batch_size, strategy=strategy)
    return extracted_pool(extractor, images, cache_dir, verbose)


def extracted_pool(extractor, images, cache_dir=None, verbose=False):
    """The :class:`Pool` of ``images``' train then test images (a loaded dataset), extracted by ``extractor``
    (with its cache)."""
    parts = [extractor.extract(image_set, cache_dir, verbose=verbose)[0] for image_set in (images.train, images.test)]
    info = extractor.feature_info
    return Pool(extractor.source.name, images.name, np.concatenate(parts),
                np.concatenate([images.train.labels, images.test.labels]), list(images.class_names),
                extractor.layers, {entry["name"]: extractor.columns([entry["name"]]) for entry in info},
                {entry["name"]: entry["depth"] for entry in info})


def split_pool(labels, train_per_class, test_per_class, seed):
    """A seeded stratified split of a pool: ``test_per_class`` test images per class, then up to
    ``train_per_class`` train images per class from the rest. Returns (train, test) indices.

    A class with fewer than ``train_per_class + test_per_class`` images is split in that proportion,
    with at least one image on each side: taking its test images first would leave a small class
    (10 photographs of fish) with no training image at all, a class the SVM could never predict."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        held_out = test_per_class
        if len(members) < train_per_class + test_per_class:
            share = round(len(members) * test_per_class / (train_per_class + test_per_class))
            held_out = min(max(share, 1), len(members) - 1) if len(members) > 1 else len(members)
        test.extend(members[:held_out])
        train.extend(members[held_out:held_out + train_per_class])
    return np.array(sorted(train)), np.array(sorted(test))


def study_layers(pool, step):
    """The layers a layers (or select) study fits: every ``step``-th ``fne`` layer of ``pool``, and the last one."""
    return sorted(set(pool.layers[::step] + pool.layers[-1:]), key=pool.layers.index)


# ----------------------------------------------------------------------------- post-processing, the linear SVM


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
    "standardise+l2": lambda: make_pipeline(FNETransformer(discretise=False), Normalizer()),
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


def svm_over_seeds(pool, layers, post, train_per_class, test_per_class, seeds, progress):
    """:func:`~keras_tl.features.classifiers.mean_std` of :func:`svm_accuracy` over ``seeds``' splits, with ``unconverged``: the fits stopped
    at the cap. ``progress``: a :func:`svm_fits_bar`, moved on by one per fit."""
    fits = []
    for seed in seeds:
        fits.append(svm_accuracy(pool, layers, post, *split_pool(pool.labels, train_per_class, test_per_class, seed),
                                 seed=seed))
        progress.update(1)
    return {**classifiers.mean_std([accuracy for accuracy, _ in fits]), "unconverged": sum(not done for _, done in fits)}


def svm_fits_bar(pool, fits, verbose):
    """A progress bar of ``fits`` SVM fits on ``pool``."""
    return progress_bar(fits, f"{pool.source} on {pool.dataset}: SVM fits", unit="fit", verbose=verbose)


# ----------------------------------------------------------------------------- reports


def file_name(text, limit=40):
    """``text`` as one short, safe file name: letters, digits and ``._+-`` kept, every other run of characters
    one ``_``, no leading dot (so never ``..`` nor a path), its last ``limit`` characters."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text)[-limit:].lstrip("._") or "_"


def dataset_identity(spec):
    """Dataset ``spec`` as it names its data wherever the job runs from: the spec with the resolved absolute
    path of its folder (of the whole spec, else of each ``:``-separated part) where one exists."""
    def resolved(text):
        return str(pathlib.Path(text).resolve()) if text and os.path.exists(text) else text

    return resolved(spec) if os.path.exists(spec) else ":".join(map(resolved, spec.split(":")))


def dataset_name(spec):
    """A short file name for dataset ``spec`` in its figures and parts: the spec itself where it is one
    (``animal_mnist``), else its readable end and a hash of :func:`dataset_identity` (``data_flowers-3f2a9c1d``),
    so two datasets never share a name and a path never leaves the run folder."""
    if file_name(spec) == spec:
        return spec
    return f"{file_name(spec)}-{hashlib.sha1(dataset_identity(spec).encode()).hexdigest()[:8]}"


def part_key(study, run, **more):
    """The name of one finished run's part (:func:`part_or_run`): readable (``study``, the dataset's
    :func:`dataset_name`, ``more``'s values, the seed), then a hash of every setting the run's result depends
    on: each field of ``run`` (a :class:`RunSettings`: source, dataset by its :func:`dataset_identity`, image
    size, images per class, seed, epochs, batch size, TensorFlow Datasets folder) and ``more`` (the method,
    the cut...). Runs that differ in any of them never share a key."""
    settings = {**dataclasses.asdict(run), "dataset": dataset_identity(run.dataset),
                "tfds_data_dir": run.tfds_data_dir and str(pathlib.Path(run.tfds_data_dir).resolve()), **more}
    digest = hashlib.sha1(json.dumps([study, settings], sort_keys=True, default=str).encode()).hexdigest()[:12]
    readable = [study, dataset_name(run.dataset), *(file_name(str(value), 30) for value in more.values())]
    return "-".join(readable + [f"seed{run.seed}", digest])


def part_or_run(run_dir, key, compute):
    """The finished run kept in ``run_dir`` as ``parts/<key>.json`` (``key``: :func:`part_key`), or
    ``compute()``'s result, kept there for a rerun. A part that does not read is set aside as
    ``.damaged``, with a warning, and computed again."""
    path = run_dir / "parts" / f"{key}.json"
    if path.exists():
        try:
            return json.loads(path.read_text())
        except (ValueError, OSError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            damaged = path.with_name(path.name + ".damaged")
            os.replace(path, damaged)
            warnings.warn(f"Study part {path} does not read ({error}); moved to {damaged.name} and run again.",
                          stacklevel=2)
    result = compute()
    runs.write_json(path, result)
    return result


def mean_std(entry, spec=".3f"):
    """``mean ± std`` of a :func:`~keras_tl.features.classifiers.mean_std`, each formatted with ``spec``."""
    return f"{entry['mean']:{spec}} ± {entry['std']:{spec}}"
