"""keras_tl: transfer learning with Keras 3.

Reuse ImageNet-trained CNNs on small datasets ("don't be a hero": never train from scratch):
feature extraction with the Full-Network Embedding (``python -m keras_tl.fne``), fine-tuning
(``python -m keras_tl.fine_tune``) and word embeddings (``python -m keras_tl.word_embeddings``).

The public names below are imported on first use, so ``import keras_tl`` stays fast and the
word-embedding tools never load TensorFlow.
"""
import importlib

__version__ = "0.1.0"

_PUBLIC = {
    "Source": "sources", "get_source": "sources", "layer_names": "sources", "feature_info": "sources",
    "feature_size": "sources", "SOURCES": "sources",
    "import_mobilenet_weights": "offline_weights",
    "ImageDataset": "data", "ImageSet": "data", "load_dataset": "data", "make_pipeline": "data",
    "split_validation": "data",
    "FullNetworkEmbedding": "fne", "FNETransformer": "fne", "build_extractor": "fne", "extract_features": "fne",
    "make_classifier": "classify", "fit_evaluate": "classify", "few_shot": "classify",
    "WordVectors": "word_vectors", "UnknownWordError": "word_vectors", "VectorFormatError": "word_vectors",
    "evaluation_file": "word_vectors", "read_analogy_questions": "word_vectors", "read_word_pairs": "word_vectors",
    "parse_analogy": "word_vectors", "cluster_words": "word_vectors", "project_words": "word_vectors",
    "frozen_embedding": "embedding_layer", "embedding_matrix": "embedding_layer",
    "evaluate_predictions": "classify",
    "freeze_all": "freezing", "unfreeze_all": "freezing", "freeze_up_to": "freezing", "unfreeze_top": "freezing",
    "unfreeze_blocks": "freezing", "freeze_batchnorm": "freezing", "trainable_report": "freezing",
    "parameter_counts": "freezing", "InferenceMode": "freezing",
    "make_optimizer": "optimizers", "layer_multipliers": "optimizers", "LayerwiseAdam": "optimizers",
    "LayerwiseSGD": "optimizers", "add_lora": "lora",
    "augmentation_layers": "augment", "mixup": "augment", "cutmix": "augment", "mix_batches": "augment",
    "make_strategy": "distribute", "global_batch_size": "distribute",
    "build_classifier": "fine_tune", "fit_stage": "fine_tune",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name in _PUBLIC:
        return getattr(importlib.import_module(f"keras_tl.{_PUBLIC[name]}"), name)
    raise AttributeError(f"module 'keras_tl' has no attribute {name!r}")
