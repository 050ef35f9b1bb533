"""One float32 matrix per file, in the safetensors format, written in a stream and read memory-mapped.

safetensors is 8 bytes of little-endian header length, a JSON header, then the raw tensor
bytes. We write the header last (into space reserved up front, padded with spaces as the
format allows), so an ingest can stream rows to disk without knowing the row count or
holding the matrix in memory. `safetensors.torch.load_file` and `safetensors.numpy.load_file`
read what we write (pinned by tests/test_tensorfile.py); we read it back with numpy alone,
so a query never imports torch.
"""

from __future__ import annotations

import errno
import json
import os
import queue
import struct
import threading
from pathlib import Path

import numpy as np

TENSOR_NAME = "vectors"
_RESERVED_HEADER = 504  # + 8 length bytes = 512: the data starts 64-byte aligned


class MatrixWriter:
    """Append float32 rows to `path`; `close()` writes the header. Use as a context manager.

    On an exception inside the `with` block the partial file is removed. With `background=True`
    the rows are written by a thread of the writer's own (the disk's time overlaps the caller's
    next batch); the caller then hands over what it appends and does not change it afterwards,
    and a failed write is raised by the next `append` or by `close`.
    """

    def __init__(self, path, dim: int, metadata: dict[str, str] | None = None, background: bool = False):
        if dim <= 0:
            raise ValueError(f"dim must be positive, got {dim}")
        self.path = Path(path)
        self.dim = dim
        self.rows = 0
        self.metadata = dict(metadata or {})
        self._file = open(self.path, "wb")
        self._file.write(b"\0" * (8 + _RESERVED_HEADER))
        self._queue: queue.Queue | None = None
        self._failure: BaseException | None = None
        if background:
            self._queue = queue.Queue(maxsize=2)
            self._thread = threading.Thread(target=self._write_queued, name="simdex-matrix-writer", daemon=True)
            self._thread.start()

    def append(self, rows: np.ndarray) -> None:
        if rows.ndim != 2 or rows.shape[1] != self.dim:
            raise ValueError(f"expected rows of shape (n, {self.dim}), got {rows.shape}")
        data = np.ascontiguousarray(rows, dtype="<f4").reshape(-1).view(np.uint8)
        if self._queue is None:
            self._file.write(data)  # a view of the rows: no copy
        else:
            self._raise_failure()
            self._queue.put(data)
        self.rows += rows.shape[0]

    def append_from_file(self, source, offset: int, rows: int, stop=None) -> None:
        """Append `rows` rows taken as they are (little-endian float32) from the file `source` at
        byte `offset`, copied by the kernel file to file (a fastText model's n-gram buckets), 64 MiB
        at a time; `stop` (a threading.Event) set ends the copy early."""
        self._drain()
        self._file.flush()
        length = rows * self.dim * 4
        with open(source, "rb") as f:
            copied = 0
            while copied < length and not (stop is not None and stop.is_set()):
                want = min(64 << 20, length - copied)
                try:
                    got = os.copy_file_range(f.fileno(), self._file.fileno(), want, offset + copied)
                except (AttributeError, OSError) as e:  # no copy_file_range here: through a buffer
                    if isinstance(e, OSError) and e.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS,
                                                                  errno.EOPNOTSUPP):
                        raise
                    f.seek(offset + copied)
                    data = f.read(want)
                    got = len(data)
                    self._file.write(data)
                    self._file.flush()
                if got == 0:
                    raise EOFError(f"{source}: ends {length - copied} bytes short of the rows it should hold")
                copied += got
        self.rows += rows

    def _write_queued(self) -> None:
        while (data := self._queue.get()) is not None:
            if self._failure is None:  # after a failure, only empty the queue until the end
                try:
                    self._file.write(data)
                except BaseException as e:
                    self._failure = e

    def _drain(self) -> None:
        """Wait for the background thread to write what it was given."""
        if self._queue is not None:
            self._queue.put(None)
            self._thread.join()
            self._queue = None

    def _raise_failure(self) -> None:
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure

    def close(self, sync: bool = True) -> None:
        """Write the header and close; `sync=False` leaves the fsync to the caller (a version's
        writer syncs its files together, beside its SQLite work: see `sync_files`)."""
        self._drain()
        self._raise_failure()
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
        if sync:
            os.fsync(self._file.fileno())
        self._file.close()

    def abort(self) -> None:
        self._drain()
        self._failure = None
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


def sync_files(paths, stop=None) -> None:
    """fsync each file (written and closed): its bytes are on disk before it is renamed into place;
    `stop` (a threading.Event) set skips the files not yet synced."""
    for path in paths:
        if stop is not None and stop.is_set():
            return
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


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
