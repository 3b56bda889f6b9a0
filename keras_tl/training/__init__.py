"""Fine-tuning: the two-stage recipe over its primitives, and the methods it can use.

- :mod:`~keras_tl.training.recipe`: ``fine_tune_model``, the sensible two-stage recipe (a new head on
  the frozen network, then part of it unfrozen at a lower rate), every step callable by hand;
- :mod:`~keras_tl.training.resumable_fit`: one stage of training that a killed run resumes;
- :mod:`~keras_tl.training.still_improving`: the warning when a stage ends with its validation loss
  still falling (a Keras callback);
- :mod:`~keras_tl.training.freezing`: what trains (freezing by layer, count or block; BatchNorm in
  inference mode);
- :mod:`~keras_tl.training.optimizers` and :mod:`~keras_tl.training.schedules`: layer-wise learning
  rates, one-cycle and cosine schedules; :mod:`~keras_tl.training.lr_finder`: the learning-rate finder;
- :mod:`~keras_tl.training.lora` and :mod:`~keras_tl.training.l2_sp`: LoRA and the L2-SP regulariser;
- :mod:`~keras_tl.training.domain_adaptation`: CORAL, Deep CORAL and DANN;
- :mod:`~keras_tl.training.calibration`: the expected calibration error, reliability diagrams,
  temperature and Platt scaling.

Its modules import Keras, so this file imports none of them: ``python -m keras_tl.<job> --help``
reads their constants without loading TensorFlow.
"""
