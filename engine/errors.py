"""The few exceptions a user can cause. Each carries what the user needs to fix it.

The library raises them and never prints or exits; the CLI turns them into one
`Error:` line. Anything else that escapes is our bug and keeps its traceback.
"""

from __future__ import annotations

import difflib


class SimdexError(Exception):
    """Base class for every mistake a user can make (bad file, unknown word, ...)."""


class StoreNotFound(SimdexError):
    def __init__(self, path, reason: str = "no simdex store here"):
        self.path = str(path)
        super().__init__(f"{self.path}: {reason} (create one with `simdex ingest SOURCE`)")


class EmptyStore(SimdexError):
    def __init__(self, path):
        self.path = str(path)
        super().__init__(f"{self.path}: the store has no versions yet (run `simdex ingest SOURCE`)")


class StoreBusy(SimdexError):
    def __init__(self, path):
        super().__init__(f"{path}: another simdex process is writing to this store; try again when it is done")


class DamagedStore(SimdexError):
    """A file the store's database points to is missing or unreadable."""


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


class BadQuery(SimdexError):
    """A malformed query expression or option value."""


class BadEvalFile(SimdexError):
    def __init__(self, path, problem: str, line: int | None = None):
        where = f"{path}, line {line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}")


def close_spellings(word: str, vocabulary, n: int = 3) -> list[str]:
    """Up to `n` words of `vocabulary` that look like `word` (case first, then edit distance)."""
    lowered = word.lower()
    exact_case = [w for w in vocabulary if w.lower() == lowered and w != word]
    if exact_case:
        return exact_case[:n]
    return difflib.get_close_matches(word, vocabulary, n=n, cutoff=0.75)
