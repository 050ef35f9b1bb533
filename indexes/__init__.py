"""simdex's search side: FAISS indexes over a store version (building, tuning, persistence, search).

A store has at most one index, recorded in its `indexes` table with the version it was built
from. Queries use it when it was built for the version they read; otherwise they search
exactly and say why (`notice`), so a stale index is never used silently.
"""

from __future__ import annotations

import json

import numpy as np


def index_record(store) -> dict | None:
    row = store.conn.execute(
        "SELECT id, version, kind, factory, path, params, recall_at_10, seconds, bytes, created"
        " FROM indexes ORDER BY id DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    keys = ("id", "version", "kind", "factory", "path", "params", "recall_at_10", "seconds", "bytes", "created")
    record = dict(zip(keys, row))
    record["params"] = json.loads(record["params"] or "{}")
    return record


def index_state(store) -> dict | None:
    """What `simdex info` shows: {kind, version, recall_at_10, params, ...} or None."""
    record = index_record(store)
    if record is None:
        return None
    current = store.current_version()
    return {"kind": record["kind"], "version": record["version"], "recall_at_10": record["recall_at_10"],
            "params": record["params"], "factory": record["factory"], "bytes": record["bytes"],
            "seconds": record["seconds"], "created": record["created"], "stale": record["version"] != current}


def open_searcher(store):
    """(Searcher, None) for an index built from the version `store` reads, else (None, notice)."""
    record = index_record(store)
    if record is None:
        return None, None
    version = store.version.version
    if record["version"] != version:
        return None, (f"the {record['kind']} index was built for version {record['version']}, not version "
                      f"{version}: searching exactly (rebuild it with `simdex index build`)")
    from .searcher import Searcher

    path = store.path / record["path"]
    if not path.exists():
        return None, f"the index file {path} is missing: searching exactly (rebuild it with `simdex index build`)"
    return Searcher.load(path, record["kind"], record["params"], store.matrix()), None


def analogies(searcher, matrix, abc_ids, k: int, method: str = "add", restrict: int | None = None):
    """Analogies through the index: over-fetch candidates (k + 3 near the 3CosAdd direction;
    more, along several directions, for 3CosMul), drop the question words and re-rank them
    exactly from the stored vectors. A row found by several probes is kept once."""
    from engine.query import COSMUL_EPSILON, normalize

    from .searcher import best_of, candidate_vectors

    abc_ids = np.asarray(abc_ids, dtype=np.int64).reshape(-1, 3)
    a, b, c = (np.asarray(matrix[abc_ids[:, j]], dtype=np.float32) for j in range(3))
    queries = normalize((b + c - a) / 3)
    if method == "add":
        _, candidates = searcher.search(queries, k + 3, restrict=restrict)
    else:
        # 3CosMul rewards rows far from a (its denominator 1 + cos(d, a) shrinks), so its best
        # rows can lie well away from b + c - a: probe along b + c - w a for a few weights w.
        fetch = max(2 * (k + 3), 50)
        probes = [searcher.search(normalize(b + c - w * a), fetch, restrict=restrict)[1] for w in (1, 1.5, 2, 3)]
        candidates = np.concatenate(probes, axis=1)
    candidates = _unique_rows(candidates)
    candidates[(candidates[:, :, None] == abc_ids[:, None, :]).any(axis=2)] = -1
    vectors = candidate_vectors(matrix, candidates)
    if method == "add":
        scores = np.einsum("qmd,qd->qm", vectors, queries)
    else:
        sim_a, sim_b, sim_c = ((np.einsum("qmd,qd->qm", vectors, x) + 1) / 2 for x in (a, b, c))
        scores = sim_b * sim_c / (sim_a + COSMUL_EPSILON)
    return best_of(scores, candidates, k)


def _unique_rows(candidates: np.ndarray) -> np.ndarray:
    """Each row's ids with repeats replaced by -1."""
    order = np.sort(candidates, axis=1)
    repeated = np.zeros_like(order, dtype=bool)
    repeated[:, 1:] = order[:, 1:] == order[:, :-1]
    order[repeated] = -1
    return order
