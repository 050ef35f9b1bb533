"""Writing a new version of a store, atomically.

The matrix goes to a temporary file in STORE/vectors/ and the vocabulary into a SQLite
transaction as rows arrive; `commit()` renames the file into place and commits. Until then
nothing is visible, and an exception or Ctrl-C rolls everything back. A writer killed outright
leaves only a temporary file, which the next writer removes.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .store import VECTORS_DIR, Store, Version
from .tensorfile import MatrixWriter


class VersionWriter:
    """Writes a new version: rows go to a temporary matrix file and the vocabulary into an open
    transaction as they come; `commit()` renames the file and commits. A context manager:
    leaving the block with an exception (Ctrl-C included) rolls everything back.

    The transaction holds the store's write lock for the writer's life; readers carry on (WAL).
    """

    def __init__(self, store: Store, *, kind, dim, source, sha256, format, parent, config):
        if kind not in ("words", "sentences"):
            raise ValueError(f"kind must be 'words' or 'sentences', got {kind!r}")
        self.store = store
        self.kind, self.dim = kind, dim
        self.fields = dict(source=source, sha256=sha256, format=format, parent=parent, config=config)
        self.count = 0
        self.version: Version | None = None
        vectors = store.path / VECTORS_DIR
        vectors.mkdir(exist_ok=True)
        _remove_abandoned_temporaries(vectors)
        self._tmp = vectors / f".tmp-{os.getpid()}-{uuid.uuid4().hex}.safetensors"
        self._conn = store.conn
        store.begin_write()
        try:
            self.number = self._conn.execute("SELECT coalesce(max(version), 0) + 1 FROM versions").fetchone()[0]
            self._matrix = MatrixWriter(self._tmp, dim)
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    def append(self, unit_rows: np.ndarray, keys: list[str], norms, ranks) -> None:
        """Add rows (already unit length), their keys, original norms and source ranks."""
        m = len(keys)
        if unit_rows.shape[0] != m or len(norms) != m or len(ranks) != m:
            raise ValueError("rows, keys, norms and ranks must have the same length")
        self._matrix.append(unit_rows)
        self._conn.executemany(
            f"INSERT INTO vocab (version, id, key, norm, rank) VALUES ({self.number}, ?, ?, ?, ?)",
            zip(range(self.count, self.count + m), keys,
                np.asarray(norms, dtype=np.float64).tolist(), np.asarray(ranks, dtype=np.int64).tolist()),
        )
        self.count += m

    def commit(self, metrics: dict | None = None, make_current: bool = True) -> Version:
        number, conn, f = self.number, self._conn, self.fields
        relative = f"{VECTORS_DIR}/v{number}.safetensors"
        final = self.store.path / relative
        try:
            self._matrix.close()
            os.replace(self._tmp, final)
            created = datetime.now(timezone.utc).isoformat(timespec="seconds")
            conn.execute(
                "INSERT INTO versions (version, kind, source, sha256, format, count, dim, parent,"
                " created, file, config, metrics) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (number, self.kind, f["source"], f["sha256"], f["format"], self.count, self.dim,
                 f["parent"], created, relative, json.dumps(f["config"]), json.dumps(metrics or {})),
            )
            conn.execute(f"CREATE UNIQUE INDEX vocab_key_v{number} ON vocab(key) WHERE version = {number}")
            if make_current:
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('current', ?)", (str(number),))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            final.unlink(missing_ok=True)
            self._tmp.unlink(missing_ok=True)
            raise
        self.version = self.store.get_version(number)
        if self.store._pinned is None:
            self.store._forget()
        return self.version

    def abort(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")
        self._matrix.abort()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and self.version is None:
            self.abort()
        return False


def _remove_abandoned_temporaries(vectors: Path) -> None:
    """Remove partial matrices left by writers that were killed (their process is gone)."""
    for tmp in vectors.glob(".tmp-*.safetensors"):
        try:
            pid = int(tmp.name.split("-")[1])
            os.kill(pid, 0)
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except (ValueError, IndexError, PermissionError):
            continue
