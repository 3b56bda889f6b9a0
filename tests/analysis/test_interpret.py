"""Error analysis (keras_tl.analysis.interpret) and test-time augmentation on the tests' tiny fne and
fine_tune runs (``fne_run``, ``fine_tune_run`` in tests/conftest.py).

Both runs train on a folder of three colour classes (``colours``: 32x32 noisy red, green and blue
squares); one red test image is planted, copied, in the blue test folder: a mislabel that the error
analysis must put first. The fne run (random weights, an SVM) gets every real image right, so
the planted one is its only mistake; the fine_tune run (one epoch of a new head) is barely
trained, so its analysis is checked against its predictions, image by image.
"""
import csv
import json
import pathlib

import keras
import numpy as np
import pytest
from sklearn.metrics import confusion_matrix

from keras_tl import data
from keras_tl.analysis import interpret, trained, tta
from keras_tl.analysis.tta import tta_model
from keras_tl.features import extraction
from keras_tl.jobs import predict

PLANTED = "planted_red0.png"  # the red test image copied into the blue test folder (tests/conftest.py)


@pytest.fixture(scope="module")
def fine_tune_analysis(fine_tune_run):
    """The fine_tune run's model, its own dataset (from config.json) and the analysis of its test split."""
    model = trained.load_run(fine_tune_run)
    dataset = interpret.run_dataset(fine_tune_run, verbose=False)
    return model, dataset, interpret.Interpretation(model, dataset.test, dataset.class_names, verbose=False)


def test_the_fne_analysis_puts_the_planted_mislabel_first(fne_run, colours):
    model = trained.load_run(fne_run)
    dataset = interpret.run_dataset(fne_run, verbose=False)
    np.testing.assert_array_equal(dataset.test.labels, np.load(fne_run / "features" / "labels_test.npy"))
    analysis = interpret.Interpretation(model, dataset.test, dataset.class_names, verbose=False)
    assert analysis.score_name == "svm score" and len(analysis.files) == 10
    assert all(pathlib.Path(path).parent.parent == colours / "test" for path in analysis.files)
    np.testing.assert_allclose(analysis.scores, model.predict(analysis.files), atol=1e-4)
    for index, scores in enumerate(analysis.scores):  # the margin of the best other class over the true one
        true = analysis.true_labels[index]
        assert analysis.losses[index] == pytest.approx(np.delete(scores, true).max() - scores[true])

    losses, order = analysis.top_losses()
    assert pathlib.Path(analysis.files[order[0]]).name == PLANTED and losses[0] > 0 > losses[1]
    assert list(losses) == sorted(losses, reverse=True)
    assert analysis.most_confused() == [("blue", "red", 1)]
    assert analysis.per_class_accuracy() == {"blue": 0.75, "green": 1.0, "red": 1.0}
    first = analysis.mislabelled_rows(k=3)[0]
    assert pathlib.Path(first[0]).name == PLANTED and first[1:3] == ["blue", "red"]
    assert first[-1].startswith("confidently wrong")

    arrays = data.ImageSet(labels=dataset.test.labels, images=model.load_images(analysis.files).astype(np.uint8))
    from_arrays = interpret.Interpretation(model, arrays, dataset.class_names, verbose=False)
    assert from_arrays.files == [f"#{index}" for index in range(10)]
    np.testing.assert_allclose(from_arrays.scores, analysis.scores, atol=1e-4)
    figure = from_arrays.plot_top_losses(2)
    titles = [axes.get_title() for axes in figure.axes if axes.get_title()]
    assert len(titles) == 2 and titles[0].startswith("blue / red\nsvm score") and titles[0].endswith(f"#{order[0]}")


def test_the_fine_tune_analysis_matches_its_predictions_and_the_run(fine_tune_run, fine_tune_analysis, tmp_path):
    model, dataset, analysis = fine_tune_analysis
    metrics = json.loads((fine_tune_run / "metrics.json").read_text())
    assert analysis.accuracy == pytest.approx(metrics["test_accuracy"])  # the run's own test split again
    assert analysis.score_name == "probability"
    np.testing.assert_allclose(analysis.scores, model.predict(analysis.files), atol=1e-5)
    true_probabilities = analysis.scores[np.arange(10), analysis.true_labels]
    np.testing.assert_allclose(analysis.losses, -np.log(true_probabilities), rtol=1e-6)

    matrix = confusion_matrix(analysis.true_labels, analysis.predicted, labels=range(3))
    expected = {(analysis.classes[true], analysis.classes[predicted]): int(matrix[true, predicted])
                for true, predicted in np.ndindex(matrix.shape) if true != predicted and matrix[true, predicted]}
    confused = analysis.most_confused()
    assert {(true, predicted): count for true, predicted, count in confused} == expected
    assert [count for *_, count in confused] == sorted(expected.values(), reverse=True)
    assert analysis.most_confused(min_count=99) == []
    for name, accuracy in analysis.per_class_accuracy().items():
        images = analysis.true_labels == analysis.classes.index(name)
        assert accuracy == pytest.approx(np.mean(analysis.predicted[images] == analysis.classes.index(name)))

    path = analysis.write_csv(tmp_path / "mislabelled.csv", k=3)
    rows = list(csv.DictReader(path.open()))
    assert list(rows[0]) == ["file", "true", "predicted", "probability_predicted", "probability_true", "loss",
                             "reason"]
    wrong = [index for index in np.argsort(-analysis.losses, kind="stable")
             if analysis.predicted[index] != analysis.true_labels[index]][:3]
    uncertain = np.argsort(np.sort(analysis.scores)[:, -1] - np.sort(analysis.scores)[:, -2], kind="stable")[:3]
    assert [row["file"] for row in rows if "confidently wrong" in row["reason"]] == [analysis.files[i] for i in wrong]
    assert sorted(row["file"] for row in rows if "uncertain" in row["reason"]) == sorted(analysis.files[i]
                                                                                         for i in uncertain)
    for row in rows:
        index = analysis.files.index(row["file"])
        assert (row["true"], row["predicted"]) == (analysis.classes[analysis.true_labels[index]],
                                                   analysis.classes[analysis.predicted[index]])
        assert float(row["probability_predicted"]) == pytest.approx(analysis.scores[index].max(), rel=1e-5)
        assert float(row["loss"]) == pytest.approx(analysis.losses[index], rel=1e-5)

    figure = analysis.plot_per_class_accuracy(path=tmp_path / "per_class.png")
    assert len(figure.axes[0].patches) == 3 and (tmp_path / "per_class.png").read_bytes()[:4] == b"\x89PNG"
    figure = analysis.plot_top_losses(4, path=tmp_path / "top.png")
    names = [pathlib.Path(analysis.files[index]).name for index in analysis.top_losses(4)[1]]
    assert [axes.get_title().rsplit("\n", 1)[-1] for axes in figure.axes if axes.get_title()] == names


def test_per_class_accuracy_names_each_class_with_its_count_and_keeps_the_labels_clear(fine_tune_analysis):
    import matplotlib.pyplot as plt

    _, _, analysis = fine_tune_analysis
    counts = np.bincount(analysis.true_labels, minlength=3)
    figure = analysis.plot_per_class_accuracy()
    axes = figure.axes[0]
    names = [label.get_text() for label in axes.get_yticklabels()][::-1]  # the first class on top
    assert names == [f"{name} ({count})" for name, count in zip(analysis.classes, counts)]
    assert axes.get_legend() is None and f"overall accuracy {analysis.accuracy:.3f}" in axes.get_title()
    frame = axes.get_window_extent()
    accuracies = analysis.per_class_accuracy()
    assert [text.get_text() for text in axes.texts][::-1] == [f"{accuracies[name]:.2f}" for name in analysis.classes]
    assert all(text.get_window_extent().x1 <= frame.x1 for text in axes.texts)  # even 1.00 fits inside
    plt.close(figure)


def test_tta_averages_the_views_and_the_job_records_its_score(fine_tune_run, fine_tune_analysis):
    model, dataset, plain = fine_tune_analysis
    flipped = interpret.Interpretation(model, dataset.test, dataset.class_names, tta="flip", verbose=False)
    assert np.abs(flipped.scores - plain.scores).max() > 1e-5  # the mirror images change the probabilities
    np.testing.assert_allclose(flipped.scores.sum(axis=1), 1, atol=1e-5)
    inputs = model.model_inputs(plain.files)
    mean = (model.model.predict(inputs, verbose=0) + model.model.predict(inputs[:, :, ::-1], verbose=0)) / 2
    np.testing.assert_allclose(flipped.scores, mean, atol=1e-5)
    metrics = json.loads((fine_tune_run / "metrics.json").read_text())
    assert metrics["tta"] == "flip" and metrics["test_accuracy_tta"] == pytest.approx(flipped.accuracy)
    assert metrics["test_accuracy"] == pytest.approx(plain.accuracy)


def test_predict_with_tta_gives_the_averaged_probabilities(fine_tune_analysis, monkeypatch, tmp_path):
    model, _, plain = fine_tune_analysis
    monkeypatch.setattr(trained, "load_run", lambda run_dir: model)  # loaded once, by the fixture
    files = plain.files[:3]
    assert predict.main([str(model.run_dir), *files, "--tta", "flip", "--top-k", "1", "--output-dir", str(tmp_path),
                         "--quiet"]) == 0
    inputs = model.model_inputs(files)
    mean = (model.model.predict(inputs, verbose=0) + model.model.predict(inputs[:, :, ::-1], verbose=0)) / 2
    rows = list(csv.DictReader((tmp_path / "predictions.csv").open()))
    assert [(row["file"], row["class"]) for row in rows] == [(path, model.classes[index])
                                                             for path, index in zip(files, mean.argmax(axis=1))]
    np.testing.assert_allclose([float(row["probability"]) for row in rows], mean.max(axis=1), rtol=1e-5)


def test_ten_crop_tta_is_the_mean_over_the_ten_crops_of_the_enlarged_image():
    keras.utils.set_random_seed(0)
    images = keras.Input((8, 8, 3))
    model = keras.Model(images, keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(images)))
    batch = np.random.default_rng(0).random((4, 8, 8, 3)).astype("float32")
    enlarged = keras.ops.image.resize(batch, (9, 9))  # 8 x 256/224, rounded
    crops = keras.ops.convert_to_numpy(extraction.ten_crops(enlarged, 8))
    expected = np.mean([model.predict(crop, verbose=0) for crop in crops], axis=0)
    np.testing.assert_allclose(tta_model(model, "ten-crop").predict(batch, verbose=0), expected, atol=1e-6)
    assert tta_model(model, "none") is model
    assert isinstance(tta_model(model), tta.TestTimeAugmentation)
    with pytest.raises(ValueError, match=r"tta='flop' is not a kind .* none, flip, ten-crop\. Did you mean flip"):
        tta_model(model, "flop")


def test_the_interpret_command_writes_its_files(fne_run, capsys):
    assert predict.main([str(fne_run), "--interpret", "--top-losses", "4", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "true  predicted  images" in printed and "blue  red        1" in printed
    assert "blue   4       0.75" in printed and "Accuracy: 0.900 [0.60, 0.98] on 10 images (" in printed
    folder = fne_run / "interpret"
    for name in ("top_losses.png", "per_class_accuracy.png", "confusion_matrix.png"):
        assert (folder / name).read_bytes()[:4] == b"\x89PNG"
    assert list(csv.reader((folder / "confused_pairs.csv").open())) == [["true", "predicted", "count"],
                                                                       ["blue", "red", "1"]]
    rows = list(csv.DictReader((folder / "mislabelled.csv").open()))
    assert pathlib.Path(rows[0]["file"]).name == PLANTED and rows[0]["reason"].startswith("confidently wrong")
    assert float(rows[0]["loss"]) > 0  # the one wrong image, and the 4 most uncertain (it may be one of them)
    assert [sum(reason in row["reason"] for row in rows) for reason in ("wrong", "uncertain")] == [1, 4]


def test_wrong_interpret_requests_stop_with_a_clear_error(colours, capsys):
    for argv, message in ((["run", "--dataset", str(colours)], "--dataset chooses the images of --interpret"),
                          (["run"], "the following arguments are required: IMAGE_OR_FOLDER"),
                          (["run", "photo.jpg", "--interpret"], "give no IMAGE_OR_FOLDER")):
        with pytest.raises(SystemExit) as stopped:
            predict.main(argv)
        assert stopped.value.code == 2 and message in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"classes 'bleu' are not among the run's 3 classes \(blue, green, red\)\. "
                                         r"Did you mean blue\?"):
        interpret.labels_in_model_order([0, 1], ["bleu", "red"], ["blue", "green", "red"])
    with pytest.raises(ValueError, match=r"split='tset' is not a split; .* Did you mean test"):
        interpret.split_of(data.load_dataset(colours, verbose=False), "tset")
    assert len(interpret.split_of(data.load_dataset(colours, verbose=False), "all")) == 25
