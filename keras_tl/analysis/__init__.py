"""Trained runs: load them, predict with them, see what they learnt and where they fail.

- :mod:`~keras_tl.analysis.trained`: ``load_run``, a finished ``fine_tune`` or ``fne`` run folder
  as a ``TrainedModel`` that predicts on new images;
- :mod:`~keras_tl.analysis.export`: an fne run's network, pooling, post-processing and linear head
  as one ``.keras`` model;
- :mod:`~keras_tl.analysis.tta`: test-time augmentation (flip, ten crops);
- :mod:`~keras_tl.analysis.interpret`: ``Interpretation``, the images a run gets wrong (fastai's
  ``ClassificationInterpretation``);
- :mod:`~keras_tl.analysis.gradcam`: Grad-CAM, where a fine-tuned network looked;
- :mod:`~keras_tl.analysis.visualize`: filters, feature maps, top images and gradient ascent;
- :mod:`~keras_tl.analysis.setup_check`: ``check``, the classic transfer-learning mistakes found
  before training;
- :mod:`~keras_tl.analysis.batches`: ``show_batch`` and ``show_results``, a pipeline's images with
  their labels, and a run's answers on test images.

Most of its modules import Keras, scikit-learn or matplotlib at the top, so this file imports none
of them: ``python -m keras_tl.<job> --help`` reads their constants without loading TensorFlow.
"""
