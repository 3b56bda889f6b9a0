"""Pre-trained word vectors (GloVe, word2vec) with gensim's names: the word-vector part of keras_tl.

Word vectors are the NLP face of transfer learning: learnt once from billions of words, reused as
they are. A :class:`WordVectors` loads them and answers what gensim's ``KeyedVectors`` answers
(``most_similar``, ``doesnt_match``, ``evaluate_word_analogies``, ...).

Modules:

- :mod:`~keras_tl.word_vectors.vectors`: ``WordVectors``, ``UnknownWordError``;
- :mod:`~keras_tl.word_vectors.formats`: reading GloVe text, word2vec text and binary (gzipped or
  not) and the packaged glove.6B.50d; ``VectorFormatError`` and its kinds;
- :mod:`~keras_tl.word_vectors.evaluation_sets`: the Google analogy set, WordSim-353 and SimLex-999
  (gensim's copies or any file in their format), their readers, ``parse_analogy``;
- :mod:`~keras_tl.word_vectors.scoring`: 3CosAdd and 3CosMul scores of a batch of queries, block by
  block, their top ``k``, and the answers of a set of analogy questions on every core;
- :mod:`~keras_tl.word_vectors.analogy_search`: the exact pruned search for a whole analogy set;
- :mod:`~keras_tl.word_vectors.maps`: ``cluster_words`` and ``project_words`` (k-means, PCA, t-SNE);
- :mod:`~keras_tl.word_vectors.embedding_layer`: the vectors as a frozen ``keras.layers.Embedding``.

Where a name is gensim's, so is the meaning (``wv[word]`` is the raw vector, ``get_vector(word,
norm=True)`` the unit one, ``distances(word, other_words)`` a 1-D array of ``1 - cos``). The
deliberate differences (also in ``docs/word_vectors.md``):

========================  ==========================================  ==========================================
what                      gensim ``KeyedVectors``                     ``WordVectors``
========================  ==========================================  ==========================================
loading                   ``load_word2vec_format`` (GloVe needs       ``load`` tells GloVe, word2vec text and
                          ``no_header=True``)                         binary apart; ``.gz`` text files too
rows with NaN or inf      loaded as they are                          an error naming them, or left out with
                                                                      ``bad_rows="drop"``
all-zero rows             NaN similarities (0 / 0)                    one warning at load; never an answer of
                                                                      ``most_similar``, ``doesnt_match`` or an
                                                                      analogy (questions using them are skipped);
                                                                      an error as a query; cosine 0 elsewhere
keys                      a word or a row number                      a word
unknown word              ``KeyError``                                ``UnknownWordError`` (a ``KeyError`` and
                                                                      a ``ValueError``) naming close words
``most_similar``          input words always left out; also takes     ``exclude_inputs=False`` lets them be the
                          ``indexer``                                 answer
``doesnt_match``          unknown words ignored (a log line)          an unknown word is an error; at least two
                                                                      words
``restrict_vocab``        0 means "no limit" in ``most_similar`` and  a positive number of words or None,
                          "no words" in the evaluations;              used by every method
                          ``most_similar_cosmul`` (4.4) ignores it
``evaluate_word_``        one ``most_similar`` call per question,     one matrix product per batch of questions
``analogies``             3CosAdd                                     and block of words, a batch per core;
                                                                      ``method="3cosmul"``, ``exclude_inputs``,
                                                                      ``progress``
not here                  training, ``save``, ``add_vectors``,        ``pairwise_distances(words, metric)``,
                          ``wmdistance`` (docs/word_vectors.md)       :func:`cluster_words`,
                                                                      :func:`project_words`
========================  ==========================================  ==========================================

The names below are the part's public API (``keras_tl.word_vectors.WordVectors``); they import numpy
only (scikit-learn and scipy are imported when used). The embedding layer imports Keras: import it
from its module.
"""
from keras_tl.word_vectors.evaluation_sets import (EVALUATION_FILES, evaluation_file, parse_analogy,
                                                   read_analogy_questions, read_word_pairs, section_accuracy)
from keras_tl.word_vectors.formats import (UNICODE_ERRORS, VECTOR_FORMATS, TruncatedVectorFileError,
                                           UndecodableVectorFileError, VectorFormatError)
from keras_tl.word_vectors.maps import PROJECTIONS, cluster_words, project_words
from keras_tl.word_vectors.scoring import ANALOGY_METHODS, top_k_rows
from keras_tl.word_vectors.vectors import BAD_ROWS, UnknownWordError, WordVectors

__all__ = ["ANALOGY_METHODS", "BAD_ROWS", "EVALUATION_FILES", "PROJECTIONS", "UNICODE_ERRORS", "VECTOR_FORMATS",
           "TruncatedVectorFileError", "UndecodableVectorFileError", "UnknownWordError", "VectorFormatError",
           "WordVectors", "cluster_words", "evaluation_file", "parse_analogy", "project_words",
           "read_analogy_questions", "read_word_pairs", "section_accuracy", "top_k_rows"]
