"""A look at the data (keras_tl/analysis/batches.py): show_batch's grid with the preprocessing undone, plain and
augmented; show_results with the wrong answers in red; fine_tune's figures/batch.png."""
import matplotlib.pyplot as plt
import numpy as np
import pytest

from keras_tl import data, sources
from keras_tl.analysis import batches

CLASSES = ["cat", "dog", "cow"]


@pytest.fixture(scope="module")
def flat_images():
    """12 in-memory 16x16 images in 3 classes (0, 1, 2, 0, ...), each a noisy patch of its own colour."""
    rng = np.random.default_rng(0)
    colours = rng.integers(20, 235, (12, 1, 1, 3))
    images = np.clip(colours + rng.integers(-15, 16, (12, 16, 16, 3)), 0, 255).astype(np.uint8)
    return data.ImageSet(labels=np.arange(12) % 3, images=images)


def shown(figure):
    """The pixels of each image of ``figure``, in order."""
    return [axes.images[0].get_array() for axes in figure.axes]


def test_show_batch_draws_the_promised_grid_with_the_preprocessing_undone(flat_images, tmp_path):
    from keras_tl.data import augment

    name = "vgg16"  # BGR minus the ImageNet means (every source: the next test but one)
    source = sources.get_source(name)
    pipeline = data.make_pipeline(flat_images, 16, source.preprocess_input, batch_size=4, shuffle=True, seed=1)
    figure = batches.show_batch(pipeline, CLASSES, n=6, augment=augment.augmentation_layers(seed=0), source=name)
    assert len(figure.axes) == 12 and not list(tmp_path.iterdir())  # 6 plain above, the same 6 augmented below
    titles = [axes.get_title() for axes in figure.axes]
    assert titles[:6] == titles[6:] and set(titles[:6]) == set(CLASSES)  # every class in a grid of 6
    assert [axes.get_ylabel() for axes in figure.axes[::6]] == ["pipeline", "augmented"]
    plain, augmented = shown(figure)[:6], shown(figure)[6:]
    for image, title in zip(plain, titles):
        assert image.dtype == np.uint8 and image.shape == (16, 16, 3)
        matches = [index for index, original in enumerate(flat_images.images)
                   if np.abs(original.astype(int) - image).max() <= 1]  # back in 0..255, RGB, as read
        assert len(matches) == 1 and CLASSES[flat_images.labels[matches[0]]] == title
    assert any(np.abs(a.astype(int) - b).mean() > 2 for a, b in zip(plain, augmented))
    batches.show_batch(pipeline, CLASSES, n=3, source=name, path=tmp_path / "batch.png")
    assert (tmp_path / "batch.png").read_bytes()[:4] == b"\x89PNG" and len(list(tmp_path.iterdir())) == 1
    plt.close("all")


def test_show_batch_of_a_dataset_and_its_mistakes(flat_images):
    dataset = data.ImageDataset("flat", CLASSES, flat_images, flat_images)
    figure = batches.show_batch(dataset, n=4)  # its train split and class names, read without preprocessing
    assert [axes.get_title() for axes in figure.axes] == ["cat", "dog", "cow", "cat"]
    assert any(np.array_equal(shown(figure)[0], image) for image in flat_images.images[::3])
    pipeline = data.make_pipeline(flat_images, 16, batch_size=4)
    with pytest.raises(ValueError, match="class_names=None"):
        batches.show_batch(pipeline)
    with pytest.raises(ValueError, match="n=0"):
        batches.show_batch(pipeline, CLASSES, n=0)
    with pytest.raises(ValueError, match="empty"):
        batches.show_batch(pipeline.take(0), CLASSES)
    plt.close("all")


def test_every_source_is_undone_and_a_preprocessing_that_is_not_affine_is_refused():
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 5, 5, 3)).astype("float32")
    for source in sources.SOURCES.values():
        back = batches.undo_preprocess(np.asarray(source.preprocess_input(pixels.copy())), source)
        np.testing.assert_allclose(back, pixels, atol=1e-3, err_msg=source.name)

    class Squared(sources.Source):
        def preprocess_input(self, images):
            return images ** 2

    with pytest.raises(ValueError, match="squared's preprocess_input is not an affine map"):
        batches.undo_preprocess(pixels, Squared("squared", "MobileNet", "mobilenet", 224, 32, ()))


def test_show_results_titles_true_and_predicted_classes_and_marks_the_wrong_ones(fine_tune_run, colours):
    from keras_tl.analysis import trained

    run = trained.load_run(fine_tune_run)
    dataset = data.load_dataset(str(colours), verbose=False)
    figure = batches.show_results(run, dataset, n=10)  # all 10 test images, the planted mislabel among them
    assert len(figure.axes) == 10
    titles = [axes.title for axes in figure.axes]
    truths = [title.get_text().split("\n")[0].removeprefix("true: ") for title in titles]
    guesses = [title.get_text().split("\n")[1].removeprefix("predicted: ").split(" (")[0] for title in titles]
    assert sorted(truths) == sorted(dataset.class_names[label] for label in dataset.test.labels)
    marked = [title.get_color() == "red" for title in titles]
    assert marked == [truth != guess for truth, guess in zip(truths, guesses)]
    scores = run.calibration.probabilities(run.predict(np.stack(shown(figure)).astype("float32")))
    assert guesses == [run.classes[index] for index in scores.argmax(axis=1)]
    assert figure.get_suptitle().startswith(f"{marked.count(False)} of 10 right (calibrated probability")
    plt.close("all")


def test_fine_tune_writes_its_batch_figure_before_training(fine_tune_run):
    assert (fine_tune_run / "figures" / "batch.png").read_bytes()[:4] == b"\x89PNG"
