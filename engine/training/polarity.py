"""Sentiment refinement of word vectors: a polarity coordinate taught by the labelled reviews.

    polarities = word_polarities(tokens, labels, train_rows)          # the training split only
    unit, report = polarity_coordinate(vectors, keys, polarities, encode)

Plain fine-tuning barely changes which words are neighbours: the classifier's head absorbs the
signal. So after training, the vectors are given the polarity the reviews teach, on purpose:

1. A word's polarity is its naive-Bayes log-count ratio over the training split's documents
   (Wang & Manning 2012), r = log(P(word | positive) / P(word | negative)), for words found in
   at least `min_docs` documents (by default one in a thousand of the split, at least 5: 20 of
   IMDB's 20,000 training reviews, 6 of Rotten Tomatoes' 6,824 sentences) whose |r| passes
   `threshold`.
2. Those words alone name too few: a vector's neighbours are among 400,000 words, most of which
   the reviews seldom use. So the clearly polar ones (|r| >= 1) teach a logistic probe in the
   space of a sentence encoder (all-MiniLM-L6-v2, the store's sentence half), which scores every
   word of the vocabulary. What the encoder learned about words from a billion sentence pairs
   carries the reviews' polarities to words the reviews do not show.
3. The score becomes a coordinate of every vector: it replaces the vector's component along the
   direction in which the vectors vary least (their last principal axis, about 1/10,000 of their
   variance), so same-polarity words draw together while analogies and word-pair similarities,
   which live in the other directions, keep what they had.

No lexicon is read: the VADER and AFINN word lists only measure the result
(benchmarks/bench_train.py). Earlier versions pulled the review-polar words towards their
same-polarity neighbours (Yu et al. 2017); that moved only the words the reviews name, and the
lexicons' share by +0.005.
"""

from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np

from .probe import fit_probe, probe_scores


def default_min_docs(documents: int) -> int:
    """In how many of `documents` a word must be for its polarity to count: one in a thousand, at least 5."""
    return max(5, documents // 1000)


def word_polarities(tokens, labels, rows, *, min_docs: int | None = None, threshold: float = 0.5,
                    smoothing: float = 1.0) -> dict[str, float]:
    """{word: log-count ratio} of the polar words of the documents `rows` (the training split)."""
    if min_docs is None:
        min_docs = default_min_docs(len(rows))
    positive, negative = Counter(), Counter()
    for i in rows:
        (positive if labels[i] == 1 else negative).update(set(tokens[i]))
    n_pos = int((labels[rows] == 1).sum())
    n_neg = len(rows) - n_pos
    polar = {}
    for word in positive.keys() | negative.keys():
        p, q = positive[word], negative[word]
        if p + q < min_docs:
            continue
        ratio = math.log((p + smoothing) / (n_pos + smoothing)) - math.log((q + smoothing) / (n_neg + smoothing))
        if abs(ratio) >= threshold:
            polar[word] = ratio
    return polar


def _nearest(unit, k: int):
    import torch

    similarity = unit @ unit.T
    similarity.fill_diagonal_(-float("inf"))
    return torch.topk(similarity, k, dim=1).indices


def _same_polarity_share(unit, sign, k: int) -> float:
    """The share of each polar word's k nearest polar words that share its polarity."""
    neighbours = _nearest(unit, k)
    return float((sign[:, None] == sign[neighbours]).float().mean())


# -- the polarity coordinate ------------------------------------------------------------------------

WORD = re.compile(r"[^\W\d_]+(?:[-'][^\W\d_]+)*")  # letters, maybe joined by - or ': no numbers or symbols
PROBE_MIN_RATIO = 1.0  # the words the probe learns from: |log-count ratio| at least this (e^1 = 2.7 to 1)
REPORT_WORDS = 10_000  # the report's same-polarity share is measured on at most this many polar words


def polarity_coordinate(vectors: np.ndarray, keys: list[str], polarities: dict[str, float], encode, *,
                        strength: float = 0.3, l2: float = 1e-3, k: int = 10, seed: int = 0) -> tuple[np.ndarray, dict]:
    """Unit `vectors` whose least-used direction holds each word's polarity, and a report.

    `encode(words)` gives the sentence encoder's (n, d) encodings of the words; the probe's score
    (standardised, squashed with tanh, times `strength`) is the new coordinate. The report says
    how many words taught the probe, how often it agreed with polar words it did not see, and,
    among the training split's polar words, the share of each one's k nearest that share its
    polarity, before and after.
    """
    import torch

    from ..words.ingest import unit_rows

    unit, norms = unit_rows(vectors)
    rows = np.array([i for i, word in enumerate(keys) if norms[i] > 0 and WORD.fullmatch(word)], dtype=np.int64)
    words = [keys[i] for i in rows]
    taught = [j for j, word in enumerate(words) if abs(polarities.get(word, 0.0)) >= PROBE_MIN_RATIO]
    labels = np.array([polarities[words[j]] > 0 for j in taught])
    if len(taught) < 10 or labels.all() or not labels.any():
        return unit, {"note": f"{len(taught)} clearly polar words (of both polarities needed, at least 10): too few "
                              f"to teach the polarity probe; the vectors are as fine-tuned"}
    encodings = np.asarray(encode(words), dtype=np.float32)
    x, y = torch.from_numpy(encodings[taught]), torch.from_numpy(labels.astype(np.float32))
    order = np.random.default_rng(seed).permutation(len(taught))
    held, fit = order[:len(order) // 5], order[len(order) // 5:]  # how well the probe carries to unseen words
    held_agreement = None
    if 0 < float(y[fit].mean()) < 1:
        predicted = probe_scores(fit_probe(x[fit], y[fit], l2), x[held]) > 0
        held_agreement = round(float((predicted.float() == y[held]).float().mean()), 4)
    scores = probe_scores(fit_probe(x, y, l2), torch.from_numpy(encodings)).numpy()
    coordinate = strength * np.tanh(scores / max(float(scores.std()), 1e-12))

    variances, axes = np.linalg.eigh(np.cov(unit[:min(len(unit), 50_000)], rowvar=False))  # ascending
    axis = axes[:, 0].astype(np.float32)
    polar_rows = np.array([i for i, key in enumerate(keys) if key in polarities], dtype=np.int64)
    polar_words = len(polar_rows)
    if len(polar_rows) > REPORT_WORDS:  # the share compares every pair: a sample of a big corpus's words
        polar_rows = np.sort(np.random.default_rng(seed).choice(polar_rows, REPORT_WORDS, replace=False))
    sign = torch.tensor([1.0 if polarities[keys[i]] > 0 else -1.0 for i in polar_rows])
    k = min(k, max(1, len(polar_rows) // 4))
    before = _same_polarity_share(torch.from_numpy(unit[polar_rows]), sign, k)

    unit[rows] += (coordinate - unit[rows] @ axis)[:, None] * axis[None, :]  # the other words keep theirs
    unit, _ = unit_rows(unit)
    report = {
        "polar_words": polar_words,  # the share is measured on at most REPORT_WORDS of them
        "same_polarity_share_before": round(before, 4),
        "same_polarity_share_after": round(_same_polarity_share(torch.from_numpy(unit[polar_rows]), sign, k), 4),
        "probe_words": len(taught),
        "probe_held_out_agreement": held_agreement,
        "scored_words": len(rows),
        "strength": strength,
        "replaced_variance_share": round(float(variances[0] / variances.sum()), 6),
    }
    return unit, report
