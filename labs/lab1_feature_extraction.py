# %% [markdown]
# # Lab 1: feature extraction and the Full-Network Embedding
#
# Reuse an ImageNet CNN without training it: run images through it, keep some activations as
# features, and train a linear classifier on them. We compare the classic choice (the last conv
# layer) with the Full-Network Embedding (FNE, Garcia-Gasulla et al. 2018), which keeps every layer.
#
# **Run it** from the repository root: `python labs/lab1_feature_extraction.py` (about a minute on
# a 2-core laptop, offline), or open `labs/lab1_feature_extraction.ipynb` in Jupyter or Colab.
# `KERAS_TL_LAB_SMALL=1` shrinks data for a quick check. Everything is written to `runs/lab1/`.
#
# **Slide topics**: convolution kernels, pre-trained networks as feature extractors, which layer
# transfers, the FNE pipeline with its SVM, few-shot learning.

# %% [markdown]
# ## Setup
# `import_tensorflow_quietly` hides TensorFlow's start-up lines. `SMALL` shrinks the data so that
# the whole lab runs in seconds (the automated tests use it).

# %%
import os
import pathlib

from keras_tl.tf_logs import import_tensorflow_quietly

tf = import_tensorflow_quietly()

import keras  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import Normalizer  # noqa: E402
from sklearn.svm import LinearSVC  # noqa: E402

import keras_tl  # noqa: E402
from keras_tl import plots, runs  # noqa: E402
from keras_tl.data import sample_photos  # noqa: E402

SMALL = os.environ.get("KERAS_TL_LAB_SMALL") == "1"
RUN_DIR = pathlib.Path(os.environ.get("KERAS_TL_LAB_RUN_DIR", "runs/lab1"))
FIGURES = RUN_DIR / "figures"
FIGURES.mkdir(parents=True, exist_ok=True)
keras.utils.set_random_seed(0)
results = {}

# %% [markdown]
# ## 1. What a convolution does
# A convolutional layer slides small kernels over the image. Three hand-made 3x3 kernels show the
# idea: *identity* copies the image, *edge* (a Laplacian) keeps only where brightness changes, and
# *sharpen* adds the edges back to the image. A CNN learns thousands of such kernels; its first
# layer ends up with edge and colour detectors much like these.

# %%
KERNELS = {
    "identity": np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]], float),
    "edge": np.array([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]], float),
    "sharpen": np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], float),
}
photo = sample_photos(128 if SMALL else 256)[0].mean(axis=-1) / 255.0  # the temple, in grey
figure, axes = plt.subplots(1, len(KERNELS), figsize=(4 * len(KERNELS), 4))
for panel, (name, kernel) in zip(axes, KERNELS.items()):
    filtered = ndimage.convolve(photo, kernel, mode="reflect")
    panel.imshow(np.clip(np.abs(filtered) if name == "edge" else filtered, 0, 1), cmap="gray")
    panel.set_title(name)
    panel.axis("off")
figure = plots.finish_figure(figure, FIGURES / "kernels.png")

# %% [markdown]
# ## 2. The source: MobileNet trained on ImageNet
# `keras_tl.get_source` knows each `keras.applications` model, its `preprocess_input` and the
# size it was trained at. `build` gives the model with ImageNet weights at any input size.

# %%
source = keras_tl.get_source("mobilenet")
IMAGE_SIZE = 64 if SMALL else 96
model = source.build(image_size=IMAGE_SIZE)
print(f"{source.name}: trained at {source.default_size} px, built at {IMAGE_SIZE} px, "
      f"{model.count_params():,} parameters")

# %% [markdown]
# ## 3. Which layers? Layer sets
# `fne` is every ReLU of the network, `last` only the final one. Early layers see edges and
# colours, late layers object parts: the embedding keeps all of them. A `FeatureExtractor` of the
# `fne` layers carries their *feature info*, read from the model itself: the channels, the
# resolution and the depth of each layer, and the columns it will fill in the feature matrix.

# %%
fne_layers = keras_tl.layer_names(model, "fne")
last_layer = keras_tl.layer_names(model, "last")
extractor = keras_tl.FeatureExtractor(source, "fne", image_size=IMAGE_SIZE, model=model)
info = extractor.feature_info
for entry in info[::6]:
    print(f"  {entry['name']:<18} {entry['channels']:>5} channels, 1/{entry['reduction']} resolution, "
          f"columns {entry['columns'].start}..{entry['columns'].stop - 1}")
print(f"{len(fne_layers)} layers, {extractor.num_features:,} features; last layer: {last_layer}")

# %% [markdown]
# ## 4. The target dataset: animal silhouettes
# A domain ImageNet never saw: white shapes on black, 28x28 pixels, resized to the model's input.

# %%
dataset = keras_tl.load_dataset("animal_mnist", train_per_class=20 if SMALL else 50,
                                test_per_class=10 if SMALL else 25, seed=0)
print(dataset.summary())
figure, axes = plt.subplots(1, len(dataset.class_names), figsize=(1.6 * len(dataset.class_names), 2))
for label, panel in enumerate(axes):
    panel.imshow(dataset.train.images[np.flatnonzero(dataset.train.labels == label)[0]], cmap="gray")
    panel.set_title(dataset.class_names[label], fontsize=9)
    panel.axis("off")
figure = plots.finish_figure(figure, FIGURES / "samples.png")

# %% [markdown]
# ## 5. Extract once, pooled inside the graph
# The extractor is one model with one output per layer; each 4-D map is averaged over space inside
# the graph, so the large maps never reach numpy. It reads the images through the source's own
# `preprocess_input`. `extractor.columns(layers)` gives the columns of any of its layers.

# %%
train_features, _ = extractor.extract(dataset.train, verbose=False)
test_features, _ = extractor.extract(dataset.test, verbose=False)
columns = {entry["name"]: entry["columns"] for entry in info}
last_columns = columns[last_layer[0]]
print(f"features: {train_features.shape}; {last_layer[0]} is columns {last_columns.start}..{last_columns.stop - 1}")

# %% [markdown]
# ## 6. Baseline: last layer, L2-normalised, linear SVM

# %%
baseline = make_pipeline(Normalizer("l2"), LinearSVC())
baseline.fit(train_features[:, last_columns], dataset.train.labels)
baseline_accuracy = baseline.score(test_features[:, last_columns], dataset.test.labels)

# %% [markdown]
# ## 7. Full-Network Embedding: standardise with train statistics, discretise to {-1, 0, 1}
# `FNETransformer` adapts a `FullNetworkEmbedding` layer on the training features only.

# %%
embedding = make_pipeline(keras_tl.FNETransformer(), LinearSVC())
embedding.fit(train_features, dataset.train.labels)
fne_accuracy = embedding.score(test_features, dataset.test.labels)
codes = embedding[0].transform(test_features)
width = last_columns.stop - last_columns.start
print(f"baseline (last layer, {width:,} dims): {baseline_accuracy:.3f}")
print(f"FNE ({train_features.shape[1]:,} dims):          {fne_accuracy:.3f}")
print(f"FNE values: {np.mean(codes == -1):.0%} are -1, {np.mean(codes == 0):.0%} are 0, {np.mean(codes == 1):.0%} are 1")
results.update(baseline_accuracy=baseline_accuracy, fne_accuracy=fne_accuracy, feature_width=int(train_features.shape[1]),
               last_layer_width=int(width))

# %% [markdown]
# Which animals get confused? The confusion matrix of the FNE classifier:

# %%
matrix = keras_tl.evaluate_predictions(dataset.test.labels, embedding.predict(test_features),
                                       dataset.class_names)["confusion_matrix"]
figure = plots.plot_confusion_matrix(matrix, dataset.class_names, FIGURES / "confusion_matrix.png",
                                     title="FNE + linear SVM")

# %% [markdown]
# ## 8. How transferable is each layer?
# Yosinski et al. (2014) asked how general the features of each depth are. Here each layer alone
# feeds an SVM: early layers (edges) are weak, the middle of the network often transfers best to a
# domain far from ImageNet, and the last layers are specialised to ImageNet's classes.

# %%
layer_accuracy = []
for entry in info:
    single = make_pipeline(Normalizer("l2"), LinearSVC())
    single.fit(train_features[:, columns[entry["name"]]], dataset.train.labels)
    layer_accuracy.append(single.score(test_features[:, columns[entry["name"]]], dataset.test.labels))
figure, axes = plt.subplots(figsize=(8, 4))
axes.plot(range(1, len(info) + 1), layer_accuracy, "-o", label="one layer")
axes.axhline(fne_accuracy, color="C1", linestyle="--", label="FNE (all layers)")
axes.set_xlabel("layer (input to output)")
axes.set_ylabel("test accuracy")
axes.set_title("Transferability per layer")
axes.legend()
figure = plots.finish_figure(figure, FIGURES / "per_layer.png")
results["best_layer"] = info[int(np.argmax(layer_accuracy))]["name"]

# %% [markdown]
# ## 9. Accuracy against shots
# With K training images per class, how good is each method? Each point is the mean over seeded
# draws, the bar the standard deviation.

# %%
shots = [1, 2, 5, 10] if SMALL else [1, 2, 5, 10, 20, 50]
repeats = 2 if SMALL else 5
curves = {
    "last layer": keras_tl.few_shot(make_pipeline(Normalizer("l2"), LinearSVC()), train_features[:, last_columns],
                                    dataset.train.labels, test_features[:, last_columns], dataset.test.labels,
                                    shots, repeats, verbose=False),
    "FNE": keras_tl.few_shot(make_pipeline(keras_tl.FNETransformer(), LinearSVC()), train_features,
                             dataset.train.labels, test_features, dataset.test.labels, shots, repeats, verbose=False),
}
figure = plots.plot_few_shot(curves, FIGURES / "few_shot.png")

# %% [markdown]
# ## 10. One Keras model from pixels to embedding, saved as `.keras`
# The adapted layer is an ordinary Keras layer: put it on top of the extractor and save it in the
# lab's run folder.

# %%
fne_layer = embedding[0].to_layer()
outputs = fne_layer(keras.layers.Concatenate()(extractor.pooled_model.outputs))
embedder = keras.Model(extractor.model.inputs, outputs, name="mobilenet_fne")
embedder.save(RUN_DIR / "mobilenet_fne.keras")
print(f"saved {embedder.name}: images -> {embedder.output_shape[-1]:,} values in {{-1, 0, 1}}")

# %% [markdown]
# ## Exercises
# The solutions are in the teacher's version; the student's version has an empty cell instead.
#
# **Exercise 1 (10 min).** Make your own kernel: a 3x3 kernel that finds *vertical* edges only
# (bright on one side, dark on the other). Show it on the photo next to the Laplacian.
# *Hint*: the Sobel kernel `[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]`. *Expected*: a picture where the
# temple's columns are bright and its horizontal roof lines nearly vanish.

# %% tags=["solution"]
sobel = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], float)
figure, axes = plt.subplots(1, 2, figsize=(8, 4))
for panel, (name, kernel) in zip(axes, [("laplacian", KERNELS["edge"]), ("vertical Sobel", sobel)]):
    panel.imshow(np.clip(np.abs(ndimage.convolve(photo, kernel)), 0, 1), cmap="gray")
    panel.set_title(name)
    panel.axis("off")
figure = plots.finish_figure(figure, FIGURES / "exercise1_sobel.png")

# %% [markdown]
# **Exercise 2 (10 min).** Which step of the embedding gives most of the gain: standardisation
# or discretisation? Fit an SVM on the standardised features (`sklearn.preprocessing.StandardScaler`)
# and compare with the FNE. *Hint*: `make_pipeline(StandardScaler(), LinearSVC())`.
# *Expected*: standardisation alone already gains most of the way from the baseline to the FNE
# (within about 0.05 of the FNE at full size).

# %% tags=["solution"]
from sklearn.preprocessing import StandardScaler  # noqa: E402

standardised = make_pipeline(StandardScaler(), LinearSVC()).fit(train_features, dataset.train.labels)
print(f"baseline {baseline_accuracy:.3f}, standardised {standardised.score(test_features, dataset.test.labels):.3f}, "
      f"FNE {fne_accuracy:.3f}")

# %% [markdown]
# **Exercise 3 (10 min).** How much of the accuracy came from ImageNet? Build the same network with
# random weights (`source.build(weights=None, image_size=IMAGE_SIZE)`), extract, and fit the FNE.
# *Hint*: `keras_tl.FeatureExtractor(source, "fne", image_size=IMAGE_SIZE, weights=None)`.
# *Expected*: random weights still beat chance (0.10) but lose roughly 0.1 to 0.4 of accuracy
# against ImageNet weights.

# %% tags=["solution"]
random_extractor = keras_tl.FeatureExtractor(source, "fne", image_size=IMAGE_SIZE, weights=None)
random_train, _ = random_extractor.extract(dataset.train, verbose=False)
random_test, _ = random_extractor.extract(dataset.test, verbose=False)
random_fne = make_pipeline(keras_tl.FNETransformer(), LinearSVC()).fit(random_train, dataset.train.labels)
print(f"FNE with random weights {random_fne.score(random_test, dataset.test.labels):.3f}, "
      f"with ImageNet weights {fne_accuracy:.3f}")

# %% [markdown]
# **Exercise 4 (5 min).** In the few-shot figure, from how many images per class does the FNE beat
# the last layer? Print the gap for each K. *Hint*: `curves["FNE"][k]["mean"]`.
# *Expected*: the FNE is ahead from 1 or 2 images per class on, by 0.05 to 0.2.

# %% tags=["solution"]
for k in shots:
    print(f"K={k:>2}: FNE - last layer = {curves['FNE'][k]['mean'] - curves['last layer'][k]['mean']:+.3f}")

# %% [markdown]
# **Exercise 5 (15 min).** Does the FNE need every layer? Keep only the second half of the layers
# (`fne_layers[len(fne_layers) // 2:]`), select their columns, and fit the FNE.
# *Hint*: `extractor.columns(names)`.
# *Expected*: within about 0.05 of the full FNE, with about 85% of the columns.

# %% tags=["solution"]
top_names = fne_layers[len(fne_layers) // 2:]
top_columns = extractor.columns(top_names)
top_fne = make_pipeline(keras_tl.FNETransformer(), LinearSVC()).fit(train_features[:, top_columns],
                                                                    dataset.train.labels)
print(f"{len(top_columns):,} of {train_features.shape[1]:,} columns: "
      f"{top_fne.score(test_features[:, top_columns], dataset.test.labels):.3f} (all: {fne_accuracy:.3f})")

# %% [markdown]
# ## Results
# The key numbers go to `results.json` in the run folder (the automated tests read them).

# %%
runs.write_json(RUN_DIR / "results.json", results)
print(results)
