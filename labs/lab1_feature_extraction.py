"""Lab 1: feature extraction and the Full-Network Embedding.

Reuse an ImageNet CNN without training it: run images through it, keep some activations as
features, and train a linear classifier on them. We compare the classic choice (the last conv
layer) with the Full-Network Embedding (Garcia-Gasulla et al. 2018), which keeps every layer.

Run it from the repository root:  python labs/lab1_feature_extraction.py
It takes about a minute on a 2-core laptop.
"""
# %% [markdown]
# ## 1. The source: MobileNet trained on ImageNet
# `keras_tl.get_source` knows each `keras.applications` model, its `preprocess_input` and the
# size it was trained at. `build` gives the model with ImageNet weights at any input size.

# %%
import numpy as np
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Normalizer
from sklearn.svm import LinearSVC

import keras_tl

source = keras_tl.get_source("mobilenet")
IMAGE_SIZE = 96
model = source.build(image_size=IMAGE_SIZE)
print(f"{source.name}: trained at {source.default_size} px, built at {IMAGE_SIZE} px, "
      f"{model.count_params():,} parameters")

# %% [markdown]
# ## 2. Which layers? Layer sets
# `fne` is every ReLU of the network, `last` only the final one. Early layers see edges and
# colours, late layers object parts: the embedding keeps all of them.

# %%
fne_layers = keras_tl.layer_names(model, "fne")
last_layer = keras_tl.layer_names(model, "last")
for entry in keras_tl.feature_info(model, fne_layers)[::6]:
    print(f"  {entry['name']:<18} {entry['channels']:>5} channels, 1/{entry['reduction']} resolution")
print(f"{len(fne_layers)} layers, {keras_tl.feature_size(model, 'fne'):,} features; last layer: {last_layer}")

# %% [markdown]
# ## 3. The target dataset: animal silhouettes
# A domain ImageNet never saw: white shapes on black, 28x28 pixels, resized to the model's input.

# %%
dataset = keras_tl.load_dataset("animal_mnist", train_per_class=50, test_per_class=25, seed=0)
print(dataset.summary())

# %% [markdown]
# ## 4. Extract once, pooled inside the graph
# One model with one output per layer; each 4-D map is averaged over space inside the graph,
# so the large maps never reach numpy. The `last` features are a slice of the `fne` ones.

# %%
extractor = keras_tl.build_extractor(model, fne_layers)


def pipeline(images):
    return keras_tl.make_pipeline(images, IMAGE_SIZE, source.preprocess_input, batch_size=32)


train_features, _ = keras_tl.extract_features(extractor, dataset.train, pipeline)
test_features, _ = keras_tl.extract_features(extractor, dataset.test, pipeline)
last_columns = slice(train_features.shape[1] - 1024, None)  # conv_pw_13_relu is the last layer: 1024 channels

# %% [markdown]
# ## 5. Baseline: last layer, L2-normalised, linear SVM

# %%
baseline = make_pipeline(Normalizer("l2"), LinearSVC())
baseline.fit(train_features[:, last_columns], dataset.train.labels)
baseline_accuracy = baseline.score(test_features[:, last_columns], dataset.test.labels)

# %% [markdown]
# ## 6. Full-Network Embedding: standardise with train statistics, discretise to {-1, 0, 1}
# `FNETransformer` adapts a `FullNetworkEmbedding` layer on the training features only.

# %%
embedding = make_pipeline(keras_tl.FNETransformer(), LinearSVC())
embedding.fit(train_features, dataset.train.labels)
fne_accuracy = embedding.score(test_features, dataset.test.labels)
codes = embedding[0].transform(test_features)
print(f"baseline (last layer, 1024 dims): {baseline_accuracy:.3f}")
print(f"FNE ({train_features.shape[1]:,} dims):          {fne_accuracy:.3f}")
print(f"FNE values: {np.mean(codes == -1):.0%} are -1, {np.mean(codes == 0):.0%} are 0, {np.mean(codes == 1):.0%} are 1")

# %% [markdown]
# ## 7. One Keras model from pixels to embedding, saved as `.keras`
# The adapted layer is an ordinary Keras layer: put it on top of the extractor and save.

# %%
import keras  # noqa: E402

fne_layer = embedding[0].layer_
outputs = fne_layer(keras.layers.Concatenate()(extractor.outputs))
embedder = keras.Model(extractor.inputs, outputs, name="mobilenet_fne")
embedder.save("/tmp/mobilenet_fne.keras")
print(f"saved {embedder.name}: images -> {embedder.output_shape[-1]:,} values in {{-1, 0, 1}}")

# %% [markdown]
# ## Exercises
# 1. Run `python -m keras_tl.fne --methods last:l2 fne:none fne:l2 fne:standardise fne:fne`:
#    which step of the embedding gives most of the gain, standardisation or discretisation?
# 2. Try `--weights none` (random weights). How much of the accuracy came from ImageNet?
# 3. Run `python -m keras_tl.fne --shots 1 2 5 10 20`: with how few images per class does the
#    FNE still beat the baseline?
