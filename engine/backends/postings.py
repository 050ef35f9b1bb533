"""BM25 from postings kept beside the full-text index: FTS5's ranking of a query of alternative
words, without FTS5's cost of walking every matching row.

FTS5 ranks `"a" OR "b"` by evaluating bm25() on every row holding either word: about 0.3 us to
step through a row of a doclist and 2-3 us to score it, so a word held by 80,000 of a million
texts costs tens of milliseconds however rare the other words are. The same numbers, kept as
arrays, score those rows in well under a millisecond. The local store keeps them (its SQL is in
local.py):

    text_postings(term, segment, rows, tfs)   per term and segment: the rows (uint32, within the
                                              segment, ascending) holding the term and how often
                                              (uint16, or uint32 when a count needs it)
    text_lengths(segment, count, tokens, lengths)   per segment: each row's token count (uint32)

Both are made from FTS5's own tokens (a temporary FTS5 table with the same tokenizer holds a
segment's texts while its fts5vocab `instance` table is read), so the terms, counts and lengths
are FTS5's; a query's words are folded by the same tokenizer. They mirror the full-text index
segment by segment: written when a segment's texts join it, deleted when they leave it. The
score is FTS5's bm25() (fts5_aux.c), term by term in the query's order, in double precision and
the same order of operations, so the same doubles:

    idf(t)  = log((N - n(t) + 0.5) / (n(t) + 0.5)), or 1e-6 where that is not positive
    score   = sum over the query's words t of idf(t) * (tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl)))

with N the texts in the index (every version's), n(t) those holding t, dl a text's token count
and avgdl the mean over the index, k1 1.2, b 0.75; FTS5 reports -score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

BM25_K1, BM25_B = 1.2, 0.75  # FTS5's bm25() constants
TOKENIZER = "unicode61 remove_diacritics 2"  # the full-text index's (migrations.m005)


def segment_postings(groups, count: int):
    """From (term, "row,row,...") of a segment's tokens (one entry per occurrence, rows ascending),
    yield (term, rows blob, tfs blob) per term; then `lengths` holds each row's token count."""
    lengths = np.zeros(count, dtype=np.int64)

    def records():
        for term, docs in groups:
            rows, tfs = np.unique(np.array(docs.split(","), dtype=np.int64), return_counts=True)
            lengths[rows] += tfs
            yield term, rows.astype("<u4").tobytes(), tfs.astype("<u2" if tfs.max() < 1 << 16 else "<u4").tobytes()
    return records(), lengths


def lengths_blob(lengths: np.ndarray) -> bytes:
    return lengths.astype("<u4").tobytes()


def read_lengths(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<u4").astype(np.float64)


@dataclass
class TermPostings:
    """A query word's postings: how many texts of the index hold it, and, per segment of the
    version searched, its rows and counts."""
    documents: int
    parts: list  # [(segment number, rows uint32 array, tfs array)]

    @classmethod
    def of(cls, found, wanted: set) -> "TermPostings":
        """From (segment, bytes of its rows blob, rows blob, tfs blob) of every segment holding
        the term (the blobs only for the `wanted` segments)."""
        documents, parts = 0, []
        for number, size, rows, tfs in found:
            n = size // 4
            documents += n
            if number in wanted:
                parts.append((number, np.frombuffer(rows, dtype="<u4"),
                              np.frombuffer(tfs, dtype="<u2" if len(tfs) == 2 * n else "<u4")))
        return cls(documents, parts)


def best(terms: list[str], postings: dict, segments, lengths, total: int, average: float,
         limit: int) -> list[tuple[int, float]]:
    """The `limit` best (rowid, bm25) of `"t1" OR "t2" ...` among the texts of `segments` ((segment
    number, row count), the version's), as FTS5's bm25() gives them (negative: lower is better),
    best first, ties by rowid (segment * 2^32 + row). `postings`: {term: TermPostings};
    `lengths(segment)`: its rows' token counts; `total`, `average`: N and avgdl of the index."""
    offsets, at = {}, 0
    for number, count in segments:
        offsets[int(number)] = at
        at += int(count)
    scores = np.zeros(at, dtype=np.float64)
    held = np.zeros(at, dtype=bool)
    for term in terms:  # in the query's order, repeats included (FTS5 scores each phrase)
        found = postings[term]
        idf = math.log((total - found.documents + 0.5) / (found.documents + 0.5))
        idf = idf if idf > 0 else 1e-6
        for number, rows, tfs in found.parts:
            dl = lengths(number)[rows]
            tf = tfs.astype(np.float64)
            where = offsets[number] + rows.astype(np.int64)
            scores[where] += idf * ((tf * (BM25_K1 + 1.0)) / (tf + BM25_K1 * (1 - BM25_B + BM25_B * dl / average)))
            held[where] = True
    found = np.flatnonzero(held)
    if len(found) > limit:
        top = np.argpartition(-scores[found], limit - 1)[:limit]
        found = found[scores[found] >= scores[found[top]].min()]  # and every row tied with the last
    starts = np.array([offsets[int(number)] for number, _ in segments], dtype=np.int64)
    numbers = np.array([int(number) for number, _ in segments], dtype=np.int64)
    which = np.searchsorted(starts, found, side="right") - 1
    rowids = numbers[which] * (1 << 32) + (found - starts[which])
    order = np.lexsort((rowids, -scores[found]))[:limit]
    return list(zip(rowids[order].tolist(), (-scores[found[order]]).tolist()))
