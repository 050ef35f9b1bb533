"""Analogy and word-similarity benchmarks, with gensim's protocol and numbers, batched.

Analogies follow `KeyedVectors.evaluate_word_analogies`: the vocabulary is the first `restrict`
words, matched case-insensitively (the first, most frequent, spelling wins); a question with a
word outside it is skipped and counted; the three question words are never the answer. gensim
asks `most_similar(positive=[b, c], negative=[a], topn=5, restrict_vocab=restrict)` one question
at a time; we score all questions with tiled matrix products (engine.query.best_analogies).

3CosMul searches the first `restrict` words too, as gensim documents `restrict_vocab` ("only
check the first N vectors"). gensim itself differs: `most_similar_cosmul` accepts
restrict_vocab and ignores it, and `evaluate_word_analogies` ignores its own
similarity_function argument, so gensim never evaluates 3CosMul at all (see the README).

Word pairs follow `evaluate_word_pairs`: tab-separated `word1, word2, score`, `#` comments,
Spearman and Pearson correlation of cosine similarity with the human scores.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import packaged, query
from ..errors import BadEvalFile, UnknownWord, check_choice
from ..progress import SILENT, Progress
from ..store import ANALOGY_METHODS, Store

SEMANTIC_SECTIONS_PREFIX_SYNTACTIC = "gram"  # questions-words.txt: gram* sections are syntactic


@dataclass
class Section:
    name: str
    correct: int = 0
    questions: int = 0

    @property
    def accuracy(self) -> float:
        return self.correct / self.questions if self.questions else 0.0

    JSON_FIELDS = ("name", "accuracy", "correct", "questions")


@dataclass
class AnalogyResult:
    name: str
    method: str
    restrict: int
    correct: int
    questions: int
    skipped: int  # questions with a word outside the vocabulary
    invalid: int  # malformed lines skipped with on_error="skip"
    seconds: float
    sections: list[Section] = field(default_factory=list)
    search: str = "exact"  # or the index kind and parameters it went through

    @property
    def accuracy(self) -> float:
        return self.correct / self.questions if self.questions else 0.0

    def split(self, syntactic: bool) -> Section:
        part = Section("syntactic" if syntactic else "semantic")
        for section in self.sections:
            if section.name.startswith(SEMANTIC_SECTIONS_PREFIX_SYNTACTIC) == syntactic:
                part.correct += section.correct
                part.questions += section.questions
        return part

    @property
    def semantic(self) -> Section:
        return self.split(False)

    @property
    def syntactic(self) -> Section:
        return self.split(True)

    JSON_FIELDS = ("name", "accuracy", "correct", "questions", "skipped", "seconds", "sections", "semantic",
                   "syntactic", "method", "restrict", "invalid", "search")


@dataclass
class PairsResult:
    name: str
    spearman: float
    pearson: float
    pairs: int
    oov_pairs: int
    invalid: int

    @property
    def oov(self) -> float:
        return self.oov_pairs / (self.pairs + self.oov_pairs) if self.pairs + self.oov_pairs else 0.0

    JSON_FIELDS = ("name", "spearman", "pearson", "pairs", "oov", "oov_pairs", "invalid")


# -- analogies ------------------------------------------------------------------------------------

def read_analogies(path, on_error: str = "fail"):
    """[(section name, [(line number, [a, b, c, d]), ...]), ...] and the count of bad lines."""
    sections: list[tuple[str, list]] = []
    invalid = 0
    with _open_text(path) as lines:
        for line_no, line in enumerate(lines, 1):
            if line.startswith(": "):
                sections.append((line[2:].strip(), []))
                continue
            words = line.split()
            if not words:
                continue
            problem = None
            if len(words) != 4:
                problem = f"expected 4 words, found {len(words)}"
            elif not sections:
                problem = "a question before the first ': section' header"
            if problem:
                if on_error == "skip":
                    invalid += 1
                    continue
                raise BadEvalFile(path, problem, line=line_no)
            sections[-1][1].append((line_no, words))
    return sections, invalid


def evaluate_analogies(store: Store, path=None, *, restrict: int = 300_000, method: str = "add",
                       on_error: str = "fail", exact: bool = False, oov: bool = False,
                       progress: Progress = SILENT) -> AnalogyResult:
    """Accuracy on an analogy set; through the store's index (over-fetch, exact re-rank) when it
    has one for this version, unless `exact`. `oov`: a question with a word outside the
    vocabulary is answered with that word's subword vector (a fastText store) instead of
    being skipped; its answer is still looked for among the first `restrict` words."""
    check_choice("method", method, ANALOGY_METHODS)
    check_choice("--on-error", on_error, ("fail", "skip"))
    store.require_kind("words", "analogy evaluation")
    started = time.perf_counter()
    path = Path(path) if path else packaged.ANALOGY_SETS["questions-words"]
    sections, invalid = read_analogies(path, on_error)
    keys = store.keys()
    ok_vocab = _uppercase_vocabulary(keys, restrict)

    questions, expected, owners, skipped = [], [], [], 0
    results = [Section(name) for name, _ in sections]
    with_subwords = []  # (section, question words, expected) answered from subword vectors
    for number, (_, lines) in enumerate(sections):
        for _, words in lines:
            upper = [w.upper() for w in words]
            if any(w not in ok_vocab for w in upper):
                if oov and store.subwords() is not None:
                    with_subwords.append((number, words, upper[3]))
                else:
                    skipped += 1
                continue
            questions.append([ok_vocab[w] for w in upper[:3]])
            expected.append(upper[3])
            owners.append(number)
    abc = np.array(questions, dtype=np.int64).reshape(-1, 3)
    searcher = None if exact else store.searcher()
    if searcher is None:
        with progress.task(f"eval {path.stem} ({method})", total=len(abc), unit="questions") as task:
            _, best = query.best_analogies(store.matrix(), abc, method=method, restrict=restrict, task=task)
        predicted = _gensim_predictions(store.matrix(), keys, abc, best, ok_vocab, method, restrict)
        searched = "exact"
    else:
        top5 = np.full((len(abc), 5), -1, dtype=np.int64)
        with progress.task(f"eval {path.stem} ({method})", total=len(abc), unit="questions") as task:
            for q0 in range(0, len(abc), 2048):
                _, top5[q0:q0 + 2048] = searcher.analogies(abc[q0:q0 + 2048], 5, method=method, restrict=restrict)
                task.update(min(len(abc), q0 + 2048))
        predicted = [_first_acceptable(keys, rows, abc[q], ok_vocab) for q, rows in enumerate(top5)]
        searched = searcher.describe()
    for owner, guess, answer in zip(owners, predicted, expected):
        results[owner].questions += 1
        results[owner].correct += guess == answer
    for owner, words, answer in with_subwords:
        try:
            found = [store.vector_of(w) if w.upper() not in ok_vocab else
                     (store.matrix()[ok_vocab[w.upper()]], ok_vocab[w.upper()]) for w in words[:3]]
        except UnknownWord:  # no n-gram the model knows
            skipped += 1
            continue
        _, top5 = query.analogy_of_vectors(store.matrix(), *(vector for vector, _ in found), 5, method=method,
                                           restrict=restrict, exclude=[row for _, row in found if row >= 0])
        guess = next((keys[row].upper() for row in top5[0] if row >= 0 and keys[row].upper() in ok_vocab
                      and keys[row].upper() not in {w.upper() for w in words[:3]}), None)
        results[owner].questions += 1
        results[owner].correct += guess == answer
    return AnalogyResult(path.stem if path.suffix else path.name, method, restrict,
                         sum(s.correct for s in results), sum(s.questions for s in results), skipped,
                         invalid, time.perf_counter() - started, results, searched)


def _gensim_predictions(matrix, keys, abc, best, ok_vocab, method, restrict) -> list[str]:
    """gensim's choice among its top 5: the first answer (uppercased) in the restricted
    vocabulary that is not a question word. Nearly always the best row, which is checked
    here; the others get their top 5 computed."""
    predicted, recheck = [], []
    for q, row in enumerate(best):
        guess = keys[row].upper() if row >= 0 else None
        ignore = {keys[i].upper() for i in abc[q]}
        if guess is not None and guess in ok_vocab and guess not in ignore:
            predicted.append(guess)
        else:
            predicted.append(None)
            recheck.append(q)
    if recheck:
        _, top5 = query.analogies(matrix, abc[recheck], 5, method=method, restrict=restrict)
        for q, rows in zip(recheck, top5):
            predicted[q] = _first_acceptable(keys, rows, abc[q], ok_vocab)
    return predicted


def _first_acceptable(keys, rows, question_ids, ok_vocab):
    """gensim's loop over its top 5: the first answer in the vocabulary that is not a question
    word (else the last one looked at, which then counts as wrong)."""
    ignore = {keys[i].upper() for i in question_ids}
    guess = None
    for row in rows[rows >= 0]:
        guess = keys[row].upper()
        if guess in ok_vocab and guess not in ignore:
            break
    return guess


def _uppercase_vocabulary(keys, restrict) -> dict[str, int]:
    """Uppercased word -> row, over the first `restrict` words; the first spelling wins
    (built from the end, so earlier rows overwrite later ones)."""
    first = keys[:restrict]
    return dict(zip(map(str.upper, reversed(first)), range(len(first) - 1, -1, -1)))


# -- word pairs -----------------------------------------------------------------------------------

def read_pairs(path, on_error: str = "fail"):
    """[(word1, word2, human score), ...] and the count of bad lines."""
    pairs, invalid = [], 0
    with _open_text(path) as lines:
        for line_no, line in enumerate(lines, 1):
            if line.startswith("#") or not line.strip():
                continue
            parts = line.rstrip("\r\n").split("\t")
            problem = None
            if len(parts) != 3:
                problem = f"expected 3 tab-separated fields, found {len(parts)}"
            else:
                try:
                    score = float(parts[2])
                    if not np.isfinite(score):
                        problem = f"score {parts[2]!r} is not a finite number"
                except ValueError:
                    problem = f"score {parts[2]!r} is not a number"
            if problem:
                if on_error == "skip":
                    invalid += 1
                    continue
                raise BadEvalFile(path, problem, line=line_no)
            pairs.append((parts[0], parts[1], score))
    return pairs, invalid


def evaluate_pairs(store: Store, path, *, restrict: int = 300_000, on_error: str = "fail",
                   oov: bool = False) -> PairsResult:
    """Spearman and Pearson correlation of cosine similarity with the human scores; `oov`: a word
    outside the vocabulary takes its subword vector (a fastText store) instead of the pair being
    skipped (`oov_pairs` then counts the pairs still without a vector)."""
    check_choice("--on-error", on_error, ("fail", "skip"))
    store.require_kind("words", "word-pair evaluation")
    path = Path(path)
    pairs, invalid = read_pairs(path, on_error)
    ok_vocab = _uppercase_vocabulary(store.keys(), restrict)
    matrix = store.matrix()
    subwords = oov and store.subwords() is not None

    def vector(word):
        if word.upper() in ok_vocab:
            return matrix[ok_vocab[word.upper()]]
        return store.vector_of(word)[0] if subwords else None

    gold, ours, missing = [], [], 0
    for a, b, score in pairs:
        try:
            first, second = vector(a), vector(b)
        except UnknownWord:
            first = second = None
        if first is None or second is None:
            missing += 1
            continue
        gold.append(score)
        ours.append(float(np.dot(first, second)))
    oov = missing
    if len(gold) < 2:
        raise BadEvalFile(path, f"only {len(gold)} pair(s) with both words in the vocabulary; "
                                f"cannot correlate")
    gold_a, ours_a = np.array(gold), np.array(ours)
    return PairsResult(path.stem, spearman(gold_a, ours_a), pearson(gold_a, ours_a), len(gold), oov, invalid)


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    x, y = x - x.mean(), y - y.mean()
    denominator = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / denominator) if denominator else float("nan")


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of the ranks, ties given their average rank (as scipy.stats.spearmanr)."""
    return pearson(_average_ranks(x), _average_ranks(y))


def _average_ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    starts = np.r_[True, sorted_x[1:] != sorted_x[:-1]]
    group = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    last = np.r_[first[1:], len(x)] - 1
    ranks = np.empty(len(x))
    ranks[order] = ((first + last) / 2 + 1)[group]
    return ranks


# -- all, compare ---------------------------------------------------------------------------------

def evaluate_all(store: Store, *, restrict: int = 300_000, method: str = "add", exact: bool = False,
                 oov: bool = False, progress: Progress = SILENT) -> list:
    results = [evaluate_analogies(store, restrict=restrict, method=method, exact=exact, oov=oov, progress=progress)]
    results += [evaluate_pairs(store, path, restrict=restrict, oov=oov) for path in packaged.PAIR_SETS.values()]
    return results


def scores(results) -> dict[str, float]:
    """The headline number of each result: accuracy for analogies, Spearman for pairs."""
    table = {}
    for result in results:
        if isinstance(result, AnalogyResult):
            table[f"{result.name} accuracy ({result.method})"] = result.accuracy
            table[f"{result.name} semantic"] = result.semantic.accuracy
            table[f"{result.name} syntactic"] = result.syntactic.accuracy
        else:
            table[f"{result.name} spearman"] = result.spearman
            table[f"{result.name} pearson"] = result.pearson
    return table


@dataclass
class Comparison:
    """Each bundled benchmark's score on two versions, and how each side was searched."""
    rows: list[dict]  # {metric, v1, v2, diff}
    search_v1: str
    search_v2: str
    notes: list[str] = field(default_factory=list)


def compare(first: Store, second: Store, *, restrict: int = 300_000, method: str = "add", exact: bool = False,
            oov: bool = False, progress: Progress = SILENT) -> Comparison:
    """The bundled benchmarks on two versions, searched the same way: through each version's
    own index when both have one, else both exactly (an index's misses would otherwise count
    as a difference between the versions)."""
    notes = []
    if not exact and (first.searcher() is None) != (second.searcher() is None):
        indexed, plain = (first, second) if first.searcher() is not None else (second, first)
        notes.append(f"version {indexed.version.number} has an index and version {plain.version.number} has "
                     f"none: both searched exactly, so that the index's misses do not count as a difference")
        exact = True
    results_a = evaluate_all(first, restrict=restrict, method=method, exact=exact, oov=oov, progress=progress)
    results_b = evaluate_all(second, restrict=restrict, method=method, exact=exact, oov=oov, progress=progress)
    a, b = scores(results_a), scores(results_b)
    rows = [{"metric": name, "v1": round(a[name], 6), "v2": round(b[name], 6), "diff": round(b[name] - a[name], 6)}
            for name in a]
    return Comparison(rows, results_a[0].search, results_b[0].search, notes)


def _open_text(path):
    path = Path(path)
    if not path.exists():
        raise BadEvalFile(path, "no such file")
    if path.is_dir():
        raise BadEvalFile(path, "is a directory")
    return _Lines(path)


class _Lines:
    """Lines of a UTF-8 file; an undecodable line is an error naming it."""

    def __init__(self, path: Path):
        self.path = path
        self.file = open(path, "rb")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()

    def __iter__(self):
        for line_no, raw in enumerate(self.file, 1):
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                raise BadEvalFile(self.path, "undecodable bytes (not UTF-8)", line=line_no) from None
