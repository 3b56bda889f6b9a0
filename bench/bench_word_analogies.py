"""Benchmark: batched analogy evaluation (keras_tl) against gensim's ``KeyedVectors.evaluate_word_analogies``.

Both run in one process on the same vectors (the packaged glove.6B.50d, handed to gensim as loaded)
and the same question file (the Google analogy set, Mikolov et al.
2013), with gensim's semantics: ``restrict_vocab=300000``, upper-cased words, 3CosAdd with the three
input words excluded, questions with unknown words skipped. gensim asks one question at a time; keras_tl
answers a batch with one matrix product.

Prints questions/s for both, the speed-up, both accuracies and the number of questions the two
judge differently (expected: 0).

    python bench/bench_word_analogies.py                 # the whole set (gensim takes a few minutes)
    python bench/bench_word_analogies.py --every 10      # every 10th question of each section
"""
import argparse
import collections
import pathlib
import tempfile
import time

from gensim.models import KeyedVectors

from keras_tl import messages
from keras_tl.word_vectors import WordVectors, evaluation_file, read_analogy_questions


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", help="analogy file (default: gensim's questions-words.txt)")
    parser.add_argument("--every", type=int, default=1, help="keep every N-th question of each section")
    parser.add_argument("--restrict-vocab", type=int, default=300000)
    args = parser.parse_args(argv)

    word_vectors = WordVectors.load_packaged()
    keyed_vectors = KeyedVectors(word_vectors.vector_size)
    keyed_vectors.add_vectors(word_vectors.index_to_key, word_vectors.vectors)
    questions = pathlib.Path(args.questions) if args.questions else evaluation_file("questions-words.txt")
    print(f"Analogy benchmark: {word_vectors.source}, {len(word_vectors):,} words x {word_vectors.vector_size}; "
          f"questions {questions.name} (every {args.every}), restrict_vocab={args.restrict_vocab:,}, 3CosAdd")

    with tempfile.TemporaryDirectory() as folder:
        if args.every > 1:
            questions = _every_nth(questions, args.every, pathlib.Path(folder) / questions.name)
        results = {}
        for name, evaluate in (("keras_tl (batched)", word_vectors.evaluate_word_analogies),
                               ("gensim 4 (per question)", keyed_vectors.evaluate_word_analogies)):
            start = time.perf_counter()
            score, sections = evaluate(str(questions), restrict_vocab=args.restrict_vocab)
            seconds = time.perf_counter() - start
            answered = len(sections[-1]["correct"]) + len(sections[-1]["incorrect"])
            results[name] = (score, sections, answered, seconds)
            print(f"{name}: {answered:,} questions in {seconds:.2f} s", flush=True)

    rows = [(name, answered, f"{seconds:.2f}", f"{answered / seconds:,.0f}", f"{score:.4%}")
            for name, (score, _, answered, seconds) in results.items()]
    print(messages.format_table(rows, ["implementation", "questions", "seconds", "questions/s", "accuracy"]))
    (ours, _, answered, our_seconds), (theirs, _, _, their_seconds) = results.values()
    differing = _judged_differently(*(sections for _, sections, _, _ in results.values()))
    print(f"speed-up: {their_seconds / our_seconds:.1f}x; questions judged differently: {differing}")
    return differing


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
