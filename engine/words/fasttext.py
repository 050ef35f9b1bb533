"""Facebook fastText binary models (`.bin`): their word vectors, and their subwords for words they
never saw.

    model = read_model("cc.en.300.bin")          # the header and the dictionary; the matrix stays on disk
    for batch in model.word_vectors():           # streamed: the bucket rows are summed a chunk at a time
        ...
    vector = subword_vector("excelent", buckets, minn=3, maxn=6)   # a word outside the vocabulary

The format is fastText's `save_model`: (new layout) the magic number 793712314 and a version
(11 or 12), then the arguments (dim, ws, epoch, minCount, neg, wordNgrams, loss, model, bucket,
minn, maxn, lrUpdateRate as int32, t as a double); the old layout has no magic and no version
and begins at dim. Then the dictionary (size, nwords, nlabels as int32, ntokens and, in the new
layout, pruneidx_size as int64; each entry a NUL-terminated UTF-8 word, an int64 count and an
int8 type, 0 word, 1 label; then the pruned-index pairs), a byte saying whether the input
matrix is quantised (new layout), and the input matrix: int64 rows (nwords + bucket), int64
columns (dim), then the float32 rows: the words', then the n-gram buckets'.

A word's vector is fastText's `get_word_vector`: the mean of its own row and the rows of its
character n-grams, the n-grams of `<word>` from minn to maxn characters (whole UTF-8
characters; a single character at either end left out), each hashed with 32-bit FNV-1a over its
bytes read as signed chars, modulo the bucket count. A word outside the vocabulary gets the mean
of its n-gram rows alone (a zero vector if it has none).

Reading streams the file: the word rows are read, then the bucket rows pass a chunk at a time,
each added to the words whose n-grams hash to it, while the kernel copies the bucket rows as they
are into the store's file (`MatrixWriter.append_from_file`). Memory holds the word rows and the
(word, bucket) pairs, never the bucket matrix; no second copy is made of it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import BadVectorFile

MAGIC = 793712314
VERSIONS = (11, 12)
EOS = "</s>"
HASH = "fasttext-fnv1a-32"  # what a version records as the n-grams' hash
_ARGS_NEW = struct.Struct("<12id")  # dim ... lrUpdateRate, t
_ARGS_OLD = struct.Struct("<10id")  # epoch ... lrUpdateRate, t (dim and ws come first, in place of magic and version)
CHUNK_ROWS = 1 << 16  # bucket rows read at a time


@dataclass
class Header:
    version: int | None  # None: the old layout
    dim: int
    ws: int
    epoch: int
    min_count: int
    neg: int
    word_ngrams: int
    loss: int
    model: int  # 1 cbow, 2 skipgram, 3 supervised
    bucket: int
    minn: int
    maxn: int
    lr_update_rate: int
    t: float


@dataclass
class Model:
    path: Path
    header: Header
    words: list[str]  # the vocabulary's words (labels left out), in file order
    raw_words: list[bytes]  # the same, as the file has them (what the n-grams are hashed from)
    counts: np.ndarray
    nwords: int
    nlabels: int
    ntokens: int
    matrix_offset: int  # where the input matrix's floats begin
    rows: int  # the input matrix's rows: nwords + bucket
    size: int  # bytes on disk
    undecodable: int = 0  # words that were not UTF-8, keyed with backslash escapes (as gensim keys them)

    @property
    def dim(self) -> int:
        return self.header.dim

    @property
    def has_subwords(self) -> bool:
        return self.header.maxn > 0 and self.header.bucket > 0

    def word_vectors(self, progress_task=None, batch: int = 50_000):
        """Yield (words, vectors float32, ranks) in file order, batch by batch. The bucket rows are
        read a chunk at a time (one reused buffer), each chunk's rows summed into the words whose
        n-grams hash to them; the store keeps the buckets by `buckets_offset` (a copy file to file)."""
        dim, nwords = self.dim, self.nwords
        sums = np.empty((nwords, dim), dtype=np.float32)
        with open(self.path, "rb") as f:
            f.seek(self.matrix_offset)
            _read_rows(f, sums, self.label, "the word rows")
            if progress_task is not None:
                progress_task.update(self.matrix_offset + nwords * dim * 4)
            if self.has_subwords:
                words_of, buckets_of, counts = _pairs(self.raw_words, self.header.minn, self.header.maxn,
                                                      self.header.bucket)
                # pairs in chunk order, and by word within a chunk (see _add_rows)
                chunk_of = buckets_of // CHUNK_ROWS
                order = np.lexsort((words_of, chunk_of))
                words_of, buckets_of = words_of[order], buckets_of[order]
                bounds = np.searchsorted(chunk_of[order], np.arange(self.header.bucket // CHUNK_ROWS + 2))
                chunk = np.empty((CHUNK_ROWS, dim), dtype=np.float32)
                for number, start in enumerate(range(0, self.header.bucket, CHUNK_ROWS)):
                    rows = chunk[:min(CHUNK_ROWS, self.header.bucket - start)]
                    _read_rows(f, rows, self.label, "the n-gram rows")
                    lo, hi = bounds[number], bounds[number + 1]
                    _add_rows(sums, words_of[lo:hi], rows, buckets_of[lo:hi] - start)
                    if progress_task is not None:
                        progress_task.update(self.matrix_offset + (nwords + start + len(rows)) * dim * 4)
                sums /= (1 + counts)[:, None].astype(np.float32)  # fastText: the mean of the word's subwords
        for start in range(0, nwords, batch):
            end = min(nwords, start + batch)
            yield self.words[start:end], sums[start:end], np.arange(start + 1, end + 1, dtype=np.int64)

    @property
    def buckets_offset(self) -> int:
        """Where the n-gram bucket rows begin in the file (after the word rows)."""
        return self.matrix_offset + self.nwords * self.dim * 4

    @property
    def label(self) -> str:
        return str(self.path)

    def config(self) -> dict:
        """What a version records of the model's subwords (its file is added by the writer)."""
        h = self.header
        return {"minn": h.minn, "maxn": h.maxn, "bucket": h.bucket, "hash": HASH, "dim": h.dim,
                "fasttext": {"version": h.version, "model": {1: "cbow", 2: "skipgram", 3: "supervised"}.get(h.model),
                             "nwords": self.nwords, "nlabels": self.nlabels, "ntokens": self.ntokens}}


def is_fasttext_bin(path) -> bool:
    """Whether `path` begins as a fastText model of the new layout (its magic number)."""
    with open(path, "rb") as f:
        head = f.read(8)
    return len(head) == 8 and struct.unpack("<i", head[:4])[0] == MAGIC


def read_model(path) -> Model:
    """The header and dictionary of a fastText .bin, checked against the file's size; raises
    BadVectorFile naming the file (truncated, not a fastText model, quantised, inconsistent)."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        reader = _Reader(f, path)
        first, second = struct.unpack("<ii", reader.take(8, "the header"))
        if first == MAGIC:
            if second not in VERSIONS:
                raise BadVectorFile(path, f"fastText model version {second}; simdex reads versions "
                                          f"{', '.join(map(str, VERSIONS))}")
            values = _ARGS_NEW.unpack(reader.take(_ARGS_NEW.size, "the header"))
            header = Header(second, *values)
        else:
            if not (1 <= first <= 100_000 and 0 <= second <= 10_000):
                raise BadVectorFile(path, f"not a fastText model: magic number {first}, expected {MAGIC} (or an "
                                          f"old model's header)")
            header = Header(None, first, second, *_ARGS_OLD.unpack(reader.take(_ARGS_OLD.size, "the header")))
        if header.version == 11 and header.model == 3:
            header.maxn = 0  # fastText: old supervised models do not use character n-grams
        _check_header(header, path)
        size_, nwords, nlabels = struct.unpack("<iii", reader.take(12, "the dictionary"))
        (ntokens,) = struct.unpack("<q", reader.take(8, "the dictionary"))
        prune = struct.unpack("<q", reader.take(8, "the dictionary"))[0] if header.version else -1
        if not (0 <= nwords <= size_ and nwords + nlabels == size_):
            raise BadVectorFile(path, f"the dictionary holds {size_:,} entries but says {nwords:,} words and "
                                      f"{nlabels:,} labels")
        words, raw, counts, undecodable = reader.dictionary(size_, nwords)
        reader.take(max(prune, 0) * 8, "the dictionary's pruned index")
        if header.version:
            (quantised,) = struct.unpack("<?", reader.take(1, "the input matrix"))
            if quantised:
                raise BadVectorFile(path, "a quantised model (.ftz, `fasttext quantize`): simdex reads the full "
                                          ".bin model; use the one it was quantised from")
        if prune > 0:
            raise BadVectorFile(path, "a pruned model (its n-grams were cut by `fasttext quantize`): only full "
                                      "models are read")
        if prune == 0:
            header.maxn = 0  # pruned to nothing: no subwords
        rows, cols = struct.unpack("<qq", reader.take(16, "the input matrix"))
        offset = reader.position
    if cols != header.dim or rows != nwords + header.bucket:
        raise BadVectorFile(path, f"the input matrix is {rows:,} x {cols:,}, but the header says {nwords:,} words + "
                                  f"{header.bucket:,} buckets of dimension {header.dim}")
    if offset + rows * cols * 4 > size:
        raise BadVectorFile(path, f"truncated: the input matrix needs {rows * cols * 4:,} bytes after byte "
                                  f"{offset:,}, the file has {size - offset:,}")
    return Model(path, header, words, raw, counts, nwords, nlabels, ntokens, offset, rows, size, undecodable)


def _check_header(header: Header, path) -> None:
    if not 1 <= header.dim <= 100_000:
        raise BadVectorFile(path, f"the header gives dimension {header.dim}")
    if header.bucket < 0 or header.minn < 0 or header.maxn < 0 or (header.maxn and header.minn > header.maxn):
        raise BadVectorFile(path, f"the header gives bucket {header.bucket}, minn {header.minn}, maxn {header.maxn}")


class _Reader:
    """The header and dictionary, read from a buffered file with exact errors for a short file."""

    def __init__(self, f, path: Path):
        self.f, self.path, self.position = f, path, 0

    def take(self, n: int, what: str) -> bytes:
        data = self.f.read(n)
        if len(data) < n:
            raise BadVectorFile(self.path, f"truncated in {what} (at byte {self.position + len(data):,})")
        self.position += n
        return data

    def dictionary(self, size: int, nwords: int):
        """(the words, as text and as bytes, their counts, how many were not UTF-8): the entries
        of type 0; labels, type 1, are left out. A word that is not UTF-8 (a model trained on
        text in another encoding) is keyed with backslash escapes, as gensim keys it, and its
        n-grams still come from its bytes, as fastText's do."""
        words, raw_words, counts, undecodable = [], [], [], 0
        buffer, at = b"", 0
        for i in range(size):
            end = buffer.find(b"\0", at)
            while end < 0 or len(buffer) < end + 10:
                more = self.f.read(1 << 20)
                if not more:
                    raise BadVectorFile(self.path, f"truncated in the dictionary (entry {i + 1:,} of {size:,})")
                buffer = buffer[at:] + more
                self.position += at
                at = 0
                end = buffer.find(b"\0")
            raw = buffer[at:end]
            count, kind = struct.unpack_from("<qb", buffer, end + 1)
            if i < nwords:
                try:
                    words.append(raw.decode("utf-8"))
                except UnicodeDecodeError:
                    words.append(raw.decode("utf-8", errors="backslashreplace"))
                    undecodable += 1
                raw_words.append(raw)
                counts.append(count)
            at = end + 10
        # hand back what was read past the dictionary
        self.f.seek(-(len(buffer) - at), 1)
        self.position += at
        return words, raw_words, np.array(counts, dtype=np.int64), undecodable


def _add_rows(sums: np.ndarray, owners: np.ndarray, rows: np.ndarray, picks: np.ndarray) -> None:
    """sums[owners[i]] += rows[picks[i]] for every pair, `owners` sorted. A word has one or two
    n-grams in a chunk: each round adds every word's first remaining pair in one vectorised step
    (three times np.add.at's speed, which goes pair by pair)."""
    while len(owners):
        first = np.r_[True, owners[1:] != owners[:-1]]
        sums[owners[first]] += rows[picks[first]]
        owners, picks = owners[~first], picks[~first]


def _read_rows(f, out: np.ndarray, label: str, what: str) -> None:
    view = memoryview(out.reshape(-1).view(np.uint8))
    got = f.readinto(view)
    if got != len(view):
        raise BadVectorFile(label, f"truncated in {what}")


@dataclass
class Subwords:
    """A version's n-gram buckets (memory-mapped) and the n-gram lengths: vectors for words the
    version does not hold, as fastText computes them."""

    minn: int
    maxn: int
    buckets: np.ndarray

    @classmethod
    def open(cls, path, settings: dict, location: str) -> "Subwords":
        from ..backends.tensorfile import read_matrix
        from ..errors import DamagedStore

        if path is None or not Path(path).is_file():
            raise DamagedStore(f"{location}: the subwords of this version ({settings['file']}) are missing")
        return cls(int(settings["minn"]), int(settings["maxn"]), read_matrix(path).view(np.ndarray))

    def vector(self, word: str) -> np.ndarray | None:
        """The mean of the word's n-gram rows (not normalised), or None when it has none."""
        return subword_vector(word, self.buckets, self.minn, self.maxn)


# -- the subword hash ---------------------------------------------------------------------------------

def fnv1a(data: bytes) -> int:
    """fastText's hash: 32-bit FNV-1a over the bytes read as signed chars."""
    h = 2166136261
    for byte in data:
        h ^= byte | 0xFFFFFF00 if byte & 0x80 else byte
        h = (h * 16777619) & 0xFFFFFFFF
    return h


def subword_buckets(word: str | bytes, minn: int, maxn: int, bucket: int) -> list[int]:
    """The bucket of each character n-gram of `<word>`, as fastText's computeSubwords lists them."""
    if word == EOS or maxn <= 0 or bucket <= 0:
        return []
    data = b"<" + (word if isinstance(word, bytes) else word.encode("utf-8")) + b">"
    out = []
    for i in range(len(data)):
        if (data[i] & 0xC0) == 0x80:
            continue
        j, n = i, 1
        while j < len(data) and n <= maxn:
            j += 1
            while j < len(data) and (data[j] & 0xC0) == 0x80:
                j += 1
            if n >= minn and not (n == 1 and (i == 0 or j == len(data))):
                out.append(fnv1a(data[i:j]) % bucket)
            n += 1
    return out


def subword_vector(word: str, buckets: np.ndarray, minn: int, maxn: int) -> np.ndarray | None:
    """The mean of a word's n-gram rows (fastText's vector for a word outside the vocabulary), or
    None when it has no n-gram."""
    ids = subword_buckets(word, minn, maxn, len(buckets))
    if not ids:
        return None
    return np.asarray(buckets[np.array(ids)], dtype=np.float32).mean(axis=0)


def _pairs(words: list[bytes], minn: int, maxn: int, bucket: int):
    """(word index, bucket) of every n-gram of every word, and each word's n-gram count, computed
    for all words at once: the hash is run over every n-gram start in parallel, one character
    (one to four bytes) at a time."""
    encoded = [b"<" + w + b">" if w != EOS.encode() else b"" for w in words]
    lengths = np.array([len(e) for e in encoded], dtype=np.int64)
    data = np.frombuffer(b"".join(encoded) + b"\0" * 8, dtype=np.uint8)
    word_start = np.r_[0, np.cumsum(lengths)[:-1]]
    owner = np.repeat(np.arange(len(words)), lengths)
    positions = np.arange(int(lengths.sum()))
    end_of_word = (word_start + lengths)[owner]
    lead = (data[positions] & 0xC0) != 0x80  # n-grams start on whole characters
    starts, owner, end_of_word = positions[lead], owner[lead], end_of_word[lead]
    first = starts == word_start[owner]
    signed = np.where(data >= 0x80, data.astype(np.uint32) | 0xFFFFFF00, data.astype(np.uint32))
    h = np.full(len(starts), 2166136261, dtype=np.uint32)
    j = starts.copy()
    alive = np.ones(len(starts), dtype=bool)
    found_words, found_buckets = [], []
    for n in range(1, maxn + 1):
        alive &= j < end_of_word
        if not alive.any():
            break
        # one character: its lead byte, then its continuation bytes
        step = alive.copy()
        while step.any():
            h[step] = (h[step] ^ signed[j[step]]) * np.uint32(16777619)
            j[step] += 1
            step &= (j < end_of_word) & ((data[np.minimum(j, len(data) - 1)] & 0xC0) == 0x80)
        if n >= minn:
            keep = alive & ~((n == 1) & (first | (j == end_of_word)))
            found_words.append(owner[keep])
            found_buckets.append(h[keep] % np.uint32(bucket))
    words_of = np.concatenate(found_words).astype(np.int64) if found_words else np.zeros(0, np.int64)
    buckets_of = np.concatenate(found_buckets).astype(np.int64) if found_buckets else np.zeros(0, np.int64)
    return words_of, buckets_of, np.bincount(words_of, minlength=len(words))
