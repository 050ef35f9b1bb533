"""Sentiment refinement of word vectors (Yu et al. 2017; counter-fitting, Mrksic et al. 2016).

    polarities = word_polarities(data)                    # learned from the training split only
    vectors, report = refine(vectors, polarities, key_to_id)

Plain fine-tuning barely changes which words are neighbours: the classifier's head absorbs the
signal. So after training, the words that the labelled reviews show to be polar move on purpose:

1. A word's polarity is its naive-Bayes log-count ratio over the training split's documents
   (Wang & Manning 2012), r = log(P(word | positive) / P(word | negative)), for words found in
   at least `min_docs` documents whose |r| passes `threshold`. No lexicon is read: the VADER and
   AFINN word lists only measure the result (benchmarks/bench_train.py).
2. Each polar word's `k` nearest polar neighbours (by cosine) are pulled towards it when they share
   its polarity and pushed below `margin` when they do not, while a tie term keeps every vector near
   where it started. Words that are not polar do not move, so the analogies and word-pair
   similarities of the rest of the vocabulary are left as they were.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np


def word_polarities(tokens, labels, rows, *, min_docs: int = 20, threshold: float = 0.5,
                    smoothing: float = 1.0) -> dict[str, float]:
    """{word: log-count ratio} of the polar words of the documents `rows` (the training split)."""
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


def refine(vectors: np.ndarray, polarities: dict[str, float], key_to_id: dict[str, int], *, k: int = 10,
           margin: float = 0.0, tie: float = 1.0, steps: int = 150, rounds: int = 3, lr: float = 0.02,
           seed: int = 0) -> tuple[np.ndarray, dict]:
    """`vectors` with the polar words' rows refined (unit rows), and a report of what moved."""
    import torch

    words = sorted((w for w in polarities if w in key_to_id), key=lambda w: key_to_id[w])
    signs = {polarities[w] > 0 for w in words}
    if len(words) < 4 or len(signs) < 2:
        return vectors, {"polar_words": len(words), "note": "too few polar words (of both polarities) to refine"}
    k = min(k, max(1, len(words) // 4))  # a few neighbours in a small vocabulary
    rows = np.array([key_to_id[w] for w in words], dtype=np.int64)
    sign = torch.tensor([1.0 if polarities[w] > 0 else -1.0 for w in words])
    weight = torch.tensor([min(abs(polarities[w]), 2.0) / 2.0 for w in words])  # confidence in [0.25, 1]
    torch.manual_seed(seed)
    start = torch.nn.functional.normalize(torch.from_numpy(np.array(vectors[rows], dtype=np.float32)), dim=1)
    moving = start.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([moving], lr=lr)
    before = _same_polarity_share(start, sign, k)
    for _ in range(rounds):
        with torch.no_grad():  # neighbours as they stand at the start of the round
            unit = torch.nn.functional.normalize(moving, dim=1)
            neighbours = _nearest(unit, k)
        same = sign[:, None] == sign[neighbours]
        pair_weight = weight[:, None] * weight[neighbours]
        for _ in range(steps):
            unit = torch.nn.functional.normalize(moving, dim=1)
            cos = (unit[:, None, :] * unit[neighbours]).sum(-1)
            attract = ((1 - cos) * pair_weight)[same].sum()
            repel = (torch.relu(cos - margin) * pair_weight)[~same].sum()
            anchor = tie * k * ((unit - start) ** 2).sum()
            loss = (attract + repel + anchor) / len(words)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    refined = torch.nn.functional.normalize(moving.detach(), dim=1)
    out = np.array(vectors, dtype=np.float32, copy=True)
    out[rows] = refined.numpy()
    moved = (1 - (refined * start).sum(1)).numpy()
    report = {
        "polar_words": len(words),
        "positive": int((sign > 0).sum()),
        "negative": int((sign < 0).sum()),
        "same_polarity_share_before": round(before, 4),
        "same_polarity_share_after": round(_same_polarity_share(refined, sign, k), 4),
        "mean_cosine_moved": round(float(moved.mean()), 4),
    }
    return out, report


def _nearest(unit, k: int):
    import torch

    similarity = unit @ unit.T
    similarity.fill_diagonal_(-float("inf"))
    return torch.topk(similarity, k, dim=1).indices


def _same_polarity_share(unit, sign, k: int) -> float:
    """The share of each polar word's k nearest polar words that share its polarity."""
    neighbours = _nearest(unit, k)
    return float((sign[:, None] == sign[neighbours]).float().mean())
