"""Opening a vector file: compression (.gz, .bz2, .zip), format detection and the header.

A `Source` knows its path, compression, format, dimension and header count, and opens a fresh
binary stream of the decompressed bytes (positioned after any BOM) as often as asked. The
stream counts the bytes read from disk, for progress (the version's sha256 of the file is
computed by a thread of its own beside the reading: engine/words/ingest.py).
"""

from __future__ import annotations

import bz2
import gzip
import io
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..errors import BadVectorFile

VECTOR_FORMATS = ("glove", "word2vec", "word2vec-binary", "fasttext")
BOM = b"\xef\xbb\xbf"
_PEEK = 1 << 16


class CountingReader(io.RawIOBase):
    """Wraps the file on disk: counts the bytes that pass through (for progress)."""

    def __init__(self, raw):
        self.raw = raw
        self.bytes_read = 0

    def readable(self):
        return True

    def readinto(self, buffer):
        n = self.raw.readinto(buffer)
        if n:
            self.bytes_read += n
        return n

    def close(self):
        self.raw.close()
        super().close()


@dataclass
class Source:
    path: Path
    compression: str | None  # None, "gz", "bz2" or "zip"
    member: str | None  # the zip member read
    format: str
    dim: int
    header_count: int | None  # the N of an "N D" header line
    size: int  # bytes on disk, for progress
    counter: CountingReader | None = None  # of the stream opened last

    @property
    def has_header(self) -> bool:
        return self.format != "glove"

    @property
    def label(self) -> str:
        return f"{self.path}:{self.member}" if self.member else str(self.path)

    def open(self):
        """(decompressed binary stream, CountingReader of the file on disk, or of the zip member)."""
        if self.compression == "zip":
            # zipfile needs to seek, so count (for progress) the member's decompressed bytes
            counter = CountingReader(zipfile.ZipFile(self.path).open(self.member))
            stream = io.BufferedReader(counter, 1 << 20)
            if stream.peek(3)[:3] == BOM:
                stream.read(3)
            self.counter = counter
            return stream, counter
        counter = CountingReader(open(self.path, "rb"))
        if self.compression == "gz":
            stream = gzip.GzipFile(fileobj=io.BufferedReader(counter, 1 << 20))
        elif self.compression == "bz2":
            stream = bz2.BZ2File(io.BufferedReader(counter, 1 << 20))
        else:
            stream = io.BufferedReader(counter, 1 << 20)
        if stream.peek(3)[:3] == BOM:
            stream.read(3)
        self.counter = counter
        return stream, counter


def open_source(path, format: str = "auto", member: str | None = None) -> Source:
    """Check that `path` is a readable vector file and work out how to read it."""
    path = Path(path)
    if not path.exists():
        raise BadVectorFile(path, "no such file")
    if path.is_dir():
        raise BadVectorFile(path, "is a directory, not a vector file")
    if format != "auto" and format not in VECTOR_FORMATS:
        raise BadVectorFile(path, f"unknown format {format!r} (use auto, {', '.join(VECTOR_FORMATS)})")
    size = path.stat().st_size
    if size == 0:
        raise BadVectorFile(path, "empty file")
    with open(path, "rb") as f:
        magic = f.read(4)
    compression = _compression_of(magic)
    if compression == "zip":
        member = _zip_member(path, member)
        with zipfile.ZipFile(path) as archive:
            size = archive.getinfo(member).file_size
    elif member is not None:
        raise BadVectorFile(path, "--member is only for .zip archives")
    source = Source(path, compression, member, "glove", 0, None, size)
    head = _peek(source)
    if not head.strip():
        raise BadVectorFile(source.label, "empty file (no vectors)")
    first_line = head.split(b"\n", 1)[0].strip()
    header = _parse_header(first_line)
    if format == "auto":
        if header is None:
            format = "glove"
        else:
            format = _text_or_binary(head, header[1])
            if format == "word2vec" and path.name.removesuffix(f".{compression}").endswith(".vec"):
                format = "fasttext"
    elif format != "glove" and header is None:
        raise BadVectorFile(source.label, f"the {format} format starts with a 'COUNT DIM' header line, "
                                          f"found {first_line[:60]!r}", line=1)
    source.format = format
    if format == "glove":
        source.dim = _glove_dim(head, source.label)
    else:
        source.header_count, source.dim = header
        if source.dim < 1:
            raise BadVectorFile(source.label, f"header gives dimension {source.dim}", line=1)
    return source


def _compression_of(magic: bytes) -> str | None:
    if magic[:2] == b"\x1f\x8b":
        return "gz"
    if magic[:3] == b"BZh":
        return "bz2"
    if magic[:4] == b"PK\x03\x04":
        return "zip"
    return None


def _zip_member(path: Path, member: str | None) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = [info.filename for info in archive.infolist() if not info.is_dir()]
    except zipfile.BadZipFile as e:
        raise BadVectorFile(path, f"truncated or corrupt zip archive ({e})") from None
    if member is not None:
        if member not in names:
            raise BadVectorFile(path, f"no member {member!r} in the archive (members: {', '.join(names)})")
        return member
    candidates = [n for n in names if not n.endswith((".md", ".txt.md", "/", ".json", ".html"))] or names
    if len(candidates) != 1:
        raise BadVectorFile(path, f"the archive holds {len(candidates)} files; pick one with --member "
                                  f"({', '.join(candidates[:10])})")
    return candidates[0]


def _peek(source: Source) -> bytes:
    stream, _ = source.open()
    try:
        return stream.read(_PEEK)
    except (EOFError, OSError, zipfile.BadZipFile) as e:
        raise BadVectorFile(source.label, f"truncated or corrupt {source.compression} data ({e})") from None
    finally:
        stream.close()


def _parse_header(line: bytes) -> tuple[int, int] | None:
    parts = line.split()
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        return int(parts[0]), int(parts[1])
    return None


def _text_or_binary(head: bytes, dim: int) -> str:
    """After an "N D" header: text if the next line is UTF-8 ending in numbers, else binary.

    (A line with the wrong number of values is still text: the reader then says which line.)"""
    body = head.split(b"\n", 1)[1] if b"\n" in head else b""
    if not body:
        return "word2vec"
    line = body.split(b"\n", 1)[0]
    try:
        fields = line.decode("utf-8").split()
    except UnicodeDecodeError:
        return "word2vec-binary"
    tail = fields[-min(dim, len(fields) - 1):] if len(fields) >= 2 else []
    try:
        for value in tail:
            float(value)
    except ValueError:
        return "word2vec-binary"
    return "word2vec" if tail else "word2vec-binary"


def _glove_dim(head: bytes, label: str) -> int:
    """The most common number of fields minus one over the first lines (a word may hold spaces)."""
    lines = [line for line in head.split(b"\n")[:200] if line.strip()]
    if len(lines) > 1 and not head.endswith(b"\n"):
        lines = lines[:-1]  # the last one may be cut by the peek
    counts = Counter(len(line.split()) - 1 for line in lines)
    dim = counts.most_common(1)[0][0]
    if dim < 1:
        raise BadVectorFile(label, "the first line holds a word and no values", line=1)
    return dim
