"""Benchmark: analogy evaluation (keras_tl) against its compute floor and against gensim's
``KeyedVectors.evaluate_word_analogies``.

All run in one process on the same vectors (the packaged glove.6B.50d, handed to gensim as loaded)
and the same question file (the Google analogy set, Mikolov et al. 2013), with gensim's semantics:
``restrict_vocab=300000``, upper-cased words, 3CosAdd with the three input words excluded, questions
with unknown words skipped. gensim asks one question at a time. keras_tl runs twice: as it does by
default, scoring the set's words and pairs once and skipping the blocks of words that cannot hold an
answer (``keras_tl.word_vectors.analogy_search``), and with that pruning turned off, scoring every word for every
question (a batch of questions against a block of words, one matrix product, the best word kept).

The floor: scoring every word for every question needs questions x words x dimensions x 2
floating-point operations; at the float32 matrix-product peak of this machine (a large ``sgemm``,
timed here) that takes the floor time, and a run's fraction of the floor is floor time / its time
(1.0 would be the peak for the every-word search; the pruned search does far fewer operations, so
its fraction can pass 1).

Prints the peak, the FLOPs, the floor, the three times, the fractions, the speed-ups over gensim, the
accuracies and the number of questions that each keras_tl search and gensim judge differently
(expected: 0).

    python bench/bench_word_analogies.py                 # the whole set (gensim takes about a minute)
    python bench/bench_word_analogies.py --every 10      # every 10th question of each section

With ``--every 10`` each pair has too few questions for the pruning to pay off
(``analogy_search.pays_off``), so keras_tl's default scores every word too; the first row says which
search the default used.

The BLAS kernels decide the peak and both times, and the bench prints which ones run. This
project's machines set ``OPENBLAS_CORETYPE=Haswell`` and ``OPENBLAS_L2_SIZE`` for older OpenBLAS
builds; a current numpy left to itself picks the CPU's own (AVX-512) kernels:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/bench_word_analogies.py
"""
import argparse
import collections
import os
import pathlib
import tempfile
import time
import unittest.mock

import numpy as np
import threadpoolctl
from gensim.models import KeyedVectors

from keras_tl import messages
from keras_tl.word_vectors import WordVectors, analogy_search, evaluation_file, read_analogy_questions


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", help="analogy file (default: gensim's questions-words.txt)")
    parser.add_argument("--every", type=int, default=1, help="keep every N-th question of each section")
    parser.add_argument("--restrict-vocab", type=int, default=300000)
    parser.add_argument("--repeats", type=int, default=3, help="keras_tl runs (and sgemm runs); the best counts")
    args = parser.parse_args(argv)

    word_vectors = WordVectors.load_packaged()
    keyed_vectors = KeyedVectors(word_vectors.vector_size)
    keyed_vectors.add_vectors(word_vectors.index_to_key, word_vectors.vectors)
    questions = pathlib.Path(args.questions) if args.questions else evaluation_file("questions-words.txt")
    print(f"Analogy benchmark: {word_vectors.source}, {len(word_vectors):,} words x {word_vectors.vector_size}; "
          f"questions {questions.name} (every {args.every}), restrict_vocab={args.restrict_vocab:,}, 3CosAdd")
    kernels = ", ".join(f"{info['internal_api']} {info['version']} ({info.get('architecture', '?')} kernels)"
                        for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas")
    print(f"BLAS: {kernels}; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(not set)')}")
    peak = _matmul_peak(args.repeats)
    print(f"float32 matrix-product peak (4096 x 4096 sgemm, best of {args.repeats}): {peak / 1e9:.1f} GFLOP/s",
          flush=True)

    with tempfile.TemporaryDirectory() as folder:
        if args.every > 1:
            questions = _every_nth(questions, args.every, pathlib.Path(folder) / questions.name)
        results = {}
        with unittest.mock.patch.object(analogy_search, "best_answer_rows",
                                        wraps=analogy_search.best_answer_rows) as pruned_search:
            word_vectors.evaluate_word_analogies(str(questions), restrict_vocab=args.restrict_vocab)  # (a warm-up)
        default = f"keras_tl (default: {'pruned' if pruned_search.called else 'every word, too few shared'})"
        for name, evaluate, repeats in ((default, word_vectors.evaluate_word_analogies, args.repeats),
                                        ("keras_tl (every word scored)", _every_word(word_vectors), args.repeats),
                                        ("gensim 4 (per question)", keyed_vectors.evaluate_word_analogies, 1)):
            seconds = []
            for _ in range(repeats):
                start = time.perf_counter()
                score, sections = evaluate(str(questions), restrict_vocab=args.restrict_vocab)
                seconds.append(time.perf_counter() - start)
            answered = len(sections[-1]["correct"]) + len(sections[-1]["incorrect"])
            results[name] = (score, sections, answered, min(seconds))
            print(f"{name}: {answered:,} questions in {', '.join(f'{s:.2f}' for s in seconds)} s", flush=True)

    rows = [(name, answered, f"{seconds:.2f}", f"{answered / seconds:,.0f}", f"{score:.4%}")
            for name, (score, _, answered, seconds) in results.items()]
    print(messages.format_table(rows, ["implementation", "questions", "seconds", "questions/s", "accuracy"]))
    *ours, (_, their_sections, answered, their_seconds) = results.values()
    flops = answered * min(args.restrict_vocab, len(word_vectors)) * word_vectors.vector_size * 2
    floor = flops / peak
    print(f"scoring every word for every question needs {flops / 1e9:,.1f} GFLOP: floor {floor:.2f} s at the peak")
    differing = 0
    for name, (_, sections, _, seconds) in zip(results, ours):
        different = _judged_differently(sections, their_sections)
        differing += different
        print(f"{name}: {seconds:.2f} s, {floor / seconds:.2f} of the floor (target >= 0.5), "
              f"{their_seconds / seconds:.1f}x gensim (target >= 20x); questions judged differently from gensim: "
              f"{different}")
    return differing


def _every_word(word_vectors):
    """``word_vectors.evaluate_word_analogies`` with the pruned search turned off."""
    def evaluate(*args, **kwargs):
        with unittest.mock.patch.object(analogy_search, "pays_off", return_value=False):
            return word_vectors.evaluate_word_analogies(*args, **kwargs)
    return evaluate


def _matmul_peak(repeats, n=4096):
    """The best FLOP/s of ``repeats`` float32 ``n x n`` matrix products (numpy's BLAS, all its threads)."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)
    a @ b  # the first call starts BLAS's threads
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        seconds.append(time.perf_counter() - start)
    return 2 * n**3 / min(seconds)


def _every_nth(path, every, destination):
    """A copy of the analogy file ``path`` with every ``every``-th question of each section."""
    lines = []
    for name, questions in read_analogy_questions(path):
        lines.append(f": {name}")
        lines += [" ".join(question) for question in questions[::every]]
    destination.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return destination


def _judged_differently(ours, theirs):
    """Questions correct for one implementation and wrong for the other (sections compared one by one)."""
    differing = 0
    for our_section, their_section in zip(ours[:-1], theirs[:-1]):
        our_correct = collections.Counter(our_section["correct"])
        their_correct = collections.Counter(their_section["correct"])
        differing += sum(((our_correct - their_correct) + (their_correct - our_correct)).values())
    return differing


if __name__ == "__main__":
    main()
