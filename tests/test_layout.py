"""The layout: entry points apart from the library, one home per concept, a true map;
custom objects registered on import; no forced matplotlib backend; TensorFlow's start-up lines hidden."""
import ast
import importlib
import json
import pathlib
import re
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_tl
from keras_tl.features import full_network_embedding as fne
from keras_tl.jobs import cli
from keras_tl.training import recipe

PACKAGE = pathlib.Path(keras_tl.__file__).parent
ROOT = PACKAGE.parent
# entry module -> the job it starts: `python -m keras_tl.<entry>`
ENTRY_MODULES = {"fne.py": "fne", "fine_tune.py": "fine_tune", "word_embeddings.py": "word_embeddings",
                 "predict.py": "predict", "study.py": "study", "offline/__main__.py": "offline",
                 "inspect.py": "inspect", "download.py": "download", "demo.py": "demo",
                 "export.py": "export"}


def _is_main_guard(node):
    return (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__")


def _imports_outside_main_guard(tree):
    """Every module name imported by ``tree``, except inside ``if __name__ == "__main__":`` blocks."""
    names, pending = [], list(tree.body)
    while pending:
        node = pending.pop()
        if _is_main_guard(node):
            continue
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        pending += list(ast.iter_child_nodes(node))
    return names


def _modules():
    return sorted(str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py"))


def test_no_library_module_imports_a_job():
    library = [name for name in _modules() if not name.startswith("jobs/") and name not in ENTRY_MODULES
               and not name.endswith("__main__.py")]
    assert len(library) > 10
    offenders = {name: imported for name in library
                 for imported in _imports_outside_main_guard(ast.parse((PACKAGE / name).read_text()))
                 if imported.startswith("keras_tl.jobs")}
    assert offenders == {}
    # ...and the walk does see imports: the jobs import the library.
    job = ast.parse((PACKAGE / "jobs" / "fne.py").read_text())
    assert "keras_tl.features.full_network_embedding" in _imports_outside_main_guard(job)


@pytest.mark.parametrize("entry, job", sorted(ENTRY_MODULES.items()))
def test_each_entry_module_only_starts_its_job(entry, job):
    tree = ast.parse((PACKAGE / entry).read_text())
    body = [node for node in tree.body if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))]
    assert len(body) <= 2, f"{entry} holds more than the start of its job"
    assert f"cli.main('{job}')" in ast.unparse(tree)
    assert job in cli.JOBS


def test_no_other_module_has_a_main_guard_or_swaps_its_module_class():
    guarded = [name for name in _modules() if any(_is_main_guard(node)
                                                  for node in ast.parse((PACKAGE / name).read_text()).body)]
    assert sorted(guarded) == sorted(name for name in ENTRY_MODULES if not name.endswith("__main__.py"))
    swapped = [name for name in _modules() if "ModuleType" in (PACKAGE / name).read_text()]
    assert swapped == []


def test_python_m_keras_tl_lists_the_jobs_and_each_job_answers_help():
    listing = subprocess.run([sys.executable, "-m", "keras_tl"], capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0 and set(cli.JOBS) <= set(re.findall(r"^  (\w+)  ", listing.stdout, re.M))
    for job in cli.JOBS:
        module = importlib.import_module(f"keras_tl.jobs.{job}")
        text = module.make_parser().format_help()
        assert f"python -m keras_tl.{job}" in text


def test_one_object_builds_every_extraction_and_one_function_keys_the_cache():
    """FeatureExtractor is the one way in: nothing outside keras_tl/features/extraction.py calls the primitives."""
    callers = {}
    for path in [*PACKAGE.rglob("*.py"), *(ROOT / "labs").glob("*.py"), *(ROOT / "bench").glob("*.py")]:
        text = path.read_text()
        extraction = PACKAGE / "features" / "extraction.py"
        if path != extraction and re.search(r"\b(build_extractor|extract_features)\(", text):
            callers[str(path.relative_to(ROOT))] = True
    assert callers == {}
    definitions = [str(path.relative_to(ROOT)) for path in PACKAGE.rglob("*.py")
                   if re.search(r"def cache_key\(", path.read_text())]
    assert definitions == ["keras_tl/features/extraction.py"]


def test_docs_layout_lists_every_module_and_readme_every_job():
    """docs/layout.md lists every module as `keras_tl/<path>` (keras_tl/__init__.py too; not the __main__.py
    files, nor the subpackages' __init__.py, which are listed as `keras_tl/<subpackage>/`) and names none
    that does not exist; the README shows every job as `python -m keras_tl.<job>`."""
    layout = (ROOT / "docs" / "layout.md").read_text()
    modules = set(_modules())
    expected = {name for name in modules if not name.endswith(("__main__.py", "/__init__.py"))}
    missing = sorted(expected - set(re.findall(r"`keras_tl/([\w/]+\.py)`", layout)))
    assert missing == [], f"docs/layout.md lacks {missing}"
    subpackages = {str(path.parent.relative_to(PACKAGE)) for path in PACKAGE.glob("*/__init__.py")}
    assert sorted(subpackages - set(re.findall(r"`keras_tl/(\w+)/`", layout))) == []
    named = set(re.findall(r"keras_tl/([\w/]+\.py)", layout))
    assert not named - modules, f"docs/layout.md names modules that do not exist: {sorted(named - modules)}"
    readme = (ROOT / "README.md").read_text()
    assert [job for job in cli.JOBS if not re.search(rf"python -m keras_tl\.{job}\b", readme)] == []


def test_library_errors_name_parameters_and_jobs_show_their_flags():
    flagged = {str(path.relative_to(PACKAGE)): line.strip() for path in PACKAGE.rglob("*.py")
               if "jobs" not in path.parts and str(path.relative_to(PACKAGE)) not in ENTRY_MODULES
               for line in path.read_text().splitlines()
               if re.search(r"(Error|warn)\(.*[\"' (]--[a-z]", line)}
    assert flagged == {}
    from keras_tl.jobs import fine_tune

    message = cli.flags_in_message("unfreeze='x' is wrong; use image_size=32 (learning_rate=) or depth=3.",
                                   fine_tune.make_parser())
    assert message == "--unfreeze 'x' is wrong; use --image-size 32 (--learning-rate) or depth=3."


def test_the_public_api_is_listed_and_the_renamed_recipe_says_its_new_name():
    listing = dir(keras_tl)
    for name in ("fine_tune_model", "FeatureExtractor", "FNETransformer", "FullNetworkEmbedding", "load_dataset",
                 "plot_confusion_matrix"):
        assert name in listing
    assert callable(keras_tl.fine_tune_model) and keras_tl.Recipe is recipe.Recipe
    # keras_tl.fine_tune(...) moved: the name is the command's module (python -m keras_tl.fine_tune) alone now
    if "keras_tl.fine_tune" not in sys.modules:
        with pytest.raises(AttributeError, match="now keras_tl.fine_tune_model"):
            keras_tl.fine_tune  # noqa: B018
    assert not callable(importlib.import_module("keras_tl.fine_tune"))


@pytest.mark.parametrize("order", ["import keras_tl, keras", "import keras, keras_tl",
                                   "import keras_tl; from keras_tl import tf_logs; tf_logs.import_tensorflow_quietly(); "
                                   "import keras",
                                   # a custom-object module first: Keras's hook imports the others while it loads
                                   "import keras_tl.training.freezing, keras"])
def test_custom_objects_are_registered_whatever_the_import_order(order):
    code = f"{order}\nassert keras.saving.get_registered_object('keras_tl>FullNetworkEmbedding') is not None"
    finished = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr[-2000:]


def test_saved_models_load_in_a_fresh_process_after_import_keras_tl(tmp_path):
    keras.utils.set_random_seed(0)
    base = keras.applications.MobileNet(weights=None, include_top=False, input_shape=(32, 32, 3), alpha=0.25)
    tuned = recipe.build_classifier(base, 3)
    tuned.compile(optimizer=keras_tl.make_optimizer("adam", 1e-3, keras_tl.layer_multipliers(tuned, {"conv1": 0.1})),
                  loss="categorical_crossentropy")
    images = np.random.default_rng(0).uniform(-1, 1, (4, 32, 32, 3)).astype("float32")
    tuned.fit(images, np.eye(3)[[0, 1, 2, 0]], epochs=1, verbose=0)
    tuned.save(tmp_path / "tuned.keras")
    features = np.random.default_rng(1).normal(size=(20, 6)).astype("float32")
    layer = fne.FullNetworkEmbedding()
    layer.adapt(features)
    embedding = keras.Sequential([keras.Input((6,)), layer])
    embedding.save(tmp_path / "fne.keras")
    np.save(tmp_path / "images.npy", images)
    np.save(tmp_path / "features.npy", features)
    np.save(tmp_path / "expected_tuned.npy", tuned.predict(images, verbose=0))
    np.save(tmp_path / "expected_fne.npy", embedding.predict(features, verbose=0))
    code = (f"import keras_tl, keras, numpy as np, pathlib\n"
            f"folder = pathlib.Path({str(tmp_path)!r})\n"
            f"tuned = keras.models.load_model(folder / 'tuned.keras')\n"
            f"embedding = keras.models.load_model(folder / 'fne.keras')\n"
            f"assert type(tuned.optimizer).__name__ == 'LayerwiseAdam', type(tuned.optimizer)\n"
            f"np.testing.assert_allclose(tuned.predict(np.load(folder / 'images.npy'), verbose=0),"
            f" np.load(folder / 'expected_tuned.npy'), atol=1e-5)\n"
            f"np.testing.assert_array_equal(embedding.predict(np.load(folder / 'features.npy'), verbose=0),"
            f" np.load(folder / 'expected_fne.npy'))\n"
            f"print('loaded')\n")
    finished = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert "loaded" in finished.stdout


def test_importing_the_toolkit_forces_no_matplotlib_backend():
    code = "import keras_tl.plots, matplotlib; print(matplotlib.get_backend())"
    finished = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                              env={**_environment(), "MPLBACKEND": "svg"})
    assert finished.stdout.strip() == "svg", finished.stderr[-1000:]


def test_tensorflow_start_up_lines_are_hidden_by_default():
    code = "from keras_tl import tf_logs; tf = tf_logs.import_tensorflow_quietly(); print(tf.constant(2).numpy() * 2)"
    environment = {key: value for key, value in _environment().items()
                   if key not in ("KERAS_TL_VERBOSE", "TF_CPP_MIN_LOG_LEVEL")}
    finished = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                              env=environment)
    assert finished.stdout.strip() == "4"
    assert finished.stderr.strip() == ""


def _environment():
    import os

    return dict(os.environ)




def test_every_job_answers_help_and_option_errors_without_tensorflow_or_pyplot():
    """A job's options are read before the library, Keras and TensorFlow are imported: --help answers at once."""
    code = ("import contextlib, io, json, sys\n"
            "from keras_tl.jobs import cli\n"
            "answers = {}\n"
            "for job in cli.JOBS:\n"
            "    for argv in (['--help'], ['--no-such-option']):\n"
            "        out, err = io.StringIO(), io.StringIO()\n"
            "        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):\n"
            "            try:\n"
            "                code = cli.main(job, argv)\n"
            "            except SystemExit as stop:\n"
            "                code = stop.code\n"
            "        answers[job + ' ' + argv[0]] = [code, out.getvalue(), err.getvalue()]\n"
            "answers['loaded'] = [name for name in ('tensorflow', 'keras', 'matplotlib.pyplot', 'sklearn')\n"
            "                     if name in sys.modules]\n"
            "print(json.dumps(answers))\n")
    finished = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr[-2000:]
    answers = json.loads(finished.stdout)
    assert answers.pop("loaded") == []
    for job in cli.JOBS:
        code, out, err = answers[f"{job} --help"]
        assert code == 0 and f"python -m keras_tl.{job}" in out and err == "", job
        code, out, err = answers[f"{job} --no-such-option"]
        errors = [line for line in err.splitlines() if f"python -m keras_tl.{job}: error: " in line]
        assert code == 2 and out == "" and len(errors) == 1, (job, err)  # an unknown option, or one missing


def test_parser_constants_read_from_source_equal_the_imported_modules():
    """``cli.library_constant`` reads the jobs' constants from the library's source: the imported values."""
    wanted = sorted({tuple(argument.value for argument in node.args)
                     for path in (PACKAGE / "jobs").glob("*.py") for node in ast.walk(ast.parse(path.read_text()))
                     if isinstance(node, ast.Call) and getattr(node.func, "attr", node.func) == "library_constant"
                     or isinstance(node, ast.Call) and getattr(node.func, "id", None) == "library_constant"})
    assert ("keras_tl.features.full_network_embedding", "POSTPROCESSING") in wanted and len(wanted) >= 8
    code = (f"import sys; from keras_tl.jobs import cli\n"
            f"print(repr([cli.library_constant(module, name) for module, name in {wanted!r}]))\n"
            f"assert not any(module in sys.modules for module, _ in {wanted!r})")  # read, not imported
    finished = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert finished.stdout.strip() == repr([getattr(importlib.import_module(module), name) for module, name in wanted])
