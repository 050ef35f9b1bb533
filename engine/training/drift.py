"""How far a trained version drifted from its parent: the report `simdex train` prints and stores.

    report = drift_report(parent, child)     # two Stores open on the two versions

- the words that moved most (lowest cosine between a word's two vectors, among the first
  `restrict` words: the frequent ones, where a move matters);
- neighbour overlap@10: for sample words (and, as one number, for a seeded sample of the first
  `restrict` words), the share of the ten nearest neighbours the two versions have in common;
- `eval compare` of the bundled analogy and word-pair benchmarks, both versions searched
  exactly over the first `restrict` words, so that no index's misses count as drift.
"""

from __future__ import annotations

import numpy as np

from .. import query
from ..errors import SimdexError
from ..progress import SILENT, Progress
from ..words import evaluate

SAMPLE_WORDS = ("excellent", "terrible", "good", "bad", "boring", "brilliant", "awful", "wonderful",
                "king", "france", "computer", "water")


def drift_report(parent, child, *, restrict: int = 30_000, sample_words=SAMPLE_WORDS, sample: int = 500,
                 seed: int = 0, progress: Progress = SILENT) -> dict:
    keys = parent.keys()
    limit = min(restrict, parent.version.count)
    before = np.asarray(parent.matrix()[:limit])
    after = np.asarray(child.matrix()[:limit])  # a child shares its parent's first rows (words are only added)
    cosine = (before * after).sum(axis=1)
    moved = np.argsort(cosine, kind="stable")[:10]
    key_to_id = parent.key_to_id()
    words = [w for w in sample_words if key_to_id.get(w, limit) < limit]
    rows = np.array([key_to_id[w] for w in words], dtype=np.int64)
    random_rows = np.random.default_rng(seed).choice(limit, size=min(sample, limit), replace=False)
    overlap_words = _overlap(before, after, rows)
    try:
        comparison = evaluate.compare(parent, child, restrict=restrict, exact=True, progress=progress)
        compared = {"search": [comparison.search_v1, comparison.search_v2], "rows": comparison.rows}
    except SimdexError as e:  # a small vocabulary that the bundled benchmarks do not cover
        compared = {"note": f"not compared: {e}", "rows": []}
    return {
        "restrict": limit,
        "mean_cosine_to_parent": round(float(cosine.mean()), 6),
        "most_moved": [{"word": keys[i], "cosine": round(float(cosine[i]), 4)} for i in moved],
        "overlap_at_10": {w: round(float(o), 2) for w, o in zip(words, overlap_words)},
        "mean_overlap_at_10": round(float(_overlap(before, after, random_rows).mean()), 4),
        "neighbours": {w: {"before": _neighbour_words(before, keys, i), "after": _neighbour_words(after, keys, i)}
                       for w, i in zip(words[:4], rows[:4])},
        "compare": compared,
    }


def _overlap(before: np.ndarray, after: np.ndarray, rows: np.ndarray, k: int = 10) -> np.ndarray:
    """For each row, |top-k before ∩ top-k after| / k (the word itself left out)."""
    if len(rows) == 0:
        return np.zeros(0)
    _, old = query.search(before, before[rows], k + 1)
    _, new = query.search(after, after[rows], k + 1)
    return np.array([len((set(o) & set(n)) - {r}) / k for r, o, n in zip(rows, old, new)])


def _neighbour_words(matrix: np.ndarray, keys, row: int, k: int = 5) -> list[str]:
    _, ids = query.search(matrix, matrix[row:row + 1], k + 1)
    return [keys[i] for i in ids[0] if i != row][:k]
