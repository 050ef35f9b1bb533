"""Searching a FAISS index over a store version: filtered, re-ranked exactly, thread-aware.

Every kind answers `search(xq, k, restrict)` with FAISS's (D, I). Inner product on unit vectors
is cosine. Kinds whose scores are approximate (PQ codes) fetch a shortlist of `k * rerank`
and re-rank it exactly from the store's memory-mapped matrix.

One query runs on one thread: an OpenMP team's start-up costs more than an HNSW search.
Batches use every core.
"""

from __future__ import annotations

import os

import faiss
import numpy as np

_CORES = os.cpu_count() or 1


def threads_for(nq: int) -> int:
    return 1 if nq < 4 else _CORES


class Searcher:
    """A loaded index, its tuned search parameters and the store matrix it re-ranks from."""

    def __init__(self, index, kind: str, params: dict, matrix: np.ndarray):
        self.index = index
        self.kind = kind
        self._params = dict(params)
        self._parameters = {}
        self.matrix = matrix
        self._ivf = _ivf_of(index)
        self._hnsw = _hnsw_of(index)
        self._threads = None

    @classmethod
    def load(cls, path, kind: str, params: dict, matrix: np.ndarray) -> "Searcher":
        """Read the index memory-mapped where FAISS allows it (flat codes, HNSW storage, IVF lists)."""
        flags = faiss.IO_FLAG_READ_ONLY
        try:
            index = faiss.read_index(str(path), flags | faiss.IO_FLAG_MMAP_IFC)
        except RuntimeError:
            index = faiss.read_index(str(path), flags)
        return cls(index, kind, params, matrix)

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

    def search(self, xq: np.ndarray, k: int, restrict: int | None = None):
        """(D, I) of the k best rows of `matrix[:restrict]` for each query row."""
        xq = np.ascontiguousarray(xq, dtype=np.float32)
        nq = xq.shape[0]
        restrict = None if restrict is None or restrict >= self.ntotal else restrict
        rerank = int(self.params.get("rerank", 1))
        fetch = min(self.ntotal, k * rerank)
        threads = threads_for(nq)
        if threads != self._threads:
            faiss.omp_set_num_threads(threads)
            self._threads = threads
        parameters = self._parameters.get(restrict)
        if parameters is None:
            parameters = self._parameters[restrict] = self._search_parameters(restrict)
        D, I = self.index.search(xq, fetch, params=parameters)
        if rerank > 1:
            D, I = exact_rerank(self.matrix, xq, I, k)
        elif fetch < k:
            D, I = _pad(D, I, k)
        return D[:, :k], I[:, :k]

    def _search_parameters(self, restrict):
        selector = faiss.IDSelectorRange(0, restrict) if restrict is not None else None
        if self._hnsw is not None:
            parameters = faiss.SearchParametersHNSW()
            parameters.efSearch = int(self.params.get("efSearch", 16))
        elif self._ivf is not None:
            parameters = faiss.SearchParametersIVF()
            parameters.nprobe = int(self.params.get("nprobe", 1))
        else:
            parameters = faiss.SearchParameters()
        if selector is not None:
            parameters.sel = selector
            parameters._selector = selector  # keep it alive as long as the parameters
        return parameters


def exact_rerank(matrix: np.ndarray, xq: np.ndarray, candidates: np.ndarray, k: int):
    """Re-score each query's candidate rows exactly and keep the best k (ties: lower id)."""
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


def _hnsw_of(index):
    return getattr(faiss.downcast_index(index), "hnsw", None)
