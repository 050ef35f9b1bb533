"""Every exception a user can cause or meet. Each carries what the user needs to fix it.

The library raises them and never prints or exits; the CLI turns them into one `Error:` line
(and the HTTP API into a 4xx). Anything else that escapes is our bug and keeps its traceback.

Two families: the user's mistakes (a bad file, an unknown word, a bad option) and the
machine's faults (a full disk, read-only media, a vanished file, too many open files), which
name the file and say that the store is as it was.
"""

from __future__ import annotations

import difflib
import errno
import sqlite3


class SimdexError(Exception):
    """Base class for everything a user can cause or meet (bad file, unknown word, full disk...)."""


class StoreNotFound(SimdexError):
    def __init__(self, path, reason: str = "no simdex store here"):
        self.path = str(path)
        super().__init__(f"{self.path}: {reason} (create one with `simdex ingest SOURCE`)")


class EmptyStore(SimdexError):
    def __init__(self, path):
        self.path = str(path)
        super().__init__(f"{self.path}: the store has no versions yet (run `simdex ingest SOURCE` or "
                         f"`simdex encode FILE`)")


class StoreBusy(SimdexError):
    def __init__(self, path):
        super().__init__(f"{path}: another simdex process is writing to this store; try again when it is done")


class WrongKind(SimdexError):
    """A words-only operation on a sentence store, or the other way round."""


class DamagedStore(SimdexError):
    """A file the store's database points to is missing or unreadable."""


class StoreFault(SimdexError):
    """The machine refused: no space, read-only media, permission denied, a vanished file,
    too many open files. Names the file; whatever was being written was rolled back."""

    def __init__(self, where, problem: str, unchanged: bool = True):
        self.where = str(where)
        tail = " (the store is unchanged)" if unchanged else ""
        super().__init__(f"{self.where}: {problem}{tail}")


class StoreReadOnly(StoreFault):
    def __init__(self, path, why: str):
        super().__init__(path, f"the store is read-only ({why}): queries work, writes cannot", unchanged=False)


class MilvusFault(SimdexError):
    """Milvus unreachable, a refused token, a collection that vanished: names the address."""


class UnknownVersion(SimdexError):
    def __init__(self, path, version, known):
        self.version = version
        listing = ", ".join(str(v) for v in known) or "none"
        super().__init__(f"{path}: no version {version} (versions: {listing})")


class UnknownWord(SimdexError, KeyError):
    """A query word that is not in the vocabulary; offers close spellings."""

    def __init__(self, word: str, suggestions: list[str] | None = None, where: str = "the vocabulary"):
        self.word = word
        self.suggestions = list(suggestions or [])
        message = f"unknown word {word!r}: not in {where}"
        if self.suggestions:
            message += "; did you mean " + ", ".join(repr(s) for s in self.suggestions) + "?"
        super().__init__(message)

    def __str__(self) -> str:  # KeyError would add quotes around the message
        return self.args[0]


class BadVectorFile(SimdexError):
    """A vector file we cannot read. Names the file and, where there is one, the line."""

    def __init__(self, path, problem: str, line: int | None = None):
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}, line {line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")


class BadInput(BadVectorFile):
    """A text or data file (sentences to encode, reviews to train on) we cannot read."""


class BadQuery(SimdexError):
    """A malformed query expression, or a query the store cannot answer."""


class BadOption(SimdexError):
    """An option value outside what it accepts (a method, a limit, a format)."""


class BadIndex(SimdexError):
    """An index that cannot be built as asked (a bad factory string, too few vectors)."""


class BadModel(SimdexError):
    """A sentence-encoder model folder that is missing, unreadable or not a BERT-family model."""


class BadEvalFile(SimdexError):
    def __init__(self, path, problem: str, line: int | None = None):
        where = f"{path}, line {line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}")


def check_choice(option: str, value, choices):
    """`value` if it is one of `choices`, else BadOption naming the option and the choices.
    The one place a choice (an analogy method, a format, an error policy) is validated."""
    if value not in choices:
        raise BadOption(f"{option} must be one of {', '.join(map(str, choices))}, got {value!r}")
    return value


def check_positive(option: str, value, allow_none: bool = True):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadOption(f"{option} must be a whole number of at least 1, got {value!r}")
    return value


def close_spellings(word: str, vocabulary, n: int = 3) -> list[str]:
    """Up to `n` words of `vocabulary` that look like `word` (case first, then edit distance)."""
    lowered = word.lower()
    exact_case = [w for w in vocabulary if w.lower() == lowered and w != word]
    if exact_case:
        return exact_case[:n]
    return difflib.get_close_matches(word, vocabulary, n=n, cutoff=0.75)


# -- the machine's faults -----------------------------------------------------------------------------

# OS errors that come from the machine or its administrator, never from a bug of ours
MACHINE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOENT,
                  errno.EMFILE, errno.ENFILE, errno.EIO, errno.EFBIG, errno.ESTALE}

_SQLITE_FAULTS = {  # what SQLite says, and what it means for the user
    "database or disk is full": "no space left on device",
    "attempt to write a readonly database": "read-only: cannot write",
    "disk i/o error": "input/output error",
    "unable to open database file": "cannot open the database file (permission, a vanished "
                                    "directory, or too many open files)",
    "readonly database": "read-only: cannot write",
}


def machine_fault(error: BaseException, where, unchanged: bool = True) -> StoreFault | None:
    """A StoreFault for an OSError or SQLite error the machine caused, else None (our bug)."""
    if isinstance(error, OSError) and error.errno in MACHINE_ERRNOS:
        name = error.filename or where
        return StoreFault(name, error.strerror or str(error), unchanged)
    if isinstance(error, (sqlite3.OperationalError, sqlite3.DatabaseError)):
        message = str(error).lower()
        for pattern, meaning in _SQLITE_FAULTS.items():
            if pattern in message:
                return StoreFault(where, meaning, unchanged)
    return None
