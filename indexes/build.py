"""`simdex index build`: a FAISS index over the current version, tuned to a measured recall.

Kinds (inner product on unit vectors, i.e. cosine):

    flat    exact search (IndexFlatIP); recall 1 by construction, measured anyway
    hnsw    HNSW32 graph, efConstruction 80 (the default); tunes efSearch
    ivf     IVF (4 sqrt(n) lists), flat codes; tunes nprobe
    ivfpq   IVF with product-quantised codes at most 1/8 of the flat index's bytes; the PQ
            shortlist is re-ranked exactly from the store's memory-mapped matrix; tunes
            nprobe and the shortlist size
    other   any FAISS index_factory string ("IVF256,SQ8", "HNSW16,Flat", ...), tuned like
            its family (read off the index FAISS builds)

Recall@10 is measured, not assumed: 1,000 rows (seeded) are searched, their own row left out,
and their top 10 compared with exact search. The smallest parameter meeting the target wins;
when none does, the best one is kept and the shortfall reported.

A restriction (`--restrict N`: the first N rows) filters the index, which loses recall as the
filter gets more selective, so it is measured too: for N = 3n/4, n/2, n/4, ... the cheapest
parameters meeting the target with that filter are kept in `params["restricted"]`, as long as
they answer a query faster than an exact search over the N rows; below that, restrictions
search exactly (which always meets the target, and is then the faster). A sentence store
keeping fields (`--where` filters keep rows scattered through it) is measured the same way
for random subsets of 1/2, 1/4, ... 1/128 of its rows, in `params["filtered"]`; for such a
store a PQ fast-scan codec (d/3 or d/2 sub-quantisers of 4 bits, trained on at most 65,536
seeded rows) is saved beside the index, and at each share the scan of the kept rows' codes
(re-ranked exactly) competes with the index's filter: the faster of the two at the target is
kept (see searcher.py).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field

import faiss
import numpy as np

from ..engine.backends.local import LocalStore
from ..engine.errors import BadIndex
from ..engine.files import temporary_path
from ..engine.progress import SILENT, Progress
from ..engine.query import search as exact_search
from ..engine.query import search_rows
from .searcher import Family, Searcher

INDEX_KINDS = ("flat", "hnsw", "ivf", "ivfpq")
EF_SEARCH = (8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 2048)
NPROBE = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 1024, 2048, 4096)
RERANK = (4, 8, 16, 32)
SAMPLE_QUERIES = 1000
MIN_FILTER_FLOATS = 1 << 20  # rows x dim an exact search reads in well under a millisecond
LATENCY_QUERIES = 50
FILTER_SHARES = (1 / 2, 1 / 4, 1 / 8, 1 / 16, 1 / 32, 1 / 64, 1 / 128)
CODEC_SAMPLE = 65_536
CODE_RERANK = (4, 6, 8, 12, 16, 24, 32)  # a code scan's shortlist, in multiples of k, cheapest first


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

    JSON_FIELDS = ("kind", "version", "recall_at_10", "params", "seconds", "factory", "bytes", "target_recall", "met")


def indexed_store(store) -> LocalStore:
    """A store whose index simdex builds: a local one (Milvus indexes its versions itself)."""
    if not isinstance(store, LocalStore):
        raise BadIndex(f"{store.location}: this store indexes each version itself as it is written (HNSW, "
                       f"tuned to a recall target); there is no index for simdex to build")
    return store


def build_index(store: LocalStore, kind: str = "hnsw", target_recall: float = 0.95,
                progress: Progress = SILENT) -> BuildResult:
    """Build, tune and save an index over `store`'s version; it replaces the store's index when
    saved. An interruption before then leaves the previous index in place."""
    store = indexed_store(store)
    if not 0 < target_recall <= 1:
        raise BadIndex(f"--target-recall must be in (0, 1], got {target_recall}")
    started = time.perf_counter()
    matrix = store.vectors()
    n, d = matrix.shape
    directory = store.index_directory()  # before the work: a read-only store says so now
    index, factory = make_index(kind, n, d)
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    add_rows(index, matrix, progress)
    codec = train_codec(matrix) if filtered_by_share(store, matrix) else None
    return _tune_and_save(store, directory, index, kind, factory, target_recall, started, codec)


def extend_index(store: LocalStore, progress: Progress = SILENT) -> BuildResult:
    """The store's index, extended to the rows its current version added after the indexed
    version's (new texts), re-tuned to the same target, and saved for the current version.
    When the current version does not begin with the indexed one's rows, it is rebuilt."""
    record = indexed_store(store).index_record()
    if record is None:
        raise BadIndex(f"{store.location}: no index to extend (build one with `simdex index build`)")
    indexed = [segment.id for segment in store.segments(record["version"])]
    current = [segment.id for segment in store.segments()]
    target = float(record["params"].get("target_recall", 0.95))
    if current[:len(indexed)] != indexed:
        return build_index(store, kind=record["kind"], target_recall=target, progress=progress)
    started = time.perf_counter()
    directory = store.index_directory()
    index = faiss.read_index(str(store.index_path(record)))
    matrix = store.vectors()
    for first in range(index.ntotal, matrix.shape[0], 50_000):
        rows = matrix[np.arange(first, min(matrix.shape[0], first + 50_000))]
        index.add(np.ascontiguousarray(rows, dtype=np.float32))
    codec = None
    if filtered_by_share(store, matrix):  # the codec trained with the index still encodes the new
        # rows; an index saved before codecs were (or over too few rows to want one) gets one now
        codes = store.codes_path(record)
        codec = faiss.read_index(str(codes)) if codes.exists() else train_codec(matrix)
    return _tune_and_save(store, directory, index, record["kind"], record["factory"], target, started, codec)


def filtered_by_share(store, matrix) -> bool:
    """Whether filters on the store's fields are tuned (tune_filters' largest share, half the
    rows, is worth an index: below that every filter searches exactly), so a codec is wanted."""
    return bool(store.fields()) and matrix.shape[0] * matrix.shape[1] >= 2 * MIN_FILTER_FLOATS


def train_codec(matrix: np.ndarray):
    """A PQ fast-scan codec (4-bit codes of d/3 or d/2 sub-quantisers: 1/24 or 1/16 of the
    float bytes) trained on at most CODEC_SAMPLE seeded rows; filtered searches scan codes
    made with it (searcher.py)."""
    n, d = matrix.shape
    m = d // 3 if d % 3 == 0 else d // 2 if d % 2 == 0 else d
    codec = faiss.IndexPQFastScan(d, m, 4, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(0)
    sample = np.sort(rng.choice(n, size=min(n, CODEC_SAMPLE), replace=False))
    codec.train(np.ascontiguousarray(matrix[sample], dtype=np.float32))
    return codec


def _tune_and_save(store, directory, index, kind, factory, target, started, codec=None) -> BuildResult:
    """Tune an index holding every row of the store's version to `target`, write it (and the
    filter codec) to temporary files and make it the store's index (one transaction)."""
    matrix = store.vectors()
    params, recall, met, notes = tune(Searcher(index, kind, {}, matrix, codec), matrix, target,
                                      filters=bool(store.fields()))
    params["target_recall"] = target
    seconds = time.perf_counter() - started
    tmp = temporary_path(directory, ".faiss")
    codes_tmp = None if codec is None else temporary_path(directory, ".codes")
    try:
        faiss.write_index(index, str(tmp))
        if codec is not None:
            faiss.write_index(codec, str(codes_tmp))
        for path in (tmp, codes_tmp):
            if path is not None:
                with open(path, "rb") as f:
                    os.fsync(f.fileno())
        size = tmp.stat().st_size
        store.save_index(tmp, version=store.version.number, kind=kind, factory=factory, params=params,
                         recall_at_10=recall, seconds=seconds, codes_tmp=codes_tmp)
    except BaseException:
        for path in (tmp, codes_tmp):
            if path is not None:
                path.unlink(missing_ok=True)
        raise
    return BuildResult(kind, factory, store.version.number, recall, params, seconds, size, target, met, notes)


def add_rows(index, matrix: np.ndarray, progress: Progress = SILENT) -> None:
    """Train the index (on at most 100,000 seeded rows) if it needs it, then add every row."""
    n = matrix.shape[0]
    if not index.is_trained:
        rng = np.random.default_rng(0)
        sample = np.ascontiguousarray(matrix[np.sort(rng.choice(n, size=min(n, 100_000), replace=False))],
                                      dtype=np.float32)
        index.train(sample)
    step = 50_000
    with progress.task("index build: adding rows", total=n, unit="vectors") as task:
        for start in range(0, n, step):
            index.add(np.ascontiguousarray(matrix[np.arange(start, min(n, start + step))], dtype=np.float32))
            task.update(min(n, start + step))


def make_index(kind: str, n: int, d: int):
    """(an untrained FAISS index, its factory string)."""
    ip = faiss.METRIC_INNER_PRODUCT
    if kind == "flat":
        return faiss.IndexFlatIP(d), "Flat"
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, 32, ip)
        index.hnsw.efConstruction = 80
        return index, "HNSW32,Flat"
    if kind in ("ivf", "ivfpq"):
        nlist = max(1, min(int(4 * math.sqrt(n)), n // 39))
        if kind == "ivf":
            factory = f"IVF{nlist},Flat"
        else:
            m = pq_subquantizers(d, n, nlist)
            nbits = 8 if n >= 256 * 39 else max(1, int(math.log2(max(2, n // 39))))
            factory = f"IVF{nlist},PQ{m}x{nbits}"
        return faiss.index_factory(d, factory, ip), factory
    try:
        return faiss.index_factory(d, kind, ip), kind
    except RuntimeError as e:
        first = str(e).strip().splitlines()[-1] if str(e).strip() else "not understood"
        raise BadIndex(f"invalid FAISS factory string {kind!r} (kinds: {', '.join(INDEX_KINDS)}, or a FAISS "
                       f"index_factory string such as 'IVF256,Flat'): {first}") from None


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


def parameter_grid(searcher: Searcher) -> list[dict]:
    """Every setting worth trying, cheapest first."""
    family = searcher.type.family
    if family is Family.HNSW:
        grid = [{"efSearch": ef} for ef in EF_SEARCH]
    elif family is Family.IVF:
        nlist = faiss.extract_index_ivf(searcher.index).nlist
        grid = [{"nprobe": p} for p in NPROBE if p <= nlist] or [{"nprobe": 1}]
    else:
        grid = [{}]
    if searcher.type.rerank:
        grid = [dict(p, rerank=r) for p in grid for r in RERANK]
        grid.sort(key=lambda p: (p.get("nprobe", 1) * p.get("efSearch", 1), p["rerank"]))
    return grid


def tune(searcher: Searcher, matrix: np.ndarray, target: float, filters: bool = False):
    """(params, recall@10, met, notes): the cheapest parameters that reach `target`, with the
    parameters that reach it under restrictions to the first N rows and, with `filters` (a
    store keeping fields to filter on), under filters keeping scattered rows (see the
    module's notes)."""
    n, d = matrix.shape
    rng = np.random.default_rng(0)
    ids = np.sort(rng.choice(n, size=min(SAMPLE_QUERIES, n), replace=False))
    xq = np.asarray(matrix[ids], dtype=np.float32)
    k = min(10, n - 1)
    if k < 1:
        return {"restricted": []}, 1.0, True, ["a single vector: nothing to search"]
    grid = parameter_grid(searcher)
    params, recall, met = _cheapest(searcher, grid, xq, ids, k, None, target, matrix)
    notes = [] if met else [f"target recall@10 {target} not met: the best was {recall:.4f} with {params} "
                            f"({target - recall:.4f} short)"]
    searcher.params = dict(params)
    chosen = params
    params = dict(chosen, restricted=tune_restrictions(searcher, grid, chosen, matrix, xq, ids, k, target))
    if filters:
        params["filtered"] = tune_filters(searcher, grid, chosen, matrix, xq, ids, k, target)
    searcher.params = params
    return params, recall, met, notes


def tune_restrictions(searcher, grid, params, matrix, xq, ids, k, target) -> list:
    """[[N, params or None]] for restrictions to the first N = 3/4, 1/2, 1/4, ... of the rows:
    the cheapest parameters meeting `target` with that filter, or None where an exact search
    over the N rows answers as fast (then every smaller restriction searches exactly too)."""
    n, d = matrix.shape
    if searcher.type.family is Family.FLAT and not searcher.type.rerank:
        return []  # a flat index is an exact search already
    levels, rows = [], (3 * n) // 4
    while rows > k and rows * d >= MIN_FILTER_FLOATS:
        levels.append(rows)
        rows = rows // 2 if rows != (3 * n) // 4 else n // 2
    return _tune_levels(
        grid, params, xq, ids, k, target, levels,
        exact=lambda x, kk, rows, exclude=None: exact_search(matrix, x, kk, restrict=rows, exclude=exclude),
        filtered=lambda x, kk, rows, candidate: searcher.search_with(x, kk, rows, candidate))


def tune_filters(searcher, grid, params, matrix, xq, ids, k, target) -> list:
    """[[share, params or None]] for filters keeping a random half, quarter, eighth, ... of the
    rows (as a `--where` filter keeps rows scattered through the store), measured like
    restrictions."""
    n, d = matrix.shape
    if searcher.type.family is Family.FLAT and not searcher.type.rerank:
        return []
    rng = np.random.default_rng(1)
    levels, shares = [], {}
    for share in FILTER_SHARES:
        count = int(n * share)
        if count <= k or count * d < MIN_FILTER_FLOATS:
            break
        rows = np.sort(rng.choice(n, size=count, replace=False))
        levels.append(rows)
        shares[id(rows)] = share
    scans = [{"scan": "codes", "rerank": r} for r in CODE_RERANK] if searcher.codec is not None else []
    found = _tune_levels(
        grid, params, xq, ids, k, target, levels,
        exact=lambda x, kk, rows, exclude=None: search_rows(matrix, x, kk, rows, exclude=exclude),
        filtered=lambda x, kk, rows, candidate: searcher.search_rows_with(x, kk, rows, candidate),
        alternatives=scans)
    return [[shares[id(rows)], chosen] for rows, chosen in found]


def _tune_levels(grid, params, xq, ids, k, target, levels, exact, filtered, alternatives=()) -> list:
    """[[level, params or None]]: for each filter level (least selective first), the cheapest
    parameters from `grid` (no cheaper than the last level's) meeting `target` faster than an
    exact search of the level's rows, or None, after which the rest search exactly. Given
    `alternatives` (another way of answering, cheapest first), the first of them meeting the
    target competes too, and the faster of the two is kept."""
    chosen_levels, start = [], grid.index(params) if params in grid else 0
    probe = xq[:LATENCY_QUERIES]
    for level in levels:
        exact_seconds = _latency(lambda x: exact(x, k + 1, level), probe)
        _, truth = exact(xq, k, level, exclude=[[i] for i in ids])
        measured = []  # (seconds, params) of what met the target faster than exact
        for ways, first in ((grid, start), (list(alternatives), 0)):
            for position in range(first, len(ways)):
                candidate = ways[position]
                search = lambda x, kk: filtered(x, kk, level, candidate)  # noqa: E731
                seconds = _latency(lambda x: search(x, k + 1), probe)
                if seconds > exact_seconds:
                    break  # from here on this way is slower than an exact search
                if measure_recall(lambda x, kk: search(x, kk)[1], xq, ids, truth, k) >= target:
                    measured.append((seconds, candidate))
                    if ways is grid:
                        start = position
                    break
        found = min(measured, key=lambda m: m[0])[1] if measured else None
        chosen_levels.append([level, found])
        if found is None:
            break  # more selective filters: exact is cheaper still, the index's filter harder
    return chosen_levels


def _latency(search, probe) -> float:
    """Seconds per query, one query at a time on one thread (as a single CLI query runs)."""
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        search(probe[:1])  # warm up
        started = time.perf_counter()
        for i in range(len(probe)):
            search(probe[i:i + 1])
        return (time.perf_counter() - started) / len(probe)
    finally:
        faiss.omp_set_num_threads(threads)


def _cheapest(searcher, grid, xq, ids, k, restrict, target, matrix):
    """(params, recall, met) of the first setting of `grid` meeting `target`, else the best."""
    _, truth = exact_search(matrix, xq, k, restrict=restrict, exclude=[[i] for i in ids])
    best = None
    for params in grid:
        recall = measure_recall(lambda x, kk: searcher.search_with(x, kk, restrict, params)[1], xq, ids, truth, k)
        if best is None or recall > best[1]:
            best = (params, recall)
        if recall >= target:
            return params, recall, True
    return best[0], best[1], False


def measure_recall(search, xq, ids, truth, k) -> float:
    """Recall@k of `search(xq, k) -> I` against `truth`, each query's own row left out."""
    I = search(xq, k + 1)
    found = 0
    for row, own in enumerate(ids):
        answers = [i for i in I[row] if i != own and i >= 0][:k]
        found += len(set(answers) & set(truth[row].tolist()))
    return found / (len(ids) * k)
