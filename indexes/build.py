"""`simdex index build`: a FAISS index over the current version, tuned to a measured recall.

Kinds (inner product on unit vectors, i.e. cosine):

    flat    exact search (IndexFlatIP); recall 1 by construction, measured anyway
    hnsw    HNSW32 graph, efConstruction 80 (the default for word stores); tunes efSearch
    ivf     IVF (4 sqrt(n) lists), flat codes; tunes nprobe
    ivfpq   IVF with product-quantised codes at most 1/8 of the flat index's bytes; the PQ
            shortlist is re-ranked exactly from the store's memory-mapped matrix; tunes
            nprobe and the shortlist size
    other   any FAISS index_factory string ("IVF256,SQ8", "HNSW16,Flat", ...), tuned like
            its family when it has one

Recall@10 is measured, not assumed: 1,000 vocabulary words (seeded) are searched, their own
row left out, and their top 10 compared with exact search. The smallest parameter meeting
the target wins; when none does, the best one is kept and the shortfall reported.
"""

from __future__ import annotations

import json
import math
import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import faiss
import numpy as np

from engine.errors import SimdexError
from engine.query import search as exact_search

from .searcher import Searcher

KINDS = ("flat", "hnsw", "ivf", "ivfpq")
EF_SEARCH = (8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 2048)
NPROBE = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 1024, 2048, 4096)
RERANK = (4, 8, 16, 32)
SAMPLE_QUERIES = 1000


class BadIndex(SimdexError):
    pass


@dataclass
class BuildResult:
    kind: str
    factory: str
    version: int
    recall_at_10: float
    params: dict
    seconds: float
    bytes: int
    target_recall: float
    met: bool
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"kind": self.kind, "version": self.version, "recall_at_10": round(self.recall_at_10, 4),
                "params": self.params, "seconds": round(self.seconds, 2), "factory": self.factory,
                "bytes": self.bytes, "target_recall": self.target_recall, "met": self.met}


def build_index(store, kind: str = "hnsw", target_recall: float = 0.95, progress=None) -> BuildResult:
    """Build, tune and save an index over `store`'s version; it replaces the store's index when
    saved. An interruption before then leaves the previous index in place."""
    if not 0 < target_recall <= 1:
        raise BadIndex(f"--target-recall must be in (0, 1], got {target_recall}")
    started = time.perf_counter()
    version = store.version
    matrix = store.matrix()
    n, d = matrix.shape
    index, factory, family = make_index(kind, n, d)
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    xb = np.ascontiguousarray(matrix, dtype=np.float32)
    if not index.is_trained:
        rng = np.random.default_rng(0)
        sample = xb[np.sort(rng.choice(n, size=min(n, 100_000), replace=False))]
        index.train(sample)
    step = 50_000
    for start in range(0, n, step):
        index.add(xb[start:start + step])
        if progress:
            progress(min(n, start + step), n)
    del xb
    searcher = Searcher(index, family, {}, matrix)
    params, recall, met, notes = tune(searcher, family, matrix, target_recall)
    seconds = time.perf_counter() - started
    path, size = _save(store, index)
    result = BuildResult(kind, factory, version.version, recall, params, seconds, size, target_recall, met, notes)
    _record(store, result, path)
    return result


def make_index(kind: str, n: int, d: int):
    """(an untrained FAISS index, its factory string, the family whose parameters it tunes)."""
    ip = faiss.METRIC_INNER_PRODUCT
    if kind == "flat":
        return faiss.IndexFlatIP(d), "Flat", "flat"
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, 32, ip)
        index.hnsw.efConstruction = 80
        return index, "HNSW32,Flat", "hnsw"
    if kind in ("ivf", "ivfpq"):
        nlist = max(1, min(int(4 * math.sqrt(n)), n // 39))
        if kind == "ivf":
            factory = f"IVF{nlist},Flat"
        else:
            m = pq_subquantizers(d, n, nlist)
            nbits = 8 if n >= 256 * 39 else max(1, int(math.log2(max(2, n // 39))))
            factory = f"IVF{nlist},PQ{m}x{nbits}"
        return faiss.index_factory(d, factory, ip), factory, kind
    try:
        index = faiss.index_factory(d, kind, ip)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[-1] if str(e).strip() else "not understood"
        raise BadIndex(f"invalid FAISS factory string {kind!r} (kinds: {', '.join(KINDS)}, or a FAISS "
                       f"index_factory string such as 'IVF256,Flat'): {first}") from None
    family = "hnsw" if "HNSW" in kind else "ivf" if "IVF" in kind else "flat"
    if "PQ" in kind or "SQ" in kind or "LSH" in kind:
        family += "+rerank"
    return index, kind, family


def pq_subquantizers(d: int, n: int, nlist: int) -> int:
    """The most sub-quantisers (8-bit codes) that divide d and keep the whole index (codes,
    8-byte ids, the coarse centroids and the PQ codebooks) within 1/8 of the flat 4nd bytes."""
    fixed = n * 8 + nlist * d * 4 + 256 * d * 4
    budget = (n * d * 4 // 8 - fixed) // max(n, 1)
    fitting = [m for m in range(1, d + 1) if d % m == 0 and m <= budget]
    if not fitting:
        raise BadIndex(f"{n:,} vectors of dimension {d} are too few for an IVF-PQ index within 1/8 "
                       f"of the flat index's size; use --kind ivf or hnsw")
    return max(fitting)


def tune(searcher: Searcher, family: str, matrix: np.ndarray, target: float):
    """(params, recall@10, met, notes): the cheapest parameters that reach `target`."""
    n = matrix.shape[0]
    rng = np.random.default_rng(0)
    ids = np.sort(rng.choice(n, size=min(SAMPLE_QUERIES, n), replace=False))
    xq = np.asarray(matrix[ids], dtype=np.float32)
    k = min(10, n - 1)
    if k < 1:
        return {}, 1.0, True, ["a single vector: nothing to search"]
    _, truth = exact_search(matrix, xq, k, exclude=[[i] for i in ids])
    if family.startswith("hnsw"):
        grid = [{"efSearch": ef} for ef in EF_SEARCH]
    elif family.startswith("ivf"):
        nlist = faiss.extract_index_ivf(searcher.index).nlist
        grid = [{"nprobe": p} for p in NPROBE if p <= nlist] or [{"nprobe": 1}]
    else:
        grid = [{}]
    if family.endswith("rerank") or family == "ivfpq":
        grid = [dict(p, rerank=r) for p in grid for r in RERANK]
        grid.sort(key=lambda p: (p.get("nprobe", 1) * p.get("efSearch", 1), p["rerank"]))
    best = None
    for params in grid:
        searcher.params = dict(params)
        recall = measure_recall(searcher, xq, ids, truth, k)
        if best is None or recall > best[1]:
            best = (params, recall)
        if recall >= target:
            return params, recall, True, []
    params, recall = best
    searcher.params = dict(params)
    note = (f"target recall@10 {target} not met: the best was {recall:.4f} with {params} "
            f"({target - recall:.4f} short)")
    return params, recall, False, [note]


def measure_recall(searcher: Searcher, xq, ids, truth, k) -> float:
    D, I = searcher.search(xq, k + 1)
    found = 0
    for row, own in enumerate(ids):
        answers = [i for i in I[row] if i != own and i >= 0][:k]
        found += len(set(answers) & set(truth[row].tolist()))
    return found / (len(ids) * k)


def _save(store, index) -> tuple[str, int]:
    directory = store.path / "indexes"
    directory.mkdir(exist_ok=True)
    tmp = directory / f".tmp-{os.getpid()}-{uuid.uuid4().hex}.faiss"
    try:
        faiss.write_index(index, str(tmp))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return str(tmp), tmp.stat().st_size


def _record(store, result: BuildResult, tmp_path: str) -> None:
    """Rename the index into place and make it the store's index in one transaction; the
    files of the indexes it replaces are removed after the commit."""
    conn = store.conn
    tmp = Path(tmp_path)
    final = None
    try:
        store.begin_write()
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:
        old = conn.execute("SELECT id, path FROM indexes").fetchall()
        number = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM indexes").fetchone()[0]
        relative = f"indexes/v{result.version}-{number}.faiss"
        final = store.path / relative
        os.replace(tmp, final)
        conn.execute(
            "INSERT INTO indexes (id, version, kind, factory, path, params, recall_at_10, seconds, bytes, created)"
            " VALUES (?,?,?,?,?,?,?,?,?,?)",
            (number, result.version, result.kind, result.factory, relative, json.dumps(result.params),
             result.recall_at_10, result.seconds, result.bytes,
             datetime.now(timezone.utc).isoformat(timespec="seconds")),
        )
        conn.execute("DELETE FROM indexes WHERE id != ?", (number,))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if final is not None:
            final.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
        raise
    for _, path in old:
        (store.path / path).unlink(missing_ok=True)
    store._searcher = None
