"""`simdex ingest`: a vector file (or the packaged GloVe) into a new version of the store.

Rows are L2-normalised once here (float32, as gensim does); the original norm goes to the
vocabulary. Duplicated words keep their first vector and are counted. Nothing becomes visible
until the version commits, so a bad line or a Ctrl-C leaves the store as it was.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import packaged
from ..errors import BadVectorFile, WrongKind, check_choice, check_positive
from ..files import InBackground, file_sha256
from ..progress import SILENT, Progress
from ..store import Store
from .parsers import NeedsCarefulReader, ReadReport, read_vectors
from .sources import open_source


@dataclass
class IngestResult:
    version: int
    count: int
    dim: int
    skipped: int
    duplicates: int
    seconds: float
    source: str
    format: str
    first_skipped: list[str] = field(default_factory=list)
    index: object = None  # what became of the store's index (indexes.follow.IndexFollow), if it has one
    subwords: int | None = None  # a fastText .bin: its n-gram buckets (0: a model without subwords)

    @property
    def JSON_FIELDS(self):
        fields = ("version", "count", "dim", "skipped", "duplicates", "seconds")
        return fields + ("subwords",) if self.subwords is not None else fields


def ingest(store: Store, source_path=None, *, format: str = "auto", member: str | None = None,
           limit: int | None = None, on_error: str = "fail", progress: Progress = SILENT) -> IngestResult:
    """Read `source_path` (default: the packaged GloVe 6B 50d) into a new, current version."""
    check_positive("--limit", limit)
    check_choice("--on-error", on_error, ("fail", "skip"))
    started = time.perf_counter()
    if store.versions() and store.version.kind != "words":
        raise WrongKind(f"{store.location}: this store holds sentences; ingest word vectors into another "
                        f"store (for example `--store words`)")
    if source_path is None or packaged.is_packaged_name(str(source_path)):
        result = _ingest_packaged(store, str(source_path or packaged.DEFAULT), limit, started, progress)
    elif format == "fasttext-bin" or (format == "auto" and looks_like_fasttext_bin(source_path)):
        result = _ingest_fasttext(store, Path(source_path), limit, started, progress)
    else:
        source = open_source(source_path, format, member)
        with InBackground(file_sha256, source.path) as sha256:  # of the file on disk, beside the reading
            try:
                result = _ingest_file(store, source, sha256, limit, on_error, False, started, progress)
            except NeedsCarefulReader:
                # The fast reader saw something odd; the careful one reads it again and explains.
                result = _ingest_file(store, source, sha256, limit, on_error, True, started, progress)
    from ...indexes.follow import keep_in_step

    result.index = keep_in_step(store)
    return result


def _ingest_file(store, source, sha256, limit, on_error, careful, started, progress) -> IngestResult:
    report = ReadReport()
    duplicates = _Count()
    config = {"limit": limit, "on_error": on_error, "member": source.member,
              "compression": source.compression}
    with store.new_version(kind="words", dim=source.dim, source=str(source.path.resolve()),
                           format=source.format, config=config) as writer:
        batches = read_vectors(source, limit=limit, on_error=on_error, report=report, careful=careful)
        with progress.task(f"ingest {source.label}", total=source.size, unit="B") as task:
            for keys, unit, norms, ranks in prefetch(_first_of_each(batches, duplicates)):
                writer.append(unit, keys, norms, ranks)
                task.update(source.counter.bytes_read, vectors=writer.count)
        if writer.count == 0:
            raise BadVectorFile(source.label, f"no vectors read ({report.skipped} bad lines skipped)")
        writer.fields["sha256"] = sha256.result()
        version = writer.commit(metrics={"skipped": report.skipped, "duplicates": duplicates.n,
                                         "first_skipped": report.first_skipped})
    return IngestResult(version.number, version.count, version.dim, report.skipped, duplicates.n,
                        time.perf_counter() - started, version.source, source.format, report.first_skipped)


class _Count:
    n = 0


def _first_of_each(batches, duplicates: _Count):
    """(keys, unit rows, norms, ranks) of each batch, a word's later occurrences dropped (and
    counted), the rows normalised where the batch lies. Runs in the reading thread (see
    `prefetch`), beside the main thread's SQLite work."""
    seen: set[str] = set()
    try:
        for batch in batches:
            keys, rows, ranks = batch.keys, batch.rows, batch.ranks
            fresh = set(keys)
            if len(fresh) == len(keys) and seen.isdisjoint(fresh):
                seen |= fresh
            else:
                keep = []
                for i, key in enumerate(keys):
                    if key in seen:
                        duplicates.n += 1
                    else:
                        seen.add(key)
                        keep.append(i)
                keys, rows, ranks = [keys[i] for i in keep], rows[keep], ranks[keep]
            unit, norms = unit_rows(rows, in_place=True)
            yield keys, unit, norms, ranks
    finally:
        batches.close()  # the reader closes its file


def looks_like_fasttext_bin(path) -> bool:
    """A fastText model: its magic number, or (the old layout, which has none) a .bin file that does
    not begin with word2vec's "COUNT DIM" line."""
    path = Path(path)
    if not path.is_file():
        return False
    from .fasttext import is_fasttext_bin

    if is_fasttext_bin(path):
        return True
    with open(path, "rb") as f:
        head = f.read(64)
    first = head.split(b"\n", 1)[0].split()
    return path.suffix == ".bin" and not (len(first) == 2 and all(part.isdigit() for part in first))


def _ingest_fasttext(store, path: Path, limit, started, progress) -> IngestResult:
    """A fastText .bin: its word vectors as a version, its n-gram buckets in a file beside them."""
    from ..backends.local import LocalStore
    from ..backends.tensorfile import MatrixWriter
    from ..errors import BadOption, machine_fault
    from .fasttext import read_model

    if not path.is_file():
        raise BadVectorFile(path, "no such file" if not path.exists() else "is a directory, not a vector file")
    model = read_model(path)
    if model.has_subwords and not isinstance(store, LocalStore):
        raise BadOption(f"{store.location}: a fastText model's subwords are kept in a local store's folder; ingest "
                        f"it into a local store and `simdex push` it (the pushed version keeps answering unknown "
                        f"words from that folder on this machine)")
    if model.nwords == 0:
        raise BadVectorFile(path, "no words in the model's dictionary")
    config = {"limit": limit, "subwords": model.config() if model.has_subwords else None}
    with InBackground(file_sha256, path) as hashing, store.new_version(  # the hash beside the reading
            kind="words", dim=model.dim, source=str(path.resolve()), format="fasttext-bin", config=config) as writer:
        copying = buckets = None
        if model.has_subwords:
            # the bucket rows go to the store's file as they are, copied by the kernel beside the reading
            tmp, config["subwords"]["file"] = writer.attach_file("subwords.safetensors")
            buckets = MatrixWriter(tmp, model.dim)
            copying = InBackground(buckets.append_from_file, path, model.buckets_offset, model.header.bucket)
        try:
            with progress.task(f"ingest {path}", total=model.size, unit="B") as task:
                for words, vectors, ranks in model.word_vectors(task):
                    if limit is not None and writer.count >= limit:
                        break
                    keep = len(words) if limit is None else min(len(words), limit - writer.count)
                    unit, norms = unit_rows(vectors[:keep], in_place=True)
                    writer.append(unit, words[:keep], norms, ranks[:keep])
            if copying is not None:
                copying.result()
                buckets.close(sync=False)  # the writer syncs it at commit, beside the SQLite index
        except BaseException as e:
            if copying is not None:
                with copying:  # stopped and waited for
                    pass
                buckets.abort()
            fault = machine_fault(e, store.path)  # a full disk while copying: one clear error
            if fault is not None:
                raise fault from None
            raise
        writer.fields["sha256"] = hashing.result()
        version = writer.commit(metrics={"skipped": 0, "duplicates": 0, "undecodable": model.undecodable,
                                         "subwords": model.has_subwords})
    return IngestResult(version.number, version.count, version.dim, 0, 0, time.perf_counter() - started,
                        version.source, "fasttext-bin", subwords=model.header.bucket if model.has_subwords else 0)


def _ingest_packaged(store, name, limit, started, progress) -> IngestResult:
    keys, matrix, path = packaged.load(name)
    if limit is not None:
        keys, matrix = keys[:limit], matrix[:limit]
    with store.new_version(kind="words", dim=matrix.shape[1], source=name, sha256=file_sha256(path),
                           format="packaged", config={"limit": limit}) as writer:
        step = 100_000
        with progress.task("ingest packaged GloVe 6B 50d", total=len(keys), unit="vectors") as task:
            for start in range(0, len(keys), step):
                unit, norms = unit_rows(np.asarray(matrix[start:start + step], dtype=np.float32))
                ranks = np.arange(start + 1, start + 1 + len(unit), dtype=np.int64)
                writer.append(unit, keys[start:start + step], norms, ranks)
                task.update(writer.count)
        version = writer.commit(metrics={"skipped": 0, "duplicates": 0})
    return IngestResult(version.number, version.count, version.dim, 0, 0,
                        time.perf_counter() - started, name, "packaged")


def prefetch(iterator, depth: int = 2):
    """Run `iterator` in a thread, `depth` items ahead, so that reading and parsing (which
    release the GIL) overlap with normalising and writing. Its exceptions come through."""
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for item in iterator:
                if not put(item):
                    return
            put(done)
        except BaseException as e:  # handed to the consumer, which re-raises it
            put(e)
        finally:
            if hasattr(iterator, "close"):
                iterator.close()

    thread = threading.Thread(target=produce, name="simdex-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


def unit_rows(rows: np.ndarray, in_place: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(rows / their norms, the norms), float32 like gensim; zero rows stay zero, never NaN.
    `in_place`: `rows` is the caller's to give up (a batch just read), so a writable float32
    array is divided where it lies instead of into a new one (a fresh array's page faults cost
    ten times the division)."""
    rows = np.asarray(rows, dtype=np.float32)
    if not (in_place and rows.flags.writeable and rows.flags.c_contiguous):
        rows = np.array(rows, dtype=np.float32, order="C")
    norms = np.sqrt(np.einsum("ij,ij->i", rows, rows))  # np.linalg.norm's value, without its n x d temporary
    np.divide(rows, norms[:, None], out=rows, where=norms[:, None] > 0)
    return rows, norms
