"""The store: a directory holding a SQLite vocabulary and one normalised float32 matrix per version.

    STORE/store.db                 versions, vocab (id = matrix row, key, norm, rank), meta, indexes
    STORE/vectors/vN.safetensors   version N's unit-length rows, float32, memory-mapped on read
    STORE/indexes/...              FAISS indexes (see indexes/)

A version becomes current only when complete: its matrix is written to a temporary file, then
renamed and recorded in one SQLite transaction. Anything that fails or is interrupted before the
commit leaves the previous version current and answering.

`Store` owns the database handle. It reads with the standard library's sqlite3 and numpy only,
so answering a query imports neither torch nor sqlite-utils.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import migrations, query
from .errors import (BadQuery, DamagedStore, EmptyStore, StoreBusy, StoreNotFound, UnknownVersion, UnknownWord,
                     close_spellings)
from .tensorfile import read_matrix

DB_NAME = "store.db"
VECTORS_DIR = "vectors"


def default_store_path() -> Path:
    """Where a store lives when neither --store nor SIMDEX_STORE says: the per-user data dir."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "simdex" / "default"


@dataclass(frozen=True)
class Version:
    version: int
    kind: str  # "words" or "sentences"
    count: int
    dim: int
    source: str | None
    sha256: str | None
    format: str | None
    parent: int | None
    created: str
    file: str
    config: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)

    def summary(self) -> dict:
        keep = ("version", "kind", "count", "dim", "source", "parent", "created")
        return {name: value for name, value in asdict(self).items() if name in keep}


def _connect(db_path: Path) -> sqlite3.Connection:
    # a writer waits this long for another one to finish (SIMDEX_BUSY_TIMEOUT seconds, default 30)
    timeout = float(os.environ.get("SIMDEX_BUSY_TIMEOUT", "30"))
    conn = sqlite3.connect(db_path, isolation_level=None, timeout=timeout)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


class Store:
    """One store directory, read at one version (the current one unless asked otherwise)."""

    def __init__(self, path: Path, conn: sqlite3.Connection, version: int | None = None):
        self.path = Path(path)
        self.conn = conn
        self._pinned = version
        self._version = None
        self._matrix = None
        self._keys = None
        self._key_to_id = None
        self._searcher = None
        self._lookups = 0
        self.notice: str | None = None  # why a query searched exactly although an index exists

    # -- opening -----------------------------------------------------------------------------

    @classmethod
    def open(cls, path, version: int | None = None) -> "Store":
        """Open an existing store; raises StoreNotFound (or UnknownVersion for a bad `version`)."""
        path = Path(path).expanduser()
        db_path = path / DB_NAME
        if path.exists() and not path.is_dir():
            raise StoreNotFound(path, "not a directory")
        if not db_path.is_file():
            raise StoreNotFound(path)
        conn = _connect(db_path)
        if not migrations.up_to_date(conn):
            migrations.apply(conn)
        store = cls(path, conn, version)
        if version is not None:
            store.version  # validates it
        return store

    @classmethod
    def create(cls, path) -> "Store":
        """Open the store at `path`, creating the directory and schema if they do not exist."""
        path = Path(path).expanduser()
        if path.exists() and not path.is_dir():
            raise StoreNotFound(path, "exists and is not a directory")
        (path / VECTORS_DIR).mkdir(parents=True, exist_ok=True)
        conn = _connect(path / DB_NAME)
        if not migrations.up_to_date(conn):
            migrations.apply(conn)
        return cls(path, conn)

    def close(self) -> None:
        self.conn.close()

    def begin_write(self) -> None:
        """Start the transaction a writer holds (BEGIN IMMEDIATE: the store's write lock)."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            if "locked" in str(e) or "busy" in str(e):
                raise StoreBusy(self.path) from None
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- versions ----------------------------------------------------------------------------

    def versions(self) -> list[Version]:
        rows = self.conn.execute(
            "SELECT version, kind, count, dim, source, sha256, format, parent, created, file,"
            " config, metrics FROM versions ORDER BY version"
        ).fetchall()
        return [_version_from_row(row) for row in rows]

    def current_version(self) -> int | None:
        row = self.conn.execute("SELECT value FROM meta WHERE name = 'current'").fetchone()
        return int(row[0]) if row else None

    def get_version(self, number: int) -> Version:
        row = self.conn.execute(
            "SELECT version, kind, count, dim, source, sha256, format, parent, created, file,"
            " config, metrics FROM versions WHERE version = ?",
            (int(number),),
        ).fetchone()
        if row is None:
            raise UnknownVersion(self.path, number, [v.version for v in self.versions()])
        return _version_from_row(row)

    @property
    def version(self) -> Version:
        """The version this Store reads: the one asked for at open, else the current one when
        first read (so keys and matrix always come from the same version)."""
        if self._version is None:
            number = self._pinned if self._pinned is not None else self.current_version()
            if number is None:
                raise EmptyStore(self.path)
            self._version = self.get_version(number)
        return self._version

    def _forget(self) -> None:
        """Drop what was read, so the next read sees a version committed through this Store."""
        self._version = self._matrix = self._keys = self._key_to_id = self._searcher = None

    def set_current(self, number: int) -> Version:
        """Make version `number` the current one (roll back to it, or forward again)."""
        version = self.get_version(number)
        self.begin_write()
        self.conn.execute("INSERT OR REPLACE INTO meta VALUES ('current', ?)", (str(int(number)),))
        self.conn.execute("COMMIT")
        if self._pinned is None:
            self._forget()
        return version

    # -- data of the version read ------------------------------------------------------------

    def matrix(self) -> np.ndarray:
        """(n, d) float32, unit rows (zero rows stay zero), memory-mapped; row i is keys()[i]."""
        if self._matrix is None:
            path = self.path / self.version.file
            try:
                # a plain ndarray view of the memory map: slicing a np.memmap costs microseconds
                self._matrix = read_matrix(path).view(np.ndarray)
            except (OSError, ValueError, KeyError) as e:
                raise DamagedStore(f"{path}: the vectors of version {self.version.version} cannot be read "
                                   f"({e.__class__.__name__}: {e})") from None
        return self._matrix

    def tensor(self, device=None):
        """The matrix as a torch tensor, read with safetensors onto `device` (default: CUDA when
        there is one), for `torch.nn.Embedding.from_pretrained(store.tensor(), freeze=False)`.
        Imports torch."""
        import safetensors.torch

        tensor = safetensors.torch.load_file(str(self.path / self.version.file))["vectors"]
        if device is None:
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        return tensor.to(device)

    def keys(self) -> list[str]:
        """The words (or sentence texts), in row order."""
        if self._keys is None:
            rows = self.conn.execute(
                "SELECT key FROM vocab WHERE version = ? ORDER BY id", (self.version.version,)
            )
            self._keys = [row[0] for row in rows]
        return self._keys

    def norms(self) -> np.ndarray:
        """Each row's length before normalisation (it carries frequency information)."""
        rows = self.conn.execute(
            "SELECT norm FROM vocab WHERE version = ? ORDER BY id", (self.version.version,)
        )
        return np.fromiter((row[0] for row in rows), dtype=np.float32)

    def key_to_id(self) -> dict[str, int]:
        """The whole vocabulary as a dict, for work that looks up many words."""
        if self._key_to_id is None:
            self._key_to_id = {key: i for i, key in enumerate(self.keys())}
        return self._key_to_id

    def id_of(self, word: str) -> int:
        """The row of `word`; raises UnknownWord with close spellings."""
        self._lookups += 1
        if self._key_to_id is None and self._lookups > 64:
            self.key_to_id()  # many lookups: one read of the vocabulary beats a query each
        if self._key_to_id is not None:
            found = self._key_to_id.get(word)
        else:
            number = int(self.version.version)  # a literal, so SQLite uses the partial index
            row = self.conn.execute(
                f"SELECT id FROM vocab WHERE version = {number} AND key = ?", (word,)
            ).fetchone()
            found = row[0] if row else None
        if found is None:
            raise UnknownWord(word, self.close_spellings(word))
        return found

    def ids_of(self, words) -> np.ndarray:
        return np.array([self.id_of(word) for word in words], dtype=np.int64)

    def keys_of(self, ids) -> list[str]:
        """The keys of the given rows, in the given order."""
        ids = [int(i) for i in ids]
        if self._keys is not None or len(ids) > 500 or self._lookups > 64:
            keys = self.keys()
            return [keys[i] for i in ids]
        found = dict(
            self.conn.execute(
                f"SELECT id, key FROM vocab WHERE version = ? AND id IN ({','.join('?' * len(ids))})",
                (self.version.version, *ids),
            ).fetchall()
        )
        return [found[i] for i in ids]

    def close_spellings(self, word: str, n: int = 3) -> list[str]:
        number = self.version.version
        same_case = [
            row[0]
            for row in self.conn.execute(
                "SELECT key FROM vocab WHERE version = ? AND lower(key) = ? AND key != ? LIMIT ?",
                (number, word.lower(), word, n),
            )
        ]
        if same_case:
            return same_case
        # Look among the more frequent words of a similar length: fast, and what a user meant.
        candidates = [
            row[0]
            for row in self.conn.execute(
                "SELECT key FROM vocab WHERE version = ? AND id < 100000 AND length(key) BETWEEN ? AND ?",
                (number, len(word) - 2, len(word) + 2),
            )
        ]
        return close_spellings(word, candidates, n)

    # -- queries -----------------------------------------------------------------------------

    def searcher(self):
        """The FAISS index searcher for this version, or None (then `notice` may say why)."""
        if self._searcher is None:
            from indexes import open_searcher

            self._searcher, self.notice = open_searcher(self)
            if self._searcher is None:
                self._searcher = False
        return self._searcher or None

    def neighbors(self, query_text: str, k: int = 10, restrict: int | None = None,
                  exact: bool = False) -> list[tuple[str, float]]:
        """Nearest keys to a word or an expression such as "king - man + woman", best first.

        The query's own words are left out, as in gensim's most_similar. `restrict` searches
        only the first N rows (the most frequent words of a frequency-sorted source). The
        store's index answers when it was built for this version, unless `exact`.
        """
        if " " not in query_text.strip():
            return self.neighbors_of_word(query_text.strip(), k=k, restrict=restrict, exact=exact)
        return self.neighbors_many([query_text], k=k, restrict=restrict, exact=exact)[0]

    def neighbors_of_word(self, word: str, k: int = 10, restrict: int | None = None, exact: bool = False):
        """neighbors() of one word: its row's vector, its own row left out."""
        row = self.id_of(word)
        matrix = self.matrix()
        xq = matrix[row:row + 1]
        searcher = None if exact else self.searcher()
        if searcher is None:
            D, I = query.search(matrix, xq, k, restrict=restrict, exclude=[[row]])
            return self._pairs(D[0], I[0])
        D, I = searcher.search(xq, k + 1, restrict=restrict)
        keep = (I[0] != row) & (I[0] >= 0)
        return self._pairs(D[0][keep][:k], I[0][keep][:k])

    def neighbors_many(self, query_texts, k: int = 10, restrict: int | None = None, exact: bool = False):
        """neighbors() for many queries, answered in one batch."""
        parsed = [query.parse_expression(text) for text in query_texts]
        if len(parsed) > 50:
            self.key_to_id()  # one read of the vocabulary beats many lookups
        matrix = self.matrix()
        vectors, exclude = [], []
        for positive, negative in parsed:
            pos_ids, neg_ids = self.ids_of(positive), self.ids_of(negative)
            vectors.append(query.mean_of_unit_rows(matrix, pos_ids, neg_ids))
            exclude.append(np.concatenate([pos_ids, neg_ids]))
        if not vectors:
            return []
        xq = np.stack(vectors)
        searcher = None if exact else self.searcher()
        if searcher is None:
            D, I = query.search(matrix, xq, k, restrict=restrict, exclude=exclude)
        else:
            extra = max(len(ids) for ids in exclude)
            D, I = _drop_excluded(*searcher.search(xq, k + extra, restrict=restrict), exclude, k)
        return [self._pairs(D[i], I[i]) for i in range(len(vectors))]

    def neighbors_of_vector(self, vector, k: int = 10, restrict: int | None = None):
        vector = query.as_query_matrix(vector, self.version.dim)
        D, I = query.search(self.matrix(), query.normalize(vector), k, restrict=restrict)
        return self._pairs(D[0], I[0])

    def analogy(self, a: str, b: str, c: str, k: int = 1, method: str = "add", restrict: int | None = None,
                exact: bool = False):
        """D such that a is to b as c is to D ("man", "king", "woman" -> "queen"), best first.

        method "add" is 3CosAdd (gensim most_similar), "mul" is 3CosMul (most_similar_cosmul).
        Through an index, candidates are over-fetched and re-ranked exactly.
        """
        if method not in ("add", "mul"):
            raise BadQuery(f"unknown analogy method {method!r} (use 'add' or 'mul')")
        ids = self.ids_of([a, b, c])
        searcher = None if exact else self.searcher()
        if searcher is None:
            D, I = query.analogies(self.matrix(), ids[None, :], k, method=method, restrict=restrict)
        else:
            from indexes import analogies

            D, I = analogies(searcher, self.matrix(), ids[None, :], k, method=method, restrict=restrict)
        return self._pairs(D[0], I[0])

    def similarity(self, a: str, b: str) -> float:
        matrix = self.matrix()
        return float(np.dot(matrix[self.id_of(a)], matrix[self.id_of(b)]))

    def _pairs(self, scores, ids) -> list[tuple[str, float]]:
        keep = ids >= 0
        return list(zip(self.keys_of(ids[keep].tolist()), scores[keep].tolist()))

    # -- writing -----------------------------------------------------------------------------

    def new_version(self, *, kind: str, dim: int, source=None, sha256=None, format=None,
                    parent=None, config=None):
        """A VersionWriter (engine/writer.py) for a new version; use it as a context manager."""
        from .writer import VersionWriter

        return VersionWriter(self, kind=kind, dim=dim, source=source, sha256=sha256,
                             format=format, parent=parent, config=config or {})

    def info(self) -> dict:
        """What `simdex info` shows: the versions, the current one, file sizes and the index."""
        from indexes import index_state  # the index records live with the indexes package

        versions = []
        for version in self.versions():
            entry = version.summary()
            path = self.path / version.file
            entry["bytes"] = path.stat().st_size if path.exists() else None
            versions.append(entry)
        return {
            "store": str(self.path),
            "current": self.current_version(),
            "versions": versions,
            "index": index_state(self),
        }


def _drop_excluded(D, I, exclude, k):
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


def _version_from_row(row) -> Version:
    (number, kind, count, dim, source, sha256, fmt, parent, created, file, config, metrics) = row
    return Version(version=number, kind=kind, count=count, dim=dim, source=source, sha256=sha256,
                   format=fmt, parent=parent, created=created, file=file,
                   config=json.loads(config or "{}"), metrics=json.loads(metrics or "{}"))
