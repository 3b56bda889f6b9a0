"""``python -m keras_tl.demo RUN_DIR``: a web page on 127.0.0.1 that classifies uploaded images with a finished run.

The job is :mod:`keras_tl.jobs.demo`; in a notebook use :func:`keras_tl.analysis.demo_app.build_demo`.
This module only starts the job.
"""
if __name__ == "__main__":
    from keras_tl.jobs import cli

    raise SystemExit(cli.main("demo"))
