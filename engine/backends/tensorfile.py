"""One float32 matrix per file, in the safetensors format, written in a stream and read memory-mapped.

safetensors is 8 bytes of little-endian header length, a JSON header, then the raw tensor
bytes. We write the header last (into space reserved up front, padded with spaces as the
format allows), so an ingest can stream rows to disk without knowing the row count or
holding the matrix in memory. `safetensors.torch.load_file` and `safetensors.numpy.load_file`
read what we write (pinned by tests/test_tensorfile.py); we read it back with numpy alone,
so a query never imports torch.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np

TENSOR_NAME = "vectors"
_RESERVED_HEADER = 504  # + 8 length bytes = 512: the data starts 64-byte aligned


class MatrixWriter:
    """Append float32 rows to `path`; `close()` writes the header. Use as a context manager.

    On an exception inside the `with` block the partial file is removed.
    """

    def __init__(self, path, dim: int, metadata: dict[str, str] | None = None):
        if dim <= 0:
            raise ValueError(f"dim must be positive, got {dim}")
        self.path = Path(path)
        self.dim = dim
        self.rows = 0
        self.metadata = dict(metadata or {})
        self._file = open(self.path, "wb")
        self._file.write(b"\0" * (8 + _RESERVED_HEADER))

    def append(self, rows: np.ndarray) -> None:
        if rows.ndim != 2 or rows.shape[1] != self.dim:
            raise ValueError(f"expected rows of shape (n, {self.dim}), got {rows.shape}")
        self._file.write(np.ascontiguousarray(rows, dtype="<f4").tobytes())
        self.rows += rows.shape[0]

    def close(self) -> None:
        header = {
            TENSOR_NAME: {
                "dtype": "F32",
                "shape": [self.rows, self.dim],
                "data_offsets": [0, self.rows * self.dim * 4],
            },
        }
        if self.metadata:
            header["__metadata__"] = {str(k): str(v) for k, v in self.metadata.items()}
        encoded = json.dumps(header, separators=(",", ":")).encode()
        if len(encoded) > _RESERVED_HEADER:
            raise ValueError("safetensors metadata too long for the reserved header")
        self._file.seek(0)
        self._file.write(struct.pack("<Q", _RESERVED_HEADER) + encoded.ljust(_RESERVED_HEADER, b" "))
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def abort(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False


def write_matrix(path, matrix: np.ndarray, metadata: dict[str, str] | None = None) -> None:
    with MatrixWriter(path, matrix.shape[1], metadata) as writer:
        writer.append(matrix)


def read_matrix(path) -> np.ndarray:
    """The file's matrix as a read-only float32 memory map of shape (n, d)."""
    path = Path(path)
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
    entry = header[TENSOR_NAME]
    if entry["dtype"] != "F32" or len(entry["shape"]) != 2:
        raise ValueError(f"{path}: expected a 2-d F32 tensor, found {entry['dtype']} {entry['shape']}")
    n, d = entry["shape"]
    start = 8 + length + entry["data_offsets"][0]
    if n == 0:
        return np.zeros((0, d), dtype=np.float32)
    return np.memmap(path, dtype="<f4", mode="r", offset=start, shape=(n, d))
