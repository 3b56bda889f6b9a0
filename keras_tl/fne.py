"""``python -m keras_tl.fne``: single layers against the Full-Network Embedding, each with a linear SVM.

The job is :mod:`keras_tl.jobs.fne`; the FNE itself is :mod:`keras_tl.features.full_network_embedding` and
the extraction :class:`keras_tl.features.extraction.FeatureExtractor`.
This module only starts the job.
"""
if __name__ == "__main__":
    from keras_tl.jobs import cli

    raise SystemExit(cli.main("fne"))
