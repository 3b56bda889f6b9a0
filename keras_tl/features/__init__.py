"""Features of a pretrained network, and what is learnt and measured on them.

- :mod:`~keras_tl.features.extraction`: ``FeatureExtractor``, the pooled features of many layers in
  one pass (the one way the toolkit extracts them), on one device, several, or in parts;
- :mod:`~keras_tl.features.cache`: the locked, sharded, resumable disk cache of those features;
- :mod:`~keras_tl.features.engines`: OpenVINO or ONNX Runtime, to run the network faster on a CPU;
- :mod:`~keras_tl.features.full_network_embedding`: the Full-Network Embedding's post-processing
  (standardise, discretise) as a Keras layer and as a scikit-learn transformer;
- :mod:`~keras_tl.features.classifiers`: the heads on features (a linear SVM and the others) and
  the few-shot curves;
- :mod:`~keras_tl.features.transferability`: LogME, H-score, LEEP and NCE, to choose a source
  before training on it.

Most of its modules import Keras or scikit-learn at the top, so this file imports none of them:
``python -m keras_tl.<job> --help`` reads their constants without loading TensorFlow.
"""
