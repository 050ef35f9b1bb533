"""`simdex push` and `simdex pull`: a store's current version copied between backends.

    push(Store.open("default"), "milvus://db.example:19530/glove")
    pull("milvus://db.example:19530/glove", "~/stores/glove")

The copy goes through the Store interface on both sides (a writer's append and commit), in
batches, so either side may be local or Milvus; the destination's new version becomes current
only when it is complete (and, in Milvus, indexed and tuned).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..progress import SILENT, Progress
from ..sentences.model import STORE_MODEL
from ..store import Store

BATCH_ROWS = 50_000


@dataclass
class TransferResult:
    version: int
    count: int
    dim: int
    seconds: float
    source: str
    destination: str
    index: object = None  # what became of the destination's index (indexes.follow.IndexFollow), if it has one

    JSON_FIELDS = ("version", "count", "dim", "seconds", "source", "destination")


def copy_version(source: Store, destination: Store, progress: Progress = SILENT,
                 parent: int | None = None) -> TransferResult:
    """Copy `source`'s version into a new current version of `destination` (`parent`: the
    destination version it follows, if any)."""
    from .local import text_hash

    started = time.perf_counter()
    version = source.version
    keys, norms, ranks = source.keys(), source.norms(), source.ranks()
    sentences = version.kind == "sentences"
    config = {**version.config, "copied_from": f"{source.location} v{version.number}"}
    model = str(config.get("model") or "")
    # files the source's folder keeps for the version (a fine-tuned encoder, a fastText model's
    # subwords): the copy names them by their absolute path, so that it answers on this machine
    if model.startswith(STORE_MODEL) and source.stored_file(model[len(STORE_MODEL):]) is not None:
        config["model"] = str(source.stored_file(model[len(STORE_MODEL):]))
    subwords = config.get("subwords")
    if subwords and not Path(subwords["file"]).is_absolute() and source.stored_file(subwords["file"]) is not None:
        config["subwords"] = {**subwords, "file": str(source.stored_file(subwords["file"]))}
    with destination.new_version(kind=version.kind, dim=version.dim, source=version.source, sha256=version.sha256,
                                 format=version.format, parent=parent, config=config) as writer:
        vectors = source.vectors()
        with progress.task(f"copy to {destination.location}", total=version.count, unit="rows") as task:
            for start in range(0, version.count, BATCH_ROWS):
                end = min(start + BATCH_ROWS, version.count)
                rows = np.asarray(vectors[np.arange(start, end)], dtype=np.float32)
                part = keys[start:end]
                extra = {}
                if sentences:
                    extra = {"hashes": [text_hash(text) for text in part],
                             "external_ids": source.external_ids(list(range(start, end)))}
                    if source.fields():
                        extra["fields"] = source.field_values(range(start, end), list(source.fields()))
                writer.append(rows, part, norms[start:end], ranks[start:end], **extra)
                task.update(end)
        written = writer.commit(metrics=version.metrics)
    from ...indexes.follow import keep_in_step

    return TransferResult(written.version, written.count, written.dim, time.perf_counter() - started,
                          source.location, destination.location, keep_in_step(destination))
