"""``python -m keras_tl.word_embeddings``: neighbours, analogies, clusters and scores of word vectors.

The job is :mod:`keras_tl.jobs.word_embeddings`; the vectors are :class:`keras_tl.word_vectors.WordVectors`.
This module only starts the job.
"""
if __name__ == "__main__":
    from keras_tl.jobs import cli

    raise SystemExit(cli.main("word_embeddings"))
