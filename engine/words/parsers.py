"""Reading vectors out of a `Source`, in batches of (keys, float32 rows, ranks).

Two readers for text, one for binary:

- `read_text_fast`: pyarrow's multithreaded CSV parser over 2 MiB blocks. It only accepts
  clean files (exactly a word and D values per line, finite
  numbers, valid UTF-8, a header that agrees) and raises `NeedsCarefulReader` at the first
  doubt, before anything is committed.
- `read_text_careful`: line by line in Python (slower, and exact about errors). It handles words
  containing spaces (the word is everything before the last D fields), and gives the exact
  line number and problem of a bad line, or skips it with `on_error="skip"`.
- `read_binary`: word2vec's binary records.

Ranks count the vectors of the source from 1, so a dropped duplicate or skipped line leaves a
gap. Every reader stops after `limit` vectors.
"""

from __future__ import annotations

import gzip
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field

import numpy as np

from ..errors import BadVectorFile
from .sources import Source

BATCH_BYTES = 2 << 20
BATCH_LINES = 5_000
_BINARY_BLOCK = 8 << 20
_THREADS = True
_ARCHIVE_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile, zipfile.BadZipFile, OSError)


class NeedsCarefulReader(Exception):
    """The fast reader met something it does not handle; the careful reader will explain."""


@dataclass
class VectorBatch:
    keys: list[str]
    rows: np.ndarray  # float32 (m, d), as read
    ranks: np.ndarray  # int64 (m,)


@dataclass
class ReadReport:
    """What a reader skipped (with on_error="skip"): line numbers, or vector numbers for binary."""
    skipped_at: list[int] = field(default_factory=list)
    unit: str = "line"

    def skip(self, at: int) -> None:
        self.skipped_at.append(at)

    @property
    def skipped(self) -> int:
        return len(self.skipped_at)

    @property
    def first_skipped(self) -> list[str]:
        return [f"{self.unit} {at}" for at in sorted(self.skipped_at)[:5]]


def read_vectors(source: Source, *, limit=None, on_error="fail", report=None, careful=False):
    """The reader a source needs, as an iterator of VectorBatch."""
    report = report if report is not None else ReadReport()
    if source.format == "word2vec-binary":
        return read_binary(source, limit=limit, on_error=on_error, report=report)
    if careful or on_error == "skip":
        return read_text_careful(source, limit=limit, on_error=on_error, report=report)
    return read_text_fast(source, limit=limit)


def read_text_fast(source: Source, *, limit=None):
    import pyarrow as pa
    import pyarrow.csv as pcsv

    dim = source.dim
    names = ["key"] + [f"v{i}" for i in range(dim)]
    stream, _ = source.open()
    rank = 0
    try:
        first = True
        tail = b""
        while limit is None or rank < limit:
            block = _read_block(stream)
            if block:
                data = tail + block
                cut = data.rfind(b"\n") + 1
                data, tail = data[:cut], data[cut:]
                if not data:
                    continue
            elif tail:
                data, tail = tail, b""
            else:
                break
            if first:
                first = False
                if source.has_header:
                    data = data.split(b"\n", 1)[1] if b"\n" in data else b""
                first_line = data.split(b"\n", 1)[0].rstrip(b"\r")
                padded = first_line.endswith(b" ")
                columns = names + (["pad"] if padded else [])
                types = {name: pa.float32() for name in names[1:]}
                types["key"] = pa.string()
                if padded:
                    types["pad"] = pa.string()
                read_options = pcsv.ReadOptions(column_names=columns, block_size=512 << 10, use_threads=_THREADS)
                parse_options = pcsv.ParseOptions(delimiter=" ", quote_char=False, escape_char=False,
                                                  double_quote=False, newlines_in_values=False)
                convert_options = pcsv.ConvertOptions(column_types=types, null_values=[],
                                                      strings_can_be_null=False,
                                                      quoted_strings_can_be_null=False)
            if not data.strip():
                continue
            try:
                table = pcsv.read_csv(pa.py_buffer(data), read_options, parse_options, convert_options)
            except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError) as e:
                raise NeedsCarefulReader(str(e)) from None
            m = table.num_rows
            if limit is not None:
                m = min(m, limit - rank)
            rows = np.empty((dim, m), dtype=np.float32)
            for j in range(dim):
                rows[j] = table.column(j + 1).slice(0, m).to_numpy()
            rows = np.ascontiguousarray(rows.T)
            keys = table.column(0).slice(0, m).to_pylist()
            if not np.isfinite(rows).all() or "" in keys:
                raise NeedsCarefulReader("a NaN, an infinity or an empty word")
            if padded and table.column(dim + 1).slice(0, m).to_pylist().count("") != m:
                raise NeedsCarefulReader("an extra field")
            yield VectorBatch(keys, rows, np.arange(rank + 1, rank + m + 1, dtype=np.int64))
            rank += m
        if source.header_count is not None and (limit is None or rank < limit) and rank != source.header_count:
            raise NeedsCarefulReader("the header count disagrees with the body")
    finally:
        stream.close()


def _read_block(stream) -> bytes:
    try:
        return stream.read(BATCH_BYTES)
    except _ARCHIVE_ERRORS as e:
        raise NeedsCarefulReader(f"archive error: {e}") from None


def read_text_careful(source: Source, *, limit=None, on_error="fail", report: ReadReport):
    """Line by line. The shape of each line is checked as it is read; its numbers are parsed
    a batch at a time (one numpy call), and only a batch that fails is parsed line by line
    to find the culprit, so errors still come in file order."""
    dim, label = source.dim, source.label
    stream, _ = source.open()
    pending: list[tuple[int, str, str]] = []  # (line number, word, its values as text)
    rank = 0  # vectors accepted
    seen = 0  # vector lines read: accepted, pending or skipped
    line_no = 0

    def bad(problem: str, at: int):
        if on_error != "skip":
            raise BadVectorFile(label, problem, line=at)
        report.skip(at)

    def flush():
        nonlocal rank
        if not pending:
            return None
        rows, finite = _parse_rows(" ".join(values for _, _, values in pending), len(pending), dim)
        if rows is None or not finite.all():
            good, good_rows = [], []
            for i, (at, _, values) in enumerate(pending):  # the culprits, in file order
                if rows is not None:
                    row, number_problem = rows[i], None if finite[i] else "NaN or infinite value"
                else:
                    row, number_problem = _parse_row(values.split())
                if number_problem:
                    bad(number_problem, at)
                else:
                    good.append(i)
                    good_rows.append(row)
            keys = [pending[i][1] for i in good]
            rows = np.array(good_rows, dtype=np.float32).reshape(-1, dim)
        else:
            keys = [key for _, key, _ in pending]
        pending.clear()
        if limit is not None:
            keys, rows = keys[:limit - rank], rows[:limit - rank]
        ranks = np.arange(rank + 1, rank + 1 + len(keys), dtype=np.int64)
        rank += len(keys)
        return VectorBatch(keys, rows, ranks) if keys else None

    def structural(problem: str, at: int):
        if on_error != "skip":
            flush()  # an earlier line's bad number is the first error
        bad(problem, at)

    try:
        lines = iter(stream)
        while True:
            if limit is not None and rank + len(pending) >= limit:
                batch = flush()
                if batch:
                    yield batch
                if rank >= limit:
                    break
            try:
                raw = next(lines)
            except StopIteration:
                break
            except _ARCHIVE_ERRORS as e:
                flush()
                raise BadVectorFile(label, f"truncated or corrupt {source.compression} data after "
                                           f"line {line_no} ({e})") from None
            line_no += 1
            if line_no == 1 and source.has_header or not raw.strip():
                continue  # the header, or a blank line
            seen += 1
            if source.header_count is not None and seen > source.header_count:
                flush()
                raise BadVectorFile(label, f"more vectors than the header's count of {source.header_count}",
                                    line=line_no)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                structural(f"undecodable bytes (not UTF-8) at column {e.start + 1}", line_no)
                continue
            text = text.rstrip()
            space = text.find(" ")
            if space > 0 and text.count(" ") == dim and "  " not in text and "\t" not in text:
                pending.append((line_no, text[:space], text[space + 1:]))  # the usual shape
            else:
                parts = text.rsplit(None, dim)  # words with spaces, tabs, runs of spaces
                if len(parts) != dim + 1 or _ends_with_number(parts[0]):
                    found = len(text.split()) - 1
                    structural(f"expected a word and {dim} values, found {found} value{'s' if found != 1 else ''}",
                               line_no)
                    continue
                pending.append((line_no, parts[0].lstrip(), " ".join(parts[1:])))
            if len(pending) >= BATCH_LINES:
                batch = flush()
                if batch:
                    yield batch
        batch = flush()
        if batch:
            yield batch
        if rank == 0 and report.skipped == 0:
            raise BadVectorFile(label, "no vectors in the file")
        if source.header_count is not None and limit is None and seen != source.header_count:
            raise BadVectorFile(label, f"the header says {source.header_count} vectors but the file holds {seen}")
    finally:
        stream.close()


def _parse_rows(values: str, n: int, dim: int):
    """(rows (n, dim), finite mask (n,)) from space-separated numbers, or (None, None) when
    they are not n * dim numbers (numpy's C parser: faster than a list of strings)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "could not be read to its end"
        try:
            flat = np.fromstring(values, dtype=np.float32, sep=" ")
        except ValueError:
            return None, None
    if flat.size != n * dim:
        return None, None
    rows = flat.reshape(n, dim)
    return rows, np.isfinite(rows).all(axis=1)


def _parse_row(fields: list[str]):
    """(row, None) or (None, the problem) for one line's value fields."""
    try:
        row = np.array(fields, dtype=np.float32)
    except ValueError:
        return None, f"non-numeric value {_first_non_number(fields)!r}"
    if not np.isfinite(row).all():
        return None, "NaN or infinite value"
    return row, None


def _ends_with_number(word: str) -> bool:
    """A word whose last space-separated piece is a number: the line has one value too many."""
    pieces = word.split()
    if len(pieces) < 2:
        return False
    try:
        float(pieces[-1])
    except ValueError:
        return False
    return True


def _first_non_number(fields: list[str]) -> str:
    for value in fields:
        try:
            float(value)
        except ValueError:
            return value
    return ""


def read_binary(source: Source, *, limit=None, on_error="fail", report: ReadReport):
    """word2vec binary: "N D\\n", then per vector the word, a space, D little-endian float32
    (and, usually, a newline). The file is read into one reused block; a loop in Python only
    finds each word's end, and numpy copies the batch's float records out of the block in one
    gather (into an array of the batch's own, normalised later where it lies). The batch's words
    are decoded and its numbers checked in one call each (a record-by-record error message only
    where a batch has a bad one)."""
    dim, count, label = source.dim, source.header_count, source.label
    report.unit = "vector"
    record_bytes = 4 * dim
    stream, _ = source.open()
    wanted = count if limit is None else min(count, limit)
    number = 0  # vectors cut so far

    def batch(words: list, rows: np.ndarray, first: int):
        finite = np.isfinite(rows).all(axis=1)
        keys = _decode_all(words)
        if keys is not None and finite.all() and all(keys):
            return VectorBatch(keys, rows, np.arange(first, first + len(words), dtype=np.int64))
        keys, kept, ranks = [], [], []
        for i, word_bytes in enumerate(words):  # the culprits, in file order
            try:
                word = bytes(word_bytes).decode("utf-8")
            except UnicodeDecodeError:
                word, problem = None, "the word is not valid UTF-8"
            else:
                problem = "NaN or infinite value" if not finite[i] else None if word else "empty word"
            if problem:
                if on_error != "skip":
                    raise BadVectorFile(label, f"vector {first + i}: {problem}")
                report.skip(first + i)
                continue
            keys.append(word)
            kept.append(i)
            ranks.append(first + i)
        return VectorBatch(keys, rows[kept], np.array(ranks, dtype=np.int64)) if keys else None

    block = bytearray(max(_BINARY_BLOCK, 2 * record_bytes))  # grown for a longer record
    filled = 0  # bytes of `block` holding data not yet cut
    try:
        stream.readline()  # the "N D" header
        while number < wanted:
            read = _read_binary_into(stream, memoryview(block)[filled:], label, number + 1)
            if not read:
                raise BadVectorFile(label, f"truncated: the header says {count} vectors, the file ends inside "
                                           f"vector {number + 1}")
            filled += read
            records = _records(block, filled, record_bytes)
            words, starts, position, first = [], [], 0, number + 1
            find = block.find
            while number < wanted:
                space = find(b" ", position, filled)
                end = space + 1 + record_bytes
                if space < 0 or end > filled:
                    break
                words.append(block[position:space].lstrip(b"\n\r"))
                starts.append(space + 1)
                position = end
                number += 1
                if len(words) >= BATCH_LINES:
                    found = batch(words, _gather(records, starts, dim), first)
                    if found:
                        yield found
                    words, starts, first = [], [], number + 1
            if words:
                found = batch(words, _gather(records, starts, dim), first)
                if found:
                    yield found
            del records  # the block's view: the block is written again below
            block[:filled - position] = block[position:filled]
            filled -= position
            if filled == len(block):  # one record longer than the block (a very long word)
                block += bytearray(len(block))
        if limit is None and (block[:filled].strip() or _read_binary_into(
                stream, memoryview(bytearray(1 << 16)), label, count)):
            raise BadVectorFile(label, f"more data after the {count} vectors the header announces")
    finally:
        stream.close()


def _records(block: bytearray, filled: int, record_bytes: int) -> np.ndarray:
    """A read-only (filled - record_bytes + 1, record_bytes) uint8 view of `block` whose row i is
    the record_bytes bytes from offset i: a batch's records are its rows at their offsets."""
    data = np.frombuffer(block, dtype=np.uint8, count=filled)
    if filled < record_bytes:
        return np.zeros((0, record_bytes), dtype=np.uint8)
    return np.lib.stride_tricks.as_strided(data, shape=(filled - record_bytes + 1, record_bytes),
                                           strides=(1, 1), writeable=False)


def _gather(records: np.ndarray, starts: list[int], dim: int) -> np.ndarray:
    """The float32 rows whose bytes begin at `starts`, copied out of the block in one call."""
    return records[np.array(starts, dtype=np.int64)].view("<f4").astype(np.float32, copy=False).reshape(-1, dim)


def _decode_all(words: list[bytes]) -> list[str] | None:
    """The words decoded from UTF-8 in one call, or None when one of them does not decode."""
    try:
        return b"\0".join(words).decode("utf-8").split("\0") if words else []
    except UnicodeDecodeError:
        return None


def _read_binary_into(stream, buffer: memoryview, label, number) -> int:
    """Fill `buffer` from the stream as far as it goes; the bytes read (0 at the end)."""
    try:
        total = 0
        while total < len(buffer):
            read = stream.readinto(buffer[total:])
            if not read:
                break
            total += read
        return total
    except _ARCHIVE_ERRORS as e:
        raise BadVectorFile(label, f"truncated or corrupt archive inside vector {number} ({e})") from None
    finally:
        buffer.release()
