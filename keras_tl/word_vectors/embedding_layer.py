"""Pre-trained word vectors as the first layer of a Keras model: transfer learning for text.

A ``keras.layers.Embedding`` maps token ids to vectors. Filled with GloVe or word2vec vectors
(:mod:`keras_tl.word_vectors`) and frozen, it hands the layers after it what was learnt from
billions of words, and only those layers train on the task's few examples.
"""
import keras
import numpy as np


def embedding_matrix(word_vectors, vocabulary):
    """The weights for a model's ``vocabulary`` (token ``i`` gets row ``i``) and the tokens not found.

    Each row is the token's unit vector; a token the vectors do not know (the padding ``""`` and
    ``"[UNK]"`` of ``keras.layers.TextVectorization``, or a rare word) gets a row of zeros.
    """
    matrix = np.zeros((len(vocabulary), word_vectors.vector_size), dtype=np.float32)
    missing = []
    for row, token in enumerate(vocabulary):
        if token in word_vectors:
            matrix[row] = word_vectors.get_vector(token, norm=True)
        else:
            missing.append(token)
    return matrix, missing


def frozen_embedding(word_vectors, vocabulary, mask_zero=False, name="word_embedding"):
    """A ``keras.layers.Embedding`` holding the vectors of ``vocabulary``, frozen (``trainable=False``).

    ``vocabulary`` is the model's token list, for example ``TextVectorization.get_vocabulary()``,
    whose index 0 is padding and index 1 the unknown token (both zero rows, see
    :func:`embedding_matrix`); with ``mask_zero=True`` later layers skip id 0.
    """
    matrix, _ = embedding_matrix(word_vectors, vocabulary)
    layer = keras.layers.Embedding(len(vocabulary), word_vectors.vector_size, mask_zero=mask_zero,
                                   trainable=False, name=name)
    layer.build()
    layer.set_weights([matrix])
    return layer
