"""A web page for a finished run: upload an image, see its top classes and, for a fine-tuned run, its Grad-CAM.

Like the web demo that ends fastai's lesson 2, built with Gradio (``pip install -e '.[demo]'``).
:func:`build_demo` returns the page as a ``gradio.Blocks``; ``python -m keras_tl.demo RUN`` serves it on
127.0.0.1, and a notebook can too:

>>> page = build_demo("runs/fine_tune-20260101-120000", top_k=3)
>>> page.launch(server_name="127.0.0.1")   # then open the URL it prints; page.close() stops it

The page predicts from the uploaded file itself, as ``python -m keras_tl.predict`` does
(:meth:`keras_tl.analysis.trained.TrainedModel.top_k`), so both give the same classes for the same file.
Its prediction is also an API (``api_name="predict"``): ``gradio_client.Client(url).predict(
gradio_client.handle_file("photo.jpg"), api_name="/predict")``.
"""
import pathlib

import numpy as np

from keras_tl import data
from keras_tl.analysis import gradcam, trained

SHOWN_SIDE = 512  # the longest side, in pixels, of the image shown with its heat map
HEAT_OPACITY = 0.45  # as keras_tl.plots.plot_grad_cam lays the heat map over the image


def build_demo(run, top_k=5):
    """The page of ``run`` (a run folder, or a :class:`~keras_tl.analysis.trained.TrainedModel`) as a
    ``gradio.Blocks``: an image upload, the ``top_k`` best classes with their scores, and for a fine_tune
    run the Grad-CAM heat map of the best class over the image. Not launched: call its ``launch()``."""
    gradio = require_gradio()
    model = run if isinstance(run, trained.TrainedModel) else trained.load_run(run)
    top_k = min(top_k, len(model.classes))
    explain = model.kind == "fine_tune"
    probabilities = model.score_name == trained.PROBABILITY

    def classify(path):
        """The uploaded file's top classes (and its Grad-CAM overlay, for a fine_tune run)."""
        if path is None:
            raise gradio.Error("Upload an image first.")
        try:
            image = data.decode_image(path)
        except Exception as error:  # whatever Pillow raises for a file that is no image it can read
            raise gradio.Error(f"{pathlib.Path(path).name} is not a readable image ({error}).") from None
        top = model.top_k(path, top_k)[0]
        scores = {name: score for name, score in top} if probabilities else [[name, round(score, 4)]
                                                                              for name, score in top]
        if not explain:
            return scores
        heat_map = gradcam.grad_cam(model.model, model.model_inputs(path)[0], model.classes.index(top[0][0]))
        image.thumbnail((SHOWN_SIDE, SHOWN_SIDE))
        return scores, overlay_heat_map(np.asarray(image), heat_map)

    with gradio.Blocks(title=f"keras_tl: {model.run_dir.name}", analytics_enabled=False) as page:
        gradio.Markdown(describe(model))
        with gradio.Row():
            with gradio.Column():
                upload = gradio.Image(type="filepath", image_mode=None, format="png", label="image")
                button = gradio.Button("Classify", variant="primary")
            with gradio.Column():
                if probabilities:
                    outputs = [gradio.Label(num_top_classes=top_k, label=f"top {top_k} classes (probability)")]
                else:
                    outputs = [gradio.Dataframe(headers=["class", model.score_name], label=f"top {top_k} classes "
                                                "(linear SVM scores: larger is more likely; not probabilities)")]
                if explain:
                    outputs.append(gradio.Image(label="Grad-CAM of the best class (red: where it looked)",
                                                format="png"))
        gradio.on([upload.upload, button.click], classify, inputs=upload, outputs=outputs, api_name="predict")
    return page


def require_gradio():
    """The ``gradio`` module; a ``ModuleNotFoundError`` saying how to install it where it is missing."""
    try:
        import gradio
    except ModuleNotFoundError:
        raise ModuleNotFoundError("The demo needs Gradio, which is not installed: pip install -e '.[demo]' "
                                  "(or pip install 'gradio>=5').") from None
    return gradio


def describe(model):
    """The page's heading: the run folder, its kind, source, size and classes (the first 20)."""
    names = ", ".join(model.classes[:20]) + (f", ... ({len(model.classes)} in all)" if len(model.classes) > 20 else "")
    explained = " For a fine-tuned run, Grad-CAM shows where the network looked." if model.kind == "fine_tune" else ""
    return (f"## {model.run_dir.name}\n{model.kind} run: {model.source.name} at {model.image_size}x{model.image_size} "
            f"px, {len(model.classes)} classes: {names}.\n\nUpload an image to see its top classes.{explained}")


def overlay_heat_map(image, heat_map, opacity=HEAT_OPACITY):
    """``image`` (H, W, 3) in 0..255 with ``heat_map`` (any resolution, 0..1) scaled up to it and laid over
    it in the "jet" colours, ``opacity`` of the heat map: an RGB uint8 array (H, W, 3)."""
    from matplotlib import colormaps
    from PIL import Image

    height, width = image.shape[:2]
    heat = Image.fromarray(np.uint8(np.clip(heat_map, 0, 1) * 255)).resize((width, height), Image.BILINEAR)
    colours = colormaps["jet"](np.asarray(heat) / 255)[..., :3] * 255
    return np.uint8(np.clip((1 - opacity) * np.asarray(image, dtype="float32") + opacity * colours, 0, 255))
