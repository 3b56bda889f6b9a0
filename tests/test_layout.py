"""Issue 8: library and jobs apart, custom objects registered on import, the anchors' contracts."""
import ast
import importlib
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

import keras_tl
from keras_tl import fne, plots, recipe

PACKAGE = pathlib.Path(keras_tl.__file__).parent


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


def test_no_library_module_imports_a_job():
    library = [path for path in PACKAGE.rglob("*.py")  # __main__.py files are entry points, like the guards
               if "jobs" not in path.relative_to(PACKAGE).parts and path.name != "__main__.py"]
    assert len(library) > 10
    offenders = {str(path.relative_to(PACKAGE)): name for path in library
                 for name in _imports_outside_main_guard(ast.parse(path.read_text()))
                 if name.startswith("keras_tl.jobs")}
    assert offenders == {}
    # ...and the walk does see imports: the jobs import the library.
    job = ast.parse((PACKAGE / "jobs" / "fne.py").read_text())
    assert "keras_tl.fne" in _imports_outside_main_guard(job)


@pytest.mark.parametrize("entry", ["fne", "fine_tune", "word_embeddings"])
def test_each_entry_point_starts_its_job(entry):
    tree = ast.parse((PACKAGE / f"{entry}.py").read_text())
    guards = [node for node in tree.body if _is_main_guard(node)]
    assert len(guards) == 1 and f"cli.main('{entry}'" in ast.unparse(guards[0])


def test_dir_lists_the_public_api_and_fine_tune_stays_callable():
    listing = dir(keras_tl)
    for name in ("fine_tune", "FNETransformer", "FullNetworkEmbedding", "load_dataset", "plot_confusion_matrix"):
        assert name in listing
    importlib.import_module("keras_tl.fine_tune")  # the entry-point module must not hide the function
    assert callable(keras_tl.fine_tune)
    assert keras_tl.Recipe is recipe.Recipe


@pytest.mark.parametrize("order", ["import keras_tl, keras", "import keras, keras_tl",
                                   "import keras_tl; from keras_tl import tf_logs; tf_logs.import_tensorflow_quietly(); "
                                   "import keras"])
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


@parametrize_with_checks([fne.FNETransformer(), fne.FNETransformer(discretize=False)])
def test_fne_transformer_is_a_scikit_learn_estimator(estimator, check):
    check(estimator)


def test_fne_transformer_statistics_dtypes_and_layer_agree():
    rng = np.random.default_rng(0)
    train = rng.normal(2.0, 3.0, size=(50, 4))
    train[:, 3] = 7.0  # no spread: maps to 0
    transformer = fne.FNETransformer().fit(train)
    np.testing.assert_allclose(transformer.mean_, train.mean(axis=0))
    np.testing.assert_allclose(transformer.std_, train.std(axis=0))  # population std (ddof=0)
    test = rng.normal(2.0, 3.0, size=(10, 4))
    out64 = transformer.transform(test)
    assert out64.dtype == np.float64 and set(np.unique(out64)) <= {-1.0, 0.0, 1.0}
    assert np.all(out64[:, 3] == 0)
    assert fne.FNETransformer().fit(train.astype("float32")).transform(test.astype("float32")).dtype == np.float32
    layer_out = keras.ops.convert_to_numpy(transformer.to_layer()(test.astype("float32")))
    np.testing.assert_array_equal(layer_out, out64.astype("float32"))
    with pytest.raises(ValueError, match="X has 3 features, but FNETransformer is expecting 4 features"):
        transformer.transform(test[:, :3])


def test_fne_layer_adapts_on_a_dataset_of_batches_like_normalization():
    import tensorflow as tf

    features = np.random.default_rng(2).normal(size=(37, 5)).astype("float32")
    from_array, from_batches = fne.FullNetworkEmbedding(discretize=False), fne.FullNetworkEmbedding(discretize=False)
    from_array.adapt(features)
    from_batches.adapt(tf.data.Dataset.from_tensor_slices(features).batch(8))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(from_batches.mean), features.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(from_batches(features)),
                               keras.ops.convert_to_numpy(from_array(features)), atol=1e-5)
    with pytest.raises(ValueError, match=r"shape \(37, 3\).*\(None, 5\)"):
        from_array.adapt(features[:, :3])


def test_plots_return_figures_take_axes_and_save_only_when_asked(tmp_path):
    import matplotlib.pyplot as plt

    figure = plots.plot_confusion_matrix(np.array([[3, 1], [0, 4]]), ["cat", "dog"])
    assert isinstance(figure, plt.Figure) and not list(tmp_path.iterdir())
    assert [text.get_text() for text in figure.axes[0].texts] == ["3", "1", "0", "4"]
    outer, (left, right) = plt.subplots(1, 2)
    assert plots.plot_few_shot({"fne": {1: {"mean": 0.5, "std": 0.1}, 5: {"mean": 0.8, "std": 0.05}}},
                               ax=right) is outer
    assert len(right.lines) >= 1 and not left.lines
    plots.plot_word_map(np.zeros((2, 2)), ["a", "b"], tmp_path / "map.png")
    assert (tmp_path / "map.png").read_bytes()[:4] == b"\x89PNG"
    plt.close("all")


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


def test_one_call_fine_tune_runs_both_stages_and_returns_their_histories(tmp_path):
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    labels = np.arange(24) % 2
    images = rng.uniform(-1, 1, (24, 32, 32, 3)).astype("float32")
    images[labels == 1, :16] += 1.0  # class 1 is brighter on top
    batches = tf.data.Dataset.from_tensor_slices((images, np.eye(2, dtype="float32")[labels])).batch(8)
    base = keras.applications.MobileNet(weights=None, include_top=False, input_shape=(32, 32, 3), alpha=0.25)
    model, stages = keras_tl.fine_tune(base, batches, batches, epochs=2, freeze_epochs=1, learning_rate=1e-3,
                                       unfreeze="4", run_dir=tmp_path, verbose=0)
    assert list(stages) == ["head", "fine_tune"]
    assert [len(stage["history"]) for stage in stages.values()] == [1, 2]
    assert stages["fine_tune"]["learning_rate"] == pytest.approx(1e-4)
    assert stages["head"]["trainable"] < stages["fine_tune"]["trainable"]
    assert (tmp_path / "fine_tune" / "done.json").is_file() and not (tmp_path / "fine_tune" / "backup").exists()
    assert model.output_shape == (None, 2)
