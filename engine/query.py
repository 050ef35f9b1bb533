"""Exact search over unit-length rows, in numpy: neighbours, expressions and analogies.

Everything here works on a batch of queries at once and returns what FAISS returns: scores
`D` float32 (nq, k) and row ids `I` int64 (nq, k), best first, padded with -inf / -1 when fewer
than k rows qualify. Mapping ids to words is the store's job.

The arithmetic follows gensim's KeyedVectors so that answers agree: `most_similar` averages
the unit vectors of the terms (+1 / -1 weights), normalises the mean and ranks by cosine;
`most_similar_cosmul` is 3CosMul with cosines mapped to [0, 1] and epsilon 1e-6.
"""

from __future__ import annotations

import threading
import weakref

import numpy as np

from .errors import BadQuery

COSMUL_EPSILON = 1e-6
_SCORE_BLOCK = 1 << 24  # floats in one (queries x rows) score block: 64 MiB
KEPT_BYTES = 256 << 20  # what the gathered rows of recent filters may hold together
CODE_BATCH = 65_536  # rows gathered at a time while a filter's rows are encoded


def parse_expression(text: str) -> tuple[list[str], list[str]]:
    """Split "king - man + woman" into (["king", "woman"], ["man"]).

    Operators are `+` and `-` standing alone between spaces, so words such as "x-ray" are
    safe; words next to each other with no operator between them form one key
    ("new york"), for vocabularies whose words contain spaces.
    """
    positive: list[str] = []
    negative: list[str] = []
    sign, term, after_operator = +1, [], False
    for token in text.split():
        if token in ("+", "-"):
            if after_operator:
                raise BadQuery(f"malformed expression {text!r}: two operators in a row")
            if term:
                (positive if sign > 0 else negative).append(" ".join(term))
                term = []
            sign, after_operator = (+1 if token == "+" else -1), True
        else:
            term.append(token)
            after_operator = False
    if after_operator:
        raise BadQuery(f"malformed expression {text!r}: it ends with an operator")
    if term:
        (positive if sign > 0 else negative).append(" ".join(term))
    if not positive and not negative:
        raise BadQuery("empty query")
    if not positive:
        raise BadQuery(f"expression {text!r} has no positive term")
    return positive, negative


def normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; zero rows stay zero (never NaN)."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def as_query_matrix(vector, dim: int) -> np.ndarray:
    x = np.asarray(vector, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] != dim:
        raise ValueError(f"expected a vector of dimension {dim}, got shape {np.shape(vector)}")
    return x


def mean_of_unit_rows(matrix: np.ndarray, positive_ids, negative_ids=()) -> np.ndarray:
    """gensim's get_mean_vector(pre_normalize=True, post_normalize=True) with weights +1 / -1."""
    positive_ids = np.asarray(positive_ids, dtype=np.int64)
    negative_ids = np.asarray(negative_ids, dtype=np.int64)
    total = matrix[positive_ids].sum(axis=0) - matrix[negative_ids].sum(axis=0)
    total = total / (len(positive_ids) + len(negative_ids))
    return normalize(total.astype(np.float32))


class Segmented:
    """The rows of several matrices (a version's segments) read as one (n, d) matrix without
    copying them: indexing by row ids works, exact search goes block by block, and
    np.asarray() concatenates (once) for code that needs one array."""

    def __init__(self, blocks: list[np.ndarray]):
        self.blocks = blocks
        self.starts = np.cumsum([0] + [len(b) for b in blocks])
        self.shape = (int(self.starts[-1]), blocks[0].shape[1])
        self.dtype = np.dtype(np.float32)
        self._whole = None

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, ids):
        if isinstance(ids, slice):
            return np.asarray(self)[ids]
        ids = np.asarray(ids)
        if ids.ndim == 0:
            block = int(np.searchsorted(self.starts, ids, side="right") - 1)
            return self.blocks[block][int(ids) - self.starts[block]]
        flat = ids.ravel().astype(np.int64)
        which = np.searchsorted(self.starts, flat, side="right") - 1
        out = np.empty((len(flat), self.shape[1]), dtype=np.float32)
        for block in np.unique(which):
            here = which == block
            out[here] = self.blocks[block][flat[here] - self.starts[block]]
        return out.reshape(*ids.shape, self.shape[1])

    def __array__(self, dtype=None, copy=None):
        if self._whole is None:
            self._whole = np.concatenate(self.blocks)
        return self._whole if dtype is None else self._whole.astype(dtype)


def search(matrix, queries: np.ndarray, k: int, restrict: int | None = None,
           exclude=None) -> tuple[np.ndarray, np.ndarray]:
    """Top-k rows of `matrix[:restrict]` by inner product with each query row.

    `exclude` is None or one sequence of row ids per query that must not be returned.
    A Segmented matrix is searched block by block and the results merged.
    """
    if isinstance(matrix, Segmented):
        return _search_blocks(matrix, queries, k, restrict, exclude)
    rows = _restricted(matrix, restrict)
    return top_k(lambda q0, q1: queries[q0:q1] @ rows.T, len(queries), rows.shape[0], k, exclude)


class KeptRows:
    """What searching the rows a filter keeps needs, made once per filter rather than per query:
    the rows gathered from the matrix, the bitmap of them that FAISS's IDSelectorBitmap reads,
    and their PQ codes (for an index saved with a filter codec).

    Entries are keyed by the identity of the (sorted) row-id array, which a store's open filters
    keep (search.Subset, tuning's levels), and die with it; gathered rows are kept up to
    KEPT_BYTES together, the least recently used given up first."""

    def __init__(self, budget: int = KEPT_BYTES):
        self.budget = budget
        self._lock = threading.Lock()
        self._entries: dict = {}  # key -> (weakrefs of its arrays, value, bytes), oldest first
        self._dead: list = []  # keys whose arrays died: dropped at the next use (a weakref callback
        # may run inside the locked section, when the garbage collector runs there)

    def held(self) -> int:
        """How many entries are kept (after dropping those whose arrays died)."""
        with self._lock:
            self._purge()
            return len(self._entries)

    def _purge(self) -> None:
        while self._dead:
            key = self._dead.pop()
            entry = self._entries.get(key)
            if entry is not None and any(ref() is None for ref in entry[0]):
                del self._entries[key]

    def _get(self, key, owners, make, cost=lambda value: 0):
        with self._lock:
            self._purge()
            found = self._entries.pop(key, None)
            if found is not None and all(ref() is owner for ref, owner in zip(found[0], owners)):
                self._entries[key] = found  # most recently used: last
                return found[1]
        value = make()
        size = cost(value)
        if size > self.budget:
            return value
        refs = tuple(weakref.ref(owner, lambda _, key=key: self._dead.append(key)) for owner in owners)
        with self._lock:
            self._entries[key] = (refs, value, size)
            while sum(entry[2] for entry in list(self._entries.values())) > self.budget:
                self._entries.pop(next(iter(self._entries)))
        return value

    def gathered(self, matrix, rows: np.ndarray) -> np.ndarray:
        """matrix[rows] as float32."""
        try:
            return self._get(("rows", id(matrix), id(rows)), (matrix, rows),
                             lambda: np.asarray(matrix[rows], dtype=np.float32), cost=lambda block: block.nbytes)
        except TypeError:  # an object weakref cannot follow: gather each time
            return np.asarray(matrix[rows], dtype=np.float32)

    def coded(self, codec, matrix, rows: np.ndarray):
        """(index, refined): a FAISS index over matrix[rows] answering with the matrix's own row
        ids (an IndexIDMap): their PQ fast-scan codes, encoded with the trained empty `codec` (a
        copy of it is filled), and, where codes and rows fit the budget together (`refined`),
        the rows themselves beside them in an IndexRefine, which re-scores a scan's shortlist
        exactly in the same call: the shortlist's rows are read from this compact copy, not
        scattered through the store's memory map while the scan has the caches (a 5% filter
        of 1M rows: 0.36 -> 0.31 ms a query, with the ids mapped in FAISS too)."""
        refined = len(rows) * (codec.sa_code_size() + 4 * codec.d) <= self.budget

        def make():
            import faiss

            index = faiss.clone_index(codec)
            if refined:  # adding to it adds to both
                index = faiss.IndexRefine(index, faiss.IndexFlat(codec.d, codec.metric_type))
            mapped = faiss.IndexIDMap(index)  # (FAISS's wrappers keep the inner indexes alive)
            for start in range(0, len(rows), CODE_BATCH):
                part = rows[start:start + CODE_BATCH]
                mapped.add_with_ids(np.ascontiguousarray(matrix[part], dtype=np.float32), part)
            return mapped, refined
        per_row = codec.sa_code_size() + (4 * codec.d if refined else 0) + 8
        try:
            return self._get(("codes", id(codec), id(matrix), id(rows)), (codec, matrix, rows), make,
                             cost=lambda made: len(rows) * per_row)
        except TypeError:  # an object weakref cannot follow: encode each time
            return make()

    def bitmap(self, rows: np.ndarray, total: int) -> np.ndarray:
        """Bit i (of byte i >> 3, least significant first) set for each row id i of `rows`."""
        def make():
            mask = np.zeros(total, dtype=bool)
            mask[rows] = True
            return np.packbits(mask, bitorder="little")
        return self._get(("bits", id(rows), total), (rows,), make, cost=lambda bits: bits.nbytes)


kept_rows = KeptRows()


def search_rows(matrix, queries: np.ndarray, k: int, rows: np.ndarray, exclude=None) -> tuple[np.ndarray, np.ndarray]:
    """Top-k among the given rows of `matrix` (sorted ids: the rows a filter keeps), exactly;
    ids are the matrix's own."""
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) == 0:
        return (np.full((len(queries), k), -np.inf, dtype=np.float32), np.full((len(queries), k), -1, dtype=np.int64))
    block = kept_rows.gathered(matrix, rows)
    local = None
    if exclude is not None:  # the excluded rows, as positions among `rows`
        local = []
        for ids in exclude:
            ids = np.asarray(ids, dtype=np.int64)
            at = np.searchsorted(rows, ids)
            inside = (at < len(rows)) & (rows[np.minimum(at, len(rows) - 1)] == ids)
            local.append(at[inside])
    D, I = search(block, queries, k, exclude=local)
    return D, np.where(I >= 0, rows[np.maximum(I, 0)], -1)


def _search_blocks(matrix: Segmented, queries, k, restrict, exclude):
    limit = matrix.shape[0] if restrict is None else min(restrict, matrix.shape[0])
    found_D, found_I = [], []
    for block, start in zip(matrix.blocks, matrix.starts):
        if start >= limit:
            break
        local = None if exclude is None else [np.asarray(ids, dtype=np.int64) - start for ids in exclude]
        D, I = search(block, queries, k, restrict=int(limit - start), exclude=local)
        found_D.append(D)
        found_I.append(np.where(I >= 0, I + start, -1))
    D, I = np.concatenate(found_D, axis=1), np.concatenate(found_I, axis=1)
    order = np.lexsort((np.where(I >= 0, I, np.iinfo(np.int64).max), -D), axis=1)[:, :k]
    return np.take_along_axis(D, order, axis=1), np.take_along_axis(I, order, axis=1)


def analogies(matrix: np.ndarray, abc_ids: np.ndarray, k: int, method: str = "add",
              restrict: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """For each row (a, b, c) of ids, the k best d with a:b :: c:d, the three inputs excluded."""
    abc_ids = np.asarray(abc_ids, dtype=np.int64).reshape(-1, 3)
    rows = _restricted(matrix, restrict)
    return top_k(analogy_scorer(matrix, rows, abc_ids, method), len(abc_ids), rows.shape[0], k, abc_ids)


def analogy_of_vectors(matrix: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, k: int,
                       method: str = "add", restrict: int | None = None, exclude=()) -> tuple[np.ndarray, np.ndarray]:
    """(D, I) of the k best d with a:b :: c:d for one question given as unit vectors (words a
    store answers from their subwords), leaving out the rows `exclude`."""
    rows = _restricted(matrix, restrict)
    scorer = _scorer(*(np.asarray(v, dtype=np.float32)[None, :] for v in (a, b, c)), rows, method)
    return top_k(scorer, 1, rows.shape[0], k, [np.asarray(exclude, dtype=np.int64)])


def analogy_scorer(matrix: np.ndarray, rows, abc_ids: np.ndarray, method: str, tiled: bool = False):
    """Scores of questions (a, b, c) against rows, for 3CosAdd or 3CosMul.

    Returns f(q0, q1) -> scores of questions q0..q1 against `rows`; with tiled=True,
    f(row_tile, out) -> scores of all the questions against `row_tile`, computed in `out`
    (a float32 buffer of at least (3 nq, len(row_tile)): reusing it saves page faults).
    """
    a, b, c = (matrix[abc_ids[:, j]] for j in range(3))
    return _scorer(a, b, c, rows, method, tiled)


def _scorer(a, b, c, rows, method: str, tiled: bool = False):
    """analogy_scorer() for the questions' vectors a, b, c (nq, d)."""
    if method == "add":
        queries = normalize((b + c - a) / 3)
        if tiled:
            return lambda tile, out: np.matmul(queries, tile.T, out=out[:len(queries), :len(tile)])
        return lambda q0, q1: queries[q0:q1] @ rows.T
    stacked = np.concatenate([a, b, c])  # one matrix product for the three cosines

    def cosmul(q0, q1, tile, out=None):
        m = q1 - q0
        terms = stacked if q0 == 0 and q1 == len(a) else np.concatenate([a[q0:q1], b[q0:q1], c[q0:q1]])
        sims = np.matmul(terms, tile.T, out=None if out is None else out[:3 * m, :len(tile)])
        sims += 1
        sims *= 0.5  # cosines mapped to [0, 1]
        sim_a, sim_b, sim_c = sims[:m], sims[m:2 * m], sims[2 * m:]
        sim_b *= sim_c
        sim_a += COSMUL_EPSILON
        sim_b /= sim_a
        return sim_b

    if tiled:
        return lambda tile, out: cosmul(0, len(a), tile, out)
    return lambda q0, q1: cosmul(q0, q1, rows)


def check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise BadQuery(f"k must be a whole number of at least 1, got {k!r}")
    return int(k)


def drop_excluded(D, I, exclude, k):
    """Each query's results without its excluded ids, cut to k (padded with -1 / -inf)."""
    nq = len(I)
    out_D = np.full((nq, k), -np.inf, dtype=np.float32)
    out_I = np.full((nq, k), -1, dtype=np.int64)
    for q in range(nq):
        keep = (I[q] >= 0) & ~np.isin(I[q], exclude[q])
        found = min(k, int(keep.sum()))
        out_D[q, :found] = D[q][keep][:found]
        out_I[q, :found] = I[q][keep][:found]
    return out_D, out_I


def top_k(score_block, nq: int, n: int, k: int, exclude=None) -> tuple[np.ndarray, np.ndarray]:
    """Run `score_block(q0, q1)` over query blocks and keep each query's k best columns."""
    check_k(k)
    D = np.full((nq, k), -np.inf, dtype=np.float32)
    I = np.full((nq, k), -1, dtype=np.int64)
    step = max(1, _SCORE_BLOCK // max(n, 1))
    for q0 in range(0, nq, step):
        q1 = min(nq, q0 + step)
        scores = np.asarray(score_block(q0, q1), dtype=np.float32)
        if exclude is not None:
            for row, ids in enumerate(exclude[q0:q1]):
                ids = np.asarray(ids, dtype=np.int64)
                scores[row, ids[(ids >= 0) & (ids < n)]] = -np.inf
        kk = min(k, n)
        if kk == 0:
            continue
        if kk < n:
            part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        else:
            part = np.broadcast_to(np.arange(n), (q1 - q0, n))
        part_scores = np.take_along_axis(scores, part, axis=1)
        order = np.lexsort((part, -part_scores), axis=1)  # best first; ties by lower id
        best = np.take_along_axis(part, order, axis=1)
        best_scores = np.take_along_axis(part_scores, order, axis=1)
        valid = np.isfinite(best_scores)
        D[q0:q1, :kk] = np.where(valid, best_scores, -np.inf)
        I[q0:q1, :kk] = np.where(valid, best, -1)
    return D, I


def _restricted(matrix: np.ndarray, restrict: int | None) -> np.ndarray:
    if restrict is None:
        return matrix
    if restrict < 1:
        raise BadQuery(f"--restrict must be at least 1, got {restrict}")
    return matrix[:restrict]


def best_analogies(matrix: np.ndarray, abc_ids: np.ndarray, method: str = "add", restrict: int | None = None,
                   task=None, query_block: int = 1024, row_block: int | None = None):
    """The single best d for each question (a, b, c), inputs excluded: (scores (nq,), ids (nq,)).

    The same answers as `analogies(..., k=1)`, computed for speed in tiles of query_block x
    row_block scores (16 MiB, so the argmax pass runs in cache), which keeps the matrix
    products near the floor. `task` (engine.progress.Task) is told of each query block done.
    """
    abc_ids = np.asarray(abc_ids, dtype=np.int64).reshape(-1, 3)
    rows = np.ascontiguousarray(_restricted(matrix, restrict), dtype=np.float32)
    n, nq = rows.shape[0], len(abc_ids)
    row_block = row_block or (4096 if method == "add" else 1024)  # 3CosMul tiles hold 3 products
    best_scores = np.full(nq, -np.inf, dtype=np.float32)
    best_ids = np.full(nq, -1, dtype=np.int64)
    out = np.empty((3 * query_block if method == "mul" else query_block, row_block), dtype=np.float32)
    for q0 in range(0, nq, query_block):
        q1 = min(nq, q0 + query_block)
        scorer = analogy_scorer(matrix, None, abc_ids[q0:q1], method, tiled=True)
        excluded = abc_ids[q0:q1]
        top_s = np.full(q1 - q0, -np.inf, dtype=np.float32)
        top_i = np.full(q1 - q0, -1, dtype=np.int64)
        for r0 in range(0, n, row_block):
            r1 = min(n, r0 + row_block)
            scores = scorer(rows[r0:r1], out)
            hit = (excluded >= r0) & (excluded < r1)
            if hit.any():
                which = np.nonzero(hit)
                scores[which[0], excluded[which] - r0] = -np.inf
            i = scores.argmax(axis=1)
            s = scores[np.arange(len(i)), i]
            better = s > top_s
            top_s[better] = s[better]
            top_i[better] = i[better] + r0
        best_scores[q0:q1], best_ids[q0:q1] = top_s, top_i
        if task is not None:
            task.update(q1)
    best_ids[~np.isfinite(best_scores)] = -1
    return best_scores, best_ids
