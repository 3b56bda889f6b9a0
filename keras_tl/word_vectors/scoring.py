"""Scoring every word for a batch of queries, block by block, and answering analogy questions on every core.

A query is a few words to add and to subtract (``b - a + c`` for the analogy ``a : b :: c : ?``).
:func:`analogy_scorer` gives the 3CosAdd or 3CosMul scores (Levy & Goldberg 2014, "Linguistic
Regularities in Sparse and Explicit Word Representations") of a batch of queries against a block
of vocabulary words, and :func:`top_k_rows` keeps the best ``k`` words of each query as the blocks
go by, so the batch-by-vocabulary score matrix never exists. :func:`answer_analogies` answers a
whole set of questions, one part per processor core, by the pruned search of
:mod:`keras_tl.word_vectors.analogy_search` where the set shares enough words and pairs, and by
scoring every word otherwise.
"""
import concurrent.futures
import os

import numpy as np
import threadpoolctl

from keras_tl import messages
from keras_tl.word_vectors import analogy_search

ANALOGY_METHODS = ("3cosadd", "3cosmul")
_BATCH_QUESTIONS = 1024  # analogy questions scored together (see bench/RESULTS.md, "Word analogies")
_BLOCK_SCORES = 2**20  # scores computed at once, 4 MB of float32 that stay in the cache (1,024 questions x 1,024 words)


def analogy_scorer(unit_vectors, unscorable_rows, positive, negative, method):
    """``score_block(start, stop)``: the scores of rows ``start`` to ``stop - 1`` of ``unit_vectors``
    for a batch of queries (for :func:`top_k_rows`). ``positive`` and ``negative`` hold the query
    vectors, ``(queries, terms, dimension)``: unit vectors for 3CosMul.

    3CosAdd adds the positive vectors and subtracts the negative ones in the order gensim does
    (so the rounding matches), then ranks by cosine: one matrix product per block.
    3CosMul needs the cosine to every input word: one product with all of them, then the
    shifted cosines are multiplied (positive) and divided (negative). The ``unscorable_rows``
    (words with an all-zero vector) score ``-inf``.
    """
    if method == "3cosadd":
        query = positive.sum(axis=1) - negative.sum(axis=1)
        query /= np.maximum(np.linalg.norm(query, axis=1, keepdims=True), np.finfo(np.float32).tiny)

        buffers = {}  # one score array per block size, filled again block after block (no new 4 MB each time)

        def scores_of(words):
            if len(words) not in buffers:
                buffers[len(words)] = np.empty((len(query), len(words)), dtype=np.float32)
            return np.matmul(query, words.T, out=buffers[len(words)])
    elif method == "3cosmul":
        terms = np.concatenate([positive, negative], axis=1)
        term_vectors = terms.reshape(-1, terms.shape[-1])

        def scores_of(words):
            shifted = analogy_search.shifted_cosines(term_vectors, words).reshape(terms.shape[:2] + (len(words),))
            scores = np.prod(shifted[:, :positive.shape[1]], axis=1)
            denominator = np.prod(shifted[:, positive.shape[1]:], axis=1)
            denominator += analogy_search.COSMUL_EPSILON
            scores /= denominator
            return scores
    else:
        raise ValueError(f"Unknown analogy method {method!r}; expected one of {', '.join(ANALOGY_METHODS)}.")

    def score_block(start, stop):
        scores = scores_of(unit_vectors[start:stop])
        inside = unscorable_rows[(unscorable_rows >= start) & (unscorable_rows < stop)]
        scores[:, inside - start] = -np.inf
        return scores
    return score_block


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


def answer_analogies(unit_vectors, unscorable_rows, questions, size, method, exclude_inputs, canonical, progress):
    """The answer row for each ``(a, b, c)`` row of ``questions``: the best of the first ``size`` rows
    of ``unit_vectors`` for ``b - a + c``, or -1 where no row is left.

    Questions that share their words and pairs, as those of an analogy set do, are answered with
    block-max pruning (:mod:`keras_tl.word_vectors.analogy_search`), one part of the questions per processor
    core; otherwise in batches of ``_BATCH_QUESTIONS``, each scored against every word
    block by block (:func:`top_k_rows`). Cores work in threads (numpy releases the GIL in its
    matrix products and reductions) with BLAS held to one thread meanwhile, so they never wait
    for each other. ``canonical``: the row that stands for each row (its first case variant), for
    gensim's rule on input words; see :func:`_answer_batch`.
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
        for best in pool.map(lambda inputs: _answer_batch(unit_vectors, unscorable_rows, inputs, size, method,
                                                          exclude_inputs, canonical, pruned), batches):
            answers.append(best)
            bar.update(len(best))
    return np.concatenate(answers)


def _answer_batch(unit_vectors, unscorable_rows, inputs, size, method, exclude_inputs, canonical, pruned):
    """The answer rows for one batch of questions: by the ``pruned`` search, or scored block by
    block (:func:`top_k_rows`), so that the batch-by-vocabulary score matrix never exists.

    With ``exclude_inputs``, the input rows are left out and the best remaining word is taken, as
    gensim does; in the rare case that it is a case variant of an input word, gensim's rule (the
    first of its top 5 that is not) is applied to those questions alone. -1 where no word is left.
    """
    if pruned:
        best = analogy_search.best_answer_rows(unit_vectors[:size], inputs, method, unscorable_rows, exclude_inputs)
    else:
        scorer = analogy_scorer(unit_vectors, unscorable_rows, unit_vectors[inputs[:, [1, 2]]],
                                unit_vectors[inputs[:, [0]]], method)
        best = top_k_rows(scorer, len(inputs), size, 1, excluded=inputs if exclude_inputs else None)[0][:, 0]
    if not exclude_inputs:
        return best
    clashes = np.flatnonzero((canonical[best][:, None] == inputs).any(axis=1) & (best >= 0))
    if len(clashes):
        clashing = inputs[clashes]
        scorer = analogy_scorer(unit_vectors, unscorable_rows, unit_vectors[clashing[:, [1, 2]]],
                                unit_vectors[clashing[:, [0]]], method)
        top5 = top_k_rows(scorer, len(clashes), size, min(5, size), excluded=clashing)[0]
        for clash, rows, words in zip(clashes, top5, clashing):
            rows = rows[rows >= 0]
            allowed = [row for row in rows if canonical[row] not in words]
            best[clash] = allowed[0] if allowed else rows[-1]
    return best
