"""WordVectors keeps gensim's contract where it uses gensim's names, and bad rows and files fail clearly."""
import gzip
import struct
import subprocess
import sys
import warnings

import numpy as np
import pytest

from keras_tl.jobs import word_embeddings
from keras_tl.word_vectors import (TruncatedVectorFileError, UndecodableVectorFileError, UnknownWordError,
                                   VectorFormatError, WordVectors, read_analogy_questions, read_word_pairs, top_k_rows)

BOM = b"\xef\xbb\xbf"


# ---------------------------------------------------------------------- gensim's contract
@pytest.fixture(scope="module")
def both():
    """The same 40 random vectors (of lengths 0.5 to 3) as a WordVectors and as gensim's KeyedVectors."""
    keyed_vectors_class = pytest.importorskip("gensim.models").KeyedVectors
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(40)]
    vectors = (rng.normal(size=(40, 8)) * rng.uniform(0.5, 3.0, size=(40, 1))).astype(np.float32)
    theirs = keyed_vectors_class(8)
    theirs.add_vectors(words, vectors)
    return WordVectors(words, vectors), theirs


def test_lookups_are_gensims(both):
    ours, theirs = both
    assert ours.index_to_key == theirs.index_to_key and ours.key_to_index == theirs.key_to_index
    assert ours.vector_size == theirs.vector_size == 8 and len(ours) == len(theirs)
    assert ours.get_index("w7") == theirs.get_index("w7") == 7
    assert np.array_equal(ours["w3"], theirs["w3"])  # the raw vector, as loaded
    assert np.array_equal(ours[["w3", "w5"]], theirs[["w3", "w5"]])
    assert not np.isclose(np.linalg.norm(ours["w3"]), 1.0)
    assert np.allclose(ours.get_vector("w3", norm=True), theirs.get_vector("w3", norm=True))
    assert np.allclose(ours.get_normed_vectors(), theirs.get_normed_vectors())
    assert np.allclose(ours.norms, np.linalg.norm(theirs.vectors, axis=1))


def test_similarities_and_distances_are_gensims(both):
    ours, theirs = both
    assert ours.similarity("w1", "w2") == pytest.approx(float(theirs.similarity("w1", "w2")), abs=1e-6)
    assert ours.distance("w1", "w2") == pytest.approx(float(theirs.distance("w1", "w2")), abs=1e-6)
    to_some = ours.distances("w1", ["w2", "w3", "w1"])
    assert to_some.shape == (3,) and np.allclose(to_some, theirs.distances("w1", ["w2", "w3", "w1"]), atol=1e-6)
    to_all = ours.distances("w1")
    assert to_all.shape == (40,) and np.allclose(to_all, theirs.distances("w1"), atol=1e-6)
    vector = np.arange(8, dtype=np.float32)
    assert np.allclose(ours.distances(vector, ["w4", "w9"]), theirs.distances(vector, ["w4", "w9"]), atol=1e-6)
    matrix = ours.pairwise_distances(["w1", "w2", "w3"])
    assert matrix.shape == (3, 3) and matrix[0, 1] == pytest.approx(to_some[0], abs=1e-6)


@pytest.mark.parametrize("positive, negative, restrict_vocab", [
    (["w0"], [], None), (["w0", "w1"], ["w2"], None), (["w5"], [], 20), (["w3", "w30"], ["w31"], 25)])
def test_most_similar_is_gensims(both, positive, negative, restrict_vocab):
    """gensim 4.4's most_similar_cosmul ignores restrict_vocab, so its whole ranking is cut here."""
    ours, theirs = both
    size = restrict_vocab or len(ours)
    for method in ("most_similar", "most_similar_cosmul"):
        found = getattr(ours, method)(positive, negative, topn=5, restrict_vocab=restrict_vocab)
        ranking = getattr(theirs, method)(positive, negative, topn=len(ours))
        expected = [(word, score) for word, score in ranking if theirs.get_index(word) < size][:5]
        assert [word for word, _ in found] == [word for word, _ in expected]
        assert [score for _, score in found] == pytest.approx([score for _, score in expected], abs=1e-5)
    assert ours.most_similar("w0", topn=0) == theirs.most_similar("w0", topn=0) == []


def test_doesnt_match_is_gensims(both):
    ours, theirs = both
    for words in (["w0", "w1", "w2", "w3"], [f"w{i}" for i in range(10, 20)]):
        assert ours.doesnt_match(words) == theirs.doesnt_match(words)


def test_a_word_is_exactly_similar_to_itself_and_other_values_are_unchanged():
    rng = np.random.default_rng(1)
    words = [f"w{i}" for i in range(20)] + ["zero"]
    vectors = np.vstack([rng.normal(size=(20, 50)), np.zeros((1, 50))])
    with pytest.warns(UserWarning, match="all-zero vector"):
        word_vectors = WordVectors(words, vectors)
    unit = word_vectors.get_normed_vectors()
    assert any(float(row @ row) != 1.0 for row in unit[:20])  # what rounding gives without the special case
    for word in words[:20]:
        assert word_vectors.similarity(word, word) == 1.0 and word_vectors.distance(word, word) == 0.0
        assert word_vectors.distances(word)[word_vectors.get_index(word)] == 0.0
    assert word_vectors.similarity("zero", "zero") == 0.0  # no direction: cosine 0, itself included
    assert word_vectors.similarity("w1", "w2") == float(unit[1] @ unit[2])
    to_some = word_vectors.distances("w3", ["w4", "w3", "w5", "w3"])
    np.testing.assert_array_equal(to_some, [1.0 - unit[4] @ unit[3], 0.0, 1.0 - unit[5] @ unit[3], 0.0])
    matrix = word_vectors.pairwise_distances(["w6", "w7", "w6", "zero"])
    np.testing.assert_array_equal(np.diag(matrix), [0.0, 0.0, 0.0, 1.0])
    assert matrix[0, 2] == matrix[2, 0] == 0.0 and matrix[0, 1] == np.clip(1.0 - unit[6] @ unit[7], 0.0, 2.0)


# ---------------------------------------------------------------------- scoring block by block
@pytest.mark.parametrize("k", [1, 3, 7])
def test_blocked_top_k_is_the_top_k_of_the_whole_score_matrix(k):
    """Small integer scores make many exact ties; the lower row must come first, as in a stable sort."""
    rng = np.random.default_rng(2)
    scores = rng.integers(-4, 5, size=(9, 50)).astype(np.float32)
    scores[0, 5:] = -np.inf  # only 5 words can be returned for query 0 (an all-zero vector scores -inf)
    excluded = rng.integers(0, 50, size=(9, 3))
    excluded[1] = [0, 49, 49]  # the first and the last row, one twice
    allowed = scores.copy()
    np.put_along_axis(allowed, excluded, -np.inf, axis=1)
    expected_rows = np.argsort(-allowed, axis=1, kind="stable")[:, :k]
    expected_scores = np.take_along_axis(allowed, expected_rows, axis=1)
    expected_rows[expected_scores == -np.inf] = -1
    for block_rows in (1, 4, 7, 16, 50, 64):
        asked = []

        def score_block(start, stop):
            asked.append((start, stop))
            return scores[:, start:stop].copy()
        rows, top_scores = top_k_rows(score_block, 9, 50, k, excluded=excluded, block_rows=block_rows)
        assert rows.shape == top_scores.shape == (9, k)
        np.testing.assert_array_equal(rows, expected_rows)
        np.testing.assert_array_equal(top_scores, expected_scores)
        assert max(stop - start for start, stop in asked) == min(block_rows, 50) and asked[-1][1] == 50
    assert (rows[0] == -1).any() == (k == 7) and not np.isin(rows[1], [0, 49]).any()  # both cases were asked
    without_exclusions = top_k_rows(lambda start, stop: scores[:, start:stop].copy(), 9, 50, k, block_rows=16)[0]
    np.testing.assert_array_equal(without_exclusions[1:], np.argsort(-scores[1:], axis=1, kind="stable")[:, :k])


# ---------------------------------------------------------------------- rows with NaN, infinity or zeros
def test_rows_with_nan_or_infinity_are_an_error_naming_them(tmp_path, write_file):
    path = write_file(tmp_path / "bad.txt", "a 1 2\nb nan 1\nc 1 inf\nd 0 1\n")
    # the library names its parameter; the job shows its flag instead (see the job test below)
    message = (r"2 vector\(s\) in bad.txt \(GloVe text\) contain NaN or infinity: 'b', 'c'; fix the file, or load "
               r"with bad_rows='drop' to leave them out")
    with pytest.raises(ValueError, match=message):
        WordVectors.load(path)
    with pytest.raises(ValueError, match="bad_rows must be one of error, drop; got 'keep'"):
        WordVectors.load(path, bad_rows="keep")
    many = np.full((8, 2), np.nan)
    with pytest.raises(ValueError, match=r"8 vector\(s\) in memory contain NaN or infinity: 'w0', 'w1', 'w2', "
                                         r"'w3', 'w4', \.\.\."):
        WordVectors([f"w{i}" for i in range(8)], many)


def test_rows_with_nan_or_infinity_can_be_dropped_with_a_warning(tmp_path, write_file):
    path = write_file(tmp_path / "bad.txt", "a 1 2\nb nan 1\nc 1 inf\nd 0 1\nb 5 5\n")
    with pytest.warns(UserWarning, match=r"2 vector\(s\) in bad.txt \(GloVe text\) contain NaN or infinity and are "
                                         r"left out: 'b', 'c'"):
        word_vectors = WordVectors.load(path, bad_rows="drop")
    assert word_vectors.index_to_key == ["a", "d", "b"] and np.array_equal(word_vectors["b"], [5, 5])
    with pytest.raises(ValueError, match="Every vector in memory contains NaN or infinity"):
        WordVectors(["x"], [[np.nan, 1.0]], bad_rows="drop")


def test_all_zero_rows_are_left_out_of_similarity_search_with_one_warning(tmp_path, write_file):
    path = write_file(tmp_path / "zeros.txt", "a 1 0\nzero 0 0\nb 0.9 0.1\nc 0 1\nnil 0 0\nd -1 0\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        word_vectors = WordVectors.load(path)
    assert [str(warning.message) for warning in caught] == [
        "2 word(s) in zeros.txt (GloVe text) have an all-zero vector, which has no direction; they are left out "
        "of similarity search (most_similar, analogies, doesnt_match): 'zero', 'nil'"]
    assert [word for word, _ in word_vectors.most_similar("c", topn=10)] == ["b", "a", "d"]
    assert "zero" not in dict(word_vectors.most_similar("c", topn=10, exclude_inputs=False))
    assert "nil" not in dict(word_vectors.most_similar_cosmul("c", topn=10))
    with pytest.raises(ValueError, match="No word is similar to an all-zero vector, which has no direction: 'zero'"):
        word_vectors.most_similar(["a", "zero"])
    assert word_vectors.doesnt_match(["a", "b", "zero", "d"]) == "d"
    assert word_vectors.distances("a", ["zero"]) == pytest.approx([1.0])  # cosine 0
    questions = write_file(tmp_path / "q.txt", ": s\na b c zero\na zero c d\nb a d nil\nc d a b\n")
    _, sections = word_vectors.evaluate_word_analogies(questions, case_insensitive=False)
    assert sections[0]["skipped"] == 3 and len(sections[0]["correct"] + sections[0]["incorrect"]) == 1


# ---------------------------------------------------------------------- files: byte-order mark, gzip
def test_a_utf8_byte_order_mark_is_ignored(tmp_path, write_file):
    glove = WordVectors.load(write_file(tmp_path / "bom.txt", BOM + "the 1 0\ncafé 0 1\n".encode()))
    assert glove.index_to_key == ["the", "café"] and glove.source == "bom.txt (GloVe text)"
    word2vec = WordVectors.load(write_file(tmp_path / "bom.w2v.txt", BOM + b"2 2\nthe 1 0\ncat 0 1\n"))
    assert word2vec.index_to_key == ["the", "cat"] and word2vec.source == "bom.w2v.txt (word2vec text)"
    questions = write_file(tmp_path / "questions.txt", BOM + b": family\nman woman king queen\n")
    assert read_analogy_questions(questions) == [("family", [("man", "woman", "king", "queen")])]


def test_gzipped_vector_files_load(tmp_path, write_file):
    words, vectors = ["the", "café", "cat"], np.array([[1, 2, 3], [0, -1, 0.5], [3, 0, 0]], dtype=np.float32)
    body = "".join(f"{word} {' '.join(map(str, row))}\n" for word, row in zip(words, vectors)).encode()
    binary = b"3 3\n" + b"".join(word.encode() + b" " + struct.pack("<3f", *row) for word, row in zip(words, vectors))
    files = {"glove.txt.gz": gzip.compress(body), "word2vec.txt.gz": gzip.compress(b"3 3\n" + body),
             "word2vec.bin.gz": gzip.compress(binary), "bom.txt.gz": gzip.compress(BOM + body)}
    for name, data in files.items():
        word_vectors = WordVectors.load(write_file(tmp_path / name, data), limit=3, progress=True)
        assert word_vectors.index_to_key == words and np.allclose(word_vectors.vectors, vectors), name
    assert WordVectors.load_glove(tmp_path / "glove.txt.gz", limit=2).index_to_key == ["the", "café"]
    with pytest.raises(VectorFormatError, match="the name ends in .gz but the file is not gzip"):
        WordVectors.load(write_file(tmp_path / "plain.txt.gz", body))


# ---------------------------------------------------------------------- files: the exceptions gensim's users catch
def test_a_truncated_word2vec_file_is_an_eof_error_as_in_gensim(tmp_path, write_file):
    """Files cut short but long enough for their header (long words): the cut is found as they are read."""
    cut_short = b"2 2\nalpha " + struct.pack("<2f", 1, 2) + b"\nbeta " + struct.pack("<f", 1)
    cut_binary = write_file(tmp_path / "cut.bin", cut_short)
    with pytest.raises(EOFError, match="cut.bin: the header announces 2 vectors but the file ends inside vector 2"):
        WordVectors.load(cut_binary)
    short_text = write_file(tmp_path / "short.txt", "3 2\nalpha 1.5 2.5\nbeta 3.5 4.5\n")
    with pytest.raises(EOFError, match="short.txt: the header announces 3 vectors but the file has only 2") as caught:
        WordVectors.load(short_text)
    assert isinstance(caught.value, TruncatedVectorFileError) and isinstance(caught.value, VectorFormatError)


def test_bytes_that_are_not_utf8_are_a_unicode_decode_error_with_the_toolkit_message(tmp_path, write_file):
    path = write_file(tmp_path / "latin1.txt", b"the 1 0\ncaf\xe9 0 1\n")
    with pytest.raises(UnicodeDecodeError) as caught:
        WordVectors.load_glove(path, unicode_errors="strict")
    error = caught.value
    assert isinstance(error, UndecodableVectorFileError) and isinstance(error, VectorFormatError)
    assert str(error) == (f"{path}, line 2: the byte(s) b'\\xe9' at column 4 are not UTF-8; load with "
                          f"unicode_errors='replace' or 'ignore' to accept them")
    assert (error.line, error.encoding, error.object, error.start, error.end) == (2, "utf-8", b"caf\xe9 0 1\n", 3, 4)
    binary = write_file(tmp_path / "latin1.bin", b"1 2\ncaf\xe9 " + struct.pack("<2f", 1, 2))
    with pytest.raises(UnicodeDecodeError, match=r"latin1.bin: vector 1: the byte\(s\) b'\\xe9' at column 4"):
        WordVectors.load(binary)


def test_a_line_starting_with_a_space_is_an_error_naming_the_line(tmp_path, write_file):
    message = "line {}: the line starts with a space, so its word would be empty"
    with pytest.raises(VectorFormatError, match=message.format(2)):
        WordVectors.load_glove(write_file(tmp_path / "glove.txt", "a 1 2\n 1 2\n"))
    with pytest.raises(VectorFormatError, match=message.format(3)):
        WordVectors.load(write_file(tmp_path / "word2vec.txt", "2 2\na 1 2\n 1 2\n"))
    entries = b"alpha " + struct.pack("<2f", 1, 2) + b" " + struct.pack("<2f", 3, 4)
    binary = write_file(tmp_path / "space.bin", b"2 2\n" + entries)
    with pytest.raises(VectorFormatError, match="vector 2 has an empty word"):
        WordVectors.load(binary)
    blank_lines = write_file(tmp_path / "blank.txt", "a 1 2\n   \nb 3 4\n")  # only spaces: a blank line, skipped
    assert WordVectors.load_glove(blank_lines).index_to_key == ["a", "b"]


# ---------------------------------------------------------------------- headers larger than their file
@pytest.mark.parametrize("name, content, limit, message", [
    ("huge.bin", b"10 1000000000\na " + bytes(44), None,
     "the header '10 1000000000' announces 10 vectors of 1,000,000,000 numbers; they need at least "
     "40,000,000,020 bytes in word2vec binary format, but the file has 60 bytes (46 after the header)."),
    ("huge.txt", b"10 1000000000\na" + b" 0" * 22 + b"\n", None,
     "the header '10 1000000000' announces 10 vectors of 1,000,000,000 numbers; they need at least "
     "20,000,000,010 bytes in word2vec text format, but the file has 60 bytes (46 after the header)."),
    ("huge.bin", b"10 1000000000\na " + bytes(44), 3,
     "announces 10 vectors of 1,000,000,000 numbers; the first 3 (limit=3) need at least 12,000,000,006 bytes"),
    ("huge.bin.gz", gzip.compress(b"10 1000000000\na " + bytes(44), mtime=0), None,
     "need at least 40,000,000,020 bytes in word2vec binary format, but the file has {size} bytes gzipped, at most "
     "{unpacked:,} unpacked."),  # deflate unpacks at most 1,032 bytes per byte
])
def test_a_header_larger_than_its_file_is_an_error_before_anything_is_allocated(tmp_path, write_file, name, content,
                                                                                limit, message):
    """10 x 1,000,000,000 float32 would be 37 GiB; the file is checked against its header first."""
    path = write_file(tmp_path / name, content)
    with pytest.raises(TruncatedVectorFileError) as caught:
        WordVectors.load(path, limit=limit)
    message = message.format(size=len(content), unpacked=len(content) * 1032)
    assert str(caught.value).startswith(f"{path}: ") and message in str(caught.value)
    assert str(caught.value).endswith("The header is wrong or the file was cut short.")


def test_a_header_line_without_an_end_is_read_no_further_than_100_bytes(tmp_path, write_file):
    path = write_file(tmp_path / "no_newline.bin", b"1 " + b"7" * 100_000)
    with pytest.raises(VectorFormatError, match=r"no_newline.bin, line 1: expected a word2vec header 'count "
                                                r"dimension' \(two positive integers\), got b'1 7777"):
        WordVectors.load(path)


def test_job_reports_a_header_larger_than_its_file_in_one_line(tmp_path, capsys, write_file):
    path = write_file(tmp_path / "huge.bin", b"10 1000000000\na " + bytes(44))
    code = word_embeddings.main(["neighbors", "a", "--vectors", str(path), "--limit", "3", "--quiet",
                                 "--output-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and not (tmp_path / "run").exists()
    assert err.strip().splitlines() == [
        f"error: {path}: the header '10 1000000000' announces 10 vectors of 1,000,000,000 numbers; the first 3 "
        f"(--limit 3) need at least 12,000,000,006 bytes in word2vec binary format, but the file has 60 bytes "
        f"(46 after the header). The header is wrong or the file was cut short."]


# ---------------------------------------------------------------------- evaluation files with malformed lines
def _warning_texts(caught):
    return [str(warning.message) for warning in caught]


def test_malformed_analogy_lines_and_empty_sections_are_named_in_warnings(tmp_path, write_file):
    path = write_file(tmp_path / "questions.txt", ": good\na b c d\na b c\n\n: three\nb a c\nc a b\n"
                                                  ": five\na b c d e\n: last\nb a d c\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sections = read_analogy_questions(path)
    assert _warning_texts(caught) == [
        f"{path}: 4 line(s) skipped, not four words 'a b c d': line(s) 3, 6, 7, 9",
        f"{path}: 2 section(s) have no questions: 'three' (line 5), 'five' (line 8)"]
    assert sections == [("good", [("a", "b", "c", "d")]), ("three", []), ("five", []), ("last", [("b", "a", "d", "c")])]
    word_vectors = WordVectors(["a", "b", "c", "d"], np.eye(4))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, scored = word_vectors.evaluate_word_analogies(path, case_insensitive=False)
    assert len(caught) == 2
    assert [len(section["correct"] + section["incorrect"]) for section in scored] == [1, 0, 0, 1, 2]


def test_an_analogy_file_of_malformed_lines_names_them_and_is_an_error(tmp_path, write_file):
    path = write_file(tmp_path / "questions.txt", ": family\n" + "a b c\n" * 7)
    with pytest.warns(UserWarning) as caught, pytest.raises(ValueError, match="questions.txt has no analogy questions"):
        read_analogy_questions(path)
    assert _warning_texts(caught) == [
        f"{path}: 7 line(s) skipped, not four words 'a b c d': line(s) 2, 3, 4, 5, 6, ..."]


def test_word_pairs_with_malformed_lines_or_nan_or_infinite_scores_are_named_and_left_out(tmp_path, write_file):
    """Without the check, nan gives a NaN correlation and inf numpy's 'invalid value' warning."""
    path = write_file(tmp_path / "pairs.tsv", "# w1\tw2\tscore\na\tb\t9\na\tc\tnan\na\td\tabc\nb\tc\tinf\n\n"
                                              "b\td\t-inf\nc\td\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert read_word_pairs(path) == [("a", "b", 9.0)]
    assert _warning_texts(caught) == [
        f"{path}: 2 line(s) skipped, not two words and a score separated by '\\t': line(s) 4, 8",
        f"{path}: 3 line(s) skipped, the score is NaN or infinite: line(s) 3, 5, 7"]
    with open(path, "a") as handle:
        handle.write("c\td\t2\nb\td\t5\n")
    word_vectors = WordVectors(["a", "b", "c", "d"], [[1, 0], [0.9, 0.1], [0, 1], [0.5, 0.5]])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pearson, spearman, oov_ratio = word_vectors.evaluate_word_pairs(path, case_insensitive=False)
    assert len(caught) == 2 and all("line(s) skipped" in text for text in _warning_texts(caught))  # no RuntimeWarning
    assert spearman.statistic == pytest.approx(1.0) and np.isfinite(pearson.statistic) and oov_ratio == 0.0


@pytest.mark.filterwarnings("ignore:.*line\\(s\\) skipped:UserWarning")
def test_a_pair_file_without_two_usable_pairs_is_an_error_naming_it(tmp_path, write_file):
    word_vectors = WordVectors(["a", "b"], [[1, 0], [0, 1]])
    spaces = write_file(tmp_path / "spaces.txt", "a b 3\nb a 4\n")
    with pytest.raises(ValueError, match=r"spaces.txt has no word pairs; expected lines of two words and a score "
                                         r"separated by '\\t' \(delimiter=\)"):
        word_vectors.evaluate_word_pairs(spaces)
    one = write_file(tmp_path / "one.tsv", "a\tb\t3\na\tb\tnan\n")
    with pytest.raises(ValueError, match=r"1 pair\(s\) in .*one.tsv have both words among the first 2 words of the "
                                         r"vocabulary; a correlation needs at least 2"):
        word_vectors.evaluate_word_pairs(one)
    latin1 = write_file(tmp_path / "latin1.tsv", b"a\tb\t3\ncaf\xe9\tb\t4\n")
    with pytest.raises(ValueError, match=r"latin1.tsv, line 2: the byte\(s\) b'\\xe9' are not UTF-8"):
        word_vectors.evaluate_word_pairs(latin1)


def test_job_names_skipped_lines_once_and_shows_an_empty_section(tmp_path, capsys, small_glove, write_file):
    questions = write_file(tmp_path / "q.txt", ": family\nfrog toad king queen\nfrog toad king\n: empty\n")
    pairs = write_file(tmp_path / "pairs.tsv", "frog\ttoad\t9\nfrog\tking\tnan\nking\tqueen\t8\nfrog\tqueen\t1\n")
    argv = ["evaluate", "--analogies", str(questions), "--pairs", str(pairs), "--vectors", str(small_glove),
            "--drop-bad-rows", "--quiet", "--output-dir", str(tmp_path / "run")]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = word_embeddings.run(word_embeddings.parse_args(argv))
    assert _warning_texts(caught)[1:] == [  # the first: the NaN row of small.txt, dropped
        f"{questions}: 1 line(s) skipped, not four words 'a b c d': line(s) 3",
        f"{questions}: 1 section(s) have no questions: 'empty' (line 4)",
        f"{pairs}: 1 line(s) skipped, the score is NaN or infinite: line(s) 2"]
    table = capsys.readouterr().out
    assert [line.split() for line in table.splitlines() if line.startswith("empty")] == [["empty", "0", "0", "-"]]
    assert report["metrics"]["analogies"]["sections"]["empty"] == {"accuracy": None, "skipped": 0, "questions": 0}
    assert report["metrics"]["pairs"]["pairs"] == 3 and np.isfinite(report["metrics"]["pairs"]["spearman"])


# ---------------------------------------------------------------------- errors the library and the job report
def test_an_analogy_file_without_questions_is_an_error(tmp_path, write_file):
    word_vectors = WordVectors(["a", "b"], [[1, 0], [0, 1]])
    for content in ("", ": family\n"):  # a file of malformed lines: test_malformed_analogy_lines_are_named_...
        empty = write_file(tmp_path / "empty.txt", content)
        with pytest.raises(ValueError, match="empty.txt has no analogy questions; expected a section header"):
            word_vectors.evaluate_word_analogies(empty)


def test_unknown_words_and_bad_limits_are_clear_errors():
    word_vectors = WordVectors(["frog", "toad", "king"], np.eye(3))
    with pytest.raises(UnknownWordError) as caught:
        word_vectors.most_similar("frgo")
    assert isinstance(caught.value, KeyError) and isinstance(caught.value, ValueError)
    assert str(caught.value) == "'frgo' is not in the vocabulary (3 words); close words: 'frog'"
    with pytest.raises(ValueError, match="restrict_vocab must be a positive number of words or None, got 0"):
        word_vectors.most_similar("frog", restrict_vocab=0)


@pytest.fixture
def small_glove(tmp_path, write_file):
    """Four words and one row with NaN."""
    return write_file(tmp_path / "small.txt", "frog 1 0 0\ntoad 0.9 0.1 0\nking 0 1 0\nqueen 0 0.9 0.1\nbad nan 0 0\n")


@pytest.mark.filterwarnings("ignore:1 vector:UserWarning")  # --drop-bad-rows warns
@pytest.mark.parametrize("argv, message", [
    (["neighbors", "frog"], "error: 1 vector(s) in small.txt (GloVe text) contain NaN or infinity: 'bad'; "
                            "fix the file, or load with --bad-rows 'drop' to leave them out."),  # was --drop-bad-rows
    (["neighbors", "frgo", "--drop-bad-rows"], "error: 'frgo' is not in the vocabulary (4 words); close words: 'frog'"),
    (["analogy", "king - - man"], "error: Expected an analogy like 'king - man + woman'"),
    (["evaluate", "--analogies", "EMPTY", "--drop-bad-rows"], "empty.txt has no analogy questions"),
])
def test_job_reports_user_errors_in_one_line(tmp_path, capsys, small_glove, argv, message, write_file):
    empty = write_file(tmp_path / "empty.txt", ": nothing\n")
    argv = [str(empty) if arg == "EMPTY" else arg for arg in argv]
    code = word_embeddings.main(argv + ["--vectors", str(small_glove), "--quiet",
                                        "--output-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "run").exists() or argv[0] == "evaluate"  # evaluate fails in the run folder


def test_job_drops_bad_rows_on_request(tmp_path, capsys, small_glove):
    argv = ["neighbors", "frog", "--topn", "1", "--vectors", str(small_glove), "--drop-bad-rows", "--quiet",
            "--output-dir", str(tmp_path / "run")]
    with pytest.warns(UserWarning, match="are left out: 'bad'"):
        report = word_embeddings.run(word_embeddings.parse_args(argv))
    assert [word for word, _ in report["results"]["neighbors"]["frog"]] == ["toad"]
    assert "Loaded 4 words x 3 dimensions" in capsys.readouterr().out


@pytest.mark.parametrize("topn", ["0", "-2"])
def test_job_refuses_topn_below_one(capsys, topn):
    with pytest.raises(SystemExit) as caught:
        word_embeddings.main(["neighbors", "frog", "--topn", topn])
    err = capsys.readouterr().err
    # --topn is the older name of --top-k: it still works, and the message names the flag of today
    assert caught.value.code == 2 and f"error: --top-k must be at least 1; got {topn}." in err


def test_entry_point_exits_2_with_one_error_line(tmp_path):
    finished = subprocess.run([sys.executable, "-m", "keras_tl.word_embeddings", "neighbors", "frog", "--topn", "0"],
                              capture_output=True, text=True, timeout=60)
    assert finished.returncode == 2 and "error: --top-k must be at least 1; got 0." in finished.stderr
    assert "Traceback" not in finished.stderr
