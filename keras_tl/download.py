"""``python -m keras_tl.download NAME DIR``: a course dataset's published files, checked, in the layout NAME:DIR reads.

The job is :mod:`keras_tl.jobs.download`; the files and checks are :mod:`keras_tl.data.downloads`.
This module only starts the job.
"""
if __name__ == "__main__":
    from keras_tl.jobs import cli

    raise SystemExit(cli.main("download"))
