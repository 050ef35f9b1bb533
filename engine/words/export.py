"""`simdex export`: a version's vectors back out as GloVe text, word2vec text or binary, or .npy.

Vectors are written unit-length by default (what the store holds); `scale="original"` multiplies
each row by its stored norm, which gives back the source's vectors (to float32 precision).
Text formats print 9 significant digits, which read back as exactly the stored float32.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..errors import SimdexError, check_choice
from ..files import atomic_write
from ..store import Store

EXPORT_FORMATS = ("glove", "word2vec", "word2vec-binary", "npy")
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
        if format == "npy":
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
