"""``python -m keras_tl.fine_tune`` runs the fine-tuning job, :mod:`keras_tl.jobs.fine_tune`.

The recipe itself is the library function ``keras_tl.fine_tune`` (:func:`keras_tl.recipe.fine_tune`).
This module only starts the job; importing it keeps ``keras_tl.fine_tune`` callable, because
Python would otherwise replace the package's function by this module.
"""
import sys
import types

if __name__ == "__main__":
    from keras_tl.jobs import cli

    sys.exit(cli.main("fine_tune"))


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        from keras_tl.recipe import fine_tune

        return fine_tune(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
