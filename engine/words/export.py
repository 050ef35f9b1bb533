"""`simdex export`: a version's vectors back out as GloVe text, word2vec text or binary, .npy, or
a fastText .bin model.

Vectors are written unit-length by default (what the store holds); `scale="original"` multiplies
each row by its stored norm, which gives back the source's vectors (to float32 precision).
Text formats print 9 significant digits, which read back as exactly the stored float32.

`fasttext-bin` writes a model the `fasttext` library loads (engine/words/fasttext.py has the
layout) whose `get_word_vector` gives the version's vectors: with the version's subwords (a
store ingested from a .bin, fine-tuned or not), each word's own row is chosen so that the mean
of it and its n-gram rows is the word's vector, and words outside the vocabulary keep their
subword vectors; without subwords, the model has none (minn = maxn = 0) and a word's row is
its vector. The output matrix is zeros: the model answers queries, it is not for more training.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..errors import SimdexError, check_choice
from ..files import atomic_write
from ..store import Store

EXPORT_FORMATS = ("glove", "word2vec", "word2vec-binary", "npy", "fasttext-bin")
_ROWS = 20_000


def export(store: Store, out, format: str = "glove", scale: str = "unit") -> dict:
    """Write the store's version to `out`; returns {path, count, dim}. Written atomically."""
    check_choice("--format", format, EXPORT_FORMATS)
    check_choice("--scale", scale, ("unit", "original"))
    out = Path(out)
    if out.is_dir():
        raise SimdexError(f"{out}: is a directory; give a file name")
    if not out.parent.exists():
        raise SimdexError(f"{out.parent}: no such directory")
    matrix, keys = store.matrix(), store.keys()
    norms = store.norms() if scale == "original" else None
    n, d = matrix.shape
    with atomic_write(out, sync=False) as tmp, open(tmp, "wb") as f:
        if format == "fasttext-bin":
            _write_fasttext(f, store, norms)
        elif format == "npy":
            rows = np.asarray(matrix) if norms is None else np.asarray(matrix) * norms[:, None]
            np.save(f, rows.astype("<f4"))
            vocabulary = out.with_name(out.name + ".vocab.txt")
            vocabulary.write_text("".join(f"{k}\n" for k in keys), encoding="utf-8")
        else:
            if format != "glove":
                f.write(f"{n} {d}\n".encode())
            for start in range(0, n, _ROWS):
                rows = np.asarray(matrix[start:start + _ROWS], dtype=np.float32)
                if norms is not None:
                    rows = rows * norms[start:start + _ROWS, None]
                f.write(_encode_rows(keys[start:start + _ROWS], rows, binary=format == "word2vec-binary"))
    return {"path": str(out), "count": n, "dim": d}


def _encode_rows(keys, rows: np.ndarray, binary: bool) -> bytes:
    if binary:  # word2vec binary: "word " + D little-endian float32 + "\n", as gensim writes it
        raw = rows.astype("<f4")
        return b"".join(k.encode() + b" " + raw[i].tobytes() + b"\n" for i, k in enumerate(keys))
    buffer = io.StringIO()
    np.savetxt(buffer, rows, fmt="%.9g")  # 9 digits: every float32 reads back exactly
    lines = buffer.getvalue().split("\n")
    return "".join(f"{k} {line}\n" for k, line in zip(keys, lines)).encode()


def _write_fasttext(f, store: Store, norms) -> None:
    """A fastText model of the new layout (version 12) whose word vectors are the store's rows."""
    import struct

    from .fasttext import MAGIC, _pairs

    keys, matrix = store.keys(), store.matrix()
    n, d = matrix.shape
    subwords = store.subwords()
    settings = store.version.config.get("subwords") or {}
    minn, maxn = (subwords.minn, subwords.maxn) if subwords else (0, 0)
    bucket = len(subwords.buckets) if subwords else 0
    model = {"cbow": 1, "skipgram": 2, "supervised": 3}.get((settings.get("fasttext") or {}).get("model"), 2)
    counts = np.maximum(1, n + 1 - np.asarray(store.ranks(), dtype=np.int64))  # a count that falls with rank
    f.write(struct.pack("<ii", MAGIC, 12))
    f.write(struct.pack("<12id", d, 5, 5, 1, 5, 1, 2, model if model != 3 else 2, bucket, minn, maxn, 100, 1e-4))
    raw = [key.encode("utf-8") for key in keys]
    f.write(struct.pack("<iiiqq", n, n, 0, int(counts.sum()), -1))
    f.write(b"".join(word + b"\0" + struct.pack("<qb", int(count), 0) for word, count in zip(raw, counts)))
    f.write(struct.pack("<?qq", False, n + bucket, d))
    if subwords:
        words_of, buckets_of, per_word = _pairs(raw, minn, maxn, bucket)
        order = np.argsort(words_of, kind="stable")
        words_of, buckets_of = words_of[order], buckets_of[order]
    for start in range(0, n, _ROWS):
        end = min(n, start + _ROWS)
        rows = np.asarray(matrix[start:end], dtype=np.float32)
        if norms is not None:
            rows = rows * norms[start:end, None]
        if subwords:  # the word's own row: (1 + n-grams) x its vector - the n-gram rows
            lo, hi = np.searchsorted(words_of, [start, end])
            sums = np.zeros_like(rows)
            np.add.at(sums, words_of[lo:hi] - start, np.asarray(subwords.buckets[buckets_of[lo:hi]], np.float32))
            rows = rows * (1 + per_word[start:end])[:, None].astype(np.float32) - sums
        f.write(np.ascontiguousarray(rows, dtype="<f4").tobytes())
    for start in range(0, bucket, _ROWS):
        f.write(np.ascontiguousarray(subwords.buckets[start:start + _ROWS], dtype="<f4").tobytes())
    f.write(struct.pack("<?qq", False, n, d))
    zeros = np.zeros((min(n, _ROWS), d), dtype="<f4").tobytes()
    for start in range(0, n, _ROWS):
        f.write(zeros[:(min(n, start + _ROWS) - start) * d * 4])
