"""``python -m keras_tl.predict RUN_DIR IMAGE_OR_FOLDER...`` runs the prediction job, :mod:`keras_tl.jobs.predict`.

In a notebook, use :func:`keras_tl.load_run` (:mod:`keras_tl.trained`) instead.
"""
if __name__ == "__main__":
    import sys

    from keras_tl.jobs import cli

    sys.exit(cli.main("predict"))
