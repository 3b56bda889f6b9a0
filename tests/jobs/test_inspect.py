"""The inspect job (keras_tl.jobs.inspect): on a source with a dataset, and on a finished run with the run's own.

The run is the fine_tune run of tests/conftest.py (``fine_tune_run``): a new head on the frozen
ImageNet MobileNet at 32 px, trained on the ``colours`` folder (red, green and blue squares). At
that size most deep channels are silent on these images: the job must pick the active ones, show
only images that activate a channel, and name a dead channel instead of maximising it.
"""
import json
import types

import numpy as np
import pytest

from keras_tl import data
from keras_tl.analysis import image_maps, interpret, trained, visualize
from keras_tl.features.extraction import FeatureExtractor
from keras_tl.jobs import inspect

LAYER = "conv_dw_9_relu"  # at 32 px: 40 of its 512 channels dead on the colours, some active on a few images


@pytest.fixture(scope="module")
def run_features(fine_tune_run):
    """``(image_set, features)``: the images inspect looks at on the run (its own dataset, train and test)
    and the pooled features of LAYER on them, extracted here independently of the job."""
    run = trained.load_run(fine_tune_run)
    dataset = interpret.run_dataset(fine_tune_run, verbose=False)
    image_set = data.ImageSet.concatenate([dataset.train, dataset.test])
    extractor = FeatureExtractor(run.source, [LAYER], run.image_size, model=visualize.backbone(run.model))
    features, _ = extractor.extract(image_set, None, verbose=False)
    return image_set, features[:, extractor.columns([LAYER])]


def _run_inspect(fine_tune_run, tmp_path, *extra):
    assert inspect.main([str(fine_tune_run), "--layers", LAYER, "--steps", "1", "--output-dir",
                         str(tmp_path / "inspect"), *extra]) == 0
    return json.loads((tmp_path / "inspect" / "inspect.json").read_text())


def check_top_images(report, image_set, features, k):
    """Every top-image record shows the images that activate its channel (activation > 0), most first, and no
    other: as many as activate it, at most ``k``."""
    for record in report["top_images"]:
        column = features[:, record["channel"]]
        active = np.count_nonzero(column > 0)
        assert record["active_images"] == active and len(record["indices"]) == min(k, active)
        assert all(activation > 0 for activation in record["activations"])
        np.testing.assert_allclose(record["activations"], column[record["indices"]], rtol=1e-5)
        assert record["activations"] == sorted(record["activations"], reverse=True)
        assert record["files"] == [str(image_set.paths[index]) for index in record["indices"]]


def test_on_a_run_the_images_are_the_runs_and_the_channels_the_most_active(fine_tune_run, colours, run_features,
                                                                              tmp_path, capsys):
    image_set, features = run_features
    report = _run_inspect(fine_tune_run, tmp_path, "--top-k", "4")
    assert report["class_names"] == ["blue", "green", "red"] and report["images"] == len(image_set) == 25
    assert report["dataset_from"].startswith("the run's own dataset")
    assert all(file.startswith(str(colours)) for record in report["top_images"] for file in record["files"])
    most_active = np.argsort(-features.mean(axis=0), kind="stable")[:inspect.DEFAULT_CHANNELS]
    assert report["channels"] == {LAYER: most_active.tolist()} and report["channels_chosen"] == "most active"
    check_top_images(report, image_set, features, 4)
    assert [entry["channel"] for entry in report["maximized"]] == most_active.tolist() and not report["dead"]
    output = capsys.readouterr().out
    assert f"Channels: the {inspect.DEFAULT_CHANNELS} most active of each layer on these 25 images" in output
    assert "(the run's own dataset, from its config.json)" in output


def test_a_dead_channel_is_named_not_maximised_and_few_active_images_stay_few(fine_tune_run, run_features,
                                                                               tmp_path, capsys):
    image_set, features = run_features
    means, active = visualize.channel_activity(features)
    busy, dead = int(np.argmax(means)), int(np.flatnonzero(active == 0)[0])
    few = int(np.flatnonzero((active > 0) & (active < 4))[0])  # active on 1 to 3 of the 25 images
    report = _run_inspect(fine_tune_run, tmp_path, "--channels", str(busy), str(few), str(dead), "--top-k", "4",
                          "--quiet")
    check_top_images(report, image_set, features, 4)
    records = {record["channel"]: record for record in report["top_images"]}
    assert len(records[few]["indices"]) == active[few] < 4
    assert records[dead]["dead"] and records[dead]["indices"] == [] and not records[busy]["dead"]
    assert report["dead"] == [{"layer": LAYER, "channel": dead}]
    assert [entry["channel"] for entry in report["maximized"]] == [busy, few]  # the dead one is skipped
    output = capsys.readouterr().out
    assert f"channel {dead} of {LAYER} is dead on these 25 images" in output
    dead_row = next(line for line in output.splitlines() if line.split()[:2] == [LAYER, str(dead)])
    assert dead_row.split()[2:] == ["0", "0/25", "dead", "-", "-"]


def _source_arguments(colours, tmp_path, *extra):
    return ["mobilenet", "--weights", "none", "--image-size", "32", "--dataset", str(colours),
            "--image", str(colours / "train" / "red" / "red0.png"), "--top-k", "3", "--steps", "2",
            "--output-dir", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"), "--quiet", *extra]


def test_on_a_source_it_writes_the_figures_and_what_it_drew(colours, tmp_path, capsys):
    assert inspect.main(_source_arguments(colours, tmp_path, "--layers", "conv_pw_1_relu", "conv_pw_13_relu",
                                          "--channels", "0", "5")) == 0
    figures = sorted(path.name for path in (tmp_path / "run" / "figures").iterdir())
    assert figures == ["feature_maps.png", "filters.png", "maximized.png", "top_images_conv_pw_13_relu.png",
                       "top_images_conv_pw_1_relu.png"]
    report = json.loads((tmp_path / "run" / "inspect.json").read_text())
    assert report["figures"] == figures and report["layers"] == ["conv_pw_1_relu", "conv_pw_13_relu"]
    assert report["channels"] == {"conv_pw_1_relu": [0, 5], "conv_pw_13_relu": [0, 5]}
    assert report["dataset_from"] == "--dataset" and report["class_names"] == ["blue", "green", "red"]
    drawn = [(entry["layer"], entry["channel"]) for entry in report["maximized"]]
    dead = [(entry["layer"], entry["channel"]) for entry in report["dead"]]
    assert sorted(drawn + dead) == sorted((layer, channel) for layer in report["layers"] for channel in (0, 5))
    assert all({"before", "after"} <= set(entry) for entry in report["maximized"])
    for entry in report["top_images"]:
        assert len(entry["indices"]) == min(3, entry["active_images"])
        assert entry["activations"] == sorted(entry["activations"], reverse=True)
        assert all(activation > 0 for activation in entry["activations"])
        assert all(file.startswith(str(colours)) for file in entry["files"])
    assert "Run folder:" in capsys.readouterr().out


def test_a_bad_layer_is_one_error_line_with_suggestions(colours, tmp_path, capsys):
    assert inspect.main(_source_arguments(colours, tmp_path, "--layers", "conv_pw_1_reluu")) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and error.startswith("error: Unknown layer 'conv_pw_1_reluu'")
    assert "conv_pw_1_relu" in error.partition("Closest layer names:")[2]


def test_without_a_run_or_dataset_the_default_is_animal_mnist_with_its_per_class_counts():
    args = inspect.parse_args(["mobilenet"])
    assert (args.dataset, args.train_per_class, args.test_per_class) == (None, 20, 10)
    assert inspect.parse_args(["mobilenet", "--dataset", "animal_mnist"]).train_per_class == 20
    assert inspect.parse_args(["mobilenet", "--dataset", "some/folder"]).train_per_class is None
    assert inspect.parse_args(["runs/fine_tune-1"]).train_per_class is None  # a run: its own counts


def test_a_runs_own_dataset_keeps_fewer_images_per_class_when_asked(fine_tune_run):
    run = types.SimpleNamespace(run_dir=fine_tune_run)  # all inspected_dataset reads of a loaded run
    dataset, where = inspect.inspected_dataset(inspect.parse_args([str(fine_tune_run)]), run, verbose=False)
    assert (len(dataset.train), len(dataset.test)) == (15, 10) and where.startswith("the run's own")
    args = inspect.parse_args([str(fine_tune_run), "--train-per-class", "2", "--test-per-class", "1"])
    fewer, _ = inspect.inspected_dataset(args, run, verbose=False)
    assert fewer.class_names == ["blue", "green", "red"]
    assert fewer.class_counts() == {"blue": (2, 1), "green": (2, 1), "red": (2, 1)}
    assert set(fewer.train.paths) <= set(dataset.train.paths) and set(fewer.test.paths) <= set(dataset.test.paths)


def test_on_an_fne_run_the_maps_draw_its_features_of_the_same_number_of_images_per_class(fne_run, colours, tmp_path,
                                                                                         capsys):
    assert inspect.main([str(fne_run), "--map", "pca", "--dendrogram", "--clusters", "--points", "7",
                         "--output-dir", str(tmp_path / "maps")]) == 0
    report = json.loads((tmp_path / "maps" / "inspect.json").read_text())
    assert report["figures"] == ["dendrogram.png", "image_map.png"] == sorted(
        path.name for path in (tmp_path / "maps" / "figures").iterdir())
    assert report["images"] == 25 and report["points"] == 6 and report["per_class"] == 2  # 7 // 3 classes
    assert report["method"] == "fne:fne" and report["class_names"] == ["blue", "green", "red"]
    labels = np.array(report["labels"])
    assert np.bincount(labels).tolist() == [2, 2, 2]
    assert all(file.startswith(str(colours)) and f"/{report['class_names'][label]}/" in file
               for file, label in zip(report["files"], labels))  # each file with its own label
    kmeans = report["kmeans"]
    assert kmeans["n_clusters"] == 3 and len(kmeans["clusters"]) == 6
    assert kmeans["purity"] == pytest.approx(image_maps.cluster_purity(labels, kmeans["clusters"]))
    output = capsys.readouterr().out
    assert f"k-means purity: {kmeans['purity']:.3f}" in output and "2 of each of the 3 classes" in output


def test_clusters_alone_draw_no_figure_and_a_fine_tune_run_has_no_features_to_map(fne_run, fine_tune_run,
                                                                                  tmp_path, capsys):
    assert inspect.main([str(fne_run), "--clusters", "2", "--quiet", "--output-dir", str(tmp_path / "k")]) == 0
    report = json.loads((tmp_path / "k" / "inspect.json").read_text())
    assert report["figures"] == [] and report["kmeans"]["n_clusters"] == 2 and report["points"] == 25
    assert inspect.main([str(fine_tune_run), "--map", "pca", "--output-dir", str(tmp_path / "no")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and error.startswith(f"error: {fine_tune_run / 'features'} does not hold")


def test_umap_without_umap_learn_is_one_error_line_before_any_work(monkeypatch, capsys):
    monkeypatch.setattr(inspect.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(SystemExit) as stopped:
        inspect.main(["runs/fne-1", "--map", "umap"])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(
        "error: --map umap needs the umap-learn package: pip install umap-learn (or --map pca or tsne).")


@pytest.mark.parametrize("argv, message", [
    (["--map", "pca"], "--map, --dendrogram and --clusters draw an fne run's saved features: give its run folder"),
    (["runs/fne-1", "--clusters", "-2"], "--clusters must be 0 or more; got -2."),
    (["runs/fne-1", "--map", "pca", "--points", "0"], "--points must be at least 1; got 0."),
    (["runs/fne-1", "--map", "mds"], "argument --map: invalid choice: 'mds'"),
    (["--steps", "100000000"], "--steps must be at most 1000; got 100000000."),
    (["--top-k", "1000"], "--top-k must be at most 100; got 1000."),
    (["--steps", "0"], "--steps must be at least 1; got 0."),
])
def test_counts_past_their_bounds_are_one_error_line_before_any_work(argv, message, capsys):
    with pytest.raises(SystemExit) as stopped:
        inspect.main(argv if argv[0].startswith("runs/") else ["mobilenet", *argv])
    error = capsys.readouterr().err
    assert stopped.value.code == 2
    assert error.strip().splitlines()[-1].startswith(f"python -m keras_tl.inspect: error: {message}")
    assert "Traceback" not in error
