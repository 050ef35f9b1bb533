"""Writing a new version of a local store, atomically.

A version is a list of segments. The writer can reuse segments of earlier versions as they are
(new sentences added to a store), write segments with new vectors for the keys of an existing
one (fine-tuned word vectors), and write a segment of new rows with their own keys (an ingest).
New matrices go to temporary files in STORE/vectors/ and the vocabulary into the store's open
transaction as rows arrive; `commit()` renames the files into place and commits. Until then
nothing is visible, and an exception or Ctrl-C rolls everything back. A writer killed outright
leaves only temporary files, which the next writer removes.

The writer goes through the store's public methods (local.py owns every SQL statement). Beyond
what every VersionWriter does (engine/store.py), a local one reuses segments and writes new
vectors for existing keys, which only segments allow.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import BadOption, machine_fault
from ..files import InBackground, temporary_path
from ..store import STORE_KINDS, VersionWriter
from .tensorfile import MatrixWriter, sync_files


class _NewSegment:
    """A segment being written: its number, temporary and final files, and row count."""

    def __init__(self, store, directory, number: int, dim: int, keys: int):
        self.number, self.keys = number, keys
        self.tmp = temporary_path(directory, ".safetensors")
        self.relative = f"{directory.name}/s{number}.safetensors"
        self.final = store.path / self.relative
        self.matrix = MatrixWriter(self.tmp, dim, background=True)  # the disk's time beside the SQLite work

    @property
    def id(self) -> int:
        return self.number

    @property
    def count(self) -> int:
        return self.matrix.rows


class LocalVersionWriter(VersionWriter):
    """Writes a new version of a LocalStore; leaving its block with an exception (Ctrl-C
    included) rolls everything back. The transaction holds the store's write lock for the
    writer's life; readers carry on (WAL)."""

    def __init__(self, store, *, kind, dim, source, sha256, format, parent, config):
        if kind not in STORE_KINDS:
            raise BadOption(f"kind must be 'words' or 'sentences', got {kind!r}")
        self.store = store
        self.kind, self.dim = kind, dim
        self.fields = dict(source=source, sha256=sha256, format=format, parent=parent, config=config)
        self.version = None
        self._parts: list = []  # segments (reused Segment, or _NewSegment), in row order
        self._new: list[_NewSegment] = []
        self._open: _NewSegment | None = None  # the segment `append` writes to
        self._files: list[tuple] = []  # (temporary, final) files the version keeps beside its segments
        self._directory = store.vectors_directory()
        store.begin()
        try:
            self.number = store.next_number("versions")
        except BaseException:
            store.rollback()
            raise

    @property
    def count(self) -> int:
        """Rows of the version so far (reused segments included)."""
        return sum(part.count for part in self._parts)

    def attach_file(self, name: str) -> tuple[Path, str]:
        """A file the version keeps beside its segments (a fastText model's n-gram buckets): write it
        at the temporary path returned (and close it); it is synced to disk and renamed into place
        when the version commits (and removed if it does not). Returns (temporary path, the final
        name relative to the store)."""
        relative = f"{self._directory.name}/v{self.number}-{name}"
        tmp = temporary_path(self._directory, name)
        self._files.append((tmp, self.store.path / relative))
        return tmp, relative

    def reuse(self, segments) -> None:
        """Put existing segments (engine.local.Segment) into the version as they are."""
        self._open = None
        self._parts += list(segments)

    def revector(self, keys_segment, unit_rows: np.ndarray) -> None:
        """A new segment with new vectors for the rows of `keys_segment` (same count, same keys)."""
        if unit_rows.shape[0] != keys_segment.count:
            raise ValueError(f"{unit_rows.shape[0]} rows for a segment of {keys_segment.count}")
        self._open = None
        segment = self._start(keys=keys_segment.keys)
        self._guard(segment.matrix.append, unit_rows)
        self._open = None

    def append(self, unit_rows: np.ndarray, keys: list[str], norms, ranks, hashes=None, external_ids=None,
               fields=None) -> None:
        """Add rows (already unit length) with their keys, original norms and source ranks
        (and, for sentences, content hashes, external ids and the fields the version's config
        declares, a dict per row) to the version's new segment. The rows are written to disk
        in the background: they are the writer's now, not to be changed afterwards."""
        m = len(keys)
        if unit_rows.shape[0] != m or len(norms) != m or len(ranks) != m:
            raise ValueError("rows, keys, norms and ranks must have the same length")
        if self._open is None:
            self._open = self._start(keys=None)
        segment = self._open
        first = segment.count
        self._guard(segment.matrix.append, unit_rows)
        self._guard(self.store.add_vocab, segment.number, first, keys, norms, ranks, hashes, external_ids)
        kinds = (self.fields.get("config") or {}).get("fields")
        if kinds and fields is not None:
            self._guard(self.store.add_fields, segment.number, first, kinds, fields)

    def _start(self, keys) -> _NewSegment:
        number = self.store.next_number("segments") + len(self._new)
        segment = self._guard(_NewSegment, self.store, self._directory, number, self.dim,
                              number if keys is None else keys)
        self._new.append(segment)
        self._parts.append(segment)
        return segment

    def _guard(self, action, *args):
        """Run a write; a full disk or a read-only volume becomes one clear error (rolled back)."""
        try:
            return action(*args)
        except Exception as e:
            fault = machine_fault(e, self.store.path)
            if fault is not None:
                raise fault from None
            raise

    def commit(self, metrics: dict | None = None, make_current: bool = True, unstage=()):
        """Record the version (and make it current); `unstage` lists staged segments it takes in."""
        store = self.store
        syncing = None
        try:
            store.unstage(unstage)
            for segment in self._new:
                self._guard(segment.matrix.close, False)
            # the files reach the disk in a thread (it waits on the disk) while SQLite builds the
            # lookup index; both are done before anything is renamed into place
            files = [segment.tmp for segment in self._new] + [tmp for tmp, _ in self._files]
            syncing = InBackground(sync_files, files)
            for segment in self._new:
                store.add_segment(segment.number, segment.relative, segment.count, self.dim, segment.keys)
                if segment.keys == segment.number:
                    store.index_vocab(segment.number, self.kind)
            count = self.count
            store.add_version(self.number, kind=self.kind, count=count, dim=self.dim, fields=self.fields,
                              segments=[(part.id, part.count) for part in self._parts], metrics=metrics or {},
                              make_current=make_current)
            self._guard(syncing.result)
            for segment in self._new:
                self._guard(os.replace, segment.tmp, segment.final)
            for tmp, final in self._files:
                self._guard(os.replace, tmp, final)
            store.commit()
        except BaseException as e:
            if syncing is not None:
                with syncing:  # stopped and waited for
                    pass
            store.rollback()
            for segment in self._new:
                segment.matrix.abort()  # (a background writer's thread ends with it)
                segment.final.unlink(missing_ok=True)
                segment.tmp.unlink(missing_ok=True)
            for tmp, final in self._files:
                final.unlink(missing_ok=True)
                tmp.unlink(missing_ok=True)
            fault = machine_fault(e, store.path)
            if fault is not None:
                raise fault from None
            raise
        self.version = store.get_version(self.number)
        store.version_written()
        return self.version

    def abort(self) -> None:
        self.store.rollback()
        for segment in self._new:
            segment.matrix.abort()
        for tmp, _ in self._files:
            tmp.unlink(missing_ok=True)



def stage_segment(store, job: str, *, kind: str, unit_rows: np.ndarray, keys, norms, ranks, hashes=None,
                  external_ids=None, fields=None):
    """Commit rows as a segment of their own, not yet in any version, staged for `job`: a long
    encode keeps what it has done, and a rerun after an interruption resumes from it."""
    directory = store.vectors_directory()
    segment = None
    try:
        with store.transaction():
            number = store.next_number("segments")
            segment = _NewSegment(store, directory, number, unit_rows.shape[1], number)
            segment.matrix.append(unit_rows)
            segment.matrix.close()
            store.add_segment(number, segment.relative, segment.count, unit_rows.shape[1], number)
            store.add_vocab(number, 0, keys, norms, ranks, hashes, external_ids)
            if fields is not None:  # (kinds, a dict of values per row)
                store.add_fields(number, 0, *fields)
            store.index_vocab(number, kind)
            store.stage(number, job)
            os.replace(segment.tmp, segment.final)
    except BaseException:
        if segment is not None:
            segment.matrix.abort()  # (its background writer's thread ends with it; removes the file)
            segment.final.unlink(missing_ok=True)
        raise
    return number
