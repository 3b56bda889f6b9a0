"""The pruned analogy search returns what scoring every word for every question returns."""
import numpy as np
import pytest

from keras_tl.word_vectors import analogy_search


def _unit(vectors):
    lengths = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, lengths, out=np.zeros_like(vectors), where=lengths > 0)


def _every_word_answers(unit_vectors, questions, method, unscorable_rows, exclude_inputs):
    """The answers found by scoring every row for every question, in float64."""
    unit = unit_vectors.astype(np.float64)
    a, b, c = (unit[questions[:, column]] for column in range(3))
    if method == "3cosadd":
        scores = unit @ (b - a + c).T
    else:
        a, b, c = ((unit @ x.T + 1.0) / 2.0 for x in (a, b, c))
        scores = b * c / (a + analogy_search.COSMUL_EPSILON)
    scores[unscorable_rows] = -np.inf
    if exclude_inputs:
        np.put_along_axis(scores, questions.T, -np.inf, axis=0)
    return scores.argmax(axis=0)


@pytest.mark.parametrize("method", ["3cosadd", "3cosmul"])
@pytest.mark.parametrize("exclude_inputs", [True, False])
def test_pruned_search_finds_the_best_row_of_every_word(method, exclude_inputs):
    """3,001 random words (not a whole number of blocks), 3 of them all-zero, and questions built as
    analogy sets are: every pair of a few words against every word c."""
    rng = np.random.default_rng(0)
    unit_vectors = _unit(rng.normal(size=(3001, 12)).astype(np.float32))
    unscorable_rows = np.array([5, 700, 3000])
    unit_vectors[unscorable_rows] = 0.0
    set_words = rng.choice(np.setdiff1d(np.arange(3001), unscorable_rows), size=40, replace=False)
    pairs = set_words[rng.integers(0, 40, size=(30, 2))]
    questions = np.array([[a, b, c] for a, b in pairs for c in set_words[:20]])
    assert analogy_search.pays_off(questions)
    rows = analogy_search.best_answer_rows(unit_vectors, questions, method, unscorable_rows, exclude_inputs)
    expected = _every_word_answers(unit_vectors, questions, method, unscorable_rows, exclude_inputs)
    np.testing.assert_array_equal(rows, expected)
    assert not np.isin(rows, unscorable_rows).any() and (rows >= analogy_search.FIRST_CHUNK_WORDS).any()
    if exclude_inputs:
        assert not (rows[:, None] == questions).any()
    else:
        assert (rows[:, None] == questions).any()  # an input word (b or c) wins some questions


@pytest.mark.parametrize("method", ["3cosadd", "3cosmul"])
def test_equal_scores_go_to_the_lower_row_in_any_chunk(method):
    """Axis vectors make exact ties: for e0 : e1 :: e2 : ?, every copy of e3 scores the same, and
    the two copies of (e1 + e2) / sqrt(2), far down the vocabulary, score higher: the first one wins."""
    eye = np.eye(4, dtype=np.float32)
    unit_vectors = np.tile(eye[3], (5000, 1))
    unit_vectors[:3] = eye[:3]
    questions = np.array([[0, 1, 2]] * 3)
    assert analogy_search.best_answer_rows(unit_vectors, questions, method, [3])[0] == 4
    unit_vectors[[3100, 4500]] = (eye[1] + eye[2]) / np.sqrt(2.0)
    np.testing.assert_array_equal(analogy_search.best_answer_rows(unit_vectors, questions, method), [3100] * 3)
    unit_vectors[3:] = 0.0
    no_row_left = analogy_search.best_answer_rows(unit_vectors, questions, method, np.arange(3, 5000))
    np.testing.assert_array_equal(no_row_left, [-1] * 3)


def test_pays_off_only_for_questions_that_share_pairs_and_words():
    shared = np.array([[a, a + 1, c] for a in range(0, 20, 2) for c in range(20, 40)])  # 10 pairs, 20 words c
    assert analogy_search.pays_off(shared)
    assert not analogy_search.pays_off(shared[:60])  # 3 pairs and 20 words for 60 questions
    assert not analogy_search.pays_off(np.arange(300).reshape(100, 3))  # nothing shared
    with pytest.raises(ValueError, match="Unknown analogy method '3cosine'"):
        analogy_search.best_answer_rows(np.eye(3), shared[:1] % 3, "3cosine")
