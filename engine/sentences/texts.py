"""Reading texts to encode: one per line (.txt), a column of a .csv / .tsv, a field of a .jsonl;
plain or .gz; `-` for standard input. A stream, never the whole file in memory.

Each record is (line number, text, external id or None). Surrounding whitespace is stripped;
empty texts are skipped and counted. Undecodable bytes, a missing column or field and a line
that is not JSON are a BadInput naming the file and the line.
"""

from __future__ import annotations

import csv
import gzip
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import BadInput

DEFAULT_COLUMN = "text"


@dataclass
class TextReport:
    skipped_empty: int = 0


def input_format(path: str) -> str:
    """The format a file name says (`-` is text, one per line)."""
    if path == "-":
        return "txt"
    name = Path(path).name.lower().removesuffix(".gz")
    for fmt, suffixes in (("csv", (".csv",)), ("tsv", (".tsv", ".tab")), ("jsonl", (".jsonl", ".ndjson"))):
        if name.endswith(suffixes):
            return fmt
    return "txt"


def read_texts(path: str, *, column: str | None = None, id_column: str | None = None, report: TextReport,
               stdin=None, keep_empty: bool = False, id_option: str = "--id-column",
               column_option: str = "--column", fields=()):
    """Iterate over (line number, text, external id, {field: raw value}) of `path` (`id_option`:
    what the id column is called in messages; `keep_empty`: yield empty texts too; `fields`:
    the other columns to keep with each text)."""
    fmt = input_format(path)
    if fmt == "txt" and (column or id_column or fields):
        raise BadInput(path, "--column, --id-column and --fields are for .csv, .tsv and .jsonl inputs, not plain text")
    lines = _decoded_lines(path, stdin)
    if fmt == "txt":
        records = ((number, line.rstrip("\r\n"), None, {}) for number, line in lines)
    elif fmt == "jsonl":
        records = _jsonl(path, lines, column or DEFAULT_COLUMN, id_column, id_option, column_option, fields)
    else:
        records = _delimited(path, lines, "," if fmt == "csv" else "\t", column, id_column, id_option,
                             column_option, fields)
    for number, text, external_id, values in records:
        text = text.strip()
        if not text and not keep_empty:
            report.skipped_empty += 1
            continue
        yield number, text, external_id, values


def _decoded_lines(path: str, stdin):
    """(line number, text) of the input's lines, decoded as UTF-8 line by line (so that an
    undecodable byte names its line)."""
    if path == "-":
        raw = (stdin or sys.stdin.buffer)
        close = False
    else:
        file = Path(path)
        if not file.exists():
            raise BadInput(path, "no such file")
        if file.is_dir():
            raise BadInput(path, "is a directory")
        raw = open(file, "rb")
        if raw.peek(2)[:2] == b"\x1f\x8b":
            raw = gzip.GzipFile(fileobj=raw)
        close = True
    try:
        for number, line in enumerate(_lines_of(raw, path), 1):
            if number == 1 and line.startswith(b"\xef\xbb\xbf"):
                line = line[3:]
            try:
                yield number, line.decode("utf-8")
            except UnicodeDecodeError as e:
                raise BadInput(path, f"undecodable bytes (not UTF-8) at column {e.start + 1}", line=number) from None
    finally:
        if close:
            raw.close()


def _lines_of(raw, path):
    try:
        yield from raw
    except (EOFError, OSError, gzip.BadGzipFile) as e:
        raise BadInput(path, f"truncated or corrupt gzip data ({e})") from None


def _jsonl(path, lines, field, id_field, id_option, column_option, fields=()):
    for number, line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise BadInput(path, f"not a JSON object ({e.msg})", line=number) from None
        if not isinstance(record, dict):
            raise BadInput(path, "not a JSON object", line=number)
        if field not in record:
            raise BadInput(path, f"no field {field!r} (fields: {', '.join(map(str, record)) or 'none'}; "
                                 f"pick one with {column_option})", line=number)
        if id_field is not None and id_field not in record:
            raise BadInput(path, f"no field {id_field!r} for {id_option}", line=number)
        text = record[field]
        if text is not None and not isinstance(text, str):
            raise BadInput(path, f"field {field!r} is not a string", line=number)
        missing = [name for name in fields if name not in record]
        if missing:
            raise BadInput(path, f"no field {missing[0]!r} for --fields", line=number)
        yield (number, text or "", None if id_field is None else str(record[id_field]),
               {name: record[name] for name in fields})


def _delimited(path, lines, delimiter, column, id_column, id_option, column_option, fields=()):
    numbered = _Numbered(lines)
    reader = csv.reader(numbered, delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as e:
        raise BadInput(path, f"malformed header ({e})", line=1) from None
    header = [name.strip() for name in header]
    wanted = column or (DEFAULT_COLUMN if DEFAULT_COLUMN in header else header[0] if len(header) == 1 else None)
    if wanted is None or wanted not in header:
        what = f"no column {wanted!r}" if wanted else "several columns and none named 'text'"
        raise BadInput(path, f"{what} (columns: {', '.join(header)}; pick one with {column_option})", line=1)
    if id_column is not None and id_column not in header:
        raise BadInput(path, f"no column {id_column!r} for {id_option} (columns: {', '.join(header)})", line=1)
    missing = [name for name in fields if name not in header]
    if missing:
        raise BadInput(path, f"no column {missing[0]!r} for --fields (columns: {', '.join(header)})", line=1)
    at, id_at = header.index(wanted), None if id_column is None else header.index(id_column)
    field_at = [(name, header.index(name)) for name in fields]
    while True:
        first = numbered.number + 1  # a quoted field may run over several lines
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise BadInput(path, f"malformed row ({e})", line=numbered.number) from None
        if not row:
            continue
        if len(row) != len(header):
            raise BadInput(path, f"{len(row)} fields where the header has {len(header)}", line=first)
        yield first, row[at], None if id_at is None else row[id_at], {name: row[i] for name, i in field_at}


class _Numbered:
    """Feeds decoded lines to csv.reader, counting them."""

    def __init__(self, lines):
        self.lines = lines
        self.number = 0

    def __iter__(self):
        return self

    def __next__(self):
        self.number, line = next(self.lines)
        return line
