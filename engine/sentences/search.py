"""`simdex search`: a sentence store's texts by their vectors, their words, or both, filtered on
the fields kept with them.

    hits = search(store, ["a gripping thriller"], k=10, where="source = 'imdb'", mode="hybrid")
    hits[0][0].text, hits[0][0].score, hits[0][0].fields, hits[0][0].lists

- `vector` (the default): the nearest stored texts to the query's encoding.
- `keyword`: the stored texts the full-text index (SQLite FTS5) finds, ranked by BM25. Bare words
  are alternatives (any of them, the rarer weighing more); `"quoted phrases"` and `+words` are
  required, `-words` excluded; a query written in FTS5's own syntax (AND, OR, NOT, NEAR,
  prefix*, parentheses) is passed as it is. Words in more than a tenth of the texts are left out
  of a query of alternatives that has rarer ones (they would rank every text).
- `hybrid`: both lists (each `pool` long), fused by reciprocal rank fusion: a text's fused score
  is the sum over the lists that found it of weight / (rrf_k + rank). The keyword list weighs
  KEYWORD_WEIGHT (5) to the vector list's 1: chosen on validation queries (bench_search.py's
  sweep: rare spans and first halves of sentences, another seed than the reported ones) as the
  weight whose hybrid comes closest to the better single list on both (at 1/1 the vector list,
  which blurs rare names and phrases, pushed keyword hits out of the top ten).
Every answer keeps `score` as its cosine to the query's encoding, carries the text's fields, and,
in keyword and hybrid modes, which lists found it, its rank in each and the fused score.

A `where` filter (engine/sentences/where.py) holds in every mode: the rows passing it are found
in the store's fields, the vector search is made among them (exactly, or through the index
where it was measured to keep its recall at that selectivity: indexes/searcher.py), and the
keyword hits outside them are dropped.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field

import numpy as np

from ..errors import BadOption, BadQuery, check_choice
from . import KEYWORD_WEIGHT, RRF_K, VECTOR_WEIGHT
from .where import parse

MODES = ("vector", "keyword", "hybrid")
POOL = 100  # each list's length before fusion
SUBSETS_KEPT = 8  # filters whose rows an open store keeps
COMMON = 0.1  # a word in more than this share of the texts is left out of alternatives (when rarer ones exist)
_FTS_SYNTAX = re.compile(r"\b(AND|OR|NOT|NEAR)\b|\w\*")  # FTS5's operators, a prefix*
_PARTS = re.compile(r'"([^"]*)"|([+-]?)([^\s"]+)')
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass
class Hit:
    id: object        # the input's external id, or the row number
    text: str
    score: float      # cosine to the query's encoding
    row: int
    fields: dict = field(default_factory=dict)
    lists: list | None = None   # keyword and hybrid modes: "vector", "keyword"
    vector_rank: int | None = None
    keyword_rank: int | None = None
    bm25: float | None = None
    fused: float | None = None

    def record(self, query: str, rank: int) -> dict:
        """The CLI's and the API's JSON fields of this answer."""
        out = {"query": query, "rank": rank, "id": self.id, "text": self.text, "score": round(self.score, 6),
               **self.fields}
        if self.lists is not None:
            out.update(lists=self.lists, vector_rank=self.vector_rank, keyword_rank=self.keyword_rank,
                       bm25=None if self.bm25 is None else round(self.bm25, 6),
                       fused=None if self.fused is None else round(self.fused, 6))
        return out


def search(store, queries: list[str], k: int = 10, *, where: str | None = None, mode: str = "vector",
           exact: bool = False, vector_weight: float = VECTOR_WEIGHT, keyword_weight: float = KEYWORD_WEIGHT,
           rrf_k: float = RRF_K,
           pool: int = POOL) -> list[list[Hit]]:
    """For each query, its k best stored texts (see the module's notes)."""
    from ..query import check_k

    store.require_kind("sentences", "search")
    check_choice("--mode", mode, MODES)
    check_k(k)
    if vector_weight < 0 or keyword_weight < 0 or rrf_k < 0:
        raise BadOption("--vector-weight, --keyword-weight and --rrf-k must be at least 0")
    subset = Subset.of(store, where)
    encodings = store.encode(queries)
    depth = k if mode == "vector" else max(pool, k)
    answers = []
    vector_lists = (store.search_vectors(encodings, depth, exact=exact, subset=subset) if mode != "keyword"
                    else (None, None))
    for q, text in enumerate(queries):
        ranked = {}  # row -> Hit
        if mode != "keyword":
            D, I = vector_lists
            for rank, (row, score) in enumerate(((r, s) for r, s in zip(I[q], D[q]) if r >= 0), 1):
                ranked[int(row)] = Hit(None, "", float(score), int(row), vector_rank=rank)
        if mode != "vector":
            rows, scores = keyword_rows(store, text, depth, subset)
            for rank, (row, bm25) in enumerate(zip(rows.tolist(), scores.tolist()), 1):
                hit = ranked.setdefault(row, Hit(None, "", float("nan"), row))
                hit.keyword_rank, hit.bm25 = rank, bm25
        hits = list(ranked.values())
        if mode == "vector":
            hits.sort(key=lambda h: h.vector_rank)
        else:
            for hit in hits:
                hit.lists = [name for name, rank in (("vector", hit.vector_rank), ("keyword", hit.keyword_rank))
                             if rank is not None]
                hit.fused = sum(weight / (rrf_k + rank) for weight, rank in ((vector_weight, hit.vector_rank),
                                                                             (keyword_weight, hit.keyword_rank))
                                if rank is not None)
            hits.sort(key=lambda h: (-h.fused, h.keyword_rank or h.vector_rank, h.row))
        answers.append(_finish(store, hits[:k], encodings[q]))
    return answers


def _finish(store, hits: list[Hit], encoding: np.ndarray) -> list[Hit]:
    """Texts, ids, fields, and the cosine of hits found by keywords alone."""
    if not hits:
        return hits
    rows = [hit.row for hit in hits]
    texts, external = store.keys_of(rows), store.external_ids(rows)
    values = store.field_values(rows, list(store.fields()))
    missing = [i for i, hit in enumerate(hits) if np.isnan(hit.score)]
    if missing:
        vectors = np.asarray(store.vectors()[np.array([rows[i] for i in missing])], dtype=np.float32)
        for i, score in zip(missing, vectors @ encoding):
            hits[i].score = float(score)
    for hit, text, given, fields in zip(hits, texts, external, values):
        hit.text, hit.id, hit.fields = text, hit.row if given is None else given, fields
    return hits


class Subset:
    """The rows a `where` filter keeps: their sorted ids (a local store), and the parsed filter
    (which a Milvus store applies itself)."""

    def __init__(self, where, rows: np.ndarray | None):
        self.where, self.rows = where, rows

    @classmethod
    def of(cls, store, text: str | None) -> "Subset | None":
        """The rows of `store`'s version passing the filter `text` (None for no filter). The
        last few filters' rows are kept with the open store: a served page repeats its filter."""
        if not text or not text.strip():
            return None
        cache = store.__dict__.setdefault("_subsets", {})
        key = (store.version.number, store.version.count, text.strip())
        if key not in cache:
            where = parse(text, store.fields())
            if len(cache) >= SUBSETS_KEPT:
                cache.pop(next(iter(cache)))
            cache[key] = cls(where, store.rows_where(where))
        return cache[key]


def keyword_rows(store, text: str, limit: int, subset: Subset | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(rows, BM25 scores) of the stored texts matching the keyword query `text`, best first."""
    if not store.has_text_index():
        raise BadOption(f"{store.location}: keyword and hybrid search read the full-text index a local store keeps; "
                        f"`simdex pull` the store and search it there")
    match = fts_query(text, store)
    if match is None:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    fetch = limit if subset is None else max(limit, 4 * limit * store.version.count // max(len(subset.rows), 1))
    while True:
        try:
            rows, scores = store.keyword_rows(match, fetch)
        except sqlite3.OperationalError as e:
            raise BadQuery(f"keyword query {text!r}: {e}") from None
        if subset is not None:
            keep = np.isin(rows, subset.rows)
            if keep.sum() < limit and len(rows) == fetch and fetch < store.version.count:
                fetch *= 4  # a narrow filter: fetch deeper until enough pass it
                continue
            rows, scores = rows[keep], scores[keep]
        return rows[:limit], scores[:limit]


def fts_query(text: str, store) -> str | None:
    """The FTS5 query for a keyword query (see the module's notes); None when it names no word."""
    if _FTS_SYNTAX.search(text):
        return text  # FTS5's own syntax, as a user of FTS5 writes it
    required, optional, excluded = [], [], []
    for phrase, sign, term in _PARTS.findall(text):
        if phrase:
            words = _WORD.findall(phrase.lower())
            if words:
                required.append('"' + " ".join(words) + '"')
            continue
        for word in _WORD.findall(term.lower()):
            quoted = f'"{word}"'
            (required if sign == "+" else excluded if sign == "-" else optional).append(quoted)
    if len(optional) > 1 or (optional and required):
        counts = store.term_documents([w.strip('"') for w in optional])
        present = [w for w in optional if counts[w.strip('"')] > 0]
        rare = [w for w in present if counts[w.strip('"')] <= COMMON * store.version.count]
        optional = rare or ([] if required else present)  # only common words: every one of them
    if not required and not optional:
        return None
    query = " AND ".join(required) if required else " OR ".join(optional)
    if required and optional:
        query = f"({query}) AND ({' OR '.join(required + optional)})"
    for word in excluded:
        query = f"({query}) NOT {word}"
    return query
