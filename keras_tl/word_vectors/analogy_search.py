"""Exact 3CosAdd and 3CosMul answers for a whole analogy set, without scoring every word for every question.

Both of Levy & Goldberg's (2014, "Linguistic regularities in sparse and explicit word
representations", section 3) objectives for ``a : b :: c : ?`` split into a *pair term*, the same
for every question on the pair ``(a, b)``, and a *word term* for ``c``. With unit vectors:

- 3CosAdd, the largest ``cos(w, b - a + c)``, is the largest ``w . (b - a) + w . c``;
- 3CosMul, the largest ``s(w, b) s(w, c) / (s(w, a) + eps)`` with ``s = (cos + 1) / 2``, is the
  largest ``[s(w, b) / (s(w, a) + eps)] * s(w, c)``.

An analogy set is built from few words and pairs (the Google set asks 19,544 questions about 905
words and 550 pairs), so:

1. Matrix products give every pair's and every word's terms for a chunk of the vocabulary:
   ``(pairs + words) x vocabulary`` numbers, not ``questions x vocabulary`` dot products.
2. For each block of ``BLOCK_WORDS`` consecutive vocabulary words, the largest pair term combined
   with the largest word term bounds every score in the block (block-max pruning, as in Ding & Suel
   2011, "Faster top-k document retrieval using block-max indexes"); so does the same over a group
   of ``BLOCKS_PER_GROUP`` blocks, checked first. (For 3CosMul both terms are kept at 0 or above, so
   that the product of the largest ones is the largest product.)
3. The vocabulary is visited in order, most frequent words first (where most answers are), in
   chunks that double in size. A group or block whose bound is below a question's best score so far
   cannot hold its answer and is skipped; the blocks left (1.3 % on the Google set, 3CosAdd) are
   scored word by word.

The answers are exact: floating-point rounding is monotone, so each bound also holds for the scores
as computed, and equal scores go to the lower row, as in :func:`keras_tl.word_vectors.scoring.top_k_rows`.
"""
import numpy as np

COSMUL_EPSILON = 1e-6  # gensim's value; Levy & Goldberg (2014) used 0.001
BLOCK_WORDS = 16  # vocabulary words under one bound (smaller: tighter bounds, more of them to check)
BLOCKS_PER_GROUP = 16  # blocks under one coarser bound, checked before the blocks' own
FIRST_CHUNK_WORDS = 1024  # scored first, to give every question a best score to beat
LARGEST_CHUNK_WORDS = 16384  # chunks double up to this size (their terms: a few tens of MB)
_GROUP_WORDS = BLOCK_WORDS * BLOCKS_PER_GROUP


def shifted_cosines(rows, vectors):
    """``s = (cos + 1) / 2`` of every unit row of ``rows`` with every unit row of ``vectors``: the
    similarities of 3CosMul, shifted into [0, 1] (Levy & Goldberg 2014, section 3)."""
    shifted = rows @ vectors.T
    shifted += 1.0
    shifted *= 0.5
    return shifted


def pays_off(questions):
    """Whether ``questions`` (rows ``a, b, c``) share enough pairs ``(a, b)`` and words ``c`` for the
    pruned search: at most a third as many of them as questions. (Their terms cost about one dot
    product each per vocabulary word, as scoring one question does. On the Google set, 549 pairs,
    3CosAdd's pruned search was 2.8x faster than scoring every word at 9,744 questions, 1.7x at
    4,874, and slower at 1,955 with 340 words c.)"""
    distinct_pairs = len(np.unique(questions[:, :2], axis=0))
    distinct_words = len(np.unique(questions[:, 2]))
    return distinct_pairs + distinct_words <= len(questions) / 3


def best_answer_rows(unit_vectors, questions, method="3cosadd", unscorable_rows=(), exclude_inputs=True):
    """The row of ``unit_vectors`` that best answers each question ``a, b, c`` (rows of ``questions``)
    by ``method`` (``"3cosadd"`` or ``"3cosmul"``), or -1 where no row is left.

    ``unit_vectors``: the vocabulary searched, one unit-length row per word. ``unscorable_rows``:
    rows never returned (words with an all-zero vector). With ``exclude_inputs`` the three input rows
    of a question are not its answer, as in gensim.
    """
    questions = np.asarray(questions, dtype=np.int64)
    pairs, pair_of_question = np.unique(questions[:, :2], axis=0, return_inverse=True)
    words, word_of_question = np.unique(questions[:, 2], return_inverse=True)
    pair_of_question, word_of_question = pair_of_question.reshape(-1), word_of_question.reshape(-1)  # 1-D in any numpy
    terms_of, combine = _method_terms(method, unit_vectors, pairs, words)
    unscorable_rows = np.asarray(unscorable_rows, dtype=np.int64)
    best_scores = np.full(len(questions), -np.inf, dtype=np.float32)
    best_rows = np.full(len(questions), -1, dtype=np.int64)
    for start, stop in _chunks(len(unit_vectors)):
        # terms[i, j]: the term of pair or word j for vocabulary row start + i, padded to whole groups
        width = -(-(stop - start) // _GROUP_WORDS) * _GROUP_WORDS
        pair_terms, word_terms = (_padded(terms, width) for terms in terms_of(unit_vectors[start:stop]))
        unscorable = np.zeros(width, dtype=bool)  # the padding too
        unscorable[stop - start:] = True
        unscorable[unscorable_rows[(unscorable_rows >= start) & (unscorable_rows < stop)] - start] = True
        pair_terms = pair_terms.reshape(-1, BLOCK_WORDS, len(pairs))  # [block, word of the block, pair]
        word_terms = word_terms.reshape(-1, BLOCK_WORDS, len(words))
        unscorable = unscorable.reshape(-1, BLOCK_WORDS)
        pair_bounds, word_bounds = pair_terms.max(axis=1), word_terms.max(axis=1)  # [block, pair or word]
        pair_bounds = pair_bounds.reshape(-1, BLOCKS_PER_GROUP, len(pairs))  # [group, block of the group, pair]
        word_bounds = word_bounds.reshape(-1, BLOCKS_PER_GROUP, len(words))

        group_bounds = combine(pair_bounds.max(axis=1)[:, pair_of_question],
                               word_bounds.max(axis=1)[:, word_of_question])
        group, question = np.nonzero(group_bounds >= best_scores)
        pair, word = pair_of_question[question], word_of_question[question]
        block_bounds = combine(pair_bounds[group, :, pair], word_bounds[group, :, word])  # [candidate, block]
        candidate, block_in_group = np.nonzero(block_bounds >= best_scores[question, None])
        block = group[candidate] * BLOCKS_PER_GROUP + block_in_group
        question, pair, word = question[candidate], pair[candidate], word[candidate]

        scores = combine(pair_terms[block, :, pair], word_terms[block, :, word])  # [candidate, word of the block]
        scores[unscorable[block]] = -np.inf
        if exclude_inputs:
            columns = questions[question] - start - block[:, None] * BLOCK_WORDS
            is_input = (columns >= 0) & (columns < BLOCK_WORDS)
            scores[np.nonzero(is_input)[0], columns[is_input]] = -np.inf
        column = scores.argmax(axis=1)
        _keep_improvements(best_scores, best_rows, question, scores[np.arange(len(scores)), column],
                           start + block * BLOCK_WORDS + column)
    best_rows[best_scores == -np.inf] = -1
    return best_rows


def _method_terms(method, unit_vectors, pairs, words):
    """``(terms_of, combine)``: ``terms_of(vocabulary_rows)`` gives the pair terms and the word terms
    of those rows (one column per pair, one per word), and ``combine`` makes scores of the two."""
    if method == "3cosadd":
        pair_vectors = unit_vectors[pairs[:, 1]] - unit_vectors[pairs[:, 0]]
        word_vectors = unit_vectors[words]
        return (lambda rows: (rows @ pair_vectors.T, rows @ word_vectors.T)), np.add
    if method == "3cosmul":
        set_vectors = unit_vectors[np.concatenate([pairs[:, 1], pairs[:, 0], words])]  # b of each pair, a, then c

        def terms_of(rows):
            shifted = shifted_cosines(rows, set_vectors)
            np.maximum(shifted, 0.0, out=shifted)  # a cosine rounded below -1 would make a negative term
            b, a, c = np.split(shifted, [len(pairs), 2 * len(pairs)], axis=1)
            return b / (a + COSMUL_EPSILON), c
        return terms_of, np.multiply
    raise ValueError(f"Unknown analogy method {method!r}; expected '3cosadd' or '3cosmul'.")


def _padded(terms, rows):
    """``terms`` with rows of zeros added up to ``rows`` rows."""
    return terms if len(terms) == rows else np.pad(terms, [(0, rows - len(terms)), (0, 0)])


def _chunks(size):
    """``(start, stop)`` of the vocabulary's chunks: ``FIRST_CHUNK_WORDS``, then doubling up to
    ``LARGEST_CHUNK_WORDS``."""
    start, length = 0, FIRST_CHUNK_WORDS
    while start < size:
        yield start, min(start + length, size)
        start, length = start + length, min(2 * length, LARGEST_CHUNK_WORDS)


def _keep_improvements(best_scores, best_rows, question, scores, rows):
    """Where a question's best candidate (``scores`` and ``rows`` listed by ``question``; the lower
    row among equal scores) beats its best so far, it becomes the best. Candidates come from rows
    above those seen so far, so an equal score does not replace the best."""
    chunk_best = np.full_like(best_scores, -np.inf)
    np.maximum.at(chunk_best, question, scores)
    is_best = scores == chunk_best[question]
    chunk_rows = np.full_like(best_rows, np.iinfo(best_rows.dtype).max)
    np.minimum.at(chunk_rows, question[is_best], rows[is_best])
    improved = chunk_best > best_scores
    best_scores[improved] = chunk_best[improved]
    best_rows[improved] = chunk_rows[improved]
