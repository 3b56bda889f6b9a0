"""The package's architecture, read from its imports: no cycles, no private names across its parts,
the public names of 0.1 unchanged, the moved modules' old paths still working, and 0.1's run folders
still loading."""
import ast
import importlib
import pathlib
import subprocess
import sys
import warnings

import numpy as np
import pytest

import keras_tl
from keras_tl import old_paths

PACKAGE = pathlib.Path(keras_tl.__file__).parent
FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "runs_0.1.0"
PUBLIC_NAMES_0_1 = [  # keras_tl.NAME in 0.1.0
    "DANN", "FNETransformer", "FeatureExtractor", "FullNetworkEmbedding", "GradientReversal", "ImageDataset",
    "ImageSet", "InferenceMode", "Interpretation", "LayerwiseAdam", "LayerwiseSGD", "Recipe", "SOURCES", "Source",
    "TrainedModel", "UnknownWordError", "VectorFormatError", "WordVectors", "adaptation_strength", "add_l2_sp",
    "add_lora", "augmentation_layers", "build_classifier", "build_extractor", "check", "cluster_words",
    "compile_stage", "coral", "coral_loss", "cutmix", "embedding_matrix", "evaluate_predictions",
    "evaluation_file", "extract_features", "feature_info", "feature_size", "few_shot", "fine_tune_model",
    "fit_evaluate", "fit_stage", "fne_model", "freeze_all", "freeze_batchnorm", "freeze_up_to", "frozen_embedding",
    "get_source", "global_batch_size", "grad_cam", "h_score", "layer_multipliers", "layer_names", "leep",
    "load_dataset", "load_run", "logme", "lr_find", "make_classifier", "make_optimizer", "make_pipeline",
    "make_strategy", "maximize_activation", "maximize_channels", "mix_batches", "mixup", "nce", "parameter_counts",
    "parse_analogy", "plot_confusion_matrix", "plot_depth", "plot_distance_matrix", "plot_feature_in_context",
    "plot_feature_maps", "plot_few_shot", "plot_filters", "plot_grad_cam", "plot_layers", "plot_learning_curves",
    "plot_lr_find", "plot_maximized", "plot_top_images", "plot_tradeoff", "plot_word_map", "postprocessor",
    "predict_classes", "project_words", "read_analogy_questions", "read_word_pairs", "set_trainable",
    "split_validation", "top_images", "trainable_report", "training_pipelines", "tta_model", "unfreeze_all",
    "unfreeze_blocks", "unfreeze_top",
]


def module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def part_of(module):
    """The part a module belongs to: its subpackage (``data``), or itself for a top-level module."""
    return module.split(".")[1] if module.count(".") else module


def imported_names(path):
    """``(module, name)`` of every ``from keras_tl... import name`` in ``path`` (name None for ``import x``);
    ``module`` is the imported submodule where ``name`` is one."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names if alias.name.startswith("keras_tl")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("keras_tl"):
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.append((submodule, None) if submodule in MODULES else (node.module, alias.name))
    return found


def import_graph():
    return {module: {imported for imported, _ in imported_names(path) if imported in MODULES}
             for module, path in MODULES.items()}


def find_cycle(graph):
    """One import cycle of ``graph`` as a list of modules (first == last), or None."""
    state = {}

    def visit(module, stack):
        state[module] = "open"
        stack.append(module)
        for imported in sorted(graph[module]):
            if state.get(imported) == "open":
                return stack[stack.index(imported):] + [imported]
            if imported not in state and (cycle := visit(imported, stack)):
                return cycle
        stack.pop()
        state[module] = "done"
        return None

    return next((cycle for module in sorted(graph) if module not in state and (cycle := visit(module, []))), None)


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 50 and "keras_tl.data.registry" in graph["keras_tl.data"]
    assert find_cycle(graph) is None
    # ...and the search does find one where there is one
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]


def test_the_parts_import_each_other_one_way():
    """Subpackages and shared modules, taken whole, import each other without a cycle either
    (entry modules and their ``__main__`` only start jobs, so they are left out)."""
    graph = {}
    for module, imported in import_graph().items():
        if module.endswith("__main__"):
            continue
        graph.setdefault(part_of(module), set()).update(part_of(other) for other in imported
                                                         if part_of(other) != part_of(module))
    assert {"data", "features", "training", "analysis", "word_vectors", "experiments", "jobs"} <= set(graph)
    assert find_cycle(graph) is None


def test_no_private_name_crosses_a_part():
    crossing = []
    for module, path in MODULES.items():
        aliases = {}
        for imported, name in imported_names(path):
            if name and name.startswith("_") and part_of(imported) != part_of(module):
                crossing.append(f"{module} imports {imported}.{name}")
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("keras_tl"):
                for alias in node.names:
                    if f"{node.module}.{alias.name}" in MODULES:
                        aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        crossing += [f"{module} uses {aliases[node.value.id]}.{node.attr}" for node in ast.walk(tree)
                     if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                     and node.value.id in aliases and node.attr.startswith("_") and not node.attr.startswith("__")
                     and part_of(aliases[node.value.id]) != part_of(module)]
    assert crossing == []


def test_a_reader_never_imports_the_registry_above_it():
    readers = [module for module in MODULES
               if module.startswith("keras_tl.data.") and module != "keras_tl.data.registry"]
    assert "keras_tl.data.folders" in readers
    offenders = {module: imported for module in readers for imported, _ in imported_names(MODULES[module])
                  if imported in ("keras_tl.data", "keras_tl.data.registry")}
    assert offenders == {}


def test_the_named_datasets_are_the_registry_s_readers_by_name():
    """NAMED_DATASETS is a literal (the jobs read it from source for --help); it names the registry's readers."""
    from keras_tl.data import registry

    assert registry.NAMED_DATASETS == tuple(reader.name for reader in registry.BY_SPEC
                                            if ":" not in reader.name and reader is not registry.TABLE)


def test_the_public_names_of_0_1_are_all_there():
    assert set(PUBLIC_NAMES_0_1) <= set(keras_tl.__all__)  # new names may come; none of 0.1's goes
    code = ("import keras_tl, sys\n"
            "missing = [name for name in keras_tl.__all__ if getattr(keras_tl, name, None) is None]\n"
            "print(missing)")
    finished = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert finished.stdout.strip() == "[]"


@pytest.mark.parametrize("old", sorted(old_paths.MOVED))
def test_an_old_module_path_imports_with_a_warning_naming_the_new_one(old):
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=f"{old} moved to {old_paths.MOVED[old][0]}"):
        module = importlib.import_module(old)
    public = [name for home in old_paths.MOVED[old] for name in dir(importlib.import_module(home))
              if not name.startswith("_")]
    assert public and all(getattr(module, name) is not None for name in public)
    assert not (PACKAGE / (old.rpartition(".")[2] + ".py")).exists()  # nothing is kept at the old place


@pytest.mark.parametrize("package, name", [(package, name) for package, names in sorted(old_paths.MOVED_NAMES.items())
                                           for name in sorted(names)])
def test_a_name_that_left_its_package_still_reads_with_a_warning(package, name):
    module, new_name = old_paths.MOVED_NAMES[package][name]
    with pytest.warns(DeprecationWarning, match=f"{package}.{name} moved to {module}.{new_name}"):
        value = getattr(importlib.import_module(package), name)
    assert value is getattr(importlib.import_module(module), new_name)


def test_an_old_path_names_a_missing_attribute():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from keras_tl import extract
    with pytest.raises(AttributeError, match="keras_tl.extract .*has no attribute 'no_such_name'"):
        extract.no_such_name  # noqa: B018
    assert extract.FeatureExtractor is importlib.import_module("keras_tl.features.extraction").FeatureExtractor
    with pytest.raises(AttributeError, match="'keras_tl.experiments' has no attribute 'no_such_study'"):
        importlib.import_module("keras_tl.experiments").no_such_study  # noqa: B018


@pytest.mark.parametrize("kind", ["fne", "fine_tune"])
def test_a_run_folder_written_by_0_1_loads_and_predicts(kind):
    """The folders under tests/fixtures/runs_0.1.0 were written by keras_tl 0.1.0 (commit 753182f): their
    ``model.keras`` names the old modules (``keras_tl.full_network_embedding``, ``keras_tl.freezing``...)."""
    config = (FIXTURES / kind / "model.keras").read_bytes()
    assert b"keras_tl." in config
    trained = keras_tl.load_run(FIXTURES / kind)
    assert trained.classes == ["cat", "dog", "cow"] and trained.image_size == 32
    images = np.load(FIXTURES / "images.npy")
    expected = np.load(FIXTURES / f"{kind}_scores.npy")
    np.testing.assert_allclose(trained.predict(images), expected, rtol=1e-4, atol=1e-5)
