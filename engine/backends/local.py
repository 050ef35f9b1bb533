"""A store on this machine: a directory with a SQLite database and safetensors matrices.

    STORE/store.db                 versions, segments, vocab (key, norm, rank per row), meta, indexes
    STORE/vectors/sN.safetensors   segment N's unit-length rows, float32, memory-mapped on read
    STORE/indexes/vN-M.faiss       the FAISS index built over version N (see indexes/)
    STORE/indexes/vN-M.codes       beside it, for a store keeping fields: the trained PQ codec
                                   that filtered searches scan the kept rows' codes with
    STORE/models/                  models a version records: int8 encoders, fine-tuned encoders
    STORE/classifiers/vN.pt        the sentiment classifier trained on version N (`simdex predict`)
    STORE/train/                   a training run's checkpoint and caches (deletable between runs)

The folder's layout is known here only: code that needs a place asks for it by what it is for
(`index_directory()`, `classifier_path(version)`, ...).

A version is a list of immutable segments whose rows are concatenated in order (most versions
have one). A version becomes current only when complete: its new segments are written to
temporary files, then renamed and recorded in one SQLite transaction. Anything that fails or
is interrupted before the commit leaves the previous version current and answering.

`LocalStore` is the one owner of the database: every SQL statement and every transaction of
simdex is here (the version writer and the index builder go through its public methods).
It reads with the standard library's sqlite3 and numpy only, so answering a query imports
neither torch nor sqlite-utils, and faiss only when the store has an index to use.

A store on read-only media (a shared mount, a container's read-only layer) or in a directory
this user cannot write answers queries; writes raise StoreReadOnly.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
import os
import re
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

import numpy as np

from .. import query
from ..errors import (BadOption, DamagedStore, SimdexError, StoreBusy, StoreFault, StoreNotFound,
                      StoreReadOnly, UnknownVersion, close_spellings, machine_fault)
from ..files import remove_abandoned_temporaries
from ..store import Store, Version, resolve_location
from . import migrations, postings
from .tensorfile import read_matrix

DB_NAME = "store.db"
VECTORS_DIR = "vectors"
INDEXES_DIR = "indexes"
MODELS_DIR = "models"
CLASSIFIERS_DIR = "classifiers"
TRAIN_DIR = "train"
_VERSION_COLUMNS = "version, kind, count, dim, source, sha256, format, parent, created, config, metrics"
_INDEX_COLUMNS = ("id", "version", "kind", "factory", "path", "params", "recall_at_10", "seconds", "bytes", "created")
_TEXT_ROWIDS = 1 << 32  # the full-text index's rowid: segment * 2^32 + row
TERMS_KEPT = 100_000  # terms whose text counts an open store remembers
_ANY_OF = re.compile(r'"[^"]+"(?: OR "[^"]+")*')  # a keyword query of alternative single words
PRUNE_CANDIDATES = 20_000  # past this many candidates, rank every match instead
_SQL_TYPES = {"text": "TEXT", "integer": "INTEGER", "real": "REAL"}


@dataclass(frozen=True)
class Segment:
    id: int
    file: str  # relative to the store
    count: int
    dim: int
    keys: int  # the segment whose vocab rows name these rows (itself, or one it shares them with)
    start: int = 0  # the row id of its first row in the version read


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class LocalStore(Store):
    """A store directory, read at one version (the current one unless asked otherwise)."""

    def __init__(self, path: Path, conn: sqlite3.Connection, version: int | None = None,
                 read_only_because: str | None = None):
        self.path = Path(path)
        self.conn = conn
        self.read_only_because = read_only_because
        self._pinned = version
        self._lookups = 0
        self.notice = None
        self.refresh()

    @property
    def location(self) -> str:
        return str(self.path)

    # -- opening ---------------------------------------------------------------------------------

    @classmethod
    def open(cls, path, version: int | None = None, read_only: bool = False) -> "LocalStore":
        path = resolve_location(path)
        db_path = path / DB_NAME
        if path.exists() and not path.is_dir():
            raise StoreNotFound(path, "not a directory")
        if not db_path.is_file():
            raise StoreNotFound(path)
        why = "opened read-only" if read_only else _unwritable(path, db_path)
        conn = _connect(db_path, why)
        try:
            if not migrations.up_to_date(conn):
                if why:
                    raise StoreReadOnly(path, f"{why}, and it needs an upgrade a writable copy would get")
                _fault_guard(lambda: migrations.apply(conn), db_path)
            store = cls(path, conn, version, why)
            if version is not None:
                store.version  # validates it
        except BaseException:
            conn.close()
            raise
        return store

    @classmethod
    def create(cls, path) -> "LocalStore":
        """Open the store at `path`, creating the directory and schema if they do not exist."""
        path = resolve_location(path)
        if path.exists() and not path.is_dir():
            raise StoreNotFound(path, "exists and is not a directory")
        if (path / DB_NAME).is_file():
            return cls.open(path)
        try:
            (path / VECTORS_DIR).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise machine_fault(e, path) or e
        conn = _connect(path / DB_NAME, None)
        try:
            _fault_guard(lambda: conn.execute("PRAGMA journal_mode = WAL"), path / DB_NAME)
            _fault_guard(lambda: migrations.apply(conn), path / DB_NAME)
        except BaseException:
            conn.close()
            raise
        return cls(path, conn)

    def close(self) -> None:
        self.conn.close()

    # -- transactions: the one way to write ---------------------------------------------------------

    def begin(self) -> None:
        """Take the store's write lock (BEGIN IMMEDIATE) for a transaction."""
        self.check_writable()
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            if "locked" in str(e) or "busy" in str(e):
                raise StoreBusy(self.path) from None
            raise machine_fault(e, self.path / DB_NAME) or e

    def commit(self) -> None:
        try:
            self.conn.execute("COMMIT")
        except BaseException as e:
            self.rollback()
            raise machine_fault(e, self.path / DB_NAME) or e

    def rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    @contextmanager
    def transaction(self):
        """A write: commits when the block ends, rolls back when it raises (a failed
        statement, Ctrl-C), and never leaves the write lock held."""
        self.begin()
        try:
            yield self.conn
        except BaseException as e:
            self.rollback()
            fault = machine_fault(e, self.path / DB_NAME)
            if fault is not None:
                raise fault from None
            raise
        self.commit()

    def refresh(self) -> None:
        """Drop what was read, so the next read sees what was committed since (a new version,
        another current one, a new index)."""
        self._version = self._segments = self._matrix = self._keys = self._key_to_id = None
        self._encoder = self._subwords = None
        self._searcher = None
        self._term_counts = self._text_count = None
        self._postings_read = (None, None, {})  # (changes, (N, avgdl) or None, lengths read)
        self._tokenizer = None  # FTS5's tokenizer on a database of its own, for folding query words
        self.notice = None

    # -- versions ----------------------------------------------------------------------------------

    def versions(self) -> list[Version]:
        rows = self.conn.execute(f"SELECT {_VERSION_COLUMNS} FROM versions ORDER BY version").fetchall()
        return [_version_from_row(row) for row in rows]

    def current_version(self) -> int | None:
        row = self.conn.execute("SELECT value FROM meta WHERE name = 'current'").fetchone()
        return int(row[0]) if row else None

    def get_version(self, number: int) -> Version:
        row = self.conn.execute(f"SELECT {_VERSION_COLUMNS} FROM versions WHERE version = ?",
                                (int(number),)).fetchone()
        if row is None:
            raise UnknownVersion(self.path, number, [v.version for v in self.versions()])
        return _version_from_row(row)

    def set_current(self, number: int) -> Version:
        """Make version `number` the current one (roll back to it, or forward again)."""
        version = self.get_version(number)
        with self.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('current', ?)", (str(int(number)),))
        if self._pinned is None:
            self.refresh()
        return version

    def segments(self, number: int | None = None) -> list[Segment]:
        """The segments of a version (default: the one read), in row order."""
        if number is None and self._segments is not None:
            return self._segments
        rows = self.conn.execute(
            "SELECT s.id, s.file, s.count, s.dim, s.keys, vs.start FROM version_segments vs"
            " JOIN segments s ON s.id = vs.segment WHERE vs.version = ? ORDER BY vs.position",
            (self.version.number if number is None else int(number),),
        ).fetchall()
        found = [Segment(*row) for row in rows]
        if number is None:
            self._segments = found
        return found

    # -- data of the version read --------------------------------------------------------------------

    def vectors(self):
        """The version's rows for searching: one memory-mapped matrix, or a query.Segmented
        view of several segments (nothing copied)."""
        if self._matrix is None:
            parts = [self._read_segment(segment) for segment in self.segments()]
            self._matrix = parts[0] if len(parts) == 1 else query.Segmented(parts)
        return self._matrix

    def matrix(self) -> np.ndarray:
        """(n, d) float32, unit rows (zero rows stay zero); row i is keys()[i]. Memory-mapped
        when the version has one segment; several are read into one array."""
        return np.asarray(self.vectors())

    def _read_segment(self, segment: Segment) -> np.ndarray:
        path = self.path / segment.file
        try:
            # a plain ndarray view of the memory map: slicing a np.memmap costs microseconds
            return read_matrix(path).view(np.ndarray)
        except (OSError, ValueError, KeyError) as e:
            raise DamagedStore(f"{path}: the vectors of version {self.version.number} cannot be read "
                               f"({e.__class__.__name__}: {e})") from None

    def tensor(self, device=None):
        """The matrix as a torch tensor, read with safetensors onto `device` (default: CUDA when
        there is one), for `torch.nn.Embedding.from_pretrained(store.tensor(), freeze=False)`.
        Imports torch."""
        import safetensors.torch
        import torch

        parts = [safetensors.torch.load_file(str(self.path / s.file))["vectors"] for s in self.segments()]
        tensor = parts[0] if len(parts) == 1 else torch.cat(parts)
        from ..devices import pick_device

        return tensor.to(pick_device(device))

    def _column(self, column: str) -> list:
        values = []
        for segment in self.segments():
            values += [row[0] for row in self.conn.execute(
                f"SELECT {column} FROM vocab WHERE segment = ? ORDER BY row", (segment.keys,))]
        return values

    def keys(self) -> list[str]:
        """The words (or sentence texts), in row order."""
        if self._keys is None:
            self._keys = self._column("key")
        return self._keys

    def norms(self) -> np.ndarray:
        """Each row's length before normalisation (it carries frequency information)."""
        return np.array(self._column("norm"), dtype=np.float32)

    def norms_of(self, ids) -> np.ndarray:
        """The original norms of the given rows, in the given order."""
        return np.array(self._vocab_values("norm", ids), dtype=np.float32)

    def _vocab_values(self, column: str, rows) -> list:
        """One vocabulary column's value for each of the version's rows, in the given order."""
        segments = self.segments()
        starts = [s.start for s in segments]
        values = []
        for i in (int(i) for i in rows):
            segment = segments[bisect.bisect_right(starts, i) - 1]
            values.append(self.conn.execute(f"SELECT {column} FROM vocab WHERE segment = ? AND row = ?",
                                            (segment.keys, i - segment.start)).fetchone()[0])
        return values

    def ranks(self) -> np.ndarray:
        return np.array(self._column("rank"), dtype=np.int64)

    def key_to_id(self) -> dict[str, int]:
        if self._key_to_id is None:
            self._key_to_id = {key: i for i, key in enumerate(self.keys())}
        return self._key_to_id

    def find(self, word: str) -> int | None:
        """The row of `word` (or of a stored text), or None."""
        if self.version.kind == "sentences":
            return self.row_of_text(word)
        self._lookups += 1
        if self._key_to_id is None and self._lookups > 64:
            self.key_to_id()  # many lookups: one read of the vocabulary beats a query each
        if self._key_to_id is not None:
            found = self._key_to_id.get(word)
        else:
            found = None
            for segment in self.segments():
                # a literal segment number, so SQLite uses that segment's partial index
                row = self.conn.execute(
                    f"SELECT row FROM vocab WHERE segment = {int(segment.keys)} AND key = ?", (word,)
                ).fetchone()
                if row is not None:
                    found = segment.start + row[0]
                    break
        return found

    def keys_of(self, ids) -> list[str]:
        """The keys of the given rows, in the given order."""
        ids = [int(i) for i in ids]
        if self._keys is not None or len(ids) > 500 or self._lookups > 64:
            keys = self.keys()
            return [keys[i] for i in ids]
        segments = self.segments()
        starts = [s.start for s in segments]
        found = {}
        for i in ids:
            segment = segments[bisect.bisect_right(starts, i) - 1]
            row = self.conn.execute("SELECT key FROM vocab WHERE segment = ? AND row = ?",
                                    (segment.keys, i - segment.start)).fetchone()
            found[i] = row[0]
        return [found[i] for i in ids]

    # -- sentence stores: texts by content hash, external ids -----------------------------------------

    def rows_with_hashes(self, hashes: list[bytes], segments=None) -> dict[bytes, int]:
        """{hash: row} of the texts among `hashes` stored in `segments` (default: the version's)."""
        found = {}
        for segment in self.segments() if segments is None else segments:
            for start in range(0, len(hashes), 500):
                chunk = hashes[start:start + 500]
                found.update((h, segment.start + row) for h, row in self.conn.execute(
                    f"SELECT hash, row FROM vocab WHERE segment = {int(segment.keys)} AND hash IN "
                    f"({','.join('?' * len(chunk))})", chunk))
        return found

    def row_of_text(self, text: str) -> int | None:
        return self.rows_with_hashes([text_hash(text)]).get(text_hash(text))

    def row_of_external_id(self, external_id: str) -> int | None:
        for segment in self.segments():
            row = self.conn.execute(f"SELECT row FROM vocab WHERE segment = {int(segment.keys)} AND external_id = ?",
                                    (str(external_id),)).fetchone()
            if row is not None:
                return segment.start + row[0]
        return None

    def external_ids(self, rows) -> list:
        """The external id of each row (None where the input gave none)."""
        return self._vocab_values("external_id", rows)

    def forget_seen(self) -> None:
        """Start a new input: no text seen yet (a temporary table, on disk, not in memory)."""
        self.conn.execute("CREATE TEMP TABLE IF NOT EXISTS seen (hash BLOB PRIMARY KEY) WITHOUT ROWID")
        self.conn.execute("DELETE FROM temp.seen")

    def first_sightings(self, hashes: list[bytes]) -> list[bool]:
        """For each hash, whether this input shows it for the first time (and remember it)."""
        fresh = []
        self.conn.execute("BEGIN")  # the temporary database only: the store stays unlocked
        try:
            for digest in hashes:
                fresh.append(self.conn.execute("INSERT OR IGNORE INTO temp.seen VALUES (?)", (digest,)).rowcount == 1)
            self.conn.execute("COMMIT")
        except BaseException:
            self.rollback()
            raise
        return fresh

    def staged_segments(self, job: str) -> list[Segment]:
        """Segments an interrupted encode committed for `job` (settings and parent version)."""
        rows = self.conn.execute("SELECT s.id, s.file, s.count, s.dim, s.keys FROM staged st JOIN segments s"
                                 " ON s.id = st.segment WHERE st.job = ? ORDER BY s.id", (job,)).fetchall()
        return [Segment(*row) for row in rows]

    def drop_staged(self, keep_job: str | None = None) -> None:
        """Forget staged segments of other jobs (their parent version or settings changed)."""
        stale = self.conn.execute("SELECT segment FROM staged WHERE job != ?", (keep_job or "",)).fetchall()
        if not stale:
            return
        files = []
        with self.transaction() as conn:
            for (segment,) in stale:
                files += [row[0] for row in conn.execute("SELECT file FROM segments WHERE id = ?", (segment,))]
                conn.execute("DELETE FROM staged WHERE segment = ?", (segment,))
                conn.execute(f"INSERT INTO texts(texts, rowid, text) SELECT 'delete', {int(segment)} * "
                             f"{_TEXT_ROWIDS} + row, key FROM vocab WHERE segment = ?", (segment,))
                conn.execute("DELETE FROM fields WHERE segment = ?", (segment,))
                conn.execute("DELETE FROM text_postings WHERE segment = ?", (segment,))
                conn.execute("DELETE FROM text_lengths WHERE segment = ?", (segment,))
                conn.execute("DELETE FROM vocab WHERE segment = ?", (segment,))
                conn.execute(f"DROP INDEX IF EXISTS vocab_hash_s{int(segment)}")
                conn.execute(f"DROP INDEX IF EXISTS vocab_id_s{int(segment)}")
                conn.execute("DELETE FROM segments WHERE id = ?", (segment,))
        for file in files:
            (self.path / file).unlink(missing_ok=True)

    def stage(self, segment: int, job: str) -> None:
        self.conn.execute("INSERT INTO staged VALUES (?, ?, ?)", (int(segment), job, now()))

    def unstage(self, segments) -> None:
        for segment in segments:
            self.conn.execute("DELETE FROM staged WHERE segment = ?", (int(segment),))

    def close_spellings(self, word: str, n: int = 3) -> list[str]:
        if self.version.kind != "words":
            return []
        keys = int(self.segments()[0].keys)
        same_case = [row[0] for row in self.conn.execute(
            f"SELECT key FROM vocab WHERE segment = {keys} AND lower(key) = ? AND key != ? LIMIT ?",
            (word.lower(), word, n))]
        if same_case:
            return same_case
        # Look among the more frequent words of a similar length: fast, and what a user meant.
        candidates = [row[0] for row in self.conn.execute(
            f"SELECT key FROM vocab WHERE segment = {keys} AND row < 100000 AND length(key) BETWEEN ? AND ?",
            (len(word) - 2, len(word) + 2))]
        return close_spellings(word, candidates, n)

    # -- the index -----------------------------------------------------------------------------------

    def index_record(self) -> dict | None:
        """The store's index: {id, version, kind, factory, path, params, recall_at_10, ...} or None."""
        row = self.conn.execute(f"SELECT {', '.join(_INDEX_COLUMNS)} FROM indexes ORDER BY id DESC LIMIT 1").fetchone()
        if row is None:
            return None
        record = dict(zip(_INDEX_COLUMNS, row))
        record["params"] = json.loads(record["params"] or "{}")
        return record

    def index_state(self) -> dict | None:
        """What `simdex info` shows of the index, with `stale` when it is for another version."""
        record = self.index_record()
        if record is None:
            return None
        keep = ("kind", "version", "recall_at_10", "params", "factory", "bytes", "seconds", "created")
        return {**{name: record[name] for name in keep}, "stale": record["version"] != self.current_version()}

    def searcher(self):
        """The index searcher for the version read, or None (then `notice` may say why)."""
        if self._searcher is None:
            self._searcher = self._open_searcher() or False
        return self._searcher or None

    def _open_searcher(self):
        record = self.index_record()
        if record is None:
            return None
        number = self.version.number
        if record["version"] != number:
            self.notice = (f"the {record['kind']} index was built for version {record['version']}, not version "
                           f"{number}: searching exactly (rebuild it with `simdex index build`)")
            return None
        path = self.index_path(record)
        if not path.exists():
            self.notice = f"the index file {path} is missing: searching exactly (rebuild it with `simdex index build`)"
            return None
        # Imported here, not at the top: faiss costs a quarter of a second to import, and a
        # store without an index (or a query with --exact) never needs it.
        from ...indexes.searcher import Searcher

        codes = self.codes_path(record)
        return Searcher.load(path, record["kind"], record["params"], self.vectors(),
                             codes_path=codes if codes.exists() else None)

    def index_path(self, record: dict) -> Path:
        """The file of an index the store records (index_record())."""
        return self.path / record["path"]

    def codes_path(self, record: dict) -> Path:
        """The filter codec saved with an index (present only for stores keeping fields)."""
        return self.index_path(record).with_suffix(".codes")

    def check_writable(self) -> None:
        """Raise StoreReadOnly now, before long work whose result could not be saved."""
        if self.read_only_because:
            raise StoreReadOnly(self.path, self.read_only_because)

    # -- the folder's layout: a place for each thing the store keeps ------------------------------

    def _directory(self, name: str) -> Path:
        """STORE/name, made if missing (a read-only store says so first); temporary files of
        writers that were killed are removed."""
        self.check_writable()
        directory = self.path / name
        try:
            directory.mkdir(exist_ok=True)
        except OSError as e:
            raise machine_fault(e, directory) or e
        remove_abandoned_temporaries(directory)
        return directory

    def vectors_directory(self) -> Path:
        """Where segment files go."""
        return self._directory(VECTORS_DIR)

    def index_directory(self) -> Path:
        """Where index files go."""
        return self._directory(INDEXES_DIR)

    def models_directory(self) -> Path:
        """Where models a version records go (int8 encoders, fine-tuned encoders)."""
        return self._directory(MODELS_DIR)

    def training_directory(self) -> Path:
        """Where a training run keeps its checkpoint and caches."""
        return self._directory(TRAIN_DIR)

    def classifier_path(self, version: int, *, for_writing: bool = False) -> Path:
        """The file of the classifier trained on `version` (made room for when `for_writing`)."""
        directory = self._directory(CLASSIFIERS_DIR) if for_writing else self.path / CLASSIFIERS_DIR
        return directory / f"v{int(version)}.pt"

    def stored_file(self, relative: str | None) -> Path | None:
        return None if relative is None else self.path / relative

    def save_index(self, tmp_path, *, version: int, kind: str, factory: str, params: dict, recall_at_10: float,
                   seconds: float, codes_tmp=None) -> None:
        """Rename a written index file (and its filter codec `codes_tmp`, if any) into place and
        make it the store's index, in one transaction; the files of the indexes it replaces are
        removed after the commit."""
        tmp = Path(tmp_path)
        codes_tmp = None if codes_tmp is None else Path(codes_tmp)
        placed = []
        try:
            with self.transaction() as conn:
                old = conn.execute("SELECT path FROM indexes").fetchall()
                number = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM indexes").fetchone()[0]
                relative = f"{INDEXES_DIR}/v{version}-{number}.faiss"
                final = self.path / relative
                size = tmp.stat().st_size
                if codes_tmp is not None:
                    placed.append(final.with_suffix(".codes"))
                    os.replace(codes_tmp, placed[-1])
                placed.append(final)
                os.replace(tmp, final)
                conn.execute(
                    f"INSERT INTO indexes ({', '.join(_INDEX_COLUMNS)}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (number, version, kind, factory, relative, json.dumps(params), recall_at_10, seconds, size, now()))
                conn.execute("DELETE FROM indexes WHERE id != ?", (number,))
        except BaseException:
            for path in [*placed, tmp, codes_tmp]:
                if path is not None:
                    path.unlink(missing_ok=True)
            raise
        for (path,) in old:
            (self.path / path).unlink(missing_ok=True)
            (self.path / path).with_suffix(".codes").unlink(missing_ok=True)
        self._searcher = None
        self.notice = None

    # -- writing versions (engine/writer.py drives these) --------------------------------------------------

    def new_version(self, *, kind: str, dim: int, source=None, sha256=None, format=None, parent=None,
                    config=None):
        """A LocalVersionWriter (engine/backends/writer.py) for a new version; use it as a context
        manager."""
        from .writer import LocalVersionWriter

        return LocalVersionWriter(self, kind=kind, dim=dim, source=source, sha256=sha256, format=format,
                                  parent=parent, config=config or {})

    def next_number(self, table: str) -> int:
        column = {"versions": "version", "segments": "id"}[table]
        return self.conn.execute(f"SELECT coalesce(max({column}), 0) + 1 FROM {table}").fetchone()[0]

    def add_segment(self, number: int, file: str, count: int, dim: int, keys: int) -> None:
        self.conn.execute("INSERT INTO segments (id, file, count, dim, keys, created) VALUES (?,?,?,?,?,?)",
                          (number, file, count, dim, keys, now()))

    def add_vocab(self, segment: int, first_row: int, keys, norms, ranks, hashes=None, external_ids=None) -> None:
        """The vocabulary rows of a segment: many rows per INSERT (a third of executemany's time),
        words without the sentence columns."""
        m = len(keys)
        columns = [range(first_row, first_row + m), keys, np.asarray(norms, dtype=np.float64).tolist(),
                   np.asarray(ranks, dtype=np.int64).tolist()]
        names = "segment, row, key, norm, rank"
        if hashes is not None or external_ids is not None:
            columns += [hashes or [None] * m, external_ids or [None] * m]
            names += ", hash, external_id"
        row = f"({int(segment)}, {', '.join('?' * len(columns))})"
        step = max(1, min(4096, self.conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // len(columns)))
        for start in range(0, m, step):
            values = [value for record in zip(*(column[start:start + step] for column in columns)) for value in record]
            self.conn.execute(f"INSERT INTO vocab ({names}) VALUES {', '.join([row] * (len(values) // len(columns)))}",
                              values)

    def index_vocab(self, segment: int, kind: str) -> None:
        """The segment's lookup index, built once its rows are in (faster than maintaining it)."""
        segment = int(segment)
        if kind == "words":
            self.conn.execute(f"CREATE UNIQUE INDEX vocab_key_s{segment} ON vocab(key) WHERE segment = {segment}")
        else:
            self.conn.execute(f"CREATE INDEX vocab_hash_s{segment} ON vocab(hash) WHERE segment = {segment}")
            self.conn.execute(f"CREATE INDEX vocab_id_s{segment} ON vocab(external_id) WHERE segment = {segment}")
            # the segment's texts join the full-text index (rowid: segment * 2^32 + row)
            self.conn.execute(f"INSERT INTO texts(rowid, text) SELECT {segment} * {_TEXT_ROWIDS} + row, key "
                              f"FROM vocab WHERE segment = {segment}")
            migrations.write_postings(self.conn, segment)  # the same texts' BM25 numbers, as arrays

    # -- fields kept with the texts, and the full-text index --------------------------------------------

    def field_columns(self) -> dict[str, str]:
        """{field: SQLite type} of the columns the store's fields table has."""
        return {name[2:]: kind for _, name, kind, *_ in self.conn.execute("PRAGMA table_info(fields)")
                if name.startswith("f_")}

    def add_fields(self, segment: int, first_row: int, kinds: dict[str, str], values: list[dict]) -> None:
        """The fields of a segment's texts (`values`: a dict per row, in row order); a field new
        to the store gets its column."""
        known = self.field_columns()
        for name, kind in kinds.items():
            if name not in known:
                self.conn.execute(f'ALTER TABLE fields ADD COLUMN "f_{name}" {_SQL_TYPES[kind]}')
        names = list(kinds)
        rows = [(int(segment), first_row + i, *(record.get(name) for name in names)) for i, record in
                enumerate(values)]
        columns = ", ".join(["segment", "row", *(f'"f_{name}"' for name in names)])
        self.conn.executemany(f"INSERT INTO fields ({columns}) VALUES ({', '.join('?' * (2 + len(names)))})", rows)

    def rows_where(self, where) -> np.ndarray:
        """The version's row ids whose fields pass a parsed `--where` filter, in order."""
        clause, params = where.sql()
        found = []
        for segment in self.segments():
            found.append(segment.start + np.fromiter(
                (row for (row,) in self.conn.execute(
                    f"SELECT row FROM fields WHERE segment = {int(segment.keys)} AND {clause} ORDER BY row", params)),
                dtype=np.int64))
        return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)

    def field_values(self, rows, names) -> list[dict]:
        """The fields of the given rows of the version, in the given order."""
        if not names:
            return [{} for _ in rows]
        segments = self.segments()
        starts = [s.start for s in segments]
        columns = ", ".join(f'"f_{name}"' for name in names)
        wanted: dict[int, list[int]] = {}  # segment index -> rows within it
        rows = [int(i) for i in rows]
        for i in rows:
            at = bisect.bisect_right(starts, i) - 1
            wanted.setdefault(at, []).append(i - starts[at])
        found = {}
        for at, inside in wanted.items():
            segment = segments[at]
            for first in range(0, len(inside), 500):  # one query per 500 rows
                part = inside[first:first + 500]
                marks = ", ".join("?" * len(part))
                for row, *values in self.conn.execute(
                        f"SELECT row, {columns} FROM fields WHERE segment = ? AND row IN ({marks})",
                        (segment.keys, *part)):
                    found[segment.start + row] = dict(zip(names, values))
        empty = dict.fromkeys(names)
        return [dict(found.get(i, empty)) for i in rows]

    def has_text_index(self) -> bool:
        return True

    def keyword_rows(self, match: str, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """(row ids, BM25 scores, higher is better) of the version's texts matching an FTS5 query,
        best first: the full-text index read over the rowid ranges of the version's segments."""
        ranges = " OR ".join(f"(rowid BETWEEN {int(s.keys) * _TEXT_ROWIDS} AND "
                             f"{int(s.keys) * _TEXT_ROWIDS + s.count - 1})" for s in self.segments())
        found = None
        if _ANY_OF.fullmatch(match):
            terms = self._fold([term[1:-1] for term in match.split(" OR ")])
            totals = self._postings_totals()
            if terms is not None and totals is not None:
                segments = [(s.keys, s.count) for s in self.segments()]
                found = postings.best(terms, self._postings_of(terms, {number for number, _ in segments}), segments,
                                      self._segment_lengths, *totals, limit)
            else:  # a quoted word that is a phrase, or postings that disagree with FTS5's counts
                found = self._best_of_alternatives(match, limit, ranges)
        if found is None:
            found = self.conn.execute(f"SELECT rowid, bm25(texts) FROM texts WHERE texts MATCH ? AND ({ranges}) "
                                      f"ORDER BY rank LIMIT {int(limit)}", (match,)).fetchall()
        starts = {int(s.keys): s.start for s in self.segments()}
        rows = np.array([starts[rowid // _TEXT_ROWIDS] + rowid % _TEXT_ROWIDS for rowid, _ in found], dtype=np.int64)
        return rows, -np.array([score for _, score in found], dtype=np.float32)

    def _best_of_alternatives(self, match: str, limit: int, ranges: str) -> list | None:
        """The `limit` best (rowid, bm25) for `"a" OR "b" OR ...`, exactly as FTS5 ranks them, without
        scoring every text that holds a common word (MaxScore pruning): a word can add at most
        idf * (k1 + 1) to a text's BM25, so once the texts holding the rarest words include `limit`
        whose full score beats what the other words could give together, no text without those
        words can enter. Only those texts are scored (bm25() is evaluated for the rows the WHERE
        clause keeps). None where pruning would not pay (the caller ranks every match)."""
        terms = [term[1:-1] for term in match.split(" OR ")]
        counts = self.term_documents(terms)
        total = self._text_total()
        terms.sort(key=counts.get)
        bound = [postings.BM25_K1 + 1 if total == 0 else (postings.BM25_K1 + 1) * max(
            math.log((total - counts[t] + 0.5) / (counts[t] + 0.5)), 1e-6) for t in terms]
        for essential in range(1, len(terms)):
            if counts[terms[essential - 1]] > PRUNE_CANDIDATES:
                return None  # that many texts hold this word alone
            if sum(counts[t] for t in terms[:essential]) < limit:
                continue  # too few texts hold these words to fill the answer
            rest = sum(bound[essential:])
            candidates = [rowid for (rowid,) in self.conn.execute(
                f"SELECT rowid FROM texts WHERE texts MATCH ? AND ({ranges})",
                (" OR ".join(f'"{t}"' for t in terms[:essential]),))]
            if len(candidates) > PRUNE_CANDIDATES:
                return None
            if len(candidates) < limit:
                continue
            found = self.conn.execute(  # +rowid: a filter on the matches, not a lookup per candidate
                "SELECT rowid, bm25(texts) FROM texts WHERE texts MATCH ? AND +rowid IN "
                "(SELECT value FROM json_each(?))", (match, json.dumps(candidates))).fetchall()
            found.sort(key=lambda hit: (hit[1], hit[0]))
            if -found[limit - 1][1] > rest * (1 + 1e-9) + 1e-12:
                return found[:limit]
        return None

    # -- BM25 from postings (postings.py) ---------------------------------------------------------------

    def _postings_totals(self) -> tuple[int, float] | None:
        """(N, avgdl) of the full-text index when every text of it has its postings, else None.
        Kept, with the segment lengths read, until the database changes (other connections'
        commits: PRAGMA data_version; this one's writes: total_changes)."""
        changes = (self.conn.execute("PRAGMA data_version").fetchone()[0], self.conn.total_changes)
        if self._postings_read[0] != changes:
            totals = None
            try:
                texts, tokens = self.conn.execute("SELECT coalesce(sum(count), 0), coalesce(sum(tokens), 0) "
                                                  "FROM text_lengths").fetchone()
                if texts and texts == self.conn.execute("SELECT count(*) FROM texts_docsize").fetchone()[0]:
                    totals = (texts, tokens / texts)
            except sqlite3.OperationalError:  # no postings tables (a database older than migration 6)
                pass
            self._postings_read = (changes, totals, {})
        return self._postings_read[1]

    def _segment_lengths(self, segment: int):
        lengths = self._postings_read[2]
        if segment not in lengths:
            (blob,) = self.conn.execute("SELECT lengths FROM text_lengths WHERE segment = ?", (segment,)).fetchone()
            lengths[segment] = postings.read_lengths(blob)
        return lengths[segment]

    def _postings_of(self, terms, wanted: set) -> dict:
        """{term: postings.TermPostings} over the index, with the parts of the `wanted` segments."""
        read = ", ".join(str(int(number)) for number in wanted)  # other segments: their counts only
        return {term: postings.TermPostings.of(self.conn.execute(
            f"SELECT segment, length(rows), iif(segment IN ({read}), rows, NULL), iif(segment IN ({read}), tfs, NULL) "
            f"FROM text_postings WHERE term = ?", (term,)), wanted) for term in set(terms)}

    def _fold(self, terms: list[str]) -> list[str] | None:
        """The index's term for each query word, folded as FTS5 folds a query's words (case,
        diacritics: by the same tokenizer); None when a quoted word is several tokens (a phrase)."""
        folded = []
        for term in terms:
            if term.isascii() and term.isalnum():
                folded.append(term.lower())
                continue
            if self._tokenizer is None:  # its own database: this one's may be read-only, and
                # writes here would count as changes to what is cached
                self._tokenizer = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
                self._tokenizer.execute(f"CREATE VIRTUAL TABLE words USING fts5(text, tokenize='{postings.TOKENIZER}')")
                self._tokenizer.execute("CREATE VIRTUAL TABLE tokens USING fts5vocab(words, instance)")
            self._tokenizer.execute("INSERT INTO words(rowid, text) VALUES (1, ?)", (term,))
            try:
                tokens = [t for (t,) in self._tokenizer.execute("SELECT term FROM tokens ORDER BY offset")]
            finally:
                self._tokenizer.execute("DELETE FROM words")
            if len(tokens) != 1:
                return None
            folded.append(tokens[0])
        return folded

    def _text_total(self) -> int:
        """The texts in the full-text index (every version's): the N of its BM25."""
        changes = self.conn.execute("PRAGMA data_version").fetchone()[0]
        if self._text_count is None or self._text_count[0] != changes:
            self._text_count = (changes, self.conn.execute("SELECT count(*) FROM texts_docsize").fetchone()[0])
        return self._text_count[1]

    def term_documents(self, terms: list[str]) -> dict[str, int]:
        """How many stored texts hold each term (of every version: the index's own counts).

        FTS5 counts a term's texts by reading its whole postings list (as long as the store for a
        common word), so the counts are kept until the database changes (PRAGMA data_version for
        other connections' commits; this one's writes clear them)."""
        folded = self._fold(terms)
        if folded is not None and self._postings_totals() is not None:
            wanted = sorted(set(folded))
            counts = dict(self.conn.execute(
                f"SELECT term, sum(length(rows)) / 4 FROM text_postings WHERE term IN ({', '.join('?' * len(wanted))}) "
                f"GROUP BY term", wanted).fetchall()) if wanted else {}
            return {term: int(counts.get(word, 0)) for term, word in zip(terms, folded)}
        changes = self.conn.execute("PRAGMA data_version").fetchone()[0]
        if self._term_counts is None or self._term_counts[0] != changes or len(self._term_counts[1]) > TERMS_KEPT:
            self._term_counts = (changes, {})
        counts = self._term_counts[1]
        wanted = sorted(set(terms) - counts.keys())
        if wanted:
            found = dict(self.conn.execute(f"SELECT term, doc FROM texts_terms WHERE term IN "
                                           f"({', '.join('?' * len(wanted))})", wanted).fetchall())
            counts.update({term: found.get(term, 0) for term in wanted})
        return {term: counts[term] for term in terms}

    def add_version(self, number: int, *, kind: str, count: int, dim: int, fields: dict,
                    segments: list[tuple[int, int]], metrics: dict, make_current: bool) -> None:
        """Record a version made of `segments` ((number, rows) in row order)."""
        self.conn.execute(
            f"INSERT INTO versions ({_VERSION_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (number, kind, count, dim, fields.get("source"), fields.get("sha256"), fields.get("format"),
             fields.get("parent"), now(), json.dumps(fields.get("config") or {}), json.dumps(metrics or {})))
        start = 0
        for position, (segment, rows) in enumerate(segments):
            self.conn.execute("INSERT INTO version_segments VALUES (?, ?, ?, ?)", (number, position, segment, start))
            start += rows
        if make_current:
            self.conn.execute("INSERT OR REPLACE INTO meta VALUES ('current', ?)", (str(number),))

    def set_metrics(self, number: int, metrics: dict) -> None:
        """Replace a version's metrics (a report computed after it was written)."""
        with self.transaction() as conn:
            conn.execute("UPDATE versions SET metrics = ? WHERE version = ?", (json.dumps(metrics), int(number)))
        if self._version is not None and self._version.version == number:
            self._version = None

    def version_written(self) -> None:
        """A writer committed a version: a store that follows the current version re-reads."""
        self._term_counts = self._text_count = None
        if self._pinned is None:
            self.refresh()

    # -- what `simdex info` shows ---------------------------------------------------------------------

    def info(self) -> dict:
        """The versions, the current one, file sizes and the index."""
        versions = []
        for version in self.versions():
            entry = version.summary()
            entry["bytes"] = self._bytes_of(self.segments(version.number))
            versions.append(entry)
        return {"store": str(self.path), "current": self.current_version(), "versions": versions,
                "index": self.index_state()}

    def _bytes_of(self, segments) -> int | None:
        total = 0
        for segment in segments:
            path = self.path / segment.file
            if not path.exists():
                return None
            total += path.stat().st_size
        return total


def local_store(store: Store, what: str, then: str = "`simdex push` the result here") -> "LocalStore":
    """`store` itself when it is a LocalStore: `what` keeps files in a store's own folder (staged
    rows, checkpoints, classifiers, models). Another store is told to use a local one, and `then`."""
    if not isinstance(store, LocalStore):
        raise BadOption(f"{store.location}: {what} keeps its files in a local store (a folder); work in one "
                        f"(`simdex pull --from {store.location} --store NAME`) and {then}")
    return store


def list_stores(directory: Path) -> list[dict]:
    """What `simdex stores` shows of each store in `directory` (the per-user data directory)."""
    found = []
    if not directory.is_dir():
        return found
    for path in sorted(p for p in directory.iterdir() if (p / DB_NAME).is_file()):
        entry = {"name": path.name, "path": str(path), "kind": None, "current": None, "count": None, "dim": None,
                 "bytes": sum(f.stat().st_size for f in path.rglob("*") if f.is_file()), "index": None}
        try:
            with LocalStore.open(path, read_only=True) as store:
                if store.current_version() is not None:
                    version = store.version
                    entry.update(kind=version.kind, current=version.number, count=version.count, dim=version.dim)
                state = store.index_state()
                entry["index"] = None if state is None else state["kind"] + (" (stale)" if state["stale"] else "")
        except SimdexError as e:
            entry["error"] = str(e)
        found.append(entry)
    return found


def text_hash(text: str) -> bytes:
    """What identifies a stored text: the first 16 bytes of its UTF-8 sha256."""
    return hashlib.sha256(text.encode("utf-8")).digest()[:16]


def _unwritable(path: Path, db_path: Path) -> str | None:
    """Why this process cannot write the store (read-only media, permissions), or None."""
    for target in (path, db_path, path / VECTORS_DIR):
        if target.exists() and not os.access(target, os.W_OK):
            try:
                if os.statvfs(target).f_flag & os.ST_RDONLY:
                    return "read-only file system"
            except OSError:
                pass
            return f"permission denied: {target}"
    return None


def _connect(db_path: Path, read_only_because: str | None) -> sqlite3.Connection:
    # a writer waits this long for another one to finish (SIMDEX_BUSY_TIMEOUT seconds, default 30)
    timeout = float(os.environ.get("SIMDEX_BUSY_TIMEOUT", "30"))
    try:
        if read_only_because is None:
            conn = sqlite3.connect(db_path, isolation_level=None, timeout=timeout)
            conn.execute("PRAGMA synchronous = NORMAL")
        else:
            conn = _connect_read_only(db_path, timeout)
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA user_version").fetchone()
    except (sqlite3.Error, OSError) as e:
        raise machine_fault(e, db_path) or StoreFault(db_path, f"cannot open the database ({e})") from None
    return conn


def _connect_read_only(db_path: Path, timeout: float) -> sqlite3.Connection:
    """Read-only: through SQLite's shared memory when another process keeps it up, else as an
    immutable file (the only way SQLite reads a WAL database on read-only media)."""
    uri = "file:" + quote(str(db_path.resolve()))
    try:
        conn = sqlite3.connect(uri + "?mode=ro", uri=True, isolation_level=None, timeout=timeout)
        conn.execute("PRAGMA user_version").fetchone()
        return conn
    except sqlite3.OperationalError:
        return sqlite3.connect(uri + "?immutable=1", uri=True, isolation_level=None, timeout=timeout)


def _fault_guard(action, where):
    try:
        return action()
    except (sqlite3.Error, OSError) as e:
        raise machine_fault(e, where) or e


def _version_from_row(row) -> Version:
    (number, kind, count, dim, source, sha256, fmt, parent, created, config, metrics) = row
    return Version(version=number, kind=kind, count=count, dim=dim, source=source, sha256=sha256,
                   format=fmt, parent=parent, created=created, config=json.loads(config or "{}"),
                   metrics=json.loads(metrics or "{}"))
