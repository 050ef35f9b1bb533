"""Results as the JSON records that `--json` prints and the HTTP API returns.

A result dataclass names its fields, in order, in `JSON_FIELDS` (attributes or properties);
`to_json` reads them, rounds floats (seconds to 3 places, scores to 6) and serialises nested
results and lists the same way. One helper, so every command's record reads alike.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np


def to_json(result) -> dict:
    fields = getattr(result, "JSON_FIELDS", None)
    if fields is None:
        fields = [f.name for f in dataclasses.fields(result)]
    return {name: _value(name, getattr(result, name)) for name in fields}


def ranked(title: str, answers, key: str = "word") -> list[dict]:
    """A query's (key, score) answers, best first, as records `query, rank, KEY, score`."""
    return [{"query": title, "rank": rank, key: found, "score": round(float(score), 6)}
            for rank, (found, score) in enumerate(answers, 1)]


def oov_fields(store, words) -> dict:
    """`oov: true` and the words, when some of `words` (a list, or an expression) were answered
    from their fastText subwords; nothing otherwise (every other store, every other query)."""
    found = store.from_subwords(words)
    return {"oov": True, "oov_words": found} if found else {}


def _value(name: str, value):
    if hasattr(type(value), "JSON_FIELDS") or dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_json(value)
    if isinstance(value, (list, tuple)):
        return [_value(name, item) for item in value]
    if isinstance(value, dict):
        return {key: _value(key, item) for key, item in value.items()}
    if isinstance(value, (np.floating, np.integer)):
        value = value.item()
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return round(value, 3 if name.endswith("seconds") else 6)
    return value
