# %% [markdown]
# # Lab 1: feature extraction and the Full-Network Embedding
#
# Reuse an ImageNet CNN without training it: run images through it, keep some activations as
# features, and train a linear classifier on them. We compare the classic choice (the last conv
# layer) with the Full-Network Embedding (FNE, Garcia-Gasulla et al. 2018), which keeps every layer,
# on two targets: real photographs of objects, close to ImageNet, and animal silhouettes, far from it.
#
# **Run it** from the repository root: `python labs/lab1_feature_extraction.py` (about 4 minutes on
# a 2-core laptop, offline: 4 min 8 s measured with other work on the machine), or open
# `labs/lab1_feature_extraction.ipynb` in Jupyter or Colab. `KERAS_TL_LAB_SMALL=1` shrinks data for
# a quick check. Everything is written to `runs/lab1/`, the cached features included.
# The photographs come with Debian's Tux Paint stamps (`apt-get install --no-install-recommends
# tuxpaint-stamps-default`, see `datasets/tuxpaint_photos.md`).
#
# **Slide topics**: convolution kernels, pre-trained networks as feature extractors, which layer
# transfers, the FNE pipeline with its SVM, similar and dissimilar targets, few-shot learning, maps and
# clusters of an embedding space.
#
# **The numbers quoted** in the text and in the exercises' *Expected* answers are what this script
# printed at full size with its seeds. Some of the course's claims do not hold on this data; the lab
# says where, and asks you why.

# %% [markdown]
# ## Setup
# `import_tensorflow_quietly` hides TensorFlow's start-up lines. `SMALL` shrinks the data so that
# the whole lab runs in under a minute (the automated tests use it). Every accuracy below is measured on
# seeded 80/20 splits, `SEEDS`, so each run of the lab prints the same numbers.

# %%
import os
import pathlib

from keras_tl.tf_logs import import_tensorflow_quietly

tf = import_tensorflow_quietly()

import keras  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.metrics import balanced_accuracy_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import Normalizer  # noqa: E402
from sklearn.svm import LinearSVC  # noqa: E402

import keras_tl  # noqa: E402
from keras_tl import plots, runs  # noqa: E402
from keras_tl.analysis import image_maps  # noqa: E402
from keras_tl.data import load_image, per_class_subset, sample_photos, stratified_split  # noqa: E402

SMALL = os.environ.get("KERAS_TL_LAB_SMALL") == "1"
RUN_DIR = pathlib.Path(os.environ.get("KERAS_TL_LAB_RUN_DIR", "runs/lab1"))
FIGURES = RUN_DIR / "figures"
FIGURES.mkdir(parents=True, exist_ok=True)
SEEDS = [0, 1, 2] if SMALL else [0, 1, 2, 3, 4]
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
IMAGE_SIZE = 64 if SMALL else 128
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
# ## 4. Two targets: photographs near ImageNet, silhouettes far from it
# The course says transfer depends on how close the target is to the source. We take one target of
# each kind:
#
# - **similar**: `tuxpaint_photos`, 211 real photographs of objects (birds, fish, flowers, fruit,
#   mammals, musical instruments, tools, vegetables, vehicles), cut out on white. ImageNet has
#   hundreds of classes of such objects.
# - **dissimilar**: `animal_mnist`, white animal silhouettes on black, 28x28 pixels, a domain
#   ImageNet never saw. We keep 25 images per class, about as many as the photographs have.
#
# Both are resized to the model's input.

# %%
photos = keras_tl.load_dataset("tuxpaint_photos", train_per_class=8 if SMALL else None,
                               test_per_class=2 if SMALL else None, seed=0)
silhouettes = keras_tl.load_dataset("animal_mnist", train_per_class=8 if SMALL else 20,
                                    test_per_class=2 if SMALL else 5, seed=0)
TARGETS = {"photos (similar)": photos, "silhouettes (dissimilar)": silhouettes}
for dataset in TARGETS.values():
    print(dataset.summary())
columns_shown = max(len(dataset.class_names) for dataset in TARGETS.values())
figure, axes = plt.subplots(len(TARGETS), columns_shown, figsize=(1.6 * columns_shown, 4))
for row, dataset in zip(axes, TARGETS.values()):
    for label, panel in enumerate(row):
        panel.axis("off")
        if label < len(dataset.class_names):
            first = np.flatnonzero(dataset.train.labels == label)[0]
            image = (load_image(dataset.train.paths[first], 96) if dataset.train.paths is not None
                     else dataset.train.images[first])
            panel.imshow(image, cmap="gray")
            panel.set_title(dataset.class_names[label].replace("_", " "), fontsize=8)
figure = plots.finish_figure(figure, FIGURES / "samples.png")

# %% [markdown]
# ## 5. Extract once, pooled inside the graph
# The extractor is one model with one output per layer; each 4-D map is averaged over space inside
# the graph, so the large maps never reach numpy. It reads the images through the source's own
# `preprocess_input`. With `cache_dir` the features are kept on disk: run this cell again and no
# image goes through the network (`extractor.last_counts` counts them).
#
# Each dataset's images, train and test together, make one *pool* of features; every split below is
# drawn from it with `stratified_split`, so no image is ever run through the network twice.

# %%
CACHE = RUN_DIR / "feature_cache"


def extract_pool(dataset):
    """Features and labels of every image of ``dataset`` (its train, then its test images)."""
    parts, computed = [], 0
    for part in (dataset.train, dataset.test):
        parts.append(extractor.extract(part, cache_dir=CACHE, verbose=False)[0])
        computed += extractor.last_counts["images_extracted"]
    print(f"{dataset.name}: {computed} of {len(dataset.train) + len(dataset.test)} images through the network, "
          "the others from the cache")
    return np.concatenate(parts), np.concatenate([dataset.train.labels, dataset.test.labels])


pools = {name: extract_pool(dataset) for name, dataset in TARGETS.items()}
photo_features, photo_labels = pools["photos (similar)"]
columns = {entry["name"]: entry["columns"] for entry in info}
last_columns = columns[last_layer[0]]
print(f"photo features: {photo_features.shape}; {last_layer[0]} is columns "
      f"{last_columns.start}..{last_columns.stop - 1}")

# %% [markdown]
# ## 6. Baseline: last layer, L2-normalised, linear SVM
# One split first (seed 0): 80 % of each class to train, 20 % to test.

# %%


def linear_svm():
    """A linear SVM, seeded: liblinear visits the training samples in a random order."""
    return LinearSVC(random_state=0)


train, test = stratified_split(photo_labels, 0.2, seed=0)
baseline = make_pipeline(Normalizer("l2"), linear_svm())
baseline.fit(photo_features[train][:, last_columns], photo_labels[train])
baseline_accuracy = baseline.score(photo_features[test][:, last_columns], photo_labels[test])

# %% [markdown]
# ## 7. Full-Network Embedding: standardise with train statistics, discretise to {-1, 0, 1}
# `FNETransformer` adapts a `FullNetworkEmbedding` layer on the training features only.

# %%
embedding = make_pipeline(keras_tl.FNETransformer(), linear_svm())
embedding.fit(photo_features[train], photo_labels[train])
fne_accuracy = embedding.score(photo_features[test], photo_labels[test])
codes = embedding[0].transform(photo_features[test])
width = last_columns.stop - last_columns.start
print(f"{len(train)} train and {len(test)} test photographs (split seed 0)")
print(f"baseline (last layer, {width:,} dims): {baseline_accuracy:.3f}")
print(f"FNE ({photo_features.shape[1]:,} dims):          {fne_accuracy:.3f}")
print(f"FNE values: {np.mean(codes == -1):.0%} are -1, {np.mean(codes == 0):.0%} are 0, {np.mean(codes == 1):.0%} are 1")
results.update(baseline_accuracy=baseline_accuracy, fne_accuracy=fne_accuracy,
               feature_width=int(photo_features.shape[1]), last_layer_width=int(width))

# %% [markdown]
# At full size this printed 0.907 for the last layer and 0.837 for the FNE: on this split the FNE
# is *behind*, by 3 of the 43 test images. The course expects the opposite (step 8 asks whether it
# is this split). Which objects get confused? The confusion matrix of the FNE classifier:

# %%
matrix = keras_tl.evaluate_predictions(photo_labels[test], embedding.predict(photo_features[test]),
                                       photos.class_names)["confusion_matrix"]
figure = plots.plot_confusion_matrix(matrix, photos.class_names, FIGURES / "confusion_matrix.png",
                                     title="FNE + linear SVM, photographs")

# %% [markdown]
# At full size 7 of the 43 test photographs are wrong: both musical instruments are called *tools*,
# one bird a *mammal* and one a *tool*, a mammal and a vegetable *fish*, a vehicle a *bird*. Open a
# few photographs of these classes (`photos.train.paths`): what could a trumpet share with a tool?

# %% [markdown]
# ## 8. Near and far: how much does the FNE gain?
# The slides: the FNE beats fc6 and fc7 by +2.9 and +4.2 points on average on targets *similar*
# to ImageNet, and by +3.3 to +17.5 on *dissimilar* ones. One split of 43 test images is too few
# to measure a few points (one image is 2.3 points), so each target is split `len(SEEDS)` times
# and we report the mean ± std of the accuracy and of the gain, FNE minus last layer, per seed.


# %%
def split_accuracies(classifier, features, labels):
    """Test accuracy of a fresh copy of ``classifier`` on each seeded 80/20 stratified split of a pool."""
    accuracies = []
    for seed in SEEDS:
        train_rows, test_rows = stratified_split(labels, 0.2, seed)
        fitted = clone(classifier).fit(features[train_rows], labels[train_rows])
        accuracies.append(fitted.score(features[test_rows], labels[test_rows]))
    return np.array(accuracies)


def mean_std(values, scale=1.0, spec=".3f"):
    """``"mean ± std"`` of ``values`` times ``scale``; ``spec`` formats the mean (``"+.1f"``: a signed gain)."""
    return f"{scale * np.mean(values):{spec}} ± {scale * np.std(values):{spec.lstrip('+')}}"


comparison = {}
for name, (features, labels) in pools.items():
    last = split_accuracies(make_pipeline(Normalizer("l2"), linear_svm()), features[:, last_columns], labels)
    fne = split_accuracies(make_pipeline(keras_tl.FNETransformer(), linear_svm()), features, labels)
    comparison[name] = {"last layer": last, "FNE": fne, "gain": fne - last}
print(f"mean ± std over split seeds {SEEDS}")
print(f"{'target':<26} {'last layer':<15} {'FNE':<15} FNE - last layer (points)")
for name, row in comparison.items():
    print(f"{name:<26} {mean_std(row['last layer']):<15} {mean_std(row['FNE']):<15} "
          f"{mean_std(row['gain'], 100, '+.1f')}")

figure, axes = plt.subplots(figsize=(6, 4))
for position, (name, row) in enumerate(comparison.items()):
    axes.bar(position, 100 * row["gain"].mean(), yerr=100 * row["gain"].std(), capsize=6, color=f"C{position}",
             alpha=0.6)
    axes.plot([position] * len(SEEDS), 100 * row["gain"], "ko", markersize=4)
axes.axhline(0, color="black", linewidth=0.8)
axes.set_xticks(range(len(comparison)), list(comparison))
axes.set_ylabel("FNE - last layer (accuracy points)")
axes.set_title(f"The FNE's gain, mean ± std over {len(SEEDS)} splits (dots: each split)")
figure = plots.finish_figure(figure, FIGURES / "similar_vs_dissimilar.png")
results["gain"] = {name: {"mean": float(row["gain"].mean()), "std": float(row["gain"].std())}
                   for name, row in comparison.items()}

# %% [markdown]
# At full size this printed (mean ± std over seeds 0-4):
#
# | target | last layer | FNE | FNE - last layer |
# |---|---|---|---|
# | photos (similar) | 0.851 ± 0.048 | 0.809 ± 0.017 | -4.2 ± 3.7 points |
# | silhouettes (dissimilar) | 0.892 ± 0.037 | 0.916 ± 0.034 | +2.4 ± 2.3 points |
#
# - **The course's point holds**: the FNE gains more on the target far from ImageNet than on the
#   close one, 6.6 points more. It never wins a photo split (2 ties, 3 losses by 2 to 4 images) and
#   never loses a silhouette split (2 ties, 3 wins by 1 to 3 images).
# - **Its size does not**: on the photographs the FNE is *below* the last layer, where the slides
#   report +2.9 and +4.2 on similar targets; on the silhouettes it gains +2.4 ± 2.3, under the
#   slides' +3.3 to +17.5 for dissimilar ones, and within about one std of zero.
#
# **Questions.** The slides' numbers come from the FNE paper: VGG16 at 224 px, its fc6 and fc7
# layers as the baselines, targets of thousands of images. Here MobileNet runs at 128 px, its last
# layer is a conv layer, and each split trains on 168 photographs. Which of these differences could
# let the last layer win on photographs of objects that ImageNet's classes already separate? The
# FNE standardises each of its 10,944 features with statistics of the training images only, and
# gives the 9,920 features of the earlier layers as much say as the 1,024 of the last: what would
# you expect with ten times more training images per class?

# %% [markdown]
# ## 9. How transferable is each layer?
# Yosinski et al. (2014) asked how general the features of each depth are. Here each layer alone
# feeds an SVM, on both targets, over the same seeded splits. The slides: early layers (edges) are
# weak, the last layers suit targets close to ImageNet, and the middle of the network often
# transfers best to a target far from it.

# %%
layer_curves = {}
for name, (features, labels) in pools.items():
    layer_curves[name] = {}
    for entry in info:
        accuracies = split_accuracies(make_pipeline(Normalizer("l2"), linear_svm()), features[:, entry["columns"]],
                                      labels)
        layer_curves[name][entry["name"]] = {"depth": entry["depth"], "mean": float(np.mean(accuracies)),
                                             "std": float(np.std(accuracies))}
fne_lines = {name: {"mean": float(row["FNE"].mean())} for name, row in comparison.items()}
figure = plots.plot_layers(layer_curves, fne_lines, FIGURES / "per_layer.png", title="Transferability per layer")
print(f"{'layer':<18} {'depth':>5}  " + "  ".join(f"{name:<24}" for name in layer_curves))
for entry in info:
    cells = [f"{curve[entry['name']]['mean']:.3f} ± {curve[entry['name']]['std']:.3f}"
             for curve in layer_curves.values()]
    print(f"{entry['name']:<18} {entry['depth']:>5.2f}  " + "  ".join(f"{cell:<24}" for cell in cells))
results["best_layer"] = {}
for name, curve in layer_curves.items():
    best = max(curve, key=lambda layer: curve[layer]["mean"])
    results["best_layer"][name] = {"name": best, "depth": curve[best]["depth"], "accuracy": curve[best]["mean"]}
    print(f"{name:<26} best single layer {best} (depth {curve[best]['depth']:.2f}): "
          f"{curve[best]['mean']:.3f}; last layer {curve[last_layer[0]]['mean']:.3f}")

# %% [markdown]
# At full size the best single layer is the **last one** on both targets (`conv_pw_13_relu`, 0.851
# on the photographs, 0.892 on the silhouettes), and the curves rise, unevenly, all the way up; the
# middle of the network (`conv_pw_6_relu`, depth 0.49) gives 0.614 and 0.508. So the slides'
# "middle layers for far targets" does not hold here, even on silhouettes (the `layers` study in
# `docs/results.md` finds the same for MobileNet on most targets). Only the FNE, which keeps every
# layer, beats the last layer on the silhouettes (the dashed line, 0.916).
#
# **Questions.** Why might the last layer transfer best even to silhouettes? (Think of what pooling
# over space keeps of a 4x4 map, and of what the early layers see in a white shape on black.) Why
# are the first layers so much better on the photographs (0.437 against 0.196 at `conv1_relu`)? And
# why does the curve zigzag? From `conv_dw_9_relu` to `conv_dw_12_relu`, each depthwise layer
# (`conv_dw_N_relu`, which filters each channel alone) scores below the pointwise layers on both
# its sides, on both targets.

# %% [markdown]
# ## 10. Accuracy against shots
# With K training images per class, how good is each method? The test images are those of split
# seed 0; each point is the mean over seeded draws of K training images per class, the bar the
# standard deviation. The photographs have few images in some classes (8 train images of fish), so
# a class with fewer than K gives all it has.

# %%
shots = [1, 2, 5] if SMALL else [1, 2, 5, 10, 20]
repeats = 2 if SMALL else 5
curves = {
    "last layer": keras_tl.few_shot(make_pipeline(Normalizer("l2"), linear_svm()),
                                    photo_features[train][:, last_columns], photo_labels[train],
                                    photo_features[test][:, last_columns], photo_labels[test], shots, repeats,
                                    verbose=False),
    "FNE": keras_tl.few_shot(make_pipeline(keras_tl.FNETransformer(), linear_svm()), photo_features[train],
                             photo_labels[train], photo_features[test], photo_labels[test], shots, repeats,
                             verbose=False),
}
figure = plots.plot_few_shot(curves, FIGURES / "few_shot.png", title="Few-shot accuracy, photographs")
for k in shots:
    print(f"K={k:>2}: " + ", ".join(f"{name} {curve[k]['mean']:.3f} ± {curve[k]['std']:.3f}"
                                   for name, curve in curves.items()))

# %% [markdown]
# ## 11. One Keras model from pixels to embedding, saved as `.keras`
# The adapted layer is an ordinary Keras layer: put it on top of the extractor and save it in the
# lab's run folder.

# %%
fne_layer = embedding[0].to_layer()
outputs = fne_layer(keras.layers.Concatenate()(extractor.pooled_model.outputs))
embedder = keras.Model(extractor.model.inputs, outputs, name="mobilenet_fne")
embedder.save(RUN_DIR / "mobilenet_fne.keras")
print(f"saved {embedder.name}: images -> {embedder.output_shape[-1]:,} values in {{-1, 0, 1}}")

# %% [markdown]
# ## 12. A map of the embedding
# What does the feature space look like? The course's "embedding spaces" (and Orange's image
# analytics) look at it three ways, all with `keras_tl.analysis.image_maps`:
#
# - a **map**: each photograph's thumbnail at its place in 2-D, framed in its class's colour. t-SNE
#   (van der Maaten & Hinton 2008) keeps each image's near neighbours near (PCA in small mode);
# - a **dendrogram**: hierarchical clustering on cosine distances, which joins the closest images
#   first (4 photographs of each class, to keep the thumbnails readable);
# - **k-means**, blind to the labels, with one cluster per class. Its *purity* is the share of images
#   in their cluster's most common class: 1.0 when every cluster is one class; one cluster for
#   everything gives the share of the largest class, mammals.
#
# Every photograph of the pool is used, its FNE fitted on all of them (no classifier is trained here).
# For a run of `python -m keras_tl.fne`, `python -m keras_tl.inspect RUN --map tsne --dendrogram
# --clusters` draws the same figures.

# %%
photo_paths = np.concatenate([photos.train.paths, photos.test.paths])  # the pool's order
spaces = {"last layer": photo_features[:, last_columns],
          "FNE": keras_tl.FNETransformer().fit_transform(photo_features)}
map_method = "pca" if SMALL else "tsne"
figure = image_maps.plot_image_map(spaces["FNE"], photo_paths, photo_labels, photos.class_names, method=map_method,
                                   title=f"{image_maps.PROJECTION_NAMES[map_method]} map of the FNE of the "
                                         f"{len(photo_labels)} photographs", path=FIGURES / "image_map.png")

# %%
leaves = per_class_subset(photo_labels, 4, seed=0)
figure = image_maps.plot_dendrogram(spaces["FNE"][leaves], photo_paths[leaves], photo_labels[leaves],
                                    photos.class_names, path=FIGURES / "dendrogram.png")

# %%
purity, clusters = {}, {}
for name, features in spaces.items():
    clusters[name], purity[name] = image_maps.kmeans_clusters(features, photo_labels, seed=0)
    print(f"k-means, {len(photos.class_names)} clusters, {name}: purity {purity[name]:.3f}")
print(f"one cluster for all: {np.bincount(photo_labels).max() / len(photo_labels):.3f}")
for cluster in range(len(photos.class_names)):
    counts = np.bincount(photo_labels[clusters["FNE"] == cluster], minlength=len(photos.class_names))
    print(f"FNE cluster {cluster} ({counts.sum():>2} images): " + ", ".join(
        f"{counts[label]} {photos.class_names[label]}" for label in np.argsort(-counts, kind="stable") if counts[label]))
results["cluster_purity"] = {name: float(value) for name, value in purity.items()}

# %% [markdown]
# At full size k-means finds the classes better in the last layer (purity 0.725) than in the FNE
# (0.664), both far above one cluster for everything (0.289, the share of mammals): without labels
# too, the last layer groups these photographs by class more than the FNE does, as the SVMs of step 8
# found with them. The FNE's clusters follow the map: one holds 40 mammals and nothing else, one 20
# fruit with 11 vegetables, one 18 flowers among its 23 images, one 23 birds with 7 mammals; the
# tools lead a mixed cluster (10 of its 26 images, with birds, flowers and vegetables). On the t-SNE
# map the animals (mammals, birds) lie on one side, the plants (fruit, vegetables, flowers) on
# another, and the things people make (tools, instruments, vehicles) between them. In the dendrogram
# the closest pair is two tools (cosine distance 0.19).
#
# **Questions.** k-means never saw a label: why do its clusters follow ImageNet-like categories at
# all? Which classes would you merge, judging by the map, and which photographs sit in the wrong
# class's region (look for a frame of one colour among another's)?

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
# **Exercise 2 (10 min).** Which step of the embedding matters: standardisation or
# discretisation? On both targets, fit an SVM on all layers standardised only
# (`sklearn.preprocessing.StandardScaler`) and compare with the last layer and the FNE, over the
# seeds. *Hint*: `split_accuracies(make_pipeline(StandardScaler(), linear_svm()), features, labels)`.
# *Expected*: on the photographs standardising alone gives 0.795 ± 0.017, below the FNE (0.809 ±
# 0.017) and the last layer (0.851 ± 0.048): the discretisation adds a little, and neither step
# catches up with the last layer. On the silhouettes standardising alone gives 0.924 ± 0.032, as
# good as the FNE (0.916 ± 0.034, within one std): there the standardisation makes the gain.

# %% tags=["solution"]
from sklearn.preprocessing import StandardScaler  # noqa: E402

for name, (features, labels) in pools.items():
    standardised = split_accuracies(make_pipeline(StandardScaler(), linear_svm()), features, labels)
    print(f"{name:<26} last layer {mean_std(comparison[name]['last layer'])}, "
          f"standardised {mean_std(standardised)}, FNE {mean_std(comparison[name]['FNE'])}")

# %% [markdown]
# **Exercise 3 (10 min).** How much of the accuracy came from ImageNet? Build the same network with
# random weights, extract the photographs, and fit the FNE over the seeds.
# *Hint*: `keras_tl.FeatureExtractor(source, "fne", image_size=IMAGE_SIZE, weights=None)`.
# *Expected*: random weights give 0.558 ± 0.033, far above chance (0.11) and above always
# answering the largest class, mammals (0.29), but 0.25 below ImageNet weights (0.809 ± 0.017).
# Random convolutions still measure colour and texture.

# %% tags=["solution"]
random_extractor = keras_tl.FeatureExtractor(source, "fne", image_size=IMAGE_SIZE, weights=None)
random_features = np.concatenate([random_extractor.extract(part, verbose=False)[0]
                                  for part in (photos.train, photos.test)])
random_fne = split_accuracies(make_pipeline(keras_tl.FNETransformer(), linear_svm()), random_features, photo_labels)
print(f"FNE with random weights {mean_std(random_fne)}, with ImageNet weights "
      f"{mean_std(comparison['photos (similar)']['FNE'])} (chance: {1 / len(photos.class_names):.2f}, "
      f"always 'mammals': {np.mean(photo_labels == photos.class_names.index('mammals')):.2f})")

# %% [markdown]
# **Exercise 4 (5 min).** In the few-shot figure, does the FNE ever beat the last layer on the
# photographs? Print the gap for each K. *Hint*: `curves["FNE"][k]["mean"]`.
# *Expected*: no: the FNE is behind at every K, by 0.065 (K=1), 0.102 (K=2), 0.088 (K=5), 0.074
# (K=10) and 0.028 (K=20); the gap narrows from K=2 on. The slides' "a few samples per class go a
# long way" holds for both: with 5 images per class the last layer reaches 0.772, 89 % of its 0.865
# at K=20, and the FNE 0.684, 82 % of its 0.837.
# **Question**: with one image per class the FNE's standardisation is estimated from 9 images. Yet
# with every training image of split 0 (step 7, the same test images) the gap was 0.070, wider than
# at K=20: is the narrowing real, or within the spread of the draws?

# %% tags=["solution"]
for k in shots:
    print(f"K={k:>2}: FNE - last layer = {curves['FNE'][k]['mean'] - curves['last layer'][k]['mean']:+.3f}")

# %% [markdown]
# **Exercise 5 (15 min).** Does the FNE need every layer? Keep only the second half of the layers
# (`fne_layers[len(fne_layers) // 2:]`), select their columns, and fit the FNE on both targets.
# *Hint*: `extractor.columns(names)`.
# *Expected*: the second half of the layers is 8,704 of the 10,944 columns (80 %) and does as well
# as every layer: 0.814 ± 0.033 on the photographs (all: 0.809 ± 0.017) and 0.924 ± 0.029 on the
# silhouettes (all: 0.916 ± 0.034). The first half of the network adds nothing the SVM can use
# here.

# %% tags=["solution"]
top_names = fne_layers[len(fne_layers) // 2:]
top_columns = extractor.columns(top_names)
for name, (features, labels) in pools.items():
    top_fne = split_accuracies(make_pipeline(keras_tl.FNETransformer(), linear_svm()), features[:, top_columns],
                               labels)
    print(f"{name:<26} {len(top_columns):,} of {features.shape[1]:,} columns: {mean_std(top_fne)} "
          f"(all: {mean_std(comparison[name]['FNE'])})")

# %% [markdown]
# **Exercise 6 (10 min).** Imbalanced classes: the photographs' classes hold 10 to 55 images (8 to
# 49 to train). Over the five splits, compare the last-layer SVM's accuracy and *balanced* accuracy
# (the mean of the recalls of the classes, `sklearn.metrics.balanced_accuracy_score`), with and without
# `class_weight="balanced"` (each class's errors weighted by n / (k x its images), what
# `--class-weight auto` does in the jobs). *Hint*: `linear_svm().set_params(class_weight="balanced")`,
# and a loop like `split_accuracies`'s. *Expected*: weighting helps both here: accuracy 0.851 ±
# 0.048 to 0.874 ± 0.048, balanced accuracy 0.789 ± 0.075 to 0.841 ± 0.060. The balanced accuracy,
# which counts each class equally, gains more (5.2 points against 2.3): the plain SVM neglects the
# small classes. With 2 to 12 test images per class, mind the spreads.

# %% tags=["solution"]
for class_weight in (None, "balanced"):
    scores = []
    for seed in SEEDS:
        train_rows, test_rows = stratified_split(photo_labels, 0.2, seed)
        svm = make_pipeline(Normalizer("l2"), linear_svm().set_params(class_weight=class_weight))
        svm.fit(photo_features[train_rows][:, last_columns], photo_labels[train_rows])
        predicted, truth = svm.predict(photo_features[test_rows][:, last_columns]), photo_labels[test_rows]
        scores.append((np.mean(predicted == truth), balanced_accuracy_score(truth, predicted)))
    accuracy, balanced = np.array(scores).T
    print(f"class_weight={class_weight!s:<9} accuracy {mean_std(accuracy)}, balanced accuracy {mean_std(balanced)}")

# %% [markdown]
# **Exercise 7 (10 min).** Purity flatters many clusters: with one cluster per image it is 1.0. On
# the last layer of the photographs (`spaces["last layer"]`), run k-means with 3, 9 and 27 clusters and
# print the purity and the *adjusted Rand index* (`sklearn.metrics.adjusted_rand_score(photo_labels,
# clusters)`), which is about 0 for clusters that ignore the classes and 1 for the classes exactly.
# Which of the two numbers would you report, and how many clusters fit the classes best?
# *Hint*: `image_maps.kmeans_clusters(spaces["last layer"], photo_labels, n_clusters=k, seed=0)`.
# *Expected*: purity rises with the number of clusters, 0.536 (3), 0.725 (9), 0.801 (27), while
# the adjusted Rand index peaks at 9 clusters, the number of classes: 0.379, 0.469, 0.253. Report
# the adjusted Rand index (or both): purity alone would prefer ever more clusters.

# %% tags=["solution"]
from sklearn.metrics import adjusted_rand_score  # noqa: E402

for k in (3, 9, 27):
    k_clusters, k_purity = image_maps.kmeans_clusters(spaces["last layer"], photo_labels, n_clusters=k, seed=0)
    print(f"{k:>2} clusters: purity {k_purity:.3f}, adjusted Rand index "
          f"{adjusted_rand_score(photo_labels, k_clusters):.3f}")

# %% [markdown]
# ## Results
# The key numbers go to `results.json` in the run folder (the automated tests read them).

# %%
runs.write_json(RUN_DIR / "results.json", results)
print(results)
