"""Read a PyTorch weights file of the legacy (pre-1.6, non-zip) format with ``pickle`` and numpy only.

``torch.save(state_dict, path)`` used to write five things in a row:

1. a pickled magic number, 2. the pickled protocol version (1001), 3. pickled system
information (byte order, type sizes), 4. the pickled state dict, and 5. the pickled list of
storage keys; then the raw bytes of every storage, in the order of that list, each preceded by
its element count as an 8-byte little-endian integer.

Inside the state dict a tensor is not data but a recipe,
``torch._utils._rebuild_tensor_v2(storage, offset, shape, strides, ...)``: take the flat
storage, start at ``offset``, and step ``strides`` elements along each axis. The storage itself
is a *persistent id* (``"storage", FloatStorage, key, device, element count, view``), which the
pickle leaves to the loader. :class:`_StateDictUnpickler` maps those names onto the small
stand-ins below, so no PyTorch is needed and nothing else can be built.

The strides matter: a tensor saved after a ``permute`` (as converted TensorFlow kernels are) is
not contiguous, and reshaping its storage would scramble it silently. They are also untrusted: a
crafted file could point a view past the end of its storage, so every view and every storage's
length is checked before any array is built from it.
"""
import collections
import dataclasses
import io
import pickle

import numpy as np
from numpy.lib.stride_tricks import as_strided

from keras_tl.safe_pickle import RestrictedUnpickler

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
STORAGE_DTYPES = {"FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2", "LongStorage": "<i8",
                  "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1", "ByteStorage": "u1",
                  "BoolStorage": "?"}


@dataclasses.dataclass
class _Storage:
    """A flat typed buffer; its values are read after the state dict, from the end of the file."""

    dtype: np.dtype
    size: int
    values: np.ndarray = None


@dataclasses.dataclass
class _Tensor:
    """``_rebuild_tensor_v2``'s recipe: a view of ``storage`` with an element offset and element strides."""

    storage: _Storage
    offset: int
    shape: tuple
    strides: tuple

    def to_numpy(self, name):
        """A contiguous copy of the tensor (``name``: its key in the state dict), in its own axis order."""
        self._check_view(name)
        itemsize = self.storage.values.itemsize
        view = as_strided(self.storage.values[self.offset:], shape=tuple(self.shape),
                          strides=tuple(step * itemsize for step in self.strides), writeable=False)
        return np.array(view, order="C")

    def _check_view(self, name):
        """A ``ValueError`` unless every element the view reads lies inside the storage."""
        if self.storage.values is None:
            raise ValueError(f"Tensor {name!r} uses a storage that is not in the file's list of storages.")
        size = self.storage.values.size
        recipe = (f"Tensor {name!r} (offset {self.offset!r}, shape {self.shape!r}, strides {self.strides!r}) "
                  f"in a storage of {size} elements")
        if not (_is_count(self.offset) and isinstance(self.shape, (tuple, list))
                and isinstance(self.strides, (tuple, list)) and all(map(_is_count, [*self.shape, *self.strides]))):
            raise ValueError(f"{recipe}: offset, shape and strides should be integers of 0 or more.")
        if len(self.shape) != len(self.strides):
            raise ValueError(f"{recipe}: shape and strides should have as many entries as the tensor has axes.")
        if 0 not in self.shape:
            last = self.offset + sum((length - 1) * step for length, step in zip(self.shape, self.strides))
            if last >= size:
                raise ValueError(f"{recipe} reads element {last}, past the end of its storage; the file is "
                                 f"damaged or crafted.")


def _is_count(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _rebuild_tensor_v2(storage, offset, shape, strides, requires_grad=False, backward_hooks=None, metadata=None):
    return _Tensor(storage, offset, shape, strides)  # checked in to_numpy, where the tensor's name is known


class _StateDictUnpickler(RestrictedUnpickler):
    allowed = {("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
               ("collections", "OrderedDict"): collections.OrderedDict,
               **{("torch", name): np.dtype(dtype) for name, dtype in STORAGE_DTYPES.items()}}

    def __init__(self, file):
        super().__init__(file)
        self.storages = {}

    def persistent_load(self, saved_id):
        kind, dtype, key, _device, size, view = saved_id
        if kind != "storage" or view is not None or not isinstance(dtype, np.dtype):
            raise pickle.UnpicklingError(f"unsupported persistent id {saved_id!r} (expected a storage of one of the "
                                         f"types {', '.join(STORAGE_DTYPES)}; storage views are not handled)")
        return self.storages.setdefault(key, _Storage(dtype, size))


class _PlainUnpickler(RestrictedUnpickler):
    allowed = {}


def read_legacy_torch_file(data):
    """Return the state dict in ``data`` (the bytes of a legacy ``.pth`` file) as ``{name: numpy array}``.

    Arrays keep PyTorch's axis order (a conv kernel is ``(out, in, height, width)``).
    """
    if data[:2] == b"PK":
        raise ValueError("This is a zip-format PyTorch file (torch >= 1.6); only the legacy format is read here.")
    file = io.BytesIO(data)
    header = [_PlainUnpickler(file).load() for _ in range(3)]
    if header[0] != MAGIC_NUMBER or header[1] != PROTOCOL_VERSION:
        raise ValueError(f"Not a legacy PyTorch file: magic number {header[0]!r}, protocol {header[1]!r}.")
    if not header[2].get("little_endian", False):
        raise ValueError("This PyTorch file was written on a big-endian machine; it is not supported.")
    unpickler = _StateDictUnpickler(file)
    state_dict = unpickler.load()
    storage_keys = _PlainUnpickler(file).load()
    for key in storage_keys:
        if key not in unpickler.storages:
            raise ValueError(f"Storage {key!r} is in the file's list of storages, but no tensor uses it.")
        storage = unpickler.storages[key]
        count_bytes = file.read(8)
        if len(count_bytes) != 8:
            raise ValueError(f"The file ends before storage {key!r} ({storage.size} elements); it is truncated.")
        count = int.from_bytes(count_bytes, "little", signed=True)
        if count < 0 or count != storage.size:
            raise ValueError(f"Storage {key!r} holds {count} elements; the state dict expects {storage.size}.")
        raw = file.read(count * storage.dtype.itemsize)
        if len(raw) != count * storage.dtype.itemsize:
            raise ValueError(f"Storage {key!r} should hold {count} elements of {storage.dtype.itemsize} bytes "
                             f"({count * storage.dtype.itemsize} bytes); the file has {len(raw)}: it is truncated.")
        storage.values = np.frombuffer(raw, storage.dtype)
    return {name: tensor.to_numpy(name) for name, tensor in state_dict.items()}
