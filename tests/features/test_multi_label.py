"""Multi-label classification (``keras_tl.features.multi_label``): a table with several labels per image reads as
multi-hot labels, the metrics equal scikit-learn's, the thresholds maximise each class's F1, and both jobs train,
save their test scores, and predict every class above its threshold."""
import json

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import average_precision_score, f1_score

from keras_tl import data
from keras_tl.features import multi_label
from keras_tl.jobs import fine_tune, fne, inspect, predict

COLOURS = {"red": (200, 30, 30), "green": (30, 180, 40), "blue": (30, 40, 200)}
LABEL_SETS = [("red",), ("green",), ("blue",), ("red", "green"), ("red", "blue"), ("green", "blue")]


@pytest.fixture(scope="module")
def tags(tmp_path_factory):
    """``tags.csv`` of 32 px images, each a colour on the left and one on the right (the same or another), labelled
    with the colours it shows (``red green``): every label set twice in train and once in test."""
    root = tmp_path_factory.mktemp("tags")
    (root / "img").mkdir()
    rng = np.random.default_rng(0)
    rows = ["path,tags,split"]
    for split, count in (("train", 2), ("test", 1)):
        for index in range(count):
            for number, label_set in enumerate(LABEL_SETS):
                pixels = np.zeros((32, 32, 3))
                pixels[:, :16], pixels[:, 16:] = COLOURS[label_set[0]], COLOURS[label_set[-1]]
                name = f"img/{split}{index}_{number}.png"
                Image.fromarray(np.clip(pixels + rng.normal(0, 20, pixels.shape), 0, 255).astype(np.uint8)).save(
                    root / name)
                rows.append(f"{name},{' '.join(label_set)},{split}")
    (root / "tags.csv").write_text("\n".join(rows) + "\n")
    return str(root / "tags.csv")


def test_a_table_with_several_labels_per_image_gives_multi_hot_labels(tags):
    dataset = data.load_dataset(tags, label_delimiter=" ", verbose=False)
    assert dataset.multi_label and dataset.class_names == ["blue", "green", "red"]
    assert dataset.train.labels.shape == (12, 3) and dataset.test.labels.shape == (6, 3)
    rows = {path.rpartition("/")[2]: row.tolist() for path, row in zip(dataset.test.paths, dataset.test.labels)}
    assert rows["test0_3.png"] == [0, 1, 1] and rows["test0_0.png"] == [0, 0, 1]  # red green; red
    assert dataset.class_counts() == {"blue": (6, 3), "green": (6, 3), "red": (6, 3)}
    train, validation = data.split_validation(dataset.train, 0.25, seed=0)  # seeded, every image once
    assert len(train) == 9 and len(validation) == 3 and train.labels.ndim == 2
    assert not set(train.paths) & set(validation.paths)
    plain = data.load_dataset(tags, verbose=False)  # no delimiter: "red green" is a class of its own
    assert not plain.multi_label and plain.train.labels.ndim == 1 and len(plain.class_names) == 6


def test_the_metrics_are_scikit_learns_and_the_thresholds_maximise_each_class_f1():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, (40, 3))
    labels[:, 2] = 0  # no positive image: no AP, and F1 counted as scikit-learn counts it
    scores = labels * 0.4 + rng.uniform(0, 0.7, labels.shape)
    thresholds = multi_label.choose_thresholds(labels, scores)
    for index in range(2):  # no other threshold gives a higher F1
        best = f1_score(labels[:, index], scores[:, index] >= thresholds[index])
        assert best == max(f1_score(labels[:, index], scores[:, index] >= value) for value in scores[:, index])
    assert thresholds[2] == 0.5  # the default
    evaluation = multi_label.evaluate_multi_label(labels, scores, thresholds, ["a", "b", "c"])
    predicted = scores >= thresholds
    assert evaluation["micro_f1"] == pytest.approx(f1_score(labels, predicted, average="micro", zero_division=0))
    assert evaluation["macro_f1"] == pytest.approx(f1_score(labels, predicted, average="macro", zero_division=0))
    assert evaluation["per_class_ap"] == pytest.approx({name: average_precision_score(labels[:, index],
                                                                                     scores[:, index])
                                                        for index, name in enumerate("ab")})
    assert evaluation["mean_average_precision"] == pytest.approx(average_precision_score(labels[:, :2], scores[:, :2]))
    assert evaluation["per_class"]["c"]["ap"] is None and evaluation["thresholds"]["c"] == 0.5
    planted = np.array([[1], [1], [0], [1], [0]]), np.array([[0.9], [0.7], [0.6], [0.4], [0.1]])
    assert multi_label.choose_thresholds(*planted).tolist() == [0.4]  # F1 0.857 there, 0.8 at 0.7
    with pytest.raises(ValueError, match="Expected multi-hot labels"):
        multi_label.evaluate_multi_label(np.array([0, 1]), np.zeros((2, 2)), [0, 0], ["a", "b"])


def _assert_metrics_are_sklearns(evaluation, labels, scores, class_names):
    thresholds = np.array([evaluation["thresholds"][name] for name in class_names])
    predicted = scores >= thresholds
    assert evaluation["micro_f1"] == pytest.approx(f1_score(labels, predicted, average="micro"))
    assert evaluation["macro_f1"] == pytest.approx(f1_score(labels, predicted, average="macro"))
    assert evaluation["mean_average_precision"] == pytest.approx(average_precision_score(labels, scores))
    assert evaluation["per_class_ap"] == pytest.approx(
        {name: average_precision_score(labels[:, index], scores[:, index]) for index, name in enumerate(class_names)})
    return thresholds


def _predicted(run_dir, image, capsys):
    capsys.readouterr()
    assert predict.main([str(run_dir), image, "--quiet"]) == 0
    return capsys.readouterr().out


def test_fne_trains_one_vs_rest_heads_and_predicts_the_classes_above_their_thresholds(tags, tmp_path, capsys):
    from keras_tl.analysis import trained

    run_dir = tmp_path / "run"
    # SqueezeNet's last layer, random weights: the cheapest job (this test is about the labels, not the features)
    assert fne.main(["--dataset", tags, "--label-delimiter", " ", "--weights", "none", "--image-size", "32",
                     "--source", "squeezenet1_1", "--methods", "last:l2", "--quiet", "--output-dir", str(run_dir),
                     "--cache-dir", str(tmp_path / "cache")]) == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    labels, scores = np.load(run_dir / "features" / "labels_test.npy"), np.load(run_dir / "test_scores" / "last_l2.npy")
    thresholds = _assert_metrics_are_sklearns(metrics["methods"]["last:l2"]["multi_label"], labels, scores,
                                              ["blue", "green", "red"])
    model = trained.load_run(run_dir)
    assert model.multi_label and model.thresholds.tolist() == pytest.approx(thresholds.tolist())
    assert model.raw_model.get_layer("class_scores").thresholds == pytest.approx(thresholds.tolist())
    image = tags.replace("tags.csv", "img/test0_3.png")
    row = model.predict([image])[0]
    test_paths = list(data.load_dataset(tags, label_delimiter=" ", verbose=False).test.paths)
    assert row == pytest.approx(scores[test_paths.index(image)], abs=1e-4)  # the saved test scores are the model's
    expected = ", ".join(f"{name} {row[index]:.3f}" for index, name in sorted(
        enumerate(model.classes), key=lambda item: -row[item[0]]) if row[index] >= thresholds[index])
    assert f"{image}  {expected or '(none above its threshold)'}" in _predicted(run_dir, image, capsys)
    # inspect names and colours each image by its one class: a multi-label run is one error line, no folder
    capsys.readouterr()
    assert inspect.main([str(run_dir), "--map", "pca", "--quiet", "--output-dir", str(tmp_path / "maps")]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(errors) == 1 and "several labels" in errors[0] and not (tmp_path / "maps").exists()


def test_fine_tune_trains_a_sigmoid_head_with_thresholds_chosen_on_validation(tags, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert fine_tune.main(["--dataset", tags, "--label-delimiter", " ", "--image-size", "32", "--unfreeze", "none",
                           "--epochs", "1", "--min-steps", "0", "--no-augment", "--batch-size", "4", "--tta", "none",
                           "--quiet", "--output-dir", str(run_dir)]) == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert json.loads((run_dir / "config.json").read_text())["multi_label"] is True
    labels, scores = np.load(run_dir / "test_labels.npy"), np.load(run_dir / "test_scores.npy")
    assert labels.shape == scores.shape == (6, 3) and ((0 < scores) & (scores < 1)).all()  # sigmoids, not a softmax
    thresholds = _assert_metrics_are_sklearns(metrics["multi_label"], labels, scores, metrics["class_names"])
    assert metrics["thresholds_chosen_on"] == "3 validation images, each class's best F1"
    assert metrics["calibration"] is None and "test_accuracy" not in metrics
    output = _predicted(run_dir, tags.replace("tags.csv", "img/test0_0.png"), capsys)
    assert "classes above their thresholds (probability)" in output
    assert json.loads((run_dir / "thresholds.json").read_text())["thresholds"] == pytest.approx(
        dict(zip(metrics["class_names"], thresholds.tolist())))


@pytest.mark.parametrize("job, option", [(fine_tune, ["--class-weight", "auto"]), (fine_tune, ["--folds", "2"]),
                                         (fine_tune, ["--balanced-sampling"]), (fne, ["--shots", "1"])])
def test_an_option_that_needs_one_label_per_image_is_one_error_line(tags, tmp_path, capsys, job, option):
    assert job.main(["--dataset", tags, "--label-delimiter", " ", "--image-size", "32", "--quiet", "--output-dir",
                     str(tmp_path / "run"), *option]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith(f"error: {option[0]}") and "needs one label per image" in errors[0]
