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
"""
import importlib
import importlib.abc
import importlib.util
import sys

from keras_tl import old_paths

__version__ = "0.2.0"

_PUBLIC = {
    "Source": "sources", "get_source": "sources", "layer_names": "sources", "feature_info": "sources",
    "feature_size": "sources", "SOURCES": "sources",
    "ImageDataset": "data", "ImageSet": "data", "load_dataset": "data", "make_pipeline": "data",
    "split_validation": "data", "training_pipelines": "data",
    "FullNetworkEmbedding": "features.full_network_embedding", "FNETransformer": "features.full_network_embedding",
    "postprocessor": "features.full_network_embedding",
    "FeatureExtractor": "features.extraction", "build_extractor": "features.extraction", "extract_features": "features.extraction",
    "make_classifier": "features.classifiers", "fit_evaluate": "features.classifiers", "few_shot": "features.classifiers",
    "evaluate_predictions": "features.classifiers", "predict_classes": "features.classifiers",
    "coral": "training.domain_adaptation", "GradientReversal": "training.domain_adaptation", "DANN": "training.domain_adaptation", "adaptation_strength": "training.domain_adaptation",
    "coral_loss": "training.domain_adaptation",
    "WordVectors": "word_vectors", "UnknownWordError": "word_vectors", "VectorFormatError": "word_vectors",
    "evaluation_file": "word_vectors", "read_analogy_questions": "word_vectors", "read_word_pairs": "word_vectors",
    "parse_analogy": "word_vectors", "cluster_words": "word_vectors", "project_words": "word_vectors",
    "frozen_embedding": "word_vectors.embedding_layer", "embedding_matrix": "word_vectors.embedding_layer",
    "freeze_all": "training.freezing", "unfreeze_all": "training.freezing", "set_trainable": "training.freezing", "freeze_up_to": "training.freezing",
    "unfreeze_top": "training.freezing",
    "unfreeze_blocks": "training.freezing", "freeze_batchnorm": "training.freezing", "trainable_report": "training.freezing",
    "parameter_counts": "training.freezing", "InferenceMode": "training.freezing",
    "make_optimizer": "training.optimizers", "layer_multipliers": "training.optimizers", "LayerwiseAdam": "training.optimizers",
    "LayerwiseSGD": "training.optimizers", "add_lora": "training.lora", "add_l2_sp": "training.l2_sp",
    "augmentation_layers": "data.augment", "mixup": "data.augment", "cutmix": "data.augment", "mix_batches": "data.augment",
    "make_strategy": "distribute", "global_batch_size": "distribute",
    "fine_tune_model": "training.recipe", "Recipe": "training.recipe", "build_classifier": "training.recipe", "compile_stage": "training.recipe",
    "fit_stage": "training.resumable_fit",
    "plot_confusion_matrix": "plots", "plot_few_shot": "plots", "plot_learning_curves": "plots",
    "plot_distance_matrix": "plots", "plot_word_map": "plots", "plot_grad_cam": "plots", "plot_layers": "plots",
    "plot_tradeoff": "plots", "plot_depth": "plots",
    "load_run": "analysis.trained", "TrainedModel": "analysis.trained", "grad_cam": "analysis.gradcam", "fne_model": "analysis.export",
    "Interpretation": "analysis.interpret", "tta_model": "analysis.tta",
    "plot_filters": "analysis.visualize", "plot_feature_maps": "analysis.visualize", "top_images": "analysis.visualize",
    "plot_top_images": "analysis.visualize", "maximize_activation": "analysis.visualize", "maximize_channels": "analysis.visualize",
    "plot_maximized": "analysis.visualize", "plot_feature_in_context": "analysis.visualize",
    "logme": "features.transferability", "h_score": "features.transferability", "leep": "features.transferability", "nce": "features.transferability",
    "lr_find": "training.lr_finder", "plot_lr_find": "training.lr_finder", "check": "analysis.setup_check",
}
_RENAMED = {"fine_tune": "fine_tune_model"}  # old public names whose name now belongs to a command's module
_CUSTOM_OBJECT_MODULES = ("features.full_network_embedding", "training.freezing", "training.optimizers",
                          "training.domain_adaptation", "training.schedules")

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
