"""An index that follows its store: what happens to it when a new version becomes current.

    note = keep_in_step(store)      # called by every writer of a version (ingest, encode, train, pull)

One rule, in one place, so that the Python API and the CLI behave alike:

- the new version descends from the indexed one and begins with its rows (an encode that added
  texts): the index is extended with the new rows and re-tuned;
- it descends from the indexed one with other vectors (a trained version): the index is rebuilt,
  with the same kind and recall target;
- it does not descend from it (a new file ingested, a version pulled): the index is left as it is
  and queries search exactly, saying so, until `simdex index build` (a fresh ingest of 400,000
  words should not cost a minute of index building that a user may not want).

A store without an index, and a Milvus store (which indexes each version as it writes it), have
nothing to keep in step.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..engine.backends.local import LocalStore
from ..engine.progress import SILENT, Progress


@dataclass
class IndexFollow:
    action: str  # "extended", "rebuilt" or "stale"
    message: str  # what to tell the user
    built: object = None  # the BuildResult of an extension or a rebuild


def keep_in_step(store, progress: Progress = SILENT) -> IndexFollow | None:
    """Bring `store`'s index to its current version by the rule above; None when there is nothing to do."""
    if not isinstance(store, LocalStore):
        return None
    record = store.index_record()
    current = store.current_version()
    if record is None or current is None or record["version"] == current:
        return None
    version = store.get_version(current)
    if version.parent != record["version"]:
        return IndexFollow("stale", f"notice: the {record['kind']} index was built for version {record['version']}; "
                                    f"queries on version {current} search exactly until you run `simdex index build`")
    indexed = [segment.id for segment in store.segments(record["version"])]
    rows = [segment.id for segment in store.segments(current)]
    from .build import build_index, extend_index  # faiss: only when there is an index to work on

    if rows[:len(indexed)] == indexed and len(rows) > len(indexed):
        built = extend_index(store, progress=progress)
        return IndexFollow("extended", f"the {built.kind} index now covers version {built.version} "
                                       f"(recall@10 {built.recall_at_10:.4f})", built)
    target = float(record["params"].get("target_recall", 0.95))
    built = build_index(store, kind=record["kind"], target_recall=target, progress=progress)
    return IndexFollow("rebuilt", f"the {built.kind} index was rebuilt for version {built.version} "
                                  f"(recall@10 {built.recall_at_10:.4f})", built)
