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


def file_sha256(path) -> str:
    """The sha256 of a file's bytes, read 4 MiB at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()
