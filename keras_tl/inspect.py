"""``python -m keras_tl.inspect [SOURCE_OR_RUN]``: what a network sees (filters, maps, top images, maximised channels).

The job is :mod:`keras_tl.jobs.inspect`; in a notebook use :mod:`keras_tl.analysis.visualize`.
This module only starts the job.
"""
if __name__ == "__main__":
    from keras_tl.jobs import cli

    raise SystemExit(cli.main("inspect"))
