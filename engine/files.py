"""Writing files so that a reader never sees half of one, and hashing them.

    with atomic_write(store.classifier_path(3)) as tmp:   # write to tmp; renamed into place at the end
        torch.save(classifier, tmp)

Every temporary file is named `.tmp-PID-RANDOM-NAME` in the directory of the file it becomes, so
that `remove_abandoned_temporaries` can tell the files of a killed writer (its process is gone)
from those of one still at work. A machine fault (a full disk, read-only media) while writing is
one StoreFault naming the file, and the temporary file is removed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import uuid
from contextlib import contextmanager
from pathlib import Path

from .errors import machine_fault

_PREFIX = ".tmp-"


def temporary_path(directory: Path, name: str = "") -> Path:
    """A fresh temporary file name in `directory`; renamed into place by its writer, or removed."""
    return Path(directory) / f"{_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:12]}-{name}"


@contextmanager
def atomic_write(path, *, sync: bool = True):
    """Yield a temporary path beside `path`; when the block ends it is (fsync'd and) renamed to
    `path`, replacing any file there; when the block raises it is removed and `path` is as it was."""
    path = Path(path)
    tmp = temporary_path(path.parent, path.name)
    try:
        yield tmp
        if sync:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        fault = machine_fault(e, path, unchanged=False)
        if fault is not None:
            raise fault from None
        raise


def remove_abandoned_temporaries(directory: Path) -> None:
    """Remove the temporary files of writers that were killed (their process is gone)."""
    for tmp in Path(directory).glob(f"{_PREFIX}*"):
        try:
            pid = int(tmp.name[len(_PREFIX):].split("-")[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            if tmp.is_dir():  # a model folder being written
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
        except (ValueError, IndexError, PermissionError):
            continue


def file_sha256(path, stop: threading.Event | None = None) -> str | None:
    """The sha256 of a file's bytes, read 4 MiB at a time into one buffer (None if `stop` is set
    before the end)."""
    digest = hashlib.sha256()
    buffer = bytearray(1 << 22)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as f:
        while read := f.readinto(buffer):
            if stop is not None and stop.is_set():
                return None
            digest.update(view[:read])
    return digest.hexdigest()


class InBackground:
    """`work(*args, stop=event)` run by a thread beside the caller's own work (file reading,
    hashing, copying: they let go of the GIL). `result()` waits for it and raises what it raised;
    `cancel()` sets `stop` (a failed ingest does not wait to hash a file it will not keep). Use as
    a context manager: leaving it cancels, then waits."""

    def __init__(self, work, *args):
        self._stop = threading.Event()
        self._value = None
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(work, args), name="simdex-background", daemon=True)
        self._thread.start()

    def _run(self, work, args) -> None:
        try:
            self._value = work(*args, stop=self._stop)
        except BaseException as e:  # raised by result()
            self._failure = e

    def result(self):
        self._thread.join()
        if self._failure is not None:
            raise self._failure
        return self._value

    def cancel(self) -> None:
        self._stop.set()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cancel()
        self._thread.join()
        return False
