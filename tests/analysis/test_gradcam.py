"""Grad-CAM (Selvaraju et al. 2017) finds the region that carries the class."""
import keras
import numpy as np
import pytest

from keras_tl import plots
from keras_tl.analysis import gradcam
from keras_tl.training import recipe


def bright_square_classifier():
    """A classifier built like fine_tune's, with weights set by hand: class 1 means "something bright".

    The base's one conv channel fires only on bright pixels (mean RGB above 0.5); the classifier
    gives class 1 a weight on it, so the bright square alone carries class 1.
    """
    inputs = keras.Input((32, 32, 3))
    conv = keras.layers.Conv2D(2, 3, padding="same", activation="relu", name="conv")
    outputs = keras.layers.MaxPooling2D(4, name="pool")(conv(inputs))  # an 8x8 feature map
    base = keras.Model(inputs, outputs, name="base")
    kernel = np.zeros((3, 3, 3, 2), "float32")
    kernel[1, 1, :, 0] = 1 / 3
    conv.set_weights([kernel, np.array([-0.5, 0.1], "float32")])
    model = recipe.build_classifier(base, 2, dropout=0.0)
    model.get_layer("classifier").set_weights([np.array([[-1.0, 1.0], [0.0, 0.0]], "float32"), np.zeros(2, "float32")])
    return model


@pytest.mark.parametrize("top, left", [(0, 0), (16, 16), (4, 20)])
def test_heat_map_peaks_where_the_class_is(top, left):
    model = bright_square_classifier()
    image = np.zeros((32, 32, 3), "float32")
    image[top:top + 8, left:left + 8] = 1.0
    heat_map = gradcam.grad_cam(model, image)
    assert heat_map.shape == (8, 8) and heat_map.min() >= 0 and heat_map.max() == pytest.approx(1.0)
    row, column = np.unravel_index(np.argmax(heat_map), heat_map.shape)
    assert top // 4 <= row < (top + 8) // 4 and left // 4 <= column < (left + 8) // 4
    outside = np.ones_like(heat_map, bool)
    outside[top // 4:(top + 8) // 4, left // 4:(left + 8) // 4] = False
    assert heat_map[outside].max() == 0.0


def test_a_class_with_no_evidence_gives_an_empty_map_and_the_figure_saves(tmp_path):
    model = bright_square_classifier()
    image = np.zeros((32, 32, 3), "float32")
    image[:8, :8] = 1.0
    assert gradcam.grad_cam(model, image, class_index=0).max() == 0.0  # class 0 has only negative evidence
    figure = plots.plot_grad_cam(image * 255, gradcam.grad_cam(model, image), path=tmp_path / "cam.png")
    assert figure is not None and (tmp_path / "cam.png").read_bytes()[:4] == b"\x89PNG"


def test_a_model_without_a_conv_base_is_refused():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="nested convolutional base"):
        gradcam.grad_cam(model, np.zeros(4))
