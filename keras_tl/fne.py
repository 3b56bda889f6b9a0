"""The Full-Network Embedding (FNE) and the feature-extraction job: ``python -m keras_tl.fne``.

Garcia-Gasulla et al. 2018, "On the Behavior of Convolutional Nets for Feature Extraction" (JAIR)
and "An Out-of-the-box Full-network Embedding for Convolutional Neural Networks" (ICBK):

1. take the activations of *every* conv layer (spatially averaged) and of the FC layers;
2. standardise each feature with the mean and standard deviation of the training set;
3. discretise to {-1, 0, 1}: below -0.25 is -1 (unusually low), above 0.15 is 1 (unusually high).

A linear SVM on that embedding is compared with the classic single-layer baseline: the last conv
layer, average pooled and L2-normalised.

The pieces, usable on their own:

- :class:`FullNetworkEmbedding`: a Keras layer for steps 2-3 that learns its statistics with
  ``adapt()``, like ``keras.layers.Normalization``, and saves inside a ``.keras`` model;
- :func:`build_extractor`: one model with one pooled output per layer, so the full conv maps are
  averaged inside the graph and never reach numpy;
- :func:`extract_features`: runs it over a dataset with a progress bar, caching to disk so that
  a rerun reuses the features and an interrupted run resumes.
"""
import argparse
import hashlib
import json
import os
import pathlib
import shutil
import sys
import time

import keras
import numpy as np
from keras import ops
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.preprocessing import Normalizer
from sklearn.utils.validation import check_array, check_is_fitted

from keras_tl import classify, data, messages, plots, runs, sources

DEFAULT_THRESHOLDS = (-0.25, 0.15)
POSTPROCESSING = ("none", "l2", "standardise", "fne")
TEN_CROP_SCALE = 256 / 224  # resize to 256 px, crop 224 px: the usual ImageNet evaluation ratio


@keras.saving.register_keras_serializable(package="keras_tl")
class FullNetworkEmbedding(keras.layers.Layer):
    """Standardise each feature with train-set statistics, then discretise to {-1, 0, 1}.

    Used like ``keras.layers.Normalization``: call ``adapt(train_features)`` once, then apply it.
    The mean, standard deviation and the number of samples adapted on are non-trainable weights,
    so they are saved with the model. A feature with zero standard deviation maps to 0.

    Args:
        lower, upper: discretisation thresholds (paper: -0.25 and 0.15). Values below ``lower``
            become -1, above ``upper`` become 1, the rest 0.
        discretize: False stops after standardisation (the "standardise" ablation).
    """

    def __init__(self, lower=DEFAULT_THRESHOLDS[0], upper=DEFAULT_THRESHOLDS[1], discretize=True, **kwargs):
        super().__init__(**kwargs)
        if not lower < upper:
            raise ValueError(f"The lower threshold must be below the upper one; got lower={lower}, upper={upper}.")
        self.lower, self.upper, self.discretize = float(lower), float(upper), bool(discretize)

    def build(self, input_shape):
        features = input_shape[-1]
        self.mean = self.add_weight(name="mean", shape=(features,), initializer="zeros", trainable=False)
        self.std = self.add_weight(name="std", shape=(features,), initializer="ones", trainable=False)
        self.count = self.add_weight(name="count", shape=(), initializer="zeros", trainable=False)

    @property
    def is_adapted(self):
        return self.built and float(ops.convert_to_numpy(self.count)) > 0

    def adapt(self, data, batch_size=4096):
        """Compute the per-feature mean and (population) standard deviation of ``data``.

        ``data`` is a 2-D array of features. Sums run in float64 over chunks of ``batch_size``
        rows, so large feature matrices need no second copy in memory.
        """
        data = np.asarray(data) if not hasattr(data, "shape") else data
        if len(data.shape) != 2 or data.shape[0] == 0:
            raise ValueError(f"adapt() expects a non-empty 2-D array (samples, features); got shape {data.shape}.")
        if not self.built:
            self.build(data.shape)
        total = np.zeros(data.shape[1])
        squares = np.zeros(data.shape[1])
        for start in range(0, data.shape[0], batch_size):
            chunk = np.asarray(data[start:start + batch_size], dtype=np.float64)
            total += chunk.sum(axis=0)
            squares += np.square(chunk).sum(axis=0)
        mean = total / data.shape[0]
        variance = np.maximum(squares / data.shape[0] - np.square(mean), 0.0)
        self.mean.assign(mean.astype("float32"))
        self.std.assign(np.sqrt(variance).astype("float32"))
        self.count.assign(float(data.shape[0]))

    def call(self, inputs):
        mean, std = ops.convert_to_tensor(self.mean), ops.convert_to_tensor(self.std)
        has_spread = ops.greater(std, 0.0)
        standardised = ops.where(has_spread, (inputs - mean) / ops.where(has_spread, std, 1.0), 0.0)
        if not self.discretize:
            return standardised
        high = ops.cast(ops.greater(standardised, self.upper), standardised.dtype)
        low = ops.cast(ops.less(standardised, self.lower), standardised.dtype)
        return high - low

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "lower": self.lower, "upper": self.upper, "discretize": self.discretize}


class FNETransformer(TransformerMixin, BaseEstimator):
    """The :class:`FullNetworkEmbedding` as a scikit-learn transformer, for pipelines with a classifier.

    ``fit`` adapts a new layer on the training features (so every few-shot repeat uses the
    statistics of its own training subset); ``transform`` applies it.
    """

    def __init__(self, lower=DEFAULT_THRESHOLDS[0], upper=DEFAULT_THRESHOLDS[1], discretize=True):
        self.lower = lower
        self.upper = upper
        self.discretize = discretize

    def fit(self, X, y=None):
        X = check_array(X, dtype=np.float32)
        self.layer_ = FullNetworkEmbedding(self.lower, self.upper, self.discretize)
        self.layer_.adapt(X)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X):
        check_is_fitted(self, "layer_")
        X = check_array(X, dtype=np.float32)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features; this FNETransformer was fitted on {self.n_features_in_}.")
        return ops.convert_to_numpy(self.layer_(X))


def postprocessor(name, thresholds=DEFAULT_THRESHOLDS):
    """The scikit-learn step for a post-processing choice: none, l2, standardise or fne."""
    if name == "none":
        return "passthrough"
    if name == "l2":
        return Normalizer(norm="l2")
    if name in ("standardise", "fne"):
        return FNETransformer(*thresholds, discretize=name == "fne")
    raise ValueError(f"Unknown post-processing {name!r}; choose from {', '.join(POSTPROCESSING)}.")


def build_extractor(model, names):
    """One model whose outputs are the features of ``names``: 4-D maps are spatially averaged in the graph."""
    outputs = []
    for name in names:
        output = model.get_layer(name).output
        if len(output.shape) == 4:
            output = keras.layers.GlobalAveragePooling2D(name=f"{name}_avg")(output)
        outputs.append(output)
    return keras.Model(model.inputs, outputs, name=f"{model.name}_features")


def ten_crops(images, crop_size):
    """The four corner crops and the centre crop of each image, and their mirror images (Krizhevsky et al. 2012).

    ``images`` (B, S, S, C) with S >= crop_size; returns (10, B, crop_size, crop_size, C).
    """
    size = images.shape[1]
    far, centre = size - crop_size, (size - crop_size) // 2
    corners = [(0, 0), (0, far), (far, 0), (far, far), (centre, centre)]
    crops = [images[:, top:top + crop_size, left:left + crop_size, :] for top, left in corners]
    crops += [ops.flip(crop, axis=2) for crop in crops]
    return ops.stack(crops)


def _cache_key(parts):
    readable = "-".join(str(part) for part in parts[:2])
    return f"{readable}-{hashlib.sha1(json.dumps(parts).encode()).hexdigest()[:16]}"


def extract_features(extractor, image_set, pipeline_factory, cache_dir=None, cache_parts=None,
                     ten_crop=False, chunk_size=256, verbose=True):
    """Features of every image of ``image_set`` as a (N, D) float32 array (a read-only memory map when cached).

    ``pipeline_factory(image_subset)`` returns batches for the extractor. With ``cache_dir``, the
    features go to ``<key>.npy`` there, written through a memory map; every ``chunk_size``
    images the number of finished images is saved in ``<key>.done``. A rerun with the same
    ``cache_parts`` (source, layers, dataset, size, split) reads the file; an interrupted run
    starts after the last finished chunk.
    """
    size = len(image_set)
    feature_dim = sum(int(output.shape[-1]) for output in extractor.outputs)
    crop_size = extractor.input_shape[1]

    def pooled_features(batch):
        if ten_crop:  # the 10 crops of every image go through the network as one batch
            batch = ops.reshape(ten_crops(batch, crop_size), (-1, crop_size, crop_size, batch.shape[-1]))
        outputs = extractor(batch, training=False)
        joined = ops.concatenate(outputs if isinstance(outputs, list) else [outputs], axis=-1)
        if ten_crop:
            return ops.mean(ops.reshape(joined, (10, -1, joined.shape[-1])), axis=0)
        return joined

    if cache_dir is None:
        features, done = np.zeros((size, feature_dim), dtype=np.float32), 0
        final_path = progress_path = None
    else:
        cache_dir = pathlib.Path(cache_dir)
        cache_dir.mkdir(parents=True, exist_ok=True)
        key = _cache_key(list(cache_parts) + [ten_crop, size, feature_dim])
        final_path, partial_path, progress_path = (cache_dir / f"{key}.npy", cache_dir / f"{key}.partial.npy",
                                                   cache_dir / f"{key}.done")
        if final_path.is_file():
            if verbose:
                print(f"  features: reusing cache {final_path}", flush=True)
            return np.load(final_path, mmap_mode="r"), final_path
        done = int(progress_path.read_text()) if progress_path.is_file() and partial_path.is_file() else 0
        mode = "r+" if done else "w+"
        features = np.lib.format.open_memmap(partial_path, mode=mode, dtype=np.float32, shape=(size, feature_dim))
        if done and verbose:
            print(f"  features: resuming at image {done} of {size} from {partial_path}", flush=True)
    progress = keras.utils.Progbar(size, unit_name="image", verbose=1 if verbose else 0)
    progress.update(done)
    row = saved = done
    for batch in _feature_batches(pooled_features, pipeline_factory(image_set.subset(np.arange(done, size)))):
        features[row:row + len(batch)] = batch
        row += len(batch)
        progress.update(row)
        if progress_path is not None and (row - saved >= chunk_size or row == size):
            features.flush()
            progress_path.write_text(str(row))
            saved = row
    if final_path is None:
        return features, None
    features.flush()
    del features
    os.replace(partial_path, final_path)
    progress_path.unlink()
    return np.load(final_path, mmap_mode="r"), final_path


def _feature_batches(compute, batches):
    """Yield ``compute(images)`` as numpy, batch by batch, compiled for the current backend.

    On TensorFlow a ``tf.data`` pipeline is read inside the compiled step (``next(iterator)`` in
    the graph, as Keras's ``predict`` does): handing each batch through Python instead costs about
    a third of the speed on a 2-core CPU (bench/bench_fne_extraction.py).
    """
    if keras.config.backend() == "tensorflow":
        import tensorflow as tf

        if isinstance(batches, tf.data.Dataset):
            step = tf.function(lambda iterator: compute(next(iterator)[0]), reduce_retracing=True)
            iterator = iter(batches)
            while True:
                try:
                    yield step(iterator).numpy()
                except tf.errors.OutOfRangeError:
                    return
    compiled = keras_function(compute)
    for images, _ in batches:
        yield ops.convert_to_numpy(compiled(images))


def keras_function(function):
    """Compile ``function`` for the current backend: ``tf.function`` on TensorFlow, ``jax.jit`` on JAX."""
    backend = keras.config.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(function, reduce_retracing=True)
    if backend == "jax":
        import jax

        return jax.jit(function)
    return function


# ----------------------------------------------------------------------------- the job

EXAMPLES = """examples:
  python -m keras_tl.fne                                  # MobileNet on Animal-MNIST, baseline vs FNE
  python -m keras_tl.fne --shots 1 5 10 20 --repeats 5    # few-shot curve: accuracy against shots
  python -m keras_tl.fne --source vgg16 --include-top --image-size 224 --dataset ~/data/mit67
  python -m keras_tl.fne --methods last:l2 fne:none fne:l2 fne:standardise fne:fne   # ablation
  python -m keras_tl.fne --dataset ~/data/flowers --ten-crop --search-c
"""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m keras_tl.fne", description=__doc__.split("\n\n")[0],
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default="mobilenet", help="keras.applications model (default: mobilenet)")
    parser.add_argument("--weights", default="imagenet", choices=["imagenet", "none"],
                        help="'none' gives random weights, a useful sanity baseline")
    parser.add_argument("--include-top", action="store_true",
                        help="keep the ImageNet classifier, so FNE also takes the FC layers (needs the training size)")
    parser.add_argument("--dataset", default="animal_mnist",
                        help="animal_mnist, fashion_mnist, openclipart or a folder (see datasets/)")
    parser.add_argument("--train-per-class", type=int, default=None,
                        help="keep N train images per class (default: 100 for the built-in default, else all)")
    parser.add_argument("--test-per-class", type=int, default=None,
                        help="keep N test images per class (default: 50 for the built-in default, else all)")
    parser.add_argument("--image-size", type=int, default=None,
                        help="input size in pixels (default: 128 for the built-in default, else the source's)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--methods", nargs="+", default=["last:l2", "fne:fne"], metavar="LAYERS:POST",
                        help=f"layer set or layer names, and post-processing ({'/'.join(POSTPROCESSING)}); "
                             "default: last:l2 fne:fne")
    parser.add_argument("--thresholds", type=float, nargs=2, default=DEFAULT_THRESHOLDS, metavar=("LOW", "HIGH"))
    parser.add_argument("--ten-crop", action="store_true", help="average the features of 10 crops per test image")
    parser.add_argument("--C", dest="c", type=float, default=1.0, help="LinearSVC regularisation (default 1)")
    parser.add_argument("--search-c", action="store_true", help="choose C by cross-validation on train only")
    parser.add_argument("--shots", type=int, nargs="+", default=None, metavar="K",
                        help="few-shot mode: train on K images per class")
    parser.add_argument("--repeats", type=int, default=5, help="seeded repeats per shot count (default 5)")
    parser.add_argument("--output-dir", default=None, help="run folder (default runs/fne-<time>)")
    parser.add_argument("--cache-dir", default="runs/feature_cache", help="feature cache shared by runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    builtin_default = args.dataset == parser.get_default("dataset")
    for name, default in (("train_per_class", 100), ("test_per_class", 50), ("image_size", 128)):
        if getattr(args, name) is None and builtin_default:
            setattr(args, name, default)
    for name in ("batch_size", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1; got {getattr(args, name)}.")
    if args.c <= 0:
        parser.error(f"--C must be positive; got {args.c}.")
    for method in args.methods:
        layers, _, post = method.rpartition(":")
        if not layers or post not in POSTPROCESSING:
            parser.error(f"--methods entry {method!r} is not LAYERS:POST with POST in {', '.join(POSTPROCESSING)}.")
    return args


def run(args):
    """The whole job: extract once, train one SVM per method, write the run folder; return the metrics."""
    keras.utils.set_random_seed(args.seed)
    verbose = not args.quiet
    source = sources.get_source(args.source)
    image_size = args.image_size or source.default_size
    source.input_shape(image_size)
    dataset = data.load_dataset(args.dataset, seed=args.seed, train_per_class=args.train_per_class or None,
                                test_per_class=args.test_per_class or None)
    if args.shots:
        smallest = int(np.bincount(dataset.train.labels).min())
        if max(args.shots) > smallest:
            raise ValueError(f"--shots {max(args.shots)} exceeds the smallest train class ({smallest} images).")
    model = source.build(weights=None if args.weights == "none" else "imagenet",
                         include_top=args.include_top, image_size=image_size)
    methods = [method.rpartition(":")[::2] for method in args.methods]
    method_layers = {layers: sources.layer_names(model, layers) for layers, _ in methods}
    all_layers = [layer.name for layer in model.layers
                  if any(layer.name in names for names in method_layers.values())]
    info = sources.feature_info(model, all_layers)
    offsets = np.cumsum([0] + [entry["channels"] for entry in info])
    columns = {entry["name"]: np.arange(offsets[i], offsets[i + 1]) for i, entry in enumerate(info)}

    run_dir = runs.make_run_dir(args.output_dir, "fne")
    config = {**vars(args), "image_size": image_size, "layers": method_layers, "run_dir": run_dir,
              "dataset_summary": dataset.summary()}
    runs.write_json(run_dir / "config.json", config)
    if verbose:
        print(f"Source: {source.name} ({args.weights} weights, top {'on' if args.include_top else 'off'}), "
              f"{image_size}x{image_size} px; {len(all_layers)} layers, {offsets[-1]:,} features per image")
        print(f"Data: {dataset.summary()}")
        print(f"Methods: {', '.join(args.methods)}; output: {run_dir}", flush=True)

    extractor = build_extractor(model, all_layers)
    fetch_size = int(round(image_size * TEN_CROP_SCALE)) if args.ten_crop else image_size
    features, timings = {}, {}
    for split in ("train", "test"):
        image_set = getattr(dataset, split)
        ten_crop = args.ten_crop and split == "test"
        size = fetch_size if ten_crop else image_size

        def pipeline(subset, size=size):
            return data.make_pipeline(subset, size, source.preprocess_input, args.batch_size)

        if verbose:
            print(f"Extracting {split} features ({len(image_set)} images{', ten crops' if ten_crop else ''})")
        started = time.perf_counter()
        parts = [source.name, args.weights, args.include_top, all_layers, dataset.name, image_set.fingerprint(),
                 image_size, split]
        features[split], cache_file = extract_features(extractor, image_set, pipeline, args.cache_dir, parts,
                                                       ten_crop=ten_crop, verbose=verbose)
        timings[split] = time.perf_counter() - started
        _link_into(cache_file, run_dir / "features" / f"{split}.npy")
    np.save(run_dir / "features" / "labels_train.npy", dataset.train.labels)
    np.save(run_dir / "features" / "labels_test.npy", dataset.test.labels)
    images_per_second = (len(dataset.train) + len(dataset.test)) / max(sum(timings.values()), 1e-9)

    results, rows = {}, []
    for layers, post in methods:
        name = f"{layers}:{post}"
        selected = np.concatenate([columns[layer] for layer in method_layers[layers]])
        train_x, test_x = features["train"][:, selected], features["test"][:, selected]
        started = time.perf_counter()
        classifier = classify.make_classifier(postprocessor(post, args.thresholds), c=args.c,
                                              search_c=args.search_c, seed=args.seed)
        result = classify.fit_evaluate(classifier, train_x, dataset.train.labels, test_x, dataset.test.labels,
                                       dataset.class_names)
        result.update(dimensions=len(selected), layers=len(method_layers[layers]),
                      seconds=time.perf_counter() - started)
        if args.shots:
            result["few_shot"] = classify.few_shot(classifier, train_x, dataset.train.labels, test_x,
                                                   dataset.test.labels, args.shots, args.repeats, args.seed,
                                                   verbose=verbose)
        plots.plot_confusion_matrix(result["confusion_matrix"], dataset.class_names,
                                    run_dir / "figures" / f"confusion_{layers}_{post}.png".replace(",", "+"),
                                    title=f"{source.name} {name}: accuracy {result['accuracy']:.3f}")
        results[name] = result
        rows.append([name, len(method_layers[layers]), len(selected), result["accuracy"],
                     images_per_second, result["seconds"]])
    if args.shots:
        plots.plot_few_shot({name: result["few_shot"] for name, result in results.items()},
                            run_dir / "figures" / "few_shot.png", title=f"{source.name} on {dataset.name}")
    metrics = {"methods": results, "extraction_seconds": timings, "extraction_images_per_second": images_per_second,
               "train_images": len(dataset.train), "test_images": len(dataset.test)}
    runs.write_json(run_dir / "metrics.json", metrics)
    print(messages.format_table(rows, ["method", "layers", "dims", "accuracy", "extract img/s", "svm s"]))
    if args.shots:
        shot_rows = [[name, shots, f"{entry['mean']:.3f} ± {entry['std']:.3f}"]
                     for name, result in results.items() for shots, entry in result["few_shot"].items()]
        print(messages.format_table(shot_rows, ["method", "shots", "accuracy"]))
    print(f"Run folder: {run_dir}")
    return metrics


def _link_into(cache_file, target):
    """Put the cached feature file into the run folder: a hard link where possible, else a copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        target.unlink()
    try:
        os.link(cache_file, target)
    except OSError:
        shutil.copyfile(cache_file, target)


def main(argv=None):
    return runs.run_cli(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
