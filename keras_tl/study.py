"""``python -m keras_tl.study STUDY``: the course's claims, measured as mean ± std.

The job is :mod:`keras_tl.jobs.study`; the studies are :mod:`keras_tl.experiments` (listed in its ``STUDIES``).
This module only starts the job.
"""
if __name__ == "__main__":
    from keras_tl.jobs import cli

    raise SystemExit(cli.main("study"))
