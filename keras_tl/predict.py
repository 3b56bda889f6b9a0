"""``python -m keras_tl.predict RUN_DIR IMAGE_OR_FOLDER...``: a finished run on new images.

The job is :mod:`keras_tl.jobs.predict`; in a notebook use :func:`keras_tl.load_run` (:mod:`keras_tl.analysis.trained`).
This module only starts the job.
"""
if __name__ == "__main__":
    from keras_tl.jobs import cli

    raise SystemExit(cli.main("predict"))
