"""``python -m keras_tl.word_embeddings``: the job is :mod:`keras_tl.jobs.word_embeddings`."""
if __name__ == "__main__":
    import sys
    from keras_tl.jobs import cli
    sys.exit(cli.main("word_embeddings", tensorflow=False))
