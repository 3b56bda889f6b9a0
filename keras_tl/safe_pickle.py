"""Pickles read without running their code: the offline weight files and Animal-MNIST's data.

A pickle can name any importable function and have it called while it loads, so a plain
``pickle.load`` on a downloaded or installed file runs whatever a planted file asks for. These
Unpicklers create only the globals a file of that kind legitimately uses, and refuse anything else.
"""
import pickle

import numpy as np

try:
    from numpy._core.multiarray import _reconstruct  # numpy 2
except ImportError:
    from numpy.core.multiarray import _reconstruct  # numpy 1


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler that creates only the globals listed in ``allowed``: subclasses map each
    ``(module, name)`` their files use to the object to build instead."""

    allowed = {}

    def find_class(self, module, name):
        if (module, name) not in self.allowed:
            allowed = ", ".join(".".join(key) for key in self.allowed) or "nothing"
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a file of this kind should not need "
                                         f"it (allowed here: {allowed})")
        return self.allowed[module, name]


class NumpyUnpickler(RestrictedUnpickler):
    """Builds numpy arrays (and the lists and dicts around them), nothing else."""

    allowed = {("numpy.core.multiarray", "_reconstruct"): _reconstruct,
               ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
               ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
