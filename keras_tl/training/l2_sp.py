"""L2-SP: fine-tuning that keeps the pretrained weights near their starting point (Li, Grandvalet & Davoine 2018).

Li, Grandvalet & Davoine, "Explicit inductive bias for transfer learning with convolutional
networks" (ICML 2018), section 3: plain weight decay pulls every weight towards 0, a value that
means nothing for a pretrained network. L2-SP pulls the pretrained weights towards their *starting
point* w0 (their ImageNet values) and the new head's weights towards 0::

    penalty = alpha / 2 * ||w - w0||^2 (pretrained weights)  +  beta / 2 * ||w||^2 (the new head)

summed over the weights that train, and added to the loss of every batch (``loss`` and
``val_loss`` include it). The paper's usual choice is alpha = 0.1, beta = 0.01.

How it is attached, and why this way: each variable gets a Keras regularizer of its own
(``variable.regularizer``, which Keras sums into ``model.losses`` for the variables that are
trainable, so a frozen layer adds nothing), a :class:`StartingPoint` holding w0 as a
non-trainable variable, or ``keras.regularizers.L2(beta / 2)`` for the head. Nothing of it goes
into the layers' configs, so ``model.keras`` loads without this module and ``fit`` needs no
custom ``train_step``. A regularizer that saved w0 in its ``get_config`` would copy every
pretrained weight into the model's JSON; instead w0 is written once to the run folder
(:data:`REFERENCE_FILE`, by :func:`add_l2_sp`) and read back from there when a killed run
resumes, so the reference stays the weights the run started from, not those of its last backup.
"""
import pathlib

import keras
import numpy as np

from keras_tl.runs import atomic_path

REFERENCE_FILE = "l2_sp_reference.npz"  # w0, in the run folder (see reference_weights)


class StartingPoint(keras.regularizers.Regularizer):
    """``alpha / 2 * sum((w - w0)^2)``: the L2-SP term of one pretrained variable (w0: ``reference``)."""

    def __init__(self, alpha, reference):
        self.alpha = float(alpha)
        self.reference = keras.Variable(reference, trainable=False, name="l2_sp_reference")

    def __call__(self, weights):
        return self.alpha / 2 * keras.ops.sum(keras.ops.square(weights - self.reference))


def check_l2_sp(l2_sp):
    """``l2_sp`` as ``(alpha, beta)`` floats, or None; a ValueError unless two finite numbers >= 0."""
    if l2_sp is None:
        return None
    values = tuple(float(value) for value in l2_sp) if isinstance(l2_sp, (list, tuple)) else ()
    if len(values) != 2 or not all(np.isfinite(value) and value >= 0 for value in values):
        raise ValueError(f"l2_sp= must be two numbers >= 0, (alpha, beta); got {l2_sp!r}.")
    return values


def reference_weights(base, path=None):
    """w0 of every variable of ``base``, in the order of ``base.weights``: read from ``path`` when it
    exists, else the base's current values (written to ``path``, atomically, when given).

    The file's keys are ``"<position>:<variable path>"``; values are matched by position, so a base
    rebuilt with other automatic layer names (``dense_3`` for ``dense_1``) still finds its reference.
    """
    current = [keras.ops.convert_to_numpy(variable) for variable in base.weights]
    path = None if path is None else pathlib.Path(path)
    if path is None or not path.is_file():
        if path is not None:
            with atomic_path(path) as temporary, open(temporary, "wb") as handle:
                np.savez(handle, **{f"{index}:{variable.path}": value
                                    for index, (variable, value) in enumerate(zip(base.weights, current))})
        return current
    with np.load(path) as stored:
        reference = [stored[name] for name in sorted(stored.files, key=lambda name: int(name.split(":")[0]))]
    if [value.shape for value in reference] != [value.shape for value in current]:
        raise ValueError(f"The L2-SP reference weights in {path} are of another network than {base.name}; "
                         "delete that file or choose another run folder (run_dir=).")
    return reference


def add_l2_sp(model, base, alpha, beta, reference_path=None):
    """Attach L2-SP to ``model``: :class:`StartingPoint` (alpha) on every variable of ``base``, with w0
    from :func:`reference_weights`, and L2 (beta) on every other variable of ``model`` (the new head)."""
    reference = reference_weights(base, reference_path)
    pretrained = {id(variable) for variable in base.weights}
    for variable, start in zip(base.weights, reference):
        variable.regularizer = StartingPoint(alpha, start)
    for variable in model.weights:
        if id(variable) not in pretrained:
            variable.regularizer = keras.regularizers.L2(beta / 2)

