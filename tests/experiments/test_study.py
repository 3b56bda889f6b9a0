"""Each study on a tiny grid (MobileNet at 32 px, a few images, one seed) writes its report,
figures and results.json, with accuracies in [0, 1] and a table row for every target and method."""
import dataclasses
import importlib
import json
import pathlib
import re
import shutil
import warnings

import numpy as np
import pytest

import keras_tl
from keras_tl.experiments import STUDIES, common, fne_ablation, fne_paper, tradeoff, transfer_depth
from keras_tl.features import classifiers
from keras_tl.jobs import cli, study

TINY = ["--source", "mobilenet", "--dataset", "animal_mnist", "--image-size", "32", "--train-per-class", "3",
        "--test-per-class", "2", "--seeds", "1", "--quiet"]


def run_study(name, run_dir, *extra, dataset="animal_mnist"):
    assert study.main([name, *TINY, "--output-dir", str(run_dir), *extra, "--dataset", dataset]) == 0
    results = json.loads((run_dir / "results.json").read_text())
    assert results["study"] == name and results["targets"] == [dataset] and results["seeds"] == [0]
    return results, (run_dir / "report.md").read_text()


def accuracies(tree):
    """Every mean accuracy in a results tree (the values of ``mean`` next to a ``values`` list)."""
    if isinstance(tree, dict):
        if "mean" in tree and "values" in tree:
            return [tree["mean"]]
        return [value for item in tree.values() for value in accuracies(item)]
    return []


def test_the_studies_are_listed_once_and_read_by_the_job_its_help_and_the_docs():
    """keras_tl.experiments.STUDIES is the list: the job's choices and --help, ``python -m keras_tl``'s line
    and docs/results.md (a command per study) follow it, and each entry names a module with a report."""
    help_text = study.make_parser().format_help()
    assert "{" + ",".join(STUDIES) + "}" in help_text  # the choices, in the registry's order
    results_md = (pathlib.Path(keras_tl.__file__).parents[1] / "docs" / "results.md").read_text()
    for name, (module, claim) in STUDIES.items():
        assert f"  {name}" in help_text and claim in help_text
        assert name in cli.JOBS["study"][0]
        assert f"python -m keras_tl.study {name}" in results_md
        assert callable(importlib.import_module(f"keras_tl.experiments.{module}").report)


def test_layers_study(tmp_path, feature_cache):
    results, report = run_study("layers", tmp_path, "--layer-step", "13", "--cache-dir", str(feature_cache),
                                "--sources", "mobilenet", "--targets", "animal_mnist")  # 0.1's flags
    result = results["results"]["mobilenet"]["animal_mnist"]
    layers = ["conv1_relu", "conv_dw_7_relu", "conv_pw_13_relu"]  # every 13th fne layer, and the last
    assert sorted(result["layers"]) == layers  # (results.json sorts its keys)
    depths = [result["layers"][name]["depth"] for name in layers]
    assert depths == sorted(depths) and 0 < depths[0] and depths[-1] <= 1
    assert all(0 <= value <= 1 for value in accuracies(result))
    assert "| target | layer (relative depth) | dimensions | accuracy |" in report
    assert "| animal_mnist | FNE (all layers) |" in report
    assert (tmp_path / "figures" / "layers_mobilenet.png").stat().st_size > 0


def test_fne_study(tmp_path, feature_cache):
    results, report = run_study("fne", tmp_path, "--shots", "1", "3", "--cache-dir", str(feature_cache))
    result = results["results"]["mobilenet"]["animal_mnist"]
    assert sorted(result["methods"]) == sorted(fne_ablation.FNE_METHODS)
    assert sorted(result["ablation"]) == sorted(fne_ablation.ABLATION)
    assert {name: sorted(curve) for name, curve in result["shots"].items()} == {
        name: ["1", "3"] for name in fne_ablation.CURVE_METHODS}
    assert all(0 <= value <= 1 for value in accuracies(result))
    for header in ("| method | animal_mnist |", "| post-processing | animal_mnist |", "| method | 1 | 3 |",
                   "| dataset | target | FNE - last conv | the slides |"):
        assert header in report
    gains = [100 * (fne - last) for last, fne in zip(*(result["methods"][name]["values"]
                                                       for name in fne_ablation.CURVE_METHODS))]
    gain = fne_ablation.fne_gain(result)
    assert gain["values"] == pytest.approx(gains) and gain["mean"] == pytest.approx(np.mean(gains))
    assert f"| animal_mnist | dissimilar (28-px silhouettes) | {gain['mean']:+.1f} ± {gain['std']:.1f} | " \
           f"+3.3 to +17.5 |" in report
    assert fne_ablation.gain_row("my_folder", result)[1:] == ["not classified", f"{gain['mean']:+.1f} ± "
                                                               f"{gain['std']:.1f}", "—"]
    assert all(name in report for name in [*fne_ablation.FNE_METHODS, *fne_ablation.ABLATION])
    fits = (len(fne_ablation.FNE_METHODS) + 2 * len(fne_ablation.CURVE_METHODS) + len(fne_ablation.ABLATION))
    assert f"Linear SVMs (LinearSVC, C=1): {fits} fits, of which " in report
    assert (tmp_path / "figures" / "shots_mobilenet_animal_mnist.png").stat().st_size > 0


def test_tradeoff_study_resumes_from_its_parts(tmp_path):
    extra = ["--methods", "extraction", "scratch", "--epochs", "1", "--train-per-class", "5"]
    results, report = run_study("tradeoff", tmp_path, *extra)
    for method in ("extraction", "scratch"):
        entry = results["results"]["animal_mnist"][method]
        assert 0 <= entry["accuracy"]["mean"] <= 1 and entry["trainable_params"]["mean"] > 0
        assert entry["network_epochs"]["values"] == [0 if method == "extraction" else 1]
        assert entry["wall_seconds"]["mean"] > 0 and entry["energy_joules"]["mean"] > 0
        assert f"| {method} |" in report
    assert "| method | accuracy | network epochs | wall s | images/s | trainable params | energy J |" in report
    assert (tmp_path / "figures" / "tradeoff_animal_mnist.png").stat().st_size > 0
    first = json.loads((tmp_path / "results.json").read_text())["results"]
    run_study("tradeoff", tmp_path, *extra)  # every run is in parts/: nothing trains again, same numbers
    assert json.loads((tmp_path / "results.json").read_text())["results"] == first
    # other settings: trained anew, in a part of their own
    run_study("tradeoff", tmp_path, "--methods", "extraction", "--epochs", "1", "--train-per-class", "6")
    assert sorted(path.name.rsplit("-", 1)[0] for path in (tmp_path / "parts").iterdir()) == [
        "tradeoff-animal_mnist-extraction-seed0", "tradeoff-animal_mnist-extraction-seed0",
        "tradeoff-animal_mnist-scratch-seed0"]


def image_folder(root, classes=("a", "b"), per_class=5):
    """``root/<class>/``: ``per_class`` random 8x8 PNG images in each of ``classes``; returns ``root``."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True)
        for index in range(per_class):
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(root / name / f"{index}.png")
    return root


def test_study_parts_stay_in_the_run_folder_and_a_changed_setting_runs_again(tmp_path, monkeypatch):
    """tradeoff on a folder given by its absolute path, each run a stand-in whose accuracy is its image size / 100:
    the parts are in the run folder and nothing is written beside the data; a rerun reads them, and another image
    size or count, or another folder of the same name, runs anew (a 48 px run once reported the 32 px numbers)."""
    data = image_folder(tmp_path / "data" / "images")
    written = sorted((tmp_path / "data").rglob("*"))
    calls = []

    def stand_in(method, run):
        calls.append((method, run.image_size))
        return {"accuracy": run.image_size / 100, "trainable_params": 1, "network_epochs": 0, "wall_seconds": 1.0,
                "cpu_seconds": 1.0, "images_per_second": 1.0, "energy_joules": 1.0, "energy_method": "stand-in",
                "train_images": 8, "test_images": 2}

    monkeypatch.setattr(tradeoff, "tradeoff_run", stand_in)

    def study_at(*options, dataset=data):
        calls.clear()
        results, _ = run_study("tradeoff", tmp_path / "run", "--methods", "extraction", "scratch", "--epochs", "1",
                               *options, dataset=str(dataset))
        return results["results"][str(dataset)]["extraction"]["accuracy"]["mean"], list(calls)

    both = [("extraction", 32), ("scratch", 32)]
    assert study_at() == (0.32, both)
    assert sorted((tmp_path / "data").rglob("*")) == written  # nothing beside nor in the data
    parts = sorted(path.name for path in (tmp_path / "run" / "parts").iterdir())
    assert len(parts) == 2 and all(name.startswith(f"tradeoff-{common.dataset_name(str(data))}-") for name in parts)
    assert study_at() == (0.32, [])  # resumed: every run read from its part
    assert study_at("--image-size", "48") == (0.48, [("extraction", 48), ("scratch", 48)])
    assert study_at("--train-per-class", "4") == (0.32, both)  # every other setting: test_part_keys_differ...
    assert study_at(dataset=shutil.copytree(data, tmp_path / "other" / "images")) == (0.32, both)
    assert len(list((tmp_path / "run" / "parts").iterdir())) == 2 * 4


def test_part_keys_differ_with_every_setting_and_name_a_folder_by_where_it_is(tmp_path, monkeypatch):
    for folder in ("a", "b"):
        (tmp_path / folder / "images").mkdir(parents=True)
    base = common.RunSettings("mobilenet", str(tmp_path / "a" / "images"), 32, 5, 2, seed=0, epochs=1)

    def key(run=base, study="depth", method="AnB", cut="conv_dw_3"):
        return common.part_key(study, run, method=method, cut=cut)

    assert key() == key(dataclasses.replace(base))  # the same settings: the same key
    assert "/" not in key() and not key().startswith(".") and len(key()) < 160
    changed = {"source": "resnet50", "dataset": str(tmp_path / "b" / "images"), "image_size": 48,
               "train_per_class": 6, "test_per_class": 3, "seed": 1, "epochs": 2, "batch_size": 8,
               "tfds_data_dir": str(tmp_path)}
    keys = {key(dataclasses.replace(base, **{field: value})) for field, value in changed.items()}
    keys |= {key(method="AnB+"), key(cut=17), key(study="tradeoff")}
    assert len(keys) == len(changed) + 3 and key() not in keys
    relative = dataclasses.replace(base, dataset="images")  # the folder of that name where the job runs
    monkeypatch.chdir(tmp_path / "a")
    in_a = key(relative)
    monkeypatch.chdir(tmp_path / "b")
    assert key(relative) != in_a
    assert common.dataset_name("animal_mnist") == "animal_mnist"
    assert common.dataset_name("/a/images") != common.dataset_name("/b/images")
    for spec in ("/data/../../etc/passwd", "../..", "..", "mit67:/data/mit67", "tfds:cifar10:train/test", "-"):
        name = common.dataset_name(spec)
        assert "/" not in name and not name.startswith(".") and name.count("-") >= 1, (spec, name)


def test_a_damaged_part_is_set_aside_with_a_warning_and_run_again(tmp_path):
    part = tmp_path / "parts" / "key.json"
    part.parent.mkdir()
    part.write_text('{"accuracy": 0.')  # cut short outside the job
    with pytest.warns(UserWarning, match=re.escape(f"Study part {part} does not read (")):
        assert common.part_or_run(tmp_path, "key", lambda: {"accuracy": 0.5}) == {"accuracy": 0.5}
    assert part.with_name("key.json.damaged").read_text() == '{"accuracy": 0.'
    assert common.part_or_run(tmp_path, "key", lambda: 1 / 0) == {"accuracy": 0.5}  # kept: read, not run


def test_split_pool_is_stratified_disjoint_and_seeded():
    labels = np.repeat(np.arange(3), 6)
    train, test = common.split_pool(labels, 2, 3, seed=0)
    assert np.bincount(labels[train]).tolist() == [2, 2, 2] and np.bincount(labels[test]).tolist() == [3, 3, 3]
    assert not set(train) & set(test)
    assert [a.tolist() for a in common.split_pool(labels, 2, 3, seed=0)] == [train.tolist(), test.tolist()]
    # a class smaller than train + test is split in proportion, never left without training images
    small = np.repeat(np.arange(3), [10, 40, 2])
    train, test = common.split_pool(small, 20, 20, seed=0)
    assert np.bincount(small[train]).tolist() == [5, 20, 1] and np.bincount(small[test]).tolist() == [5, 20, 1]


def test_svm_fits_stopped_at_the_pass_cap_are_counted_not_hidden(monkeypatch):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 10)
    pool = common.Pool("src", "target", rng.normal(size=(30, 40)).astype("float32"), labels, ["a", "b", "c"],
                       ["layer"], {"layer": np.arange(40)}, {"layer": 1.0})
    progress = type("Bar", (), {"update": lambda self, n: None})()
    converged = common.svm_over_seeds(pool, "fne", "none", 5, 5, [0, 1], progress)
    assert converged["unconverged"] == 0 and len(converged["values"]) == 2
    monkeypatch.setattr(classifiers, "SVM_MAX_ITER", 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the ConvergenceWarning is counted, not shown
        stopped = common.svm_over_seeds(pool, "fne", "none", 5, 5, [0, 1], progress)
    assert stopped["unconverged"] == 2
    assert study.svm_fits({"t": {"m": stopped, "n": converged}, "energy_method": "x"}) == (4, 2)


def test_a_requested_dataset_that_is_missing_stops_the_study_before_any_work(tmp_path, capsys, monkeypatch):
    """A missing folder among --dataset is one error line before TensorFlow starts; a requested dataset that
    does not load (a package not installed) is one error line before the run folder; without --dataset, the
    offline datasets that are not installed are skipped, and none installed is one error line."""
    run_dir = tmp_path / "study"

    def start_tensorflow(job, args):
        raise AssertionError("TensorFlow was started before the datasets were checked")

    monkeypatch.setattr(cli, "start_tensorflow", start_tensorflow)
    assert study.main(["fne", "--dataset", "animal_mnist", str(tmp_path / "missing"), "--quiet",
                       "--output-dir", str(run_dir)]) == 2
    assert capsys.readouterr().err == f"error: no such folder: {tmp_path / 'missing'}.\n"
    monkeypatch.undo()
    monkeypatch.setattr(common, "available_datasets",
                        lambda names, _: (names[:-1], {names[-1]: "not installed: apt-get install x"}))
    assert study.main(["fne", "--dataset", "animal_mnist", "openclipart", "--quiet",
                       "--output-dir", str(run_dir)]) == 2
    assert capsys.readouterr().err == (
        "error: Not available here: openclipart (not installed: apt-get install x). Fix or remove them from "
        "--dataset (left out, --dataset is the offline datasets that are installed), then run the same command "
        "again.\n")
    monkeypatch.setattr(common, "available_datasets", lambda names, _: ([], {name: "not installed" for name in names}))
    assert study.main(["fne", "--quiet", "--output-dir", str(run_dir)]) == 2
    assert capsys.readouterr().err.startswith("error: None of the targets is available: animal_mnist: not installed")
    assert not run_dir.exists()


# ----------------------------------------------------------------------------- the FNE paper's tables


def test_paper_study_on_course_layouts(tmp_path, feature_cache, monkeypatch):
    """The paper study on tiny replicas: one published split (mit67 and DTD's split 3), a seeded split
    (caltech101); the paper's numbers (here stand-ins, set for the test) beside ours, one verdict each."""
    from tests.replicas import write_replica

    specs = {name: f"{name}:{write_replica(name, tmp_path / name, classes=2)['path']}"
             for name in ("mit67", "dtd", "caltech101")}
    assert [spec for spec, _ in fne_paper.paper_runs(specs["dtd"], [0, 1])] == [
        f"{specs['dtd']}:{split}" for split in range(1, 11)]  # dtd:PATH: its 10 published splits
    specs["dtd"] += ":3"
    # a planted table, not the paper's: mit67 with numbers, dtd and caltech101 without
    monkeypatch.setattr(fne_paper, "PAPER_RESULTS", {"mit67": {"fc6": 11.1, "fc7": 22.2, "fne": 33.3}})
    run_dir = tmp_path / "run"
    assert study.main(["paper", "--source", "mobilenet", "--weights", "none", "--image-size", "32", "--seeds", "2",
                       "--train-per-class", "2", "--test-per-class", "2", "--quiet", "--cache-dir", str(feature_cache),
                       "--dataset", *specs.values(), "--output-dir", str(run_dir)]) == 0
    results = json.loads((run_dir / "results.json").read_text())["results"]["mobilenet"]
    runs = {name: results[spec]["runs"] for name, spec in specs.items()}
    assert runs == {"mit67": [[specs["mit67"], 0]], "dtd": [[specs["dtd"], 0]],
                    "caltech101": [[specs["caltech101"], 0], [specs["caltech101"], 1]]}  # a seeded split: 2 seeds
    for name, spec in specs.items():
        result = results[spec]
        assert result["dataset"] == name and result["layers"] == {"fc6": "conv_dw_13_relu", "fc7": "conv_pw_13_relu"}
        assert all(len(result[column]["values"]) == len(runs[name]) for column in ("fc6", "fc7", "fne"))
        assert all(0 <= value <= 1 for value in accuracies(result))
        assert result["verdict"].endswith("not comparable at this size (mobilenet, not VGG16; random weights; 32 px, "
                                          "not 224; 2 train images per class; 2 test images per class)")
    assert results[specs["mit67"]]["paper_percent"] == {"fc6": 11.1, "fc7": 22.2, "fne": 33.3}
    report = (run_dir / "report.md").read_text()
    assert "| dataset | fc6 L2 | fc7 L2 | FNE |" in report
    mit67 = results[specs["mit67"]]
    assert (f"| mit67 | {100 * mit67['fc6']['mean']:.1f} (11.1) | {100 * mit67['fc7']['mean']:.1f} (22.2) | "
            f"{100 * mit67['fne']['mean']:.1f} (33.3) |") in report  # one split: one number, the paper's beside it
    caltech101 = results[specs["caltech101"]]["fne"]
    assert f"| {100 * caltech101['mean']:.1f} ± {100 * caltech101['std']:.1f} (—) |" in report  # two seeds
    verdicts = [line for line in report.splitlines() if "not comparable at this size" in line]
    assert [line.split(" | ")[0] for line in verdicts] == ["| mit67", "| dtd", "| caltech101"]
    assert "(paper: +11.1; slides' average: +4.2)" in verdicts[0]
    assert "(paper: —; slides' average: +4.2)" in verdicts[1]
    assert "+2.9 points over fc6 and +4.2 over fc7" in report  # the slides' numbers beside ours
    assert (run_dir / "figures" / "paper_mobilenet.png").stat().st_size > 0


def test_the_papers_table_holds_the_slides_numbers_under_the_course_datasets_names():
    from keras_tl.data import course_datasets

    assert set(fne_paper.PAPER_RESULTS) <= set(course_datasets.LOADERS)
    assert fne_paper.PAPER_RESULTS["flowers102"] == {"fc6": 89.5, "fc7": 87.0, "fne": 93.3}
    assert fne_paper.PAPER_RESULTS["mit67"] == {"fc7": 72.2, "fne": 75.5}  # the ImageNet-source row
    gains = [row["fne"] - row["fc7"] for row in fne_paper.PAPER_RESULTS.values()]
    assert min(gains) == pytest.approx(-0.5) and max(gains) == pytest.approx(7.9)  # stanford_dogs, food101


def test_paper_verdicts_compare_the_fne_gain_over_fc7_in_the_papers_setting():
    def result(fc7, fne, paper):
        return {"fc7": {"mean": fc7}, "fne": {"mean": fne}, "paper_percent": paper}

    assert fne_paper.paper_setting_differences("VGG16", "imagenet", None, None, None) == []
    paper = {"fc6": 50.0, "fc7": 52.0, "fne": 55.0}
    assert fne_paper.paper_verdict(result(0.60, 0.65, paper)) == (
        "FNE beats fc7 by +5.0 points (paper: +3.0; slides' average: +4.2): reproduced")
    assert fne_paper.paper_verdict(result(0.60, 0.58, paper)).endswith(
        "(paper: +3.0; slides' average: +4.2): not reproduced")
    assert "no paper number" in fne_paper.paper_verdict(result(0.60, 0.65, {}))
    assert fne_paper.paper_verdict(result(0.60, 0.65, paper), ["64 px, not 224"]).endswith(
        "not comparable at this size (64 px, not 224)")
    assert fne_paper.paper_key("tfds:oxford_flowers102", "x") == "flowers102"
    assert fne_paper.paper_key("/data/my_folder", "my_folder") == "my_folder"


def test_depth_models_keep_exactly_the_first_n_imagenet_layers(imagenet_mobilenet_32):
    import keras

    from keras_tl import sources
    from keras_tl.training import freezing

    source, kept = sources.get_source("mobilenet"), 10  # conv1 .. conv_pw_1_relu: ImageNet; conv_pad_2 up: new
    imagenet = {layer.name: layer.get_weights() for layer in imagenet_mobilenet_32.layers[1:]}  # not the input
    for frozen in (False, True):  # AnB+, then AnB (trained below)
        base, model = transfer_depth.depth_model(source, imagenet_mobilenet_32, kept, frozen, 2, 32, seed=0)
        below, above = base.layers[:kept], [layer for layer in base.layers[kept:] if layer.weights]
        for layer in below[1:]:
            assert all(np.array_equal(ours, theirs) for ours, theirs in zip(layer.get_weights(), imagenet[layer.name]))
        assert all(not np.array_equal(layer.get_weights()[0], imagenet[layer.name][0])
                   for layer in above)  # re-initialised (BN scale starts at 1 here, ImageNet's does not)
        assert all(layer.trainable != frozen for layer in below) and all(layer.trainable for layer in above)
        momenta = {layer.momentum for layer in base.layers if isinstance(layer, keras.layers.BatchNormalization)}
        assert momenta == {freezing.FRESH_BATCHNORM_MOMENTUM}  # statistics that follow a short run's batches
    before = [layer.get_weights() for layer in base.layers]
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="categorical_crossentropy", jit_compile=False)
    model.fit(np.random.default_rng(0).normal(size=(8, 32, 32, 3)).astype("float32"),
              keras.utils.to_categorical(np.arange(8) % 2, 2), batch_size=4, epochs=1, verbose=0)
    changed = [any(not np.array_equal(a, b) for a, b in zip(layer.get_weights(), start))
               for layer, start in zip(base.layers, before)]
    assert not any(changed[:kept]) and any(changed[kept:])  # AnB's ImageNet layers stay as they were


def test_depth_study_on_a_tiny_grid(tmp_path, colours):
    """On a folder given by its absolute path: the parts are in the run folder, nothing is written beside the data."""
    beside = sorted(colours.parent.iterdir())
    results, report = run_study("depth", tmp_path, "--cuts", "conv_dw_3", "--epochs", "1", "--train-per-class", "5",
                                dataset=str(colours))
    result = results["results"][str(colours)]
    for method in ("AnB", "AnB+"):
        assert list(result[method]) == ["conv_dw_3"] and result[method]["conv_dw_3"]["layers_kept"] == 17
    assert all(0 <= value <= 1 for value in accuracies(result))
    assert len(result["verdicts"]) == 2 and result["verdicts"][0].startswith("Frozen transfer (AnB)")
    assert "| n: layers kept | AnB (frozen) | AnB+ (fine-tuned) |" in report and "| 0 (scratch) |" in report
    assert (tmp_path / "figures" / f"depth_{common.dataset_name(str(colours))}.png").stat().st_size > 0
    assert len(list((tmp_path / "parts").glob("depth-*.json"))) == 3  # scratch, AnB and AnB+: kept for a rerun
    assert sorted(colours.parent.iterdir()) == beside
