"""Searching a FAISS index over a store version: filtered, re-ranked exactly, thread-aware.

Every index answers `search(xq, k, restrict)` with FAISS's (D, I). Inner product on unit vectors
is cosine. Indexes whose scores are approximate (PQ or SQ codes, transforms) fetch a shortlist
of `k * rerank` and re-rank it exactly from the store's memory-mapped matrix.

A restriction to the first N rows is a filter (IDSelectorRange) on the index, whose recall was
measured at build time for a few N (`params["restricted"]`); below the smallest N where the
index met the target faster than an exact search, an exact search over the N rows answers.
A filter on the fields kept with a sentence store's texts (`--where`) keeps a scattered set of
rows (IDSelectorBitmap); its recall was measured the same way for random subsets of a few
shares of the rows (`params["filtered"]`), with a second way to answer beside the index's
filter: a scan of the kept rows' PQ codes (a fast-scan codec trained on the whole store at build
time, saved beside the index; the kept rows are encoded once per filter and, within the
memory budget, held beside their codes in an IndexRefine), whose best `k * rerank` are
re-ranked exactly (`{"scan": "codes", "rerank": R}`; a filter keeping a larger
share than the one R was measured at scales R by the ratio: more rows score near the best). A
graph searched through a selective filter must visit ever more nodes to find k kept ones; the
scan's cost is the kept rows' count at 1/24 (or 1/16) of their float bytes. Each share keeps
whichever of the two was measured faster at the target; below the smallest share where either
beat an exact search, the kept rows are searched exactly. A query left with fewer than k answers by a filter is answered
exactly.

One query runs on one thread: an OpenMP team's start-up costs more than an HNSW search.
Batches use every core.
"""

from __future__ import annotations

import enum
import math
import os
from dataclasses import dataclass

import faiss
import numpy as np

from ..engine.query import COSMUL_EPSILON, normalize
from ..engine.query import search as exact_search
from ..engine.query import kept_rows, search_rows

_CORES = os.cpu_count() or 1


class Family(enum.Enum):
    """What an index's search parameters are: none (flat), efSearch (HNSW) or nprobe (IVF)."""
    FLAT = "flat"
    HNSW = "hnsw"
    IVF = "ivf"


@dataclass(frozen=True)
class IndexType:
    family: Family
    rerank: bool  # its stored codes are lossy: re-rank a shortlist exactly

    @classmethod
    def of(cls, index) -> "IndexType":
        """Read off a FAISS index object (the same after a build and after a load)."""
        inner = faiss.downcast_index(index)
        if isinstance(inner, faiss.IndexPreTransform):
            return cls(cls.of(inner.index).family, True)
        if _ivf_of(index) is not None:
            ivf = faiss.downcast_index(_ivf_of(index))
            return cls(Family.IVF, not isinstance(ivf, faiss.IndexIVFFlat))
        if getattr(inner, "hnsw", None) is not None:
            storage = faiss.downcast_index(inner.storage)
            return cls(Family.HNSW, not isinstance(storage, faiss.IndexFlat))
        return cls(Family.FLAT, not isinstance(inner, faiss.IndexFlat))


def threads_for(nq: int) -> int:
    return 1 if nq < 4 else _CORES


class Searcher:
    """A loaded index, its tuned search parameters and the store matrix it re-ranks from.

    `kind` is the user's name for the index ("hnsw", "ivfpq", or a factory string), as recorded
    in the store; `type` is what FAISS built (family, and whether it re-ranks)."""

    def __init__(self, index, kind: str, params: dict, matrix: np.ndarray, codec=None):
        self.index = index
        self.codec = codec  # a trained, empty PQ fast-scan index for filtered scans, or None
        self.kind = kind
        self.type = IndexType.of(index)
        self.matrix = matrix
        self._ivf = _ivf_of(index)
        self._hnsw = getattr(faiss.downcast_index(index), "hnsw", None)
        self._threads = None
        self._refine_parameters = {}  # a code scan's shortlist (as FAISS's k_factor) -> its parameters
        self.params = params

    @classmethod
    def load(cls, path, kind: str, params: dict, matrix: np.ndarray, codes_path=None) -> "Searcher":
        """Read the index memory-mapped where FAISS allows it (flat codes, HNSW storage, IVF
        lists), and the filter codec saved beside it (`codes_path`), if any."""
        flags = faiss.IO_FLAG_READ_ONLY
        try:
            index = faiss.read_index(str(path), flags | faiss.IO_FLAG_MMAP_IFC)
        except RuntimeError:
            index = faiss.read_index(str(path), flags)
        codec = None if codes_path is None else faiss.read_index(str(codes_path))
        return cls(index, kind, params, matrix, codec)

    @property
    def ntotal(self) -> int:
        return self.index.ntotal

    @property
    def params(self) -> dict:
        return self._params

    @params.setter
    def params(self, params: dict) -> None:
        self._params = dict(params)
        self._parameters = {}
        # [(rows, params)], most rows first: what was measured to meet the target with a filter
        self._restricted = sorted(((int(n), p) for n, p in self._params.get("restricted", [])), reverse=True)
        # [(share of the rows, params)], largest first: the same for scattered rows (a --where filter)
        self._filtered = sorted(((float(s), p) for s, p in self._params.get("filtered", [])), reverse=True)

    def describe(self) -> str:
        shown = {name: value for name, value in self.params.items()
                 if name not in ("restricted", "filtered", "target_recall")}
        return f"{self.kind} {shown}"

    def params_for(self, restrict: int | None) -> dict | None:
        """The search parameters for a restriction to the first `restrict` rows, or None where
        an exact search answers: the parameters measured for the largest N <= restrict."""
        if restrict is None:
            return self.params
        for rows, params in self._restricted:
            if rows <= restrict:
                return None if params is None else {**self.params, **params}
        return None  # not measured (or an index built before restrictions were): exact

    def params_for_share(self, share: float) -> dict | None:
        """The search parameters for a filter keeping `share` of the rows, scattered, or None
        where an exact search over them answers: those measured for the largest share <= it."""
        for measured, params in self._filtered:
            if measured <= share + 1e-9:
                if params is None:
                    return None
                if params.get("scan"):  # the rows whose codes score near the best k grow with the
                    # rows scanned: the shortlist measured at `measured` grows with the share
                    return {**params, "rerank": params["rerank"] * max(1.0, share / measured if measured > 0 else 1.0)}
                return {**self.params, **params}
        return None

    def search(self, xq: np.ndarray, k: int, restrict: int | None = None, rows: np.ndarray | None = None):
        """(D, I) of the k best rows of `matrix[:restrict]` for each query row, or, given `rows`
        (sorted ids: a filter's), of those rows."""
        xq = np.ascontiguousarray(xq, dtype=np.float32)
        restrict = None if restrict is None or restrict >= self.ntotal else restrict
        if rows is not None:
            rows = np.asarray(rows, dtype=np.int64)
            if restrict is not None:
                rows, restrict = rows[rows < restrict], None
            if len(rows) < self.ntotal:
                return self._search_filtered(xq, k, rows)
            rows = None
        params = self.params_for(restrict)
        if params is None:
            return exact_search(self.matrix, xq, k, restrict=restrict)
        D, I = self.search_with(xq, k, restrict, params)
        if restrict is not None:
            short = (I < 0).any(axis=1) if k <= restrict else np.zeros(len(I), dtype=bool)
            if short.any():  # the filter left too few: answer those exactly
                D[short], I[short] = exact_search(self.matrix, xq[short], k, restrict=restrict)
        return D, I

    def _search_filtered(self, xq, k, rows):
        params = self.params_for_share(len(rows) / max(self.ntotal, 1))
        if params is None or len(rows) <= k or (params.get("scan") == "codes" and self.codec is None):
            return search_rows(self.matrix, xq, k, rows)
        D, I = self.search_rows_with(xq, k, rows, params)
        short = (I < 0).any(axis=1)
        if short.any():  # the filter left too few: answer those exactly
            D[short], I[short] = search_rows(self.matrix, xq[short], k, rows)
        return D, I

    def search_rows_with(self, xq, k, rows, params):
        """The k best of the sorted ids `rows` with the given parameters: the index through a
        filter, or a scan of the rows' codes (`{"scan": "codes", "rerank": R}`), for tuning."""
        if params.get("scan") != "codes":
            return self.search_with(xq, k, None, params, rows=rows)
        self._use_threads(len(xq))
        coded, refined = kept_rows.coded(self.codec, self.matrix, rows)
        fetch = min(len(rows), math.ceil(k * float(params.get("rerank", 10))))
        if refined:  # the kept rows are beside their codes: FAISS re-scores the shortlist
            factor = (fetch + 0.5) / k  # FAISS fetches int(k * factor): `fetch`, not one fewer
            if factor not in self._refine_parameters:
                self._refine_parameters[factor] = faiss.IndexRefineSearchParameters(k_factor=factor)
            return coded.search(xq, k, params=self._refine_parameters[factor])
        _, shortlist = coded.search(xq, fetch)
        return exact_rerank(self.matrix, xq, shortlist, k)

    def search_with(self, xq, k, restrict, params, rows=None):
        """search() with the given parameters and filter (the first `restrict` rows, or the
        sorted ids `rows`), whatever was measured (for tuning)."""
        rerank = int(params.get("rerank", 1))
        fetch = min(self.ntotal, k * rerank)
        self._use_threads(len(xq))
        if rows is not None:
            parameters, _selector_kept_alive = self._search_parameters(None, params, rows)
        else:
            key = (restrict, tuple(sorted((n, v) for n, v in params.items() if n not in ("restricted", "filtered"))))
            if key not in self._parameters:
                self._parameters[key] = self._search_parameters(restrict, params)
            parameters, _selector_kept_alive = self._parameters[key]
        D, I = self.index.search(xq, fetch, params=parameters)
        if rerank > 1:
            D, I = exact_rerank(self.matrix, xq, I, k)
        elif fetch < k:
            D, I = _pad(D, I, k)
        return D[:, :k], I[:, :k]

    def _use_threads(self, nq: int) -> None:
        threads = threads_for(nq)
        if threads != self._threads:
            faiss.omp_set_num_threads(threads)
            self._threads = threads

    def _search_parameters(self, restrict, params, rows=None):
        """(FAISS search parameters, the selector they point to, which must outlive them)."""
        selector = None
        if rows is not None:
            bits = kept_rows.bitmap(rows, self.ntotal)  # FAISS reads bit i of byte i >> 3
            selector = (faiss.IDSelectorBitmap(self.ntotal, faiss.swig_ptr(bits)), bits)  # it points into bits
        elif restrict is not None:
            selector = faiss.IDSelectorRange(0, restrict)
        if self._hnsw is not None:
            parameters = faiss.SearchParametersHNSW()
            parameters.efSearch = int(params.get("efSearch", 16))
        elif self._ivf is not None:
            parameters = faiss.SearchParametersIVF()
            parameters.nprobe = int(params.get("nprobe", 1))
        else:
            parameters = faiss.SearchParameters()
        if isinstance(selector, tuple):
            parameters.sel = selector[0]
        elif selector is not None:
            parameters.sel = selector
        return parameters, selector

    def analogies(self, abc_ids, k: int, method: str = "add", restrict: int | None = None):
        """Analogies through the index: over-fetch candidates (k + 3 near the 3CosAdd direction;
        more, along several directions, for 3CosMul), drop the question words and re-rank them
        exactly from the stored vectors. A row found by several probes is kept once."""
        matrix = self.matrix
        abc_ids = np.asarray(abc_ids, dtype=np.int64).reshape(-1, 3)
        a, b, c = (np.asarray(matrix[abc_ids[:, j]], dtype=np.float32) for j in range(3))
        queries = normalize((b + c - a) / 3)
        if method == "add":
            _, candidates = self.search(queries, k + 3, restrict=restrict)
        else:
            # 3CosMul rewards rows far from a (its denominator 1 + cos(d, a) shrinks), so its best
            # rows can lie well away from b + c - a: probe along b + c - w a for a few weights w.
            fetch = max(2 * (k + 3), 50)
            probes = [self.search(normalize(b + c - w * a), fetch, restrict=restrict)[1] for w in (1, 1.5, 2, 3)]
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


def exact_rerank(matrix: np.ndarray, xq: np.ndarray, candidates: np.ndarray, k: int):
    """Re-score each query's candidate rows exactly and keep the best k (ties: lower id)."""
    if len(xq) == 1:  # one query (a CLI search): the same, with a tenth of the array work
        ids = candidates[0][candidates[0] >= 0]
        rows = matrix.take(ids, axis=0) if isinstance(matrix, np.ndarray) else matrix[ids]  # take: half
        scores = np.asarray(rows, dtype=np.float32) @ xq[0]  # the time of fancy indexing
        order = np.lexsort((ids, -scores))[:k]
        return _pad(scores[order][None], ids[order][None], k)
    vectors = candidate_vectors(matrix, candidates)
    return best_of(np.einsum("qmd,qd->qm", vectors, xq), candidates, k)


def candidate_vectors(matrix: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """The stored rows of (nq, m) candidate ids as (nq, m, d); -1 ids read row 0 (masked later)."""
    nq, m = candidates.shape
    safe = np.where(candidates >= 0, candidates, 0)
    return np.asarray(matrix[safe.ravel()], dtype=np.float32).reshape(nq, m, -1)


def best_of(scores: np.ndarray, candidates: np.ndarray, k: int):
    """(D, I): each query's k best candidates by score, ties by lower id; -1 ids never win."""
    scores = np.where(candidates >= 0, scores, -np.inf)
    order = np.lexsort((candidates, -scores), axis=1)[:, :k]
    D = np.take_along_axis(scores, order, axis=1).astype(np.float32)
    I = np.take_along_axis(candidates, order, axis=1)
    I[~np.isfinite(D)] = -1
    return _pad(D, I, k)


def _unique_rows(candidates: np.ndarray) -> np.ndarray:
    """Each row's ids with repeats replaced by -1."""
    order = np.sort(candidates, axis=1)
    repeated = np.zeros_like(order, dtype=bool)
    repeated[:, 1:] = order[:, 1:] == order[:, :-1]
    order[repeated] = -1
    return order


def _pad(D, I, k):
    if D.shape[1] >= k:
        return D, I
    extra = k - D.shape[1]
    return (np.pad(D, ((0, 0), (0, extra)), constant_values=-np.inf),
            np.pad(I, ((0, 0), (0, extra)), constant_values=-1))


def _ivf_of(index):
    try:
        return faiss.extract_index_ivf(index)
    except RuntimeError:
        return None
