"""Labelled texts for the sentiment trainer: a CSV / TSV / JSONL file, or the packaged reviews.

    texts, labels, names = read_labelled("reviews.csv", text_column="text", label_column="label")

Labels must be two classes. 0/1, true/false, neg/pos, negative/positive (any case) map as one
expects; any other two values map in sorted order, and `names` says which is which. A missing
column, an empty text, a third label: a BadInput naming the file and the line.

`held_out` draws the validation split (stratified, seeded) that every trainer and report uses.

`tokenize` splits a review into GloVe's tokens: lower case, HTML line breaks dropped,
punctuation apart, and "don't" as "do" + "n't", as the GloVe vocabulary has them.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np

from .. import packaged
from ..errors import BadInput, BadOption
from ..sentences.texts import TextReport, input_format, read_texts

DATASETS = {"imdb": "imdb", "rotten_tomatoes": "rotten_tomatoes"}
_KNOWN = [({"0", "false", "neg", "negative"}, {"1", "true", "pos", "positive"})]
_TOKEN = re.compile(r"[a-z0-9]+(?=n't)|n't|'[a-z]+|[a-z0-9]+(?:[.\-][a-z0-9]+)*|[^\sa-z0-9]")
_BREAKS = re.compile(r"<br\s*/?>", re.IGNORECASE)


def held_out(labels: np.ndarray, share: float, seed: int) -> np.ndarray:
    """The validation rows (a boolean mask): `share` of each label's rows, drawn with `seed`."""
    rng = np.random.default_rng(seed)
    val = np.zeros(len(labels), dtype=bool)
    for label in (0, 1):  # stratified
        members = np.flatnonzero(labels == label)
        val[rng.permutation(members)[:int(round(share * len(members)))]] = True
    return val


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(_BREAKS.sub(" ", text).lower())


def read_labelled(path: str | None = None, *, dataset: str | None = None, text_column: str = "text",
                  label_column: str = "label"):
    """(texts, labels as int64 0/1, [name of 0, name of 1], source description, sha256 of the data)."""
    if (path is None) == (dataset is None):
        raise BadOption("give a DATA file or --dataset imdb|rotten_tomatoes (one of them)")
    if dataset is not None:
        if dataset not in DATASETS:
            raise BadOption(f"unknown dataset {dataset!r} (imdb, rotten_tomatoes)")
        texts, labels = packaged.reviews(DATASETS[dataset])
        return texts, labels, ["negative", "positive"], f"packaged:{dataset}", _digest(texts, labels)
    if input_format(path) == "txt":
        raise BadInput(path, "a labelled file is .csv, .tsv or .jsonl (with text and label columns)")
    texts, raw = [], []
    report = TextReport()
    for number, text, label, _ in read_texts(path, column=text_column, id_column=label_column, report=report,
                                          keep_empty=True, id_option="--label-column",
                                          column_option="--text-column"):
        if not text.strip():
            raise BadInput(path, "empty text", line=number)
        if label is None or not str(label).strip():
            raise BadInput(path, f"no label in column {label_column!r}", line=number)
        texts.append(text)
        raw.append((number, str(label).strip()))
    if not texts:
        raise BadInput(path, "no labelled texts")
    labels, names = _two_classes(path, raw)
    return texts, labels, names, str(path), _digest(texts, labels)


def _two_classes(path, raw) -> tuple[np.ndarray, list[str]]:
    values = sorted({label for _, label in raw})
    if len(values) != 2:
        if len(values) > 2:
            third = next(number for number, label in raw if label not in values[:2])
            raise BadInput(path, f"labels must be two classes; found {len(values)}: "
                                 f"{', '.join(map(repr, values[:6]))}{'...' if len(values) > 6 else ''}", line=third)
        raise BadInput(path, f"labels must be two classes; found only {values[0]!r}")
    lowered = [v.lower() for v in values]
    for negative, positive in _KNOWN:
        if lowered[0] in negative and lowered[1] in positive:
            break
        if lowered[1] in negative and lowered[0] in positive:
            values = values[::-1]
            break
    index = {value: i for i, value in enumerate(values)}
    return np.array([index[label] for _, label in raw], dtype=np.int64), values


def _digest(texts, labels) -> str:
    digest = hashlib.sha256()
    for text, label in zip(texts, labels):
        digest.update(f"{int(label)}\t{text}\n".encode("utf-8"))
    return digest.hexdigest()
