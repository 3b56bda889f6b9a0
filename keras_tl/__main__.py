"""``python -m keras_tl``: the jobs, one line each (``python -m keras_tl.<job> --help`` for one)."""
from keras_tl.jobs import cli

raise SystemExit(cli.list_jobs())
