"""Features of many layers in one pass: one extractor object, pooling inside the graph, cached on disk.

:class:`FeatureExtractor` is the one way the toolkit extracts features (the fne job, the
studies, the labs and the benchmarks use it). Like timm's ``features_only`` models it carries
its *feature info*: for each layer its name, channels, reduction (stride), relative depth and
the columns it fills in the joined feature matrix. It builds its own input pipeline (the
source's ``preprocess_input``), derives its own cache key (:meth:`FeatureExtractor.cache_key`, the
one definition), and extracts with the cache (:mod:`keras_tl.features.cache`).

Its primitives, for work by hand:

- :func:`build_extractor`: one model with one pooled output per layer, so the full conv maps are
  averaged inside the graph and never reach numpy;
- :func:`feature_step`: the compiled function of one batch, built once and given to every call;
- :func:`extract_features`: runs it over a dataset with a progress bar, caching to disk
  (:class:`~keras_tl.features.cache.FeatureCache`) so that a rerun reuses the features, an
  interrupted run resumes, and two runs that share the cache wait for each other instead of
  writing the same file;
- :func:`keras_function`: compile a function for the current backend (TensorFlow or JAX).

At scale (``strategy=``, ``shard=``):

- **several devices of one machine**: with a ``tf.distribute`` strategy (``mirrored`` over the
  GPUs, see :mod:`keras_tl.distribute`) the model is built in ``strategy.scope()``, the pipeline
  gives global batches of ``batch_size x replicas``, and every replica computes the features of
  its ``batch_size`` images (``strategy.run``; the parts are gathered back in order). No gradient
  is exchanged, so the features are those of one device; the cache key leaves the strategy out.
- **parts, for Slurm arrays and several machines**: ``extract(..., shard=(I, N))`` extracts only
  the I-th of N contiguous parts of the images (:func:`~keras_tl.features.cache.shard_rows`: the
  boundaries are multiples of ``batch_size``, so every batch holds the images it holds in one run)
  into its own cache entry ``<key>.rows-<start>-<stop>.npy``, with its own lock: the parts of one
  key are written at the same time by different processes. A later ``extract`` of the whole set
  assembles the entry from every finished part (whatever N was) and extracts only the rows no part
  holds; the parts are deleted once the whole entry is in place. Extraction needs no exchange
  between machines, so several machines (``--strategy multi-worker`` in the fne job) are parts
  too: each worker extracts part ``task / workers`` with the devices of its own machine, and the
  chief waits for the others' parts (:meth:`FeatureExtractor.wait_for_parts`), then assembles the
  whole.
"""
import contextlib
import hashlib
import json
import time

import keras
import numpy as np
from keras import ops

from keras_tl import data, sources
from keras_tl.data.crops import TEN_CROP_SCALE, ten_crops
from keras_tl.features import engines
from keras_tl.features.cache import FeatureCache, part_key, shard_rows
from keras_tl.messages import progress_bar


def build_extractor(model, names):
    """One model whose outputs are the features of ``names``: 4-D maps are spatially averaged in the graph.

    A map of known size is averaged by one pooling window as large as the map (then flattened), which
    TensorFlow's CPU kernels do in about half the time of a mean over two axes
    (``GlobalAveragePooling2D``, still used where the size is unknown); the averages agree to 1e-6.
    """
    outputs = []
    for name in names:
        output = model.get_layer(name).output
        if len(output.shape) == 4 and None in output.shape[1:3]:
            output = keras.layers.GlobalAveragePooling2D(name=f"{name}_avg")(output)
        elif len(output.shape) == 4:
            output = keras.layers.AveragePooling2D(pool_size=output.shape[1:3], name=f"{name}_window")(output)
            output = keras.layers.Flatten(name=f"{name}_avg")(output)
        outputs.append(output)
    return keras.Model(model.inputs, outputs, name=f"{model.name}_features")


class FeatureExtractor:
    """Pooled features of chosen layers of a source, for any set of images, cached on disk.

    Args:
        source: a source name (``"mobilenet"``) or :class:`~keras_tl.sources.Source`.
        layers: a layer set (``"fne"``, ``"conv"``, ``"fc"``, ``"last"``), comma-separated layer
            names, or a list of names (see :func:`keras_tl.sources.layer_names`).
        image_size: input size in pixels (default: the source's training size).
        weights: ``"imagenet"`` or None (random weights, a sanity baseline).
        include_top: keep the ImageNet classifier, so the ``fc`` layers can be features.
        batch_size: images per batch of the pipeline, per replica with a ``strategy``.
        model: an already built model of ``source`` to use instead of building one (with a
            ``strategy``, built inside ``strategy.scope()``).
        strategy: a ``tf.distribute`` strategy of this machine's devices (e.g. from
            :func:`keras_tl.distribute.make_strategy`), or None for one device. The features are
            the same; the cache key does not depend on it.
        engine: what runs the network: ``"tensorflow"`` (the default), ``"openvino"`` or
            ``"onnxruntime"`` (the pooled model converted once, faster on a CPU, see
            :mod:`keras_tl.features.engines`), or ``"auto"``; ``engine`` holds the one chosen. The features
            differ at about 1e-5, so the cache key names the engine.

    ``feature_info`` lists, per layer in column order, its ``name``, ``channels``, ``reduction``,
    ``depth`` (its position among the network's layers, 0 at the input, 1 at the last) and
    ``columns`` (a slice of the joined features).

    >>> extractor = FeatureExtractor("mobilenet", "fne", image_size=128)
    >>> train_x, _ = extractor.extract(dataset.train, cache_dir="runs/feature_cache")
    >>> train_x[:, extractor.columns("last")]      # the last layer's columns
    >>> extractor.extract(dataset.train, "runs/feature_cache", shard=(0, 2))   # the first half only

    After each :meth:`extract`, ``last_counts`` says how many images the network computed
    (``images_extracted``) and how many came from the cache (``images_from_cache``).
    """

    def __init__(self, source, layers="fne", image_size=None, weights="imagenet", include_top=False,
                 batch_size=32, model=None, strategy=None, engine="tensorflow", resize="squash"):
        self.source = sources.get_source(source)
        self.image_size = int(image_size or self.source.default_size)
        data.check_resize(resize)
        self.resize = resize  # how images become square (data.make_pipeline)
        self.weights, self.include_top, self.batch_size = weights, include_top, batch_size
        self.strategy = _local_strategy(strategy)
        self.engine = engines.resolve_engine(engine, self.strategy)
        self._engine_run = None  # the pooled model converted for the engine, on first use
        with self.strategy.scope() if self.strategy is not None else contextlib.nullcontext():
            if model is None:
                model = self.source.build(weights=weights, include_top=include_top, image_size=self.image_size)
            elif self.strategy is not None and not all(self.strategy.extended.variable_created_in_scope(weight.value)
                                                       for weight in model.weights):
                raise ValueError(f"model= {model.name!r} was built outside the strategy's scope; build it inside "
                                 "`with strategy.scope():` so each replica holds a copy of its weights.")
            self.model = model
            self.layers = sources.layer_names(self.model, layers)
            self.pooled_model = build_extractor(self.model, self.layers)
        self.last_counts = None
        self._steps = {}  # ten_crop -> its compiled step (feature_step), built on first use
        positions = [layer.name for layer in self.model.layers]
        self.feature_info, start = [], 0
        for entry in sources.feature_info(self.model, self.layers):
            depth = positions.index(entry["name"]) / (len(positions) - 1)
            self.feature_info.append({**entry, "depth": depth, "columns": slice(start, start + entry["channels"])})
            start += entry["channels"]
        self.num_features = start

    def columns(self, layers):
        """The column indices of ``layers`` (a layer set, or names of this extractor's layers) in the features."""
        by_name = {entry["name"]: entry["columns"] for entry in self.feature_info}
        names = sources.layer_names(self.model, layers)
        missing = [name for name in names if name not in by_name]
        if missing:
            raise ValueError(f"Layers {', '.join(missing)} are not among this extractor's {len(self.layers)} layers; "
                             f"make a FeatureExtractor with layers= that include them.")
        return np.concatenate([np.arange(by_name[name].start, by_name[name].stop) for name in names])

    @property
    def global_batch_size(self):
        """Images per batch of the pipeline: ``batch_size`` per replica of the strategy."""
        replicas = self.strategy.num_replicas_in_sync if self.strategy is not None else 1
        return self.batch_size * replicas

    def pipeline(self, image_set, image_size=None):
        """Batches of ``image_set`` for the network: decoded, RGB, resized, the source's ``preprocess_input``."""
        return data.make_pipeline(image_set, image_size or self.image_size, self.source.preprocess_input,
                                  self.global_batch_size, resize=self.resize)

    def cache_key(self, image_set, ten_crop=False):
        """The file-name-safe key of the cache entry of ``image_set``'s features (the one definition)."""
        parts = [self.source.name, str(self.weights), bool(self.include_top), self.layers, self.image_size,
                 bool(ten_crop), image_set.fingerprint(), len(image_set), self.num_features]
        if self.resize != "squash":  # squashed images keep the keys of earlier versions
            parts.append(self.resize)
        digest = hashlib.sha1(json.dumps(parts, default=str).encode()).hexdigest()[:16]
        if self.engine != "tensorflow":  # TensorFlow's keys stay those of earlier versions
            run = [digest, self.engine, engines.RUN_OPTIONS[self.engine]]  # another precision: another key
            digest = hashlib.sha1(json.dumps(run).encode()).hexdigest()[:16]
            return f"{self.source.name}-{self.weights}-{self.engine}-{digest}"
        return f"{self.source.name}-{self.weights}-{digest}"

    def extract(self, image_set, cache_dir=None, ten_crop=False, verbose=True, shard=None):
        """``(features, cache file)``: the (N, num_features) float32 features of ``image_set`` (see
        :func:`extract_features`); with ``ten_crop`` each image is resized to 256/224 of the input
        size and its ten crops are averaged.

        With ``shard=(I, N)`` only the rows of part I of N (:func:`~keras_tl.features.cache.shard_rows`)
        are extracted, into their own cache entry, and returned; a later call without ``shard`` uses
        every finished part.
        """
        size = int(round(self.image_size * TEN_CROP_SCALE)) if ten_crop else self.image_size
        key = self.cache_key(image_set, ten_crop) if cache_dir is not None else None
        counts = self.last_counts = {"images_extracted": 0, "images_from_cache": 0}

        def extract_rows(images, entry_key):
            return extract_features(self.pooled_model, images, lambda subset: self.pipeline(subset, size), cache_dir,
                                    entry_key, ten_crop=ten_crop, verbose=verbose, strategy=self.strategy,
                                    counts=counts, step=self.step(ten_crop))

        if shard is None:
            return extract_rows(image_set, key)
        if cache_dir is None:
            raise ValueError(f"shard={shard!r} extracts a part of the features into the cache, for a later run "
                             "to join; give cache_dir= too.")
        start, stop = shard_rows(len(image_set), shard, self.batch_size)
        whole = FeatureCache(cache_dir, key, (len(image_set), self.num_features))
        with whole.lock():  # waits while a run assembles the whole entry, then reads it
            finished = whole.load_final()
        if finished is not None or start == stop:
            counts["images_from_cache"] = stop - start
            rows = finished[start:stop] if finished is not None else np.zeros((0, self.num_features), np.float32)
            return rows, whole.final if finished is not None else None
        return extract_rows(image_set.subset(np.arange(start, stop)), part_key(key, start, stop))

    def step(self, ten_crop=False):
        """The compiled step of one batch (:func:`feature_step`), built on first use and reused by every
        :meth:`extract`: tracing it costs about a second, more than extracting a small set."""
        if ten_crop not in self._steps:
            if self.engine == "tensorflow":
                self._steps[ten_crop] = feature_step(self.pooled_model, ten_crop, self.strategy)
            else:  # the pooled model converted once (cached on disk), run on the pipeline's batches
                if self._engine_run is None:
                    self._engine_run = engines.compile_model(self.pooled_model, self.engine, [
                        self.source.name, self.weights, self.include_top, self.layers, self.image_size])
                self._steps[ten_crop] = engines.EngineStep(self._engine_run, self.image_size, ten_crop)
        return self._steps[ten_crop]

    def wait_for_parts(self, image_set, count, cache_dir, ten_crop=False, timeout=None, poll_seconds=5,
                       verbose=True):
        """Wait until every part of ``shard=(I, count)`` of ``image_set`` is finished in ``cache_dir`` (or
        the whole entry is); return the parts still missing after ``timeout`` seconds (None: no limit).

        A part still missing then is extracted by the next :meth:`extract` of the whole set.
        """
        whole = FeatureCache(cache_dir, self.cache_key(image_set, ten_crop), (len(image_set), self.num_features))
        parts = {index: shard_rows(len(image_set), (index, count), self.batch_size) for index in range(count)}
        started, announced = time.monotonic(), False
        while True:
            missing = [index for index, (start, stop) in parts.items() if start < stop
                       and not whole.part(start, stop).final.is_file()]
            if not missing or whole.final.is_file():
                return []
            if timeout is not None and time.monotonic() - started >= timeout:
                return missing
            if verbose and not announced:
                print(f"  features: waiting for part(s) {', '.join(f'{index}/{count}' for index in missing)}",
                      flush=True)
                announced = True
            time.sleep(poll_seconds)


def _local_strategy(strategy):
    """``strategy``, checked: extraction spreads over the devices of one machine (several machines: shards)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is not None and resolver.task_type is not None:
        raise ValueError(f"strategy={type(strategy).__name__} spans several machines; extraction needs no "
                         "exchange between them: let each extract its part with shard=(I, N) and its own "
                         "devices (a mirrored strategy), then join the parts with one extract() of the whole set.")
    return strategy


def extract_features(extractor, image_set, pipeline_factory, cache_dir=None, cache_key=None,
                     ten_crop=False, chunk_size=256, verbose=True, strategy=None, counts=None, step=None):
    """Features of every image of ``image_set`` as a (N, D) float32 array (a read-only memory map when
    cached) and the cache file (None without a cache).

    ``extractor`` is a model from :func:`build_extractor` (built in ``strategy.scope()`` when a
    ``strategy`` spreads the batches over replicas); ``pipeline_factory(image_subset)`` returns
    batches for it. With ``cache_dir``, the features go to ``<cache_key>.npy`` there, written
    through a memory map; every ``chunk_size`` images the number of finished images is saved. A
    rerun with the same key reads the file; an interrupted run starts after the last finished
    chunk; a second run on the same entry waits for the first and reuses its file (the entry's
    files: :class:`~keras_tl.features.cache.FeatureCache`). Rows that finished parts of the entry
    hold (:meth:`~keras_tl.features.cache.FeatureCache.part`) are copied from them, and the parts
    deleted once the entry is whole. :class:`FeatureExtractor` derives the key from
    everything the features depend on. ``counts`` (a dict), when given, gets
    ``images_extracted`` and ``images_from_cache`` of this call added. ``step``: the compiled step
    of ``extractor`` (:func:`feature_step` with the same ``ten_crop`` and ``strategy``), to reuse
    one across calls; by default a new one is built (and traced) for this call.
    """
    size = len(image_set)
    feature_dim = sum(int(output.shape[-1]) for output in extractor.outputs)
    step = step if step is not None else feature_step(extractor, ten_crop, strategy)
    extracted = 0
    if cache_dir is None:
        features = np.zeros((size, feature_dim), dtype=np.float32)
        with progress_bar(size, "features", verbose=verbose) as progress:
            _fill(features, 0, size, step, image_set, pipeline_factory, progress, strategy)
        extracted, cache_file = size, None
    elif cache_key is None:
        raise ValueError("extract_features() with cache_dir= needs cache_key=: the name of the cache entry.")
    else:
        cache = FeatureCache(cache_dir, cache_key, (size, feature_dim))
        with cache.lock():
            features = cache.load_final()
            if features is not None:
                if verbose:
                    print(f"  features: reusing cache {cache.final}", flush=True)
            else:
                extracted = _fill_entry(cache, step, image_set, pipeline_factory, verbose, strategy, chunk_size)
                features = np.load(cache.final, mmap_mode="r")
        cache_file = cache.final
    if counts is not None:
        counts["images_extracted"] += extracted
        counts["images_from_cache"] += size - extracted
    return features, cache_file


def _fill_entry(cache, step, image_set, pipeline_factory, verbose, strategy, chunk_size):
    """Write the whole entry, under its lock: resume the partial array, copy the rows finished parts
    hold, extract the others; then rename it final and delete the parts. Returns the rows extracted."""
    size, extracted = len(image_set), 0
    features, done = cache.open_partial()
    if done and verbose:
        print(f"  features: resuming at image {done} of {size} from {cache.partial}", flush=True)
    parts = cache.finished_parts()
    if parts and verbose:
        print(f"  features: joining {len(parts)} finished part(s): rows "
              + ", ".join(f"{start}-{stop - 1}" for start, stop, _ in parts), flush=True)
    with progress_bar(size, "features", verbose=verbose, initial=done) as progress:
        for start, stop, part in cache.segments(done, parts):
            if part is None:
                _fill(features, start, stop, step, image_set, pipeline_factory, progress, strategy, cache,
                      chunk_size)
                extracted += stop - start
            else:
                for row in range(start, stop, chunk_size):  # in chunks: memory stays flat
                    end = min(row + chunk_size, stop)
                    features[row:end] = part[2][row - part[0]:end - part[0]]
                    features.flush()
                    cache.mark_done(end)
                    progress.update(end - row)
    cache.finish(features)
    for start, stop, _ in parts:  # the whole entry holds their rows now (their empty .lock files stay)
        cache.part(start, stop).final.unlink(missing_ok=True)
    return extracted


def _pooled_features(extractor, ten_crop):
    """The function of one batch: the extractor's outputs joined; with ten-crop, averaged over the crops."""
    crop_size = extractor.input_shape[1]

    def pooled_features(batch):
        if ten_crop:  # the 10 crops of every image go through the network as one batch
            batch = ops.reshape(ten_crops(batch, crop_size), (-1, crop_size, crop_size, batch.shape[-1]))
        outputs = extractor(batch, training=False)
        joined = ops.concatenate(outputs if isinstance(outputs, list) else [outputs], axis=-1)
        if ten_crop:
            return ops.mean(ops.reshape(joined, (10, -1, joined.shape[-1])), axis=0)
        return joined

    return pooled_features


def _fill(features, start, stop, step, image_set, pipeline_factory, progress, strategy=None, cache=None,
          chunk_size=256):
    """Write the features of images ``start..stop-1`` into those rows of ``features``; with a
    ``cache``, save the number of finished rows every ``chunk_size``."""
    row = saved = start
    for batch in _feature_batches(step, pipeline_factory(image_set.subset(np.arange(start, stop))), strategy):
        features[row:row + len(batch)] = batch
        row += len(batch)
        progress.update(len(batch))
        if cache is not None and (row - saved >= chunk_size or row == stop):
            features.flush()
            cache.mark_done(row)
            saved = row


def feature_step(extractor, ten_crop=False, strategy=None):
    """The compiled function of one batch of ``extractor`` (joined pooled outputs; with ``ten_crop``
    averaged over the crops), for :func:`extract_features`'s ``step=``: build it once, reuse it.

    On TensorFlow it takes either one batch of images or an iterator of a ``tf.data`` pipeline, whose
    next batch it reads inside the graph (as Keras's ``predict`` does): handing each batch through
    Python instead costs about a third of the speed on a 2-core CPU (bench/bench_fne_extraction.py).
    With a ``strategy`` (an iterator of ``strategy.experimental_distribute_dataset``) each global
    batch is split across the replicas, each computes its share (``strategy.run``), and the shares
    are gathered back in order (an uneven last batch gives some replicas fewer images). Every
    iterator of the same kind of pipeline reuses the one trace.
    """
    compute = _pooled_features(extractor, ten_crop)
    if keras.config.backend() != "tensorflow":
        return keras_function(compute)
    import tensorflow as tf

    def compute_on_replica(images):
        # an uneven last global batch can leave a replica without images, and oneDNN's convolutions
        # fail on an empty batch on some CPUs (AVX-512 ones here): such a replica computes one image
        # of zeros and returns none of it
        def from_one_zero_image():
            return compute(tf.zeros(tf.concat([[1], tf.shape(images)[1:]], axis=0), images.dtype))[:0]
        return tf.cond(tf.shape(images)[0] > 0, lambda: compute(images), from_one_zero_image)

    def step(images_or_iterator):
        if tf.is_tensor(images_or_iterator):
            return compute(images_or_iterator)
        if strategy is None:
            return compute(next(images_or_iterator)[0])
        return strategy.gather(strategy.run(compute_on_replica, args=(next(images_or_iterator)[0],)), axis=0)

    return tf.function(step, reduce_retracing=True)


def _feature_batches(step, batches, strategy=None):
    """Yield ``step``'s features (:func:`feature_step`) as numpy, batch by batch: a ``tf.data``
    pipeline is read inside the compiled step (distributed over the ``strategy``'s replicas)."""
    if keras.config.backend() == "tensorflow":
        import tensorflow as tf

        if isinstance(batches, tf.data.Dataset):
            if strategy is not None:
                batches = strategy.experimental_distribute_dataset(batches)
            iterator = iter(batches)
            while True:
                try:
                    yield np.asarray(step(iterator))  # a tensor, or numpy from an engine's step
                except tf.errors.OutOfRangeError:
                    return
    for images, _ in batches:
        yield ops.convert_to_numpy(step(images))


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
