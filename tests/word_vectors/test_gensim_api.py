"""gensim's KeyedVectors calls give gensim's answers on WordVectors: vectors and weights in most_similar,
topn=None, similar_by_*, n_similarity, get_mean_vector, rank, closer_than and the others (issue 33 item 4)."""
import warnings

import numpy as np
import pytest

from keras_tl.word_vectors import UnknownWordError, WordVectors

WORDS = 50000


@pytest.fixture(scope="module")
def both():
    """The first 50,000 words of the packaged glove.6B.50d as a WordVectors and as gensim's KeyedVectors."""
    keyed_vectors_class = pytest.importorskip("gensim.models").KeyedVectors
    ours = WordVectors.load_packaged(limit=WORDS)
    theirs = keyed_vectors_class(ours.vector_size)
    theirs.add_vectors(ours.index_to_key, ours.vectors)
    return ours, theirs


def _assert_same_ranking(found, expected):
    assert isinstance(found, list) and all(isinstance(word, str) and type(score) is float for word, score in found)
    assert [word for word, _ in found] == [word for word, _ in expected]
    assert [score for _, score in found] == pytest.approx([score for _, score in expected], abs=1e-5)


def _queries(ours):
    """(positive, negative) of most_similar: words, raw vectors, (key, weight) pairs and a 2-D array."""
    king_minus_man = ours["king"] - ours["man"]
    return [(["frog"], []), ([king_minus_man, "woman"], ["queen"]), ([("king", 2.0), "woman"], [("man", 0.5)]),
            ([(king_minus_man, 0.5), "woman"], []), (ours[["paris", "italy"]], [ours["france"]]),
            (king_minus_man, None)]


@pytest.mark.parametrize("query", range(6))
@pytest.mark.parametrize("restrict_vocab", [None, 5000])
def test_most_similar_with_vectors_and_weights_is_gensims(both, query, restrict_vocab):
    ours, theirs = both
    positive, negative = _queries(ours)[query]
    found = ours.most_similar(positive, negative, topn=8, restrict_vocab=restrict_vocab)
    _assert_same_ranking(found, theirs.most_similar(positive, negative, topn=8, restrict_vocab=restrict_vocab))


def test_similar_by_vector_and_by_word_are_gensims(both):
    ours, theirs = both
    vector = ours["paris"] - ours["france"] + ours["germany"]
    _assert_same_ranking(ours.similar_by_vector(vector, topn=5), theirs.similar_by_vector(vector, topn=5))
    _assert_same_ranking(ours.similar_by_vector(vector, topn=5, restrict_vocab=2000),
                         theirs.similar_by_vector(vector, topn=5, restrict_vocab=2000))
    assert ours.similar_by_vector(vector, topn=1)[0][0] == "berlin"
    assert ours.similar_by_vector(ours["frog"], topn=1)[0][0] == "frog"  # a vector leaves no word out
    assert "frog" not in dict(ours.similar_by_word("frog", topn=5))  # a word given does
    _assert_same_ranking(ours.similar_by_word("frog", topn=5), theirs.similar_by_word("frog", topn=5))
    _assert_same_ranking(ours.similar_by_key("frog", 3), theirs.similar_by_key("frog", 3))
    assert ours.similar_by_vector(vector, topn=0) == theirs.similar_by_vector(vector, topn=0) == []


def test_topn_none_is_every_similarity_in_vocabulary_order_as_in_gensim(both):
    ours, theirs = both
    vector = ours["king"] - ours["man"]
    for found, expected, size in [
            (ours.most_similar(["king", "woman"], ["man"], topn=None),
             theirs.most_similar(["king", "woman"], ["man"], topn=None), WORDS),
            (ours.most_similar("frog", topn=None, restrict_vocab=1000),
             theirs.most_similar("frog", topn=None, restrict_vocab=1000), 1000),
            (ours.similar_by_vector(vector, topn=None), theirs.similar_by_vector(vector, topn=None), WORDS),
            (ours.most_similar_cosmul(["king", "woman"], ["man"], topn=None),
             theirs.most_similar_cosmul(["king", "woman"], ["man"], topn=None), WORDS)]:
        assert isinstance(found, np.ndarray) and found.dtype == np.float32 and found.shape == (size,)
        np.testing.assert_allclose(found, expected, atol=1e-6)
    every = ours.most_similar("frog", topn=None)
    assert every[ours.get_index("frog")] == pytest.approx(1.0)  # the input word is in the array, as in gensim
    best = np.argsort(-every, kind="stable")[1:6]
    assert [ours.index_to_key[row] for row in best] == [word for word, _ in ours.most_similar("frog", topn=5)]


def test_most_similar_cosmul_takes_vectors_by_their_direction(both):
    """gensim scores a vector by its dot product over the word's length; WordVectors by its cosine (the same
    for a unit vector)."""
    ours, theirs = both
    unit = ours.get_vector("queen", norm=True)
    _assert_same_ranking(ours.most_similar_cosmul([unit, "man"], ["woman"], topn=5),
                         theirs.most_similar_cosmul([unit, "man"], ["woman"], topn=5))
    _assert_same_ranking(ours.most_similar_cosmul([7.0 * unit, "man"], ["woman"], topn=5),
                         ours.most_similar_cosmul([unit, "man"], ["woman"], topn=5))


def test_n_similarity_and_mean_vectors_are_gensims(both):
    ours, theirs = both
    for ws1, ws2 in ((["sushi", "shop"], ["japanese", "restaurant"]), (["king"], ["queen", "man", "woman"])):
        found = ours.n_similarity(ws1, ws2)
        assert type(found) is float and found == pytest.approx(float(theirs.n_similarity(ws1, ws2)), abs=1e-6)
    assert ours.n_similarity(["frog"], ["toad"]) == pytest.approx(ours.similarity("frog", "toad"), abs=1e-6)
    vector = np.linspace(-1.0, 1.0, ours.vector_size)
    for keys, options in ((["king", "queen"], {}), (["king", vector], {"weights": [2.0, -0.5]}),
                          (["king", "queen"], {"pre_normalize": False, "post_normalize": True})):
        found = ours.get_mean_vector(keys, **options)
        assert found.shape == (ours.vector_size,)
        np.testing.assert_allclose(found, theirs.get_mean_vector(keys, **options), atol=1e-6)


def test_unknown_words_in_a_mean_are_left_out_with_a_warning_or_an_error(both):
    ours, theirs = both
    with pytest.warns(UserWarning, match=r"1 word\(s\) not in the vocabulary are left out of the mean: 'qzxv'"):
        found = ours.get_mean_vector(["king", "qzxv"])
    np.testing.assert_allclose(found, theirs.get_mean_vector(["king", "qzxv"]), atol=1e-6)
    with pytest.raises(UnknownWordError, match="'qzxv' is not in the vocabulary"):
        ours.get_mean_vector(["king", "qzxv"], ignore_missing=False)
    with pytest.raises(UnknownWordError, match="'frgo' is not in the vocabulary"):
        ours.n_similarity(["frog"], ["frgo"])
    with pytest.raises(ValueError, match="one weight per word or vector"):
        ours.get_mean_vector(["king", "queen"], weights=[1.0])


def test_rank_closer_than_and_most_similar_to_given_are_gensims(both):
    ours, theirs = both
    for word1, word2 in (("frog", "toad"), ("frog", "lizard"), ("king", "queen")):
        assert ours.closer_than(word1, word2) == theirs.closer_than(word1, word2)
        assert ours.rank(word1, word2) == theirs.rank(word1, word2)
    assert ours.rank("frog", "toad") == 1 + [word for word, _ in ours.most_similar("frog", topn=10)].index("toad")
    assert ours.most_similar_to_given("frog", ["car", "toad", "king"]) == "toad"
    assert (ours.relative_cosine_similarity("frog", "toad", topn=5)
            == pytest.approx(theirs.relative_cosine_similarity("frog", "toad", topn=5), abs=1e-6))
    words = "breakfast cereal dinner lunch".split()
    for use_norm in (True, False):
        found, expected = ours.rank_by_centrality(words, use_norm), theirs.rank_by_centrality(words, use_norm)
        assert [word for _, word in found] == [word for _, word in expected]
        assert [value for value, _ in found] == pytest.approx([float(value) for value, _ in expected], abs=1e-5)
    assert ours.doesnt_match(words) == theirs.doesnt_match(words) == "cereal"
    assert "frog" in ours and "qzxv" not in ours


@pytest.mark.parametrize("call, message", [
    (lambda wv: wv.most_similar_cosmul([("king", 2.0)]), r"Expected words, vectors .* got \('king', 2.0\)"),
    (lambda wv: wv.most_similar([3]), "Expected words, vectors .* got 3"),
    (lambda wv: wv.most_similar([np.ones(3)]), r"a vector of 50 numbers \(vector_size\); got an array of shape"),
    (lambda wv: wv.similar_by_vector(np.zeros(50)), "no direction: a vector of zeros"),
    (lambda wv: wv.similar_by_vector(np.full(50, np.nan)), "finite numbers; got one with NaN or infinity"),
    (lambda wv: wv.most_similar(negative=["king"]), "at least one positive word or vector")])
def test_queries_that_cannot_be_answered_are_clear_errors(both, call, message):
    with pytest.raises(ValueError, match=message):
        call(both[0])


def test_all_zero_rows_score_minus_infinity_and_are_never_closer():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        word_vectors = WordVectors(["a", "zero", "b", "c"], [[1, 0], [0, 0], [1, 1], [-1, 0]])
    np.testing.assert_allclose(word_vectors.most_similar("a", topn=None), [1.0, -np.inf, np.sqrt(0.5), -1.0],
                               atol=1e-6)
    assert word_vectors.closer_than("a", "c") == ["b"] and word_vectors.rank("a", "c") == 2
    assert [word for word, _ in word_vectors.similar_by_vector(np.array([0.0, 1.0]))] == ["b", "a", "c"]
