"""The module paths of keras_tl 0.1, kept for one release: ``import keras_tl.extract`` (and the other
modules that moved into subpackages in 0.2, see ``CHANGELOG.md``) still works, with a
``DeprecationWarning`` that names the new path; so does ``keras_tl.experiments.layer_study`` (the
names the one-file ``experiments`` module held, now in one module per study). The old paths go in 0.3.

Saved models and run folders need none of this: Keras finds keras_tl's layers and optimizers by
their registered names (``keras_tl>FullNetworkEmbedding``), not by module path.
"""
import importlib
import importlib.abc
import importlib.machinery
import warnings

MOVED = {  # old module -> the modules that now hold its names (looked up in this order)
    "keras_tl.analogy_search": ("keras_tl.word_vectors.analogy_search",),
    "keras_tl.augment": ("keras_tl.data.augment",),
    "keras_tl.classify": ("keras_tl.features.classifiers",),
    "keras_tl.course_datasets": ("keras_tl.data.course_datasets",),
    "keras_tl.domain": ("keras_tl.training.domain_adaptation",),
    "keras_tl.downloads": ("keras_tl.data.downloads",),
    "keras_tl.embedding_layer": ("keras_tl.word_vectors.embedding_layer",),
    "keras_tl.engines": ("keras_tl.features.engines",),
    "keras_tl.extract": ("keras_tl.features.extraction", "keras_tl.features.cache", "keras_tl.data.crops"),
    "keras_tl.freezing": ("keras_tl.training.freezing",),
    "keras_tl.full_network_embedding": ("keras_tl.features.full_network_embedding",),
    "keras_tl.gradcam": ("keras_tl.analysis.gradcam",),
    "keras_tl.interpret": ("keras_tl.analysis.interpret",),
    "keras_tl.l2_sp": ("keras_tl.training.l2_sp",),
    "keras_tl.lora": ("keras_tl.training.lora",),
    "keras_tl.lr_finder": ("keras_tl.training.lr_finder",),
    "keras_tl.optimizers": ("keras_tl.training.optimizers",),
    "keras_tl.recipe": ("keras_tl.training.recipe",),
    "keras_tl.resumable_fit": ("keras_tl.training.resumable_fit",),
    "keras_tl.schedules": ("keras_tl.training.schedules",),
    "keras_tl.setup_check": ("keras_tl.analysis.setup_check",),
    "keras_tl.test_time_augmentation": ("keras_tl.analysis.tta",),
    "keras_tl.tfds_datasets": ("keras_tl.data.tfds_datasets",),
    "keras_tl.trained": ("keras_tl.analysis.trained",),
    "keras_tl.transferability": ("keras_tl.features.transferability",),
    "keras_tl.visualize": ("keras_tl.analysis.visualize",),
}

_STUDY_NAMES = {  # module of keras_tl.experiments -> the names keras_tl.experiments held in 0.1
    "common": ("Pool", "pool_features", "extracted_pool", "split_pool", "GlobalDiscretizer",
               "ABLATION_STEPS", "svm_accuracy", "study_layers"),
    "single_layers": ("layer_study",),
    "fne_ablation": ("FNE_METHODS", "ABLATION", "CURVE_METHODS", "fne_study"),
    "tradeoff": ("WATTS_PER_CPU_CORE", "TRADEOFF_METHODS", "TRADEOFF_L2_SP", "CostMeter", "tradeoff_run"),
    "fne_paper": ("PAPER_RESULTS", "PAPER_ALIASES", "PAPER_COLUMNS", "PAPER_SETTING", "paper_key", "paper_runs",
                  "paper_extractor", "paper_baselines", "paper_study", "paper_setting_differences", "paper_verdict"),
    "transfer_depth": ("DEPTH_METHODS", "depth_cuts", "depth_model", "depth_run", "depth_verdicts"),
    "source_selection": ("FEATURE_SCORES", "PREDICTION_SCORES", "FNE_CANDIDATE", "source_probabilities",
                         "select_study", "tau_verdict", "SELECT_NOTES"),
    "head_choice": ("HEAD_FEATURES", "HEAD_BASELINE", "head_fit", "heads_study", "head_gain", "gain_verdict",
                    "heads_verdicts"),
}
MOVED_NAMES = {  # package -> {0.1 name: (the module that holds it now, its name there)}
    "keras_tl.experiments": {
        **{name: (f"keras_tl.experiments.{module}", name) for module, names in _STUDY_NAMES.items() for name in names},
        "OFFLINE_TARGETS": ("keras_tl.data.registry", "NAMED_DATASETS"),
        "available_targets": ("keras_tl.experiments.common", "available_datasets"),
        "summary": ("keras_tl.features.classifiers", "mean_std"),
    },
}


def moved_name(package, name):
    """``package.name`` as keras_tl 0.1 had it, from its new home, with a ``DeprecationWarning`` naming it;
    the ``AttributeError`` of a name that never was there."""
    if name not in MOVED_NAMES.get(package, {}):
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    module, new_name = MOVED_NAMES[package][name]
    warnings.warn(f"{package}.{name} moved to {module}.{new_name} in keras_tl 0.2; import it from there "
                  f"(the old path goes in 0.3).", DeprecationWarning, stacklevel=3)
    return getattr(importlib.import_module(module), new_name)


class OldPaths(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old path as a module that warns once, then hands out the names of its new homes."""

    def find_spec(self, name, path=None, target=None):
        return importlib.machinery.ModuleSpec(name, self) if name in MOVED else None

    def create_module(self, spec):
        return None  # the default module object

    def exec_module(self, module):
        homes = MOVED[module.__name__]
        warnings.warn(f"{module.__name__} moved to {homes[0]} in keras_tl 0.2; import it from there "
                      f"(the old path goes in 0.3).", DeprecationWarning, stacklevel=2)

        def __getattr__(name):
            for home in homes:
                found = importlib.import_module(home)
                if hasattr(found, name):
                    return getattr(found, name)
            raise AttributeError(f"{module.__name__} (now {', '.join(homes)}) has no attribute {name!r}")

        def __dir__():
            return sorted({name for home in homes for name in dir(importlib.import_module(home))})

        module.__getattr__, module.__dir__ = __getattr__, __dir__
