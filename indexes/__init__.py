"""simdex's search side: FAISS indexes over a store version (building, tuning, search).

A store has at most one index, recorded by the store (engine/backends/local.py) with the version
it was built from. Queries use it when it was built for the version they read; otherwise they
search exactly and say why (`store.notice`), so a stale index is never used silently. When a new
version becomes current, `keep_in_step` (follow.py) extends, rebuilds or leaves the index.

    from simdex.indexes import build_index
    build_index(store, kind="hnsw", target_recall=0.95)
"""

from .build import INDEX_KINDS, BuildResult, build_index, extend_index
from .follow import IndexFollow, keep_in_step
from .searcher import Family, IndexType, Searcher

__all__ = ["INDEX_KINDS", "BuildResult", "build_index", "extend_index", "IndexFollow", "keep_in_step", "Family",
           "IndexType", "Searcher"]
