"""`simdex encode`: texts into a sentence store, streamed, deduplicated, resumable.

The input is read a window of texts at a time. Each text is identified by its content hash:
one already in the store (or staged by an interrupted run) is not encoded again, one repeated
inside the input is stored once, and both are counted. New texts are tokenized once per window,
encoded in batches sorted by token count (engine/encoder.py) and written as they are made.
Memory holds one window, never the corpus.

Every `stage_rows` new rows are committed as a staged segment (engine/writer.stage_segment),
so an interrupted encode (Ctrl-C, a kill) loses at most that much work; the current version
is untouched and answering meanwhile. The next run with the same settings on the same version
resumes: the staged rows count as done. At the end one short transaction makes the new
version: the parent's segments (reused, not copied) plus the staged ones.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..backends.local import LocalStore, text_hash
from ..backends.writer import stage_segment
from ..errors import BadInput, BadOption, WrongKind, check_positive
from ..progress import SILENT, Progress
from .texts import TextReport, read_texts

WINDOW = 4096  # texts read, deduplicated and tokenized together
STAGE_ROWS = 20_000  # new rows committed together


@dataclass
class EncodeResult:
    version: int | None  # the version made, or the current one when nothing was new
    added: int  # texts encoded and stored by this run
    duplicates: int  # texts already stored, or repeated in the input
    skipped: int  # empty texts
    truncated: int  # texts cut to the maximum length
    count: int  # texts in the version
    dim: int
    seconds: float  # first text read to last row committed (model loading excluded)
    load_seconds: float
    resumed: int = 0  # rows an interrupted run had committed, taken in by this one
    parent: int | None = None
    index: object = None  # what became of the store's index (indexes.follow.IndexFollow), if it has one

    JSON_FIELDS = ("version", "added", "duplicates", "skipped", "truncated", "count", "dim", "seconds",
                   "load_seconds", "resumed", "parent")


def encode_input(store, path: str, *, model: str | None = None, pooling: str | None = None,
                 max_length: int | None = None, quantize: str | None = None, device: str | None = None,
                 column: str | None = None, id_column: str | None = None, fields=None,
                 batch_size: int | None = None, progress: Progress = SILENT, stdin=None,
                 stage_rows: int = STAGE_ROWS) -> EncodeResult:
    """Encode the texts of `path` (`-`: stdin) into a new version of a sentence store; `fields`
    ("source,label,year:int", or a list) names the input's columns to keep with each text."""
    check_positive("--max-length", max_length)
    check_positive("--batch-size", batch_size)
    if not isinstance(store, LocalStore):
        return _encode_through_local(store, path, model=model, pooling=pooling, max_length=max_length,
                                     quantize=quantize, device=device, column=column, id_column=id_column,
                                     fields=fields, batch_size=batch_size, progress=progress, stdin=stdin)
    parent = store.version if store.versions() else None
    if parent is not None and parent.kind != "sentences":
        raise WrongKind(f"{store.location}: this store holds words; encode sentences into a store of their own "
                        f"(for example `--store sentences`)")
    loaded = time.perf_counter()
    encoder = _encoder_for(store, parent, model, pooling, max_length, quantize, device)
    encoder.batch_size = batch_size
    settings = encoder.settings()  # hashes the weights: part of loading
    load_seconds = time.perf_counter() - loaded
    started = time.perf_counter()
    report = TextReport()
    declared = declared_fields(fields, parent)
    records = read_texts(path, column=column, id_column=id_column, report=report, stdin=stdin, fields=list(declared))
    windows = _windows(records, min(WINDOW, stage_rows))
    first_window = next(windows, [])
    kinds = {name: kind or infer_kind([record[3][name] for record in first_window])
             for name, kind in declared.items()}
    if encoder.quantize == "int8" and encoder.runtime is None:
        # a new int8 store: its model is quantised for its first texts (model preparation, so
        # timed as loading)
        calibrating = time.perf_counter()
        encoder.calibrate([record[1] for record in first_window], store.models_directory())
        settings = encoder.settings()
        load_seconds += time.perf_counter() - calibrating
        started += time.perf_counter() - calibrating
    job = hashlib.sha256(json.dumps([settings, parent and parent.version, kinds],
                                    sort_keys=True).encode()).hexdigest()[:16]
    store.drop_staged(keep_job=job)
    staged = [segment.id for segment in store.staged_segments(job)]
    resumed = sum(segment.count for segment in store.staged_segments(job))
    parent_segments = store.segments() if parent is not None else []
    counts = {"added": 0, "duplicates": 0, "truncated": 0}
    pending = _Pending()
    store.forget_seen()
    total_lines = _count_lines(path) if path != "-" else None
    done_lines = 0
    with progress.task(f"encode {path}", total=total_lines, unit="lines") as task:
        for window in itertools.chain([first_window] if first_window else [], windows):
            done_lines = window[-1][0]
            fresh = _new_texts(store, window, parent_segments, store.staged_segments(job), counts)
            if fresh and kinds:
                fresh = [(number, text, external_id, typed(path, number, values, kinds), digest)
                         for number, text, external_id, values, digest in fresh]
            if fresh:
                texts = [record[1] for record in fresh]
                ids, truncated = encoder.tokenize(texts)
                unit, norms = encoder.encode_ids(ids, with_norms=True)
                counts["truncated"] += truncated
                counts["added"] += len(fresh)
                pending.add(unit, norms, fresh)
                if len(pending) >= stage_rows:
                    staged.append(pending.stage(store, job, kinds))
            task.update(done_lines, texts=counts["added"])
    if len(pending):
        staged.append(pending.stage(store, job, kinds))
    version = parent.version if parent else None
    count = parent.count if parent else 0
    if staged:
        source = "stdin" if path == "-" else str(Path(path).resolve())
        with store.new_version(kind="sentences", dim=encoder.dim, source=source, format="sentences",
                               parent=parent and parent.version,
                               config={**settings, **({"fields": kinds} if kinds else {})}) as writer:
            writer.reuse(parent_segments + store.staged_segments(job))
            made = writer.commit(metrics={"added": counts["added"] + resumed, "resumed": resumed,
                                          "duplicates": counts["duplicates"], "skipped": report.skipped_empty,
                                          "truncated": counts["truncated"]}, unstage=staged)
        version, count = made.version, made.count
    from ...indexes.follow import keep_in_step

    return EncodeResult(version, counts["added"], counts["duplicates"], report.skipped_empty, counts["truncated"],
                        count, encoder.dim, time.perf_counter() - started, load_seconds, resumed,
                        parent and parent.version, keep_in_step(store))


def _encode_through_local(store, path: str, **options) -> EncodeResult:
    """Encode into a store without a folder of its own (Milvus): in a temporary local store that
    starts from the current version (so stored texts are not encoded again), whose result is
    then copied over as the new version. An interrupted run starts again from the beginning."""
    import tempfile

    from ..backends.transfer import copy_version

    if options.get("quantize") == "int8" or (store.versions() and store.version.config.get("quantize") == "int8"):
        raise BadOption(f"{store.location}: --quantize int8 keeps its quantised model in a local store's folder; "
                        f"encode into a local store and `simdex push` it")
    parent = store.version if store.versions() else None
    with tempfile.TemporaryDirectory(prefix="simdex-encode-") as tmp:
        local = LocalStore.create(Path(tmp) / "store")
        if parent is not None:
            copy_version(store, local)
        result = encode_input(local, path, **options)
        if parent is not None:
            result.parent = parent.version
        if result.added or parent is None:
            result.version = copy_version(local, store, parent=result.parent).version
        else:
            result.version = parent.version
    return result


def _encoder_for(store, parent, model, pooling, max_length, quantize, device):
    """A new store's encoder as asked; an existing store's as it recorded (a different model
    or setting would put new rows in another vector space, so it is refused)."""
    from .model import Encoder, resolve_model

    if parent is None:
        return Encoder.load(model, pooling=pooling, max_length=max_length, quantize=quantize or "none",
                            device=device)
    recorded = parent.config
    asked = {"model": resolve_model(model).label if model else None, "pooling": pooling,
             "max_length": max_length, "quantize": quantize}
    for name, value in asked.items():
        if value is not None and value != recorded.get(name):
            raise BadOption(f"this store holds texts encoded with {name} {recorded.get(name)!r}, not {value!r}; "
                            f"encode into another store (--store NAME), or leave the option out")
    return Encoder.for_settings(recorded, device=device, store=store)


FIELD_KINDS = {"int": "integer", "integer": "integer", "float": "real", "real": "real", "text": "text",
               "str": "text"}


def declared_fields(fields, parent) -> dict[str, str | None]:
    """{name: kind, or None to infer it} from --fields ("source,label,year:int" or a list); a
    store that keeps fields keeps the same ones in every later encode."""
    from .where import FIELD_NAME

    if isinstance(fields, str):
        fields = [part.strip() for part in fields.split(",") if part.strip()]
    declared = {}
    for spec in fields or []:
        name, _, kind = spec.partition(":")
        if not FIELD_NAME.fullmatch(name):
            raise BadOption(f"--fields: {name!r} is not a field name (letters, digits and _)")
        if kind and kind not in FIELD_KINDS:
            raise BadOption(f"--fields: {spec!r}: the type is int, float or text")
        declared[name] = FIELD_KINDS.get(kind)
    kept = (parent.config.get("fields") or {}) if parent else {}
    if kept:
        if declared and (set(declared) != set(kept) or any(k and k != kept[n] for n, k in declared.items())):
            raise BadOption(f"this store keeps the fields {', '.join(f'{n}:{k}' for n, k in kept.items())}; encode "
                            f"with the same --fields (or none: they are read from the input)")
        return dict(kept)
    return declared


def infer_kind(values) -> str:
    """integer, real or text: what every non-empty value of a field's first rows reads as."""
    present = [v for v in values if v is not None and v != ""]
    for kind, convert in (("integer", int), ("real", float)):
        try:
            for value in present:
                if isinstance(value, bool) or (kind == "integer" and isinstance(value, float)):
                    raise ValueError
                convert(value)
            return kind if present else "text"
        except (TypeError, ValueError):
            continue
    return "text"


def typed(path, line: int, values: dict, kinds: dict) -> dict:
    """A record's field values as their kinds (an empty value: NULL); BadInput names the line."""
    out = {}
    for name, kind in kinds.items():
        value = values.get(name)
        if value is None or value == "":
            out[name] = None
            continue
        try:
            if kind == "integer":
                if isinstance(value, float) and not value.is_integer():
                    raise ValueError
                out[name] = int(value)
            else:
                out[name] = float(value) if kind == "real" else str(value)
        except (TypeError, ValueError):
            wanted = "an integer" if kind == "integer" else "a number"
            raise BadInput(path, f"field {name!r}: {value!r} is not {wanted} (declare it text: --fields "
                                 f"{name}:text)", line=line) from None
    return out


def _windows(records, size):
    window = []
    for record in records:
        window.append(record)
        if len(window) >= size:
            yield window
            window = []
    if window:
        yield window


def _new_texts(store, window, stored_segments, staged_segments, counts) -> list[tuple]:
    """The records of `window` whose text is neither stored, nor staged by an interrupted run
    (done already), nor seen before in this input."""
    hashes = [text_hash(record[1]) for record in window]
    stored = store.rows_with_hashes(hashes, stored_segments) if stored_segments else {}
    staged = store.rows_with_hashes(hashes, staged_segments) if staged_segments else {}
    first = store.first_sightings(hashes)
    fresh = []
    for record, digest, is_first in zip(window, hashes, first):
        if digest in stored or (not is_first and digest not in staged):
            counts["duplicates"] += 1
        elif digest not in staged:
            fresh.append((*record, digest))
    return fresh


class _Pending:
    """New rows waiting to be staged: vectors, norms, and records (line, text, id, fields, hash)."""

    def __init__(self):
        self.unit, self.norms, self.records = [], [], []

    def __len__(self) -> int:
        return len(self.records)

    def add(self, unit, norms, records) -> None:
        self.unit.append(unit)
        self.norms.append(norms)
        self.records += records

    def stage(self, store, job, kinds: dict) -> int:
        number = stage_segment(store, job, kind="sentences", unit_rows=np.concatenate(self.unit),
                               norms=np.concatenate(self.norms), keys=[r[1] for r in self.records],
                               ranks=[r[0] for r in self.records], hashes=[r[4] for r in self.records],
                               external_ids=[r[2] for r in self.records],
                               fields=(kinds, [r[3] for r in self.records]) if kinds else None)
        self.unit, self.norms, self.records = [], [], []
        return number


def _count_lines(path) -> int | None:
    """Lines in the file (for the ETA): a quick pass over its bytes."""
    import gzip

    try:
        with open(path, "rb") as f:
            stream = gzip.GzipFile(fileobj=f) if f.peek(2)[:2] == b"\x1f\x8b" else f
            return sum(chunk.count(b"\n") for chunk in iter(lambda: stream.read(1 << 22), b""))
    except (OSError, EOFError):
        return None
