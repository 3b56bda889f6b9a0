"""Check a student's own set-up before training: :func:`check` finds the classic transfer-learning mistakes.

Each is silent in Keras: training runs, the accuracy is just worse, or better than it should be.

- **Input scale**: a pretrained network expects what its ``preprocess_input`` produces (MobileNet
  -1..1, VGG/ResNet mean-subtracted BGR, EfficientNet 0..255). Raw 0..255 pixels, ``rescale=1/255``
  instead of ``preprocess_input``, or on top of it (0..1, or 0..0.004) all train, badly. The check
  feeds the first batches, takes their minimum and maximum, and compares them with the range
  ``preprocess_input`` gives for black and white pixels.
- **BatchNormalization**: a BN layer that is trainable and not in inference mode replaces the
  ImageNet statistics with those of the new data's batches during ``fit`` (Ioffe & Szegedy 2015;
  the Keras transfer-learning guide); inside an otherwise frozen base that is almost never what was
  meant. :class:`keras_tl.training.freezing.InferenceMode` keeps BN in inference mode (and explains why
  ``base(x, training=False)`` is not enough in Keras 3). A base called with ``training=True`` uses
  batch statistics whenever the model is called directly.
- **What trains**: trainable and frozen parameter counts (:func:`keras_tl.training.freezing.parameter_counts`).
- **Class balance**: the largest class against the smallest (accuracy hides a small class).
- **Leaks**: test images that are exact copies of train images (SHA-256 of the file bytes, or of
  the pixels of in-memory images) make the test accuracy a memory test; so do resized or
  re-encoded copies, found as near-duplicates of 16x16 thumbnails
  (:func:`keras_tl.features.neighbours.near_duplicates`, threshold measured there).
- **Tiny images**: files much smaller than the input size (read lazily with Pillow: the header
  only) are blown up into blur.

``check(model, dataset)`` prints a table and returns the findings; ``severity`` is ``error``
(fix it), ``warning`` (very likely a mistake) or ``info`` (what was measured). The fine-tuning
and fne jobs run it with ``--check`` and write ``check.json``.
"""
import dataclasses
import hashlib
import itertools

import keras  # before keras_tl.training.freezing: Keras loading first registers the custom objects, freezing included
import numpy as np

from keras_tl import data, runs
from keras_tl.features.neighbours import DUPLICATE_THRESHOLD, near_duplicates, pixel_features
from keras_tl.messages import format_table, progress_bar
from keras_tl.training import freezing

SEVERITIES = ("error", "warning", "info")
MAX_CLASS_RATIO = 3.0  # largest / smallest class above this: a warning
SMALL_FRACTION = 0.5  # image files smaller than half the input size: a warning
MIN_COVERED = 0.6  # the inputs should span at least this share of the expected range


@dataclasses.dataclass
class Finding:
    """One result of :func:`check`: what was found, how serious it is, and what to do about it."""

    what: str
    severity: str
    todo: str = ""

    def as_dict(self):
        return dataclasses.asdict(self)


# ----------------------------------------------------------------------------- input scale


def expected_range(source):
    """``(lowest, highest)`` value that ``source``'s ``preprocess_input`` gives for 0..255 RGB pixels."""
    pixels = np.stack([np.zeros((1, 1, 3)), np.full((1, 1, 3), 255.0)]).astype("float32")
    values = np.asarray(source.preprocess_input(pixels.copy()))  # some work in place on numpy input
    return float(values.min()), float(values.max())


def fed_range(pipeline, batches=2):
    """``(lowest, highest)`` input value in the first ``batches`` batches of ``pipeline``."""
    lows, highs = [], []
    for batch in itertools.islice(iter(pipeline), batches):
        images = np.asarray(batch[0] if isinstance(batch, (tuple, list)) else batch)
        lows.append(float(images.min()))
        highs.append(float(images.max()))
    if not lows:
        raise ValueError("dataset_or_pipeline= yields no batches.")
    return min(lows), max(highs)


def input_range_findings(seen, expected, source_name):
    """Compare the range the model is fed (``seen``) with the range ``preprocess_input`` gives."""
    (seen_low, seen_high), (low, high) = seen, expected
    span = high - low
    fed = (f"The model is fed {seen_low:.3g}..{seen_high:.3g}; {source_name}'s preprocess_input gives "
           f"{low:.3g}..{high:.3g}")
    preprocess = f"feed 0..255 RGB pixels through {source_name}'s preprocess_input, with no other scaling"
    covered = (min(seen_high, high) - max(seen_low, low)) / span
    if seen_high > high + 0.5 * span or seen_low < low - 0.5 * span:
        if -0.5 <= seen_low and seen_high <= 255.5:
            return [Finding(f"{fed}: raw 0..255 pixels, not preprocessed.", "error", preprocess)]
        return [Finding(f"{fed}: the inputs go far beyond that range.", "error", preprocess)]
    if seen_high - seen_low < 0.05 * span:
        return [Finding(f"{fed}: a tiny range, scaled twice (rescale=1/255 before or after preprocess_input?).",
                        "error", preprocess)]
    if covered < MIN_COVERED:
        if seen_low >= 0 and seen_high <= 1 and (low < -0.5 or high > 1.5):
            return [Finding(f"{fed}: 0..1 inputs, rescale=1/255 instead of preprocess_input?", "error", preprocess)]
        return [Finding(f"{fed}: the inputs cover {covered:.0%} of that range.", "warning",
                        f"check the scaling ({preprocess}); images that really are dark or faint can cause this")]
    return [Finding(f"{fed}: as expected.", "info")]


# ----------------------------------------------------------------------------- BatchNormalization


def _containers(layer, protected=False, frozen=False):
    """``(model, in inference mode, frozen)`` for ``layer`` and every model nested in it."""
    yield layer, protected, frozen
    for child in getattr(layer, "layers", []):
        if hasattr(child, "layers"):
            yield from _containers(child, protected or isinstance(child, freezing.InferenceMode),
                                   frozen or not child.trainable)


def called_in_training_mode(model):
    """The layers with BatchNormalization that ``model`` (or a model in it) calls with ``training=True`` fixed."""
    def has_batchnorm(layer):  # outside InferenceMode, which always calls with training=False
        if isinstance(layer, freezing.InferenceMode):
            return False
        return (isinstance(layer, keras.layers.BatchNormalization)
                or any(map(has_batchnorm, getattr(layer, "layers", []))))

    found = []
    for container, _, _ in _containers(model):
        for layer in container.layers:
            nodes = [node for node in getattr(layer, "_inbound_nodes", []) if getattr(node, "arguments", None)]
            if any(node.arguments.kwargs.get("training") is True for node in nodes) and has_batchnorm(layer):
                found.append(layer)
    return found


def batchnorm_findings(model):
    """Trainable BN layers that ``fit`` would run in training mode, judged within the model that holds them."""
    findings = []
    todo = ("wrap the base in keras_tl.training.freezing.InferenceMode (recipe.build_classifier does), or freeze BN "
            "(freezing.freeze_batchnorm); base(x, training=False) is not enough in Keras 3")
    for container, protected, frozen in _containers(model):
        layers = [layer for layer in container.layers if not hasattr(layer, "layers")]
        batchnorms = [layer for layer in layers if isinstance(layer, keras.layers.BatchNormalization)
                      and layer.trainable and not protected]
        if not batchnorms:
            continue
        still = [layer for layer in layers if layer.weights and (frozen or not layer.trainable)
                 and not isinstance(layer, keras.layers.BatchNormalization)]
        names = ", ".join(layer.name for layer in batchnorms[:3]) + (", ..." if len(batchnorms) > 3 else "")
        if still:
            findings.append(Finding(
                f"{len(batchnorms)} BatchNormalization layer(s) of {container.name} ({names}) will update their "
                f"moving mean and variance in fit while {len(still)} of its layers with weights are frozen.",
                "error", todo))
        else:
            findings.append(Finding(
                f"{len(batchnorms)} BatchNormalization layer(s) of {container.name} update their statistics in fit: "
                f"right when training from scratch.", "info", f"with pretrained weights: {todo}"))
    for layer in called_in_training_mode(model):
        findings.append(Finding(
            f"{model.name} calls {layer.name} with training=True: its BatchNormalization layers normalise with batch "
            f"statistics and update them whenever the model is called directly, model(x).", "warning",
            "leave training out of the call (keras_tl.training.freezing.InferenceMode for a pretrained base)"))
    return findings


def parameter_findings(model):
    """The trainable and frozen parameter counts (an error when nothing trains)."""
    counts = freezing.parameter_counts(model)
    if counts["trainable"] == 0:
        return [Finding(f"Nothing trains: all {counts['total']:,} parameters are frozen.", "error",
                        "unfreeze the head at least, then compile again")]
    return [Finding(f"{counts['trainable']:,} of {counts['total']:,} parameters train, {counts['non_trainable']:,} "
                    f"are frozen.", "info")]


# ----------------------------------------------------------------------------- the images


def balance_findings(labels, max_class_ratio=MAX_CLASS_RATIO):
    """The largest class against the smallest one present (multi-hot labels: the images that have each class)."""
    labels = np.asarray(labels, dtype=int)
    counts = labels.sum(axis=0) if labels.ndim == 2 else np.bincount(labels)
    counts = counts[counts > 0]
    ratio = counts.max() / counts.min()
    what = f"Class sizes {counts.min()}..{counts.max()} images ({len(counts)} classes, ratio {ratio:.1f})"
    if ratio > max_class_ratio:
        return [Finding(f"{what}: imbalanced.", "warning",
                        "weigh each class's loss: --class-weight auto in the fne and fine_tune jobs (in the library "
                        "class_weight='auto' in fine_tune_model or Recipe, class_weight='balanced' in "
                        "make_classifier); judge by the balanced accuracy and the recall per class, which the jobs "
                        "report")]
    return [Finding(f"{what}.", "info")]


def content_hashes(image_set, verbose=False):
    """The SHA-256 of each image: of the file bytes, or of the pixels of an in-memory image."""
    if image_set.paths is None:
        return [hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest() for image in image_set.images]
    hashes = []
    with progress_bar(len(image_set.paths), "hashing images", verbose=verbose) as bar:
        for path in image_set.paths:
            hashes.append(runs.file_digest(path))
            bar.update(1)
    return hashes


def exact_copies(train, test, verbose=False):
    """``(test index, train index)`` of the test images that are exact copies of train images (see
    :func:`content_hashes`)."""
    if (train.paths is None) != (test.paths is None):
        return []  # files against arrays: no byte-level comparison
    train_hashes = dict(zip(content_hashes(train, verbose), range(len(train))))
    return [(index, train_hashes[digest]) for index, digest in enumerate(content_hashes(test, verbose))
            if digest in train_hashes]


def _name(image_set, index):
    return str(image_set.paths[index]) if image_set.paths is not None else f"#{index}"


def duplicate_findings(train, test, copies=None, verbose=False):
    """Test images that are exact copies of train images (``copies``: :func:`exact_copies`, found when not given)."""
    if (train.paths is None) != (test.paths is None):
        return []
    copies = exact_copies(train, test, verbose) if copies is None else copies
    if not copies:
        return [Finding(f"No test image is a copy of a train image ({len(test)} against {len(train)}).", "info")]
    test_index, train_index = copies[0]
    return [Finding(f"{len(copies)} test image(s) are exact copies of train images (e.g. test "
                    f"{_name(test, test_index)} = train {_name(train, train_index)}).", "error",
                    "remove them from one of the two: they inflate the test accuracy")]


def near_copy_findings(train, test, skip=(), threshold=DUPLICATE_THRESHOLD):
    """Test images that are near-copies of train images (resized, re-encoded): cosine similarity of their
    :func:`~keras_tl.features.neighbours.pixel_features` at least ``threshold``; the test indices in ``skip``
    (the exact copies, reported already) are left out. Cheap: each image is decoded once, at 16x16."""
    nearest = {}  # test index -> its most similar train image
    for test_index, train_index, similarity in near_duplicates(pixel_features(test), pixel_features(train), threshold):
        if test_index not in skip and test_index not in nearest:
            nearest[test_index] = (train_index, similarity)
    if not nearest:
        return [Finding(f"No test image is a near-copy of a train image (cosine of 16x16 thumbnails below "
                        f"{threshold}).", "info")]
    pairs = sorted(nearest.items(), key=lambda item: -item[1][1])
    examples = "; ".join(f"test {_name(test, test_index)} ~ train {_name(train, train_index)} ({similarity:.3f})"
                         for test_index, (train_index, similarity) in pairs[:3])
    return [Finding(f"{len(nearest)} test image(s) are near-copies of train images, resized or re-encoded? "
                    f"(cosine of 16x16 thumbnails >= {threshold}: {examples}{'; ...' if len(pairs) > 3 else ''}).",
                    "warning", "look at the pairs: copies inflate the test accuracy; remove them from one of the two")]


def image_sizes(paths, verbose=False):
    """``(width, height)`` of each image file, from its header (Pillow opens lazily, without decoding)."""
    from PIL import Image

    sizes = []
    with progress_bar(len(paths), "reading image sizes", verbose=verbose) as bar:
        for path in paths:
            with Image.open(path) as image:
                sizes.append(image.size)
            bar.update(1)
    return np.asarray(sizes)


def small_image_findings(image_set, input_size, verbose=False):
    """Images much smaller (below half) than the input size they are resized to."""
    if image_set.paths is None:
        height, width = image_set.images.shape[1:3]
        if min(height, width) < SMALL_FRACTION * input_size:
            return [Finding(f"The in-memory images are {width}x{height}, resized to {input_size}x{input_size}.",
                            "info", "fine for low-resolution data sets; a smaller image_size= is faster")]
        return []
    sides = image_sizes(image_set.paths, verbose).min(axis=1)
    small = np.flatnonzero(sides < SMALL_FRACTION * input_size)
    if not small.size:
        return [Finding(f"Every image file is at least {SMALL_FRACTION:.0%} of the input size {input_size}.", "info")]
    smallest = int(small[np.argmin(sides[small])])
    return [Finding(f"{small.size} of {len(sides)} images are smaller than half the input size {input_size} (smallest: "
                    f"{image_set.paths[smallest]}, {sides[smallest]} px a side): resizing blows them up into blur.",
                    "warning", "leave the tiny images out, or use a smaller image_size=")]


# ----------------------------------------------------------------------------- the check


def _image_sets(dataset_or_pipeline, test):
    """``(train ImageSet or None, test ImageSet or None)`` of what :func:`check` was given."""
    if isinstance(dataset_or_pipeline, data.ImageDataset):
        return dataset_or_pipeline.train, test if test is not None else dataset_or_pipeline.test
    if isinstance(dataset_or_pipeline, data.ImageSet):
        return dataset_or_pipeline, test
    return None, test


def format_findings(findings):
    """The findings as a table, errors first."""
    ordered = sorted(findings, key=lambda finding: SEVERITIES.index(finding.severity))
    return format_table([[finding.severity, finding.what, finding.todo] for finding in ordered],
                        ["severity", "finding", "what to do"])


def check(model, dataset_or_pipeline, source=None, *, pipeline=None, test=None, trains=True, batches=2,
          max_class_ratio=MAX_CLASS_RATIO, path=None, verbose=True):
    """Check ``model`` and its data for the mistakes of the module docstring; print a table, return the findings.

    ``dataset_or_pipeline``: a :class:`keras_tl.data.ImageDataset` (its train and test sets), an
    :class:`~keras_tl.data.ImageSet` of train images (``test=``: the test images, for the leak check),
    or what the model is fed, a pipeline of ``(images, labels)`` batches (then only the input scale
    and the model are checked). ``pipeline``: what the model is fed, when the first argument is a
    data set (default: the toolkit's own pipeline with ``source``'s ``preprocess_input``).
    ``source``: the source name or :class:`keras_tl.sources.Source` whose ``preprocess_input`` the
    model expects (without it the input scale is only reported). ``trains=False`` (feature
    extraction) leaves out the BatchNormalization and parameter checks. ``path``: also write the
    findings there as JSON.
    """
    from keras_tl.sources import get_source

    source = get_source(source) if source is not None else None
    train, test = _image_sets(dataset_or_pipeline, test)
    input_size = model.input_shape[1] if len(model.input_shape) == 4 else None
    if pipeline is None and train is not None and input_size is None:
        raise ValueError(f"{model.name} takes inputs of shape {model.input_shape}, not one image size: give "
                         f"pipeline=, the batches it is fed.")
    if pipeline is None:
        pipeline = dataset_or_pipeline if train is None else data.make_pipeline(
            train, input_size, source.preprocess_input if source is not None else None, batch_size=32)
    seen = fed_range(pipeline, batches)
    if source is not None:
        findings = input_range_findings(seen, expected_range(source), source.name)
    else:
        findings = [Finding(f"The model is fed {seen[0]:.3g}..{seen[1]:.3g}.", "info",
                            "give source= to compare it with the source's preprocess_input")]
    if trains:
        findings += batchnorm_findings(model) + parameter_findings(model)
    if train is not None:
        findings += balance_findings(train.labels, max_class_ratio)
        if input_size:
            findings += small_image_findings(train, input_size, verbose)
    if train is not None and test is not None:
        copies = exact_copies(train, test, verbose)
        findings += duplicate_findings(train, test, copies)
        findings += near_copy_findings(train, test, {test_index for test_index, _ in copies})
    if verbose:
        print(format_findings(findings), flush=True)
    if path is not None:
        runs.write_json(path, {"findings": [finding.as_dict() for finding in findings]})
    return findings
