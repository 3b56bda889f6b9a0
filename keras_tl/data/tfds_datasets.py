"""TensorFlow Datasets as a source: ``load_dataset("tfds:NAME")`` and ``"tfds:NAME:TRAIN/TEST"``.

NAME is the dataset as tfds names it (``oxford_flowers102``, ``name/config``, ``name:1.2.0``);
TRAIN and TEST are tfds split expressions (https://www.tensorflow.org/datasets/splits), such as
``train+validation``, ``train[:80%]``. Without them the train split is ``train`` plus
``validation`` where the dataset has one (the Full-Network Embedding paper's Flowers-102 protocol:
train = train + validation), and the test split is ``test``. ``tfds:NAME:TRAIN`` alone, or a
dataset without a ``test`` split, gets a seeded stratified split of TRAIN.

The data are read from ``data_dir`` (else ``$TFDS_DATA_DIR``, else ``~/tensorflow_datasets``); a
dataset that is not there is downloaded and prepared, as ``tfds.load(download=True)`` does, once one
quick connection shows the machine is online (tfds retries each file for minutes on an offline one).

Each encoded image (read with ``tfds.decode.SkipDecoding()``, never decoded here) is written once
as a file under the keras_tl cache (:func:`keras_tl.data.images.decode_cache_file`'s folder), so the images
get the decode check, pipeline and feature cache of every folder dataset and memory stays flat in
the number of images. A split's ``complete.json`` (written last) lists its files; a later call
reads only that list, and one that does not read as such a list is set aside as
``complete.json.damaged`` (a warning names it) and the split exported again. Class names are the
``label`` ClassLabel's names.

``tensorflow-datasets`` is optional: ``pip install tensorflow-datasets`` (or ``pip install -e '.[tfds]'``).
"""
import errno
import io
import json
import logging
import os
import pathlib
import re
import socket
import urllib.parse
import urllib.request
import warnings

from keras_tl import messages, runs
from keras_tl.data import folders
from keras_tl.data.images import decode_cache_file

PREFIX = "tfds:"
VERSION = re.compile(r"[\d*]+\.[\d*]+\.[\d*]+")  # tfds's "name:1.2.0"
MANIFEST = "complete.json"
MANIFEST_ENTRY = re.compile(r"\d{4,}/\d{7,}\.\w+")  # <label>/<index>.<format>, inside the split's folder
TFDS_HOST = ("storage.googleapis.com", 443)  # tfds's mirror of the datasets, and the home of most of their files


def import_tfds():
    """``tensorflow_datasets``, or a ``ModuleNotFoundError`` that says how to install it."""
    try:
        import tensorflow_datasets as tfds
    except ModuleNotFoundError as error:
        if error.name != "tensorflow_datasets":
            raise
        raise ModuleNotFoundError("tfds:NAME datasets need the package tensorflow-datasets: pip install "
                                  "tensorflow-datasets (or pip install -e '.[tfds]').") from None
    return tfds


def parse_spec(spec):
    """``(name, train, test)`` of ``"tfds:NAME[:TRAIN[/TEST]]"``; ``train``/``test`` are None when not given."""
    name, _, splits = spec[len(PREFIX):].partition(":")
    version, _, after = splits.partition(":")
    if VERSION.fullmatch(version):  # the colon belonged to NAME:VERSION
        name, splits = f"{name}:{version}", after
    train, slash, test = splits.partition("/")
    if not name or (splits and not train) or (slash and not test) or "/" in test:
        raise ValueError(f"Dataset {spec!r} is not tfds:NAME or tfds:NAME:TRAIN/TEST (TRAIN and TEST tfds split "
                         f"expressions), e.g. tfds:oxford_flowers102:train+validation/test.")
    return name, train or None, test or None


def tfds_data_dir(data_dir=None):
    """Where tfds datasets are read: ``data_dir``, else ``$TFDS_DATA_DIR``, else ``~/tensorflow_datasets``."""
    return pathlib.Path(data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets").expanduser()


def read(spec, options):
    """The tfds dataset of ``spec`` (see the module docstring) as an :class:`keras_tl.data.ImageDataset`.

    ``options.test_fraction`` and ``options.seed`` make the split of a dataset without a test split;
    ``options.cache_dir`` holds the decode-check verdicts and, beside them, the exported images (see
    :func:`keras_tl.data.images.decode_cache_file`); ``options.tfds_data_dir`` is where tfds datasets are
    read (:func:`tfds_data_dir`); ``options.verbose`` shows progress bars.
    """
    tfds = import_tfds()
    name, train, test = parse_spec(spec)
    data_dir = tfds_data_dir(options.tfds_data_dir)
    builder = _builder(tfds, name, data_dir)
    features = builder.info.features
    if not (isinstance(_feature(features, "image"), tfds.features.Image)
            and isinstance(_feature(features, "label"), tfds.features.ClassLabel)):
        raise ValueError(f"tfds dataset {name!r} has the features {', '.join(features.keys())}; an image "
                         f"classification dataset needs an 'image' Image and a 'label' ClassLabel feature.")
    _prepare(builder, name, data_dir)
    available = set(builder.info.splits.keys())
    if train is None:
        train = "train+validation" if "validation" in available else "train"
        test = "test" if "test" in available else None
    expressions = {"train": train, "test": test} if test else {"all": train}
    for expression in expressions.values():
        _check_split(tfds, expression, available, spec)
    folder = decode_cache_file(options.cache_dir).parent / "tfds" / builder.info.full_name
    class_names = features["label"].names
    exported = {split: _export(tfds, builder, expression, folder / urllib.parse.quote(expression, safe="+"),
                               class_names, options.verbose)
                for split, expression in expressions.items()}
    present = [label for label in class_names if any(files[label] for files in exported.values())]
    splits = {split: {label: files[label] for label in present} for split, files in exported.items()}
    return folders.file_dataset(name, folder, splits, options)


def _feature(features, key):
    return features[key] if key in features.keys() else None


def _builder(tfds, name, data_dir):
    """The tfds builder of ``name`` in ``data_dir`` (its features are known before it is prepared)."""
    from google.protobuf import json_format

    try:
        builder = tfds.builder(name, data_dir=os.fspath(data_dir))
    except tfds.core.DatasetNotFoundError:
        raise ValueError(f"No tfds dataset named {name!r} (the catalogue: https://www.tensorflow.org/datasets/catalog)."
                         + messages.did_you_mean(name, tfds.list_builders(with_community_datasets=False))) from None
    except json_format.ParseError as error:  # tfds reads the prepared dataset's dataset_info.json as it starts
        folder = data_dir / name.partition(":")[0]
        reason = str(error).rpartition("JSON: ")[2].rstrip(".")
        raise ValueError(f"tfds dataset {name!r}: a dataset_info.json under {folder} is damaged ({reason}); move "
                         f"{folder} aside and prepare it again (tfds build {name} --data_dir {data_dir}).") from None
    return builder


def _prepare(builder, name, data_dir):
    """Download and prepare ``builder``'s dataset where it is not in ``data_dir``; a ``FileNotFoundError``
    at once where :func:`network_problem` finds the machine offline."""
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)  # not "Variant folder ... has no dataset_info.json": the error below says it
    try:
        prepared = builder.is_prepared()
    finally:
        absl.setLevel(level)
    if not prepared:
        problem = network_problem()
        if problem is None:
            try:
                builder.download_and_prepare()
            except OSError as error:  # requests' and urllib's network errors are OSErrors
                if error.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise
                problem = f"{type(error).__name__}: the machine may be offline"
        if problem is not None:
            raise FileNotFoundError(
                f"tfds dataset {name!r} is not in {builder.data_path} and could not be downloaded "
                f"({problem}). On a machine with internet, run tfds build {name} --data_dir DIR (or load it "
                f"there once), then copy DIR/{builder.name} into {data_dir} here, or point tfds_data_dir= "
                f"(or $TFDS_DATA_DIR) at a shared copy.") from None


def network_problem(timeout=3):
    """Why tfds could not download here (its host, or the HTTPS proxy, cannot be reached within ``timeout``
    seconds), or None: one connection, where tfds retries each file ten times with back-off."""
    proxy = urllib.parse.urlsplit(urllib.request.getproxies().get("https", ""))
    host, port = (proxy.hostname, proxy.port or 80) if proxy.hostname else TFDS_HOST
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as error:
        return f"{host} cannot be reached: {error.strerror or error}; the machine may be offline"


def _check_split(tfds, expression, splits, spec):
    """A ``ValueError`` for a split expression that tfds cannot parse or that names a split the dataset lacks."""
    try:
        tfds.core.ReadInstruction.from_spec(expression)
    except ValueError as error:
        raise ValueError(f"Split {expression!r} of dataset {spec!r} is not a tfds split expression "
                         f"({str(error).splitlines()[-1]}); expected e.g. train, train+validation or train[:80%].") \
            from None
    for name in (part.split("[")[0].strip() for part in expression.split("+")):
        if name not in splits | {"all"}:
            raise ValueError(f"Dataset {spec!r} has no split {name!r}; its splits are {', '.join(sorted(splits))}."
                             + messages.did_you_mean(name, splits))


def _export(tfds, builder, expression, folder, class_names, verbose):
    """``{class: [files]}`` of one split expression: each encoded image written once as
    ``folder/<label>/<index>.<format>``, and the list in ``folder/complete.json``, written last.

    An interrupted export resumes: files already written (atomically) are kept.
    """
    manifest = folder / MANIFEST
    listed = _read_manifest(manifest, class_names) if manifest.is_file() else None
    if listed is not None:
        return {label: [str(folder / name) for name in names] for label, names in listed.items()}
    examples = builder.as_dataset(split=expression, shuffle_files=False,
                                  decoders={"image": tfds.decode.SkipDecoding()})
    count = int(examples.cardinality())
    bar = messages.progress_bar(count if count >= 0 else None, f"Exporting {builder.name} {expression}",
                                verbose=verbose)
    files = {label: [] for label in class_names}
    with bar:
        for index, example in enumerate(tfds.as_numpy(examples)):
            encoded, label = example["image"], int(example["label"])
            name = f"{label:04d}/{index:07d}{_extension(encoded)}"
            if not (folder / name).is_file():
                with runs.atomic_path(folder / name) as tmp:
                    tmp.write_bytes(encoded)
            files[class_names[label]].append(name)
            bar.update()
    runs.write_json(manifest, files)
    return {label: [str(folder / name) for name in names] for label, names in files.items()}


def _read_manifest(manifest, class_names):
    """The ``{class: [<label>/<index>.<format>]}`` of a split's ``complete.json``; None when it does not read
    as one (cut short, edited, another dataset's), after a warning naming it and setting it aside."""
    try:
        listed = json.loads(manifest.read_text())
        if not _lists_files(listed, class_names):
            raise ValueError(f"expected, for each of the {len(class_names)} classes, a list of "
                             "<label>/<index>.<format> files")
    except ValueError as error:  # json's errors, and a text that is not UTF-8, are ValueErrors
        aside = manifest.with_name(manifest.name + ".damaged")
        warnings.warn(f"{manifest} cannot be read ({error}); set aside as {aside.name}, the split is exported "
                      "again.")
        os.replace(manifest, aside)
        return None
    return listed


def _lists_files(listed, class_names):
    """Whether ``listed`` maps exactly ``class_names`` to lists of ``<label>/<index>.<format>`` names."""
    return (isinstance(listed, dict) and sorted(listed) == sorted(class_names)
            and all(isinstance(names, list) and all(isinstance(name, str) and MANIFEST_ENTRY.fullmatch(name)
                                                    for name in names) for names in listed.values()))


def _extension(encoded):
    """``.jpeg``, ``.png``, ... as Pillow reads the header of ``encoded``; ``.unknown`` when it cannot
    (the decode check then reports the file)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(encoded)) as image:
            return f".{image.format.lower()}"
    except Exception:  # Pillow raises many types for bad data: all mean "not an image it knows"
        return ".unknown"
