"""What the explorer page asks of a store beyond the CLI's verbs: words by prefix, and a map.

    explorer = Explorer(store)
    explorer.suggest("fro", 5)          # ["from", "front", "frozen", ...]: the most frequent first
    explorer.projection("frog", 30)     # the query and its 30 neighbours, PCA-projected to 2-D

Both are queries over the store's read side (engine/store.py), so they work on every backend.
"""

from __future__ import annotations

import bisect

import numpy as np

class Explorer:
    """A store's explorer queries; the prefix index is built on the first suggestion asked for."""

    def __init__(self, store):
        self.store = store
        self._sorted: tuple[list[str], list[int]] | None = None

    def suggest(self, prefix: str, k: int = 10) -> list[str]:
        """Stored words starting with `prefix`, the most frequent (lowest row) first."""
        if self._sorted is None:
            keys = self.store.keys()
            order = sorted(range(len(keys)), key=keys.__getitem__)
            self._sorted = ([keys[i] for i in order], order)
        words, rows = self._sorted
        start = bisect.bisect_left(words, prefix)
        end = bisect.bisect_left(words, prefix + "\U0010ffff")
        found = sorted(rows[start:end][:50_000])[:k]
        return self.store.keys_of(found)

    def projection(self, q: str, k: int = 30) -> dict:
        """{query, points: [{word, x, y, score, query}]}: the query's mean vector and its k
        neighbours, projected on their first two principal axes (scaled into [-1, 1])."""
        store = self.store
        store.require_kind("words", "the map")
        answers = store.neighbors(q, k=k)
        centre = store.query_vector(q)[0].reshape(1, -1)  # (a word from its subwords, too)
        vectors = np.vstack([centre, np.asarray(store.vectors()[store.ids_of([w for w, _ in answers])])])
        centred = vectors - vectors.mean(axis=0)
        _, _, components = np.linalg.svd(centred, full_matrices=False)
        xy = centred @ components[:2].T
        xy /= np.abs(xy).max() or 1.0
        words = [q] + [w for w, _ in answers]
        scores = [1.0] + [score for _, score in answers]
        return {"query": q, "points": [{"word": w, "x": round(float(x), 5), "y": round(float(y), 5),
                                        "score": round(float(sc), 6), "query": i == 0}
                                       for i, (w, (x, y), sc) in enumerate(zip(words, xy, scores))]}
