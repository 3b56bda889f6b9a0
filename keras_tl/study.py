"""``python -m keras_tl.study {layers,fne,tradeoff}`` runs a study, :mod:`keras_tl.jobs.study`.

The experiments themselves are library functions in :mod:`keras_tl.studies`.
"""
if __name__ == "__main__":
    import sys

    from keras_tl.jobs import cli

    sys.exit(cli.main("study"))
