"""``python -m keras_tl.fine_tune``: fine-tune an ImageNet network on a new image task.

The job is :mod:`keras_tl.jobs.fine_tune`. In a notebook the same recipe is one call,
:func:`keras_tl.fine_tune_model` (:mod:`keras_tl.training.recipe`).
This module only starts the job.
"""
if __name__ == "__main__":
    from keras_tl.jobs import cli

    raise SystemExit(cli.main("fine_tune"))
