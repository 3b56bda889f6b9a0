"""The evaluation sets of word vectors and their readers: analogies and word-pair similarities.

- the Google analogy set, ``questions-words.txt`` (Mikolov et al. 2013, "Efficient Estimation of
  Word Representations in Vector Space"): ``a b c d`` lines meaning ``a : b :: c : d``, in sections;
- WordSim-353 (Finkelstein et al. 2002) and SimLex-999 (Hill et al. 2015), which rates similarity,
  not relatedness: ``word1<TAB>word2<TAB>score`` lines.

gensim's wheel ships these three files (:func:`evaluation_file`); any other path in the same format
works too, without gensim. :meth:`keras_tl.word_vectors.vectors.WordVectors.evaluate_word_analogies`
and ``evaluate_word_pairs`` score vectors on them; :func:`parse_analogy` reads one analogy written
by hand, ``"king - man + woman"``.
"""
import importlib.util
import math
import pathlib
import warnings

from keras_tl import messages
from keras_tl.word_vectors import formats

EVALUATION_FILES = ("questions-words.txt", "wordsim353.tsv", "simlex999.txt")


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
    return evaluation_file(default_name) if path is None else formats.existing_file(path, "evaluation file")


def read_analogy_questions(path):
    """The questions of an analogy file, as ``[(section name, [(a, b, c, d), ...]), ...]``.

    The format of ``questions-words.txt``: a line ``: name`` opens a section; each other line has
    four words ``a b c d`` meaning ``a : b :: c : d``. Blank lines are ignored; other lines without
    four words are skipped, as in gensim, with a warning naming them, and a section left without
    questions is named in another. A question before the first section header, or a file without
    questions, is an error.
    """
    sections, malformed = [], []
    for line_number, line in _numbered_lines(path):
        if line.startswith(": "):
            sections.append((line.lstrip(": ").strip(), [], line_number))
            continue
        words = line.split()
        if len(words) != 4:
            if words:
                malformed.append(line_number)
            continue
        if not sections:
            raise ValueError(f"{path}, line {line_number}: expected a section header ': name' before the "
                             f"first question, got {line.strip()!r}.")
        sections[-1][1].append(tuple(words))
    _warn_skipped(path, malformed, "not four words 'a b c d'")
    if not any(questions for _, questions, _ in sections):
        raise ValueError(f"{path} has no analogy questions; expected a section header ': name' followed by "
                         f"lines of four words 'a b c d' (a : b :: c : d).")
    empty = [f"{name!r} (line {line_number})" for name, questions, line_number in sections if not questions]
    if empty:
        warnings.warn(f"{path}: {len(empty)} section(s) have no questions: {first_few(empty)}", stacklevel=2)
    return [(name, questions) for name, questions, _ in sections]


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


def section_accuracy(section):
    """The fraction of correct answers in one section dict of :meth:`WordVectors.evaluate_word_analogies`."""
    answered = len(section["correct"]) + len(section["incorrect"])
    return len(section["correct"]) / answered if answered else 0.0


def read_word_pairs(path, delimiter="\t"):
    """``[(word1, word2, human score), ...]`` from a WordSim-353-style file.

    Lines starting with ``#`` are comments and blank lines are ignored. Lines that are not two
    words and a number are skipped, as in gensim, and so are scores that are NaN or infinite (the
    correlation would be NaN), each kind with a warning naming the lines. A file without pairs is
    an error.
    """
    pairs, malformed, not_finite = [], [], []
    for line_number, line in _numbered_lines(path):
        if line.startswith("#") or not line.strip():
            continue
        try:
            word1, word2, score = line.split(delimiter)
            score = float(score)
        except ValueError:
            malformed.append(line_number)
            continue
        if math.isfinite(score):
            pairs.append((word1, word2, score))
        else:
            not_finite.append(line_number)
    _warn_skipped(path, malformed, f"not two words and a score separated by {delimiter!r}")
    _warn_skipped(path, not_finite, "the score is NaN or infinite")
    if not pairs:
        raise ValueError(f"{path} has no word pairs; expected lines of two words and a score separated by "
                         f"{delimiter!r} (delimiter=).")
    return pairs


def _numbered_lines(path):
    """``(line number, text)`` for each line of ``path``, as gensim reads it: split at ``\\n``, each
    line decoded as UTF-8 (a byte-order mark is ignored); bytes that are not UTF-8 are an error
    naming the line."""
    with open(path, "rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            try:
                yield line_number, raw.decode("utf-8-sig" if line_number == 1 else "utf-8")
            except UnicodeDecodeError as error:
                raise ValueError(f"{path}, line {line_number}: the byte(s) {error.object[error.start:error.end]!r} "
                                 f"are not UTF-8; save the file as UTF-8.") from None


def _warn_skipped(path, line_numbers, why):
    """One warning naming ``path``, how many lines were skipped and why, and the first few of them."""
    if line_numbers:
        warnings.warn(f"{path}: {len(line_numbers)} line(s) skipped, {why}: line(s) "
                      f"{first_few(list(map(str, line_numbers)))}", stacklevel=3)


def first_few(items, n=5):
    """The first ``n`` of ``items`` (strings) for a message, joined by commas, with ``...`` when there are more."""
    return ", ".join(items[:n]) + (", ..." if len(items) > n else "")
