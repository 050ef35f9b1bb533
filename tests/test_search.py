"""Sentence search with fields, filters and keywords, on a real store: packaged reviews (Rotten
Tomatoes sentences and IMDB reviews) encoded with their `source` and `label` columns and a
`words` count (blank for some rows: NULL). Filters are checked against a brute-force scan of
the rows a Python evaluation of the same expression keeps; keyword search against the texts."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest
from click.testing import CliRunner

from simdex import Store
from simdex.cli import cli
from simdex.engine import packaged
from simdex.engine.errors import BadQuery
from simdex.engine.sentences.encode import encode_input
from simdex.engine.sentences.search import fts_query
from simdex.engine.sentences.where import parse

RT, IMDB = 1200, 300


def write_reviews(path, rows):
    with open(path, "w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow(["id", "text", "source", "label", "words"])
        out.writerows(rows)


@pytest.fixture(scope="module")
def reviews(tmp_path_factory):
    """(rows as dicts with typed fields, the CSV, a second CSV of new rows) from the packaged data."""
    with open(packaged.reviews_path(), encoding="utf-8", newline="") as f:
        everything = list(csv.DictReader(f))
    rng = np.random.default_rng(5)
    by_source = {name: [r for r in everything if r["source"] == name] for name in ("rotten_tomatoes", "imdb")}
    picked = ([by_source["rotten_tomatoes"][i] for i in rng.choice(len(by_source["rotten_tomatoes"]), RT + 100,
                                                                    replace=False)]
              + [by_source["imdb"][i] for i in rng.choice(len(by_source["imdb"]), IMDB, replace=False)])
    rows = []
    for n, record in enumerate(picked):
        text = " ".join(record["text"].replace("<br />", " ").split())[:600].strip()
        words = None if n % 7 == 3 else len(text.split())
        rows.append({"id": f"r{n}", "text": text, "source": record["source"], "label": int(record["label"]),
                     "words": words})
    rows = list({r["text"]: r for r in rows}.values())  # one row per distinct text, as the store keeps them
    first, later = [r for r in rows if r["id"] not in {f"r{n}" for n in range(RT, RT + 100)}], \
        [r for r in rows if r["id"] in {f"r{n}" for n in range(RT, RT + 100)}]
    root = tmp_path_factory.mktemp("search")
    as_row = lambda r: [r["id"], r["text"], r["source"], r["label"], "" if r["words"] is None else r["words"]]  # noqa
    write_reviews(root / "reviews.csv", [as_row(r) for r in first])
    write_reviews(root / "more.csv", [as_row(r) for r in later])
    return first, later, root


@pytest.fixture(scope="module")
def store(reviews):
    rows, _, root = reviews
    result = CliRunner().invoke(cli, ["encode", str(root / "reviews.csv"), "--id-column", "id", "--fields",
                                      "source,label,words", "--max-length", "64", "--store", str(root / "store"),
                                      "--json"])
    assert result.exit_code == 0, result.output
    store = Store.open(root / "store")
    assert store.fields() == {"source": "text", "label": "integer", "words": "integer"}
    assert store.version.count == len(rows)
    return store


# -- a random filter and its Python evaluation (SQL's three-valued logic) ------------------------------

def random_filter(rng, depth=0):
    """(expression, evaluate(row) -> True | False | None)."""
    choice = rng.integers(0, 9 if depth < 2 else 6)
    if choice == 0:
        source = ["imdb", "rotten_tomatoes"][rng.integers(2)]
        op = ["=", "!=", "<>"][rng.integers(3)]
        return f"source {op} '{source}'", lambda r: (r["source"] == source) == (op == "=")
    if choice == 1:
        label = int(rng.integers(2))
        return f"label = {label}", lambda r: r["label"] == label
    if choice == 2:
        bound, op = int(rng.integers(3, 80)), ["<", "<=", ">", ">="][rng.integers(4)]
        compare = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal}[op]
        return f"words {op} {bound}", lambda r: None if r["words"] is None else bool(compare(r["words"], bound))
    if choice == 3:
        values = sorted({int(v) for v in rng.integers(5, 30, size=3)})
        negated = bool(rng.integers(2))
        text = f"words {'NOT ' if negated else ''}IN ({', '.join(map(str, values))})"
        return text, lambda r: None if r["words"] is None else ((r["words"] in values) != negated)
    if choice == 4:
        negated = bool(rng.integers(2))
        return (f"words IS {'NOT ' if negated else ''}NULL", lambda r: (r["words"] is None) != negated)
    if choice == 5:
        pattern, negated = ["rotten%", "%db", "i_db", "IMDB"][rng.integers(4)], bool(rng.integers(2))
        regex = re.compile("^" + re.escape(pattern).replace("%", ".*").replace("_", ".") + "$")
        return (f"source {'NOT ' if negated else ''}LIKE '{pattern}'",
                lambda r: bool(regex.match(r["source"])) != negated)
    if choice == 6:
        text, evaluate = random_filter(rng, depth + 1)
        return f"NOT ({text})", lambda r: None if evaluate(r) is None else not evaluate(r)
    (left, first), (right, second) = random_filter(rng, depth + 1), random_filter(rng, depth + 1)
    if choice == 7:
        def both(r):
            a, b = first(r), second(r)
            return False if a is False or b is False else (None if a is None or b is None else True)
        return f"({left}) AND ({right})", both

    def either(r):
        a, b = first(r), second(r)
        return True if a is True or b is True else (None if a is None or b is None else False)
    return f"({left}) or ({right})", either


def brute_force(store, rows, query_vectors, keep, k):
    """The k best rows (by the store's row numbers) among those `keep` passes, by exact cosine."""
    matrix = np.asarray(store.matrix())
    row_of = {text: i for i, text in enumerate(store.keys())}
    kept = np.array(sorted(row_of[r["text"]] for r in rows if keep(r) is True), dtype=np.int64)
    answers = []
    for q in query_vectors:
        if not len(kept):
            answers.append([])
            continue
        scores = matrix[kept] @ q
        order = np.lexsort((kept, -scores))[:k]
        answers.append(kept[order].tolist())
    return answers


def test_random_filters_give_brute_force_answers_exact_and_through_the_index(store, reviews):
    rows, _, root = reviews
    rng = np.random.default_rng(11)
    queries = ["a gripping thriller", "the acting was dreadful", "a warm family comedy", "boring and far too long"]
    vectors = store.encode(queries)
    row_of = {text: i for i, text in enumerate(store.keys())}
    from simdex.indexes import build_index

    expressions = [random_filter(rng) for _ in range(60)]
    by_text = {r["text"]: r for r in rows}
    for built in (None, "hnsw"):
        if built:  # the index answers (recall at its target), and --exact still brute force's answers
            build_index(store, kind=built)
            store = Store.open(store.path)
        matched = wanted = 0
        for text, evaluate in expressions:
            truth = brute_force(store, rows, vectors, evaluate, 10)
            for exact in (True, False):
                found = [[row_of[h.text] for h in hits] for hits in store.hits(queries, k=10, where=text, exact=exact)]
                assert all(evaluate(by_text[store.keys()[row]]) is True for hits in found for row in hits), text
                assert [len(hits) for hits in found] == [len(rows) for rows in truth]
                if exact or not built:  # no index: an exact search either way
                    assert found == truth, (text, exact, built)
                else:
                    matched += sum(len(set(f) & set(t)) for f, t in zip(found, truth))
                    wanted += sum(len(t) for t in truth)
        if built:
            assert matched / wanted >= store.index_state()["params"]["target_recall"] - 0.01, matched / wanted
    assert sum(1 for text, evaluate in expressions if not any(evaluate(r) for r in rows)) < 20  # filters keep rows


def test_a_filters_rows_are_gathered_once_and_given_up_with_it():
    """Searching a filter's rows gathers them from the matrix (and makes FAISS's bitmap) once, not
    per query; what the cache holds dies with the filter's rows and stays within its budget."""
    import gc

    from simdex.engine.query import KeptRows, search_rows

    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(5000, 16)).astype(np.float32)
    kept = KeptRows(budget=3 * 1000 * 16 * 4)
    rows = np.sort(rng.choice(5000, size=1000, replace=False))
    block = kept.gathered(matrix, rows)
    assert kept.gathered(matrix, rows) is block and np.array_equal(block, matrix[rows])
    bits = kept.bitmap(rows, 5000)
    assert kept.bitmap(rows, 5000) is bits
    assert np.array_equal(np.flatnonzero(np.unpackbits(bits, bitorder="little")[:5000]), rows)
    del rows
    gc.collect()
    assert kept.held() == 0  # both died with the rows
    others = [np.sort(rng.choice(5000, size=1000, replace=False)) for _ in range(4)]
    for other in others:
        kept.gathered(matrix, other)
    assert kept.held() == 3  # within the budget of three: the oldest gone
    assert kept.gathered(matrix, others[0]) is not kept.gathered(matrix, others[-1])
    # and a search over cached rows answers as one over freshly gathered rows
    xq = matrix[:3] / np.linalg.norm(matrix[:3], axis=1, keepdims=True)
    first, again = search_rows(matrix, xq, 5, others[1]), search_rows(matrix, xq, 5, others[1])
    assert np.array_equal(first[1], again[1]) and set(first[1].ravel()) <= set(others[1])


def test_answers_carry_their_fields_ids_and_cosines(store, reviews):
    rows, _, _ = reviews
    by_text = {r["text"]: r for r in rows}
    result = CliRunner().invoke(cli, ["search", "an exciting adventure", "-k", "5", "--where",
                                      "source = 'imdb' AND label = 1", "--store", str(store.path), "--json"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["rank"] for r in records] == [1, 2, 3, 4, 5]
    encoding = store.encode(["an exciting adventure"])[0]
    matrix, row_of = np.asarray(store.matrix()), {text: i for i, text in enumerate(store.keys())}
    for record in records:
        source = by_text[record["text"]]
        assert (record["source"], record["label"], record["words"], record["id"]) == \
            ("imdb", 1, source["words"], source["id"])
        assert record["score"] == pytest.approx(float(matrix[row_of[record["text"]]] @ encoding), abs=1e-5)
        assert "lists" not in record  # vector mode: today's fields, plus the text's own


def test_neighbors_of_a_stored_text_are_filtered_too(store, reviews):
    rows, _, _ = reviews
    text = next(r["text"] for r in rows if r["source"] == "rotten_tomatoes")
    answers = store.neighbors(text, k=8, where="source = 'imdb'")
    by_text = {r["text"]: r for r in rows}
    assert len(answers) == 8 and all(by_text[t]["source"] == "imdb" for t, _ in answers)
    assert text not in [t for t, _ in answers]


@pytest.mark.parametrize("expression, message", [
    ("lable = 1", "unknown field 'lable' at position 1 (fields: label, source, words)"),
    ("source = 'imdb' AND (label = 1", "expected ')' at position 31"),
    ("label = ", "at position 9"),
    ("label = 1; DROP TABLE vocab", "at position 10"),
    ("source LIKE 3", "expected a quoted text: this field holds text at position 13"),
    ("label IN ()", "at position 11"),
    ("words > 'ten'", "words"),
])
def test_bad_filters_are_one_error_line_naming_the_position(store, expression, message):
    result = CliRunner().invoke(cli, ["search", "a film", "--where", expression, "--store", str(store.path)])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: --where:") and message in lines[0], lines
    with pytest.raises(BadQuery):
        parse(expression, store.fields())
    assert Store.open(store.path).version.count == store.version.count  # nothing was harmed


def test_a_word_store_has_no_fields_to_filter(glove_store):
    result = CliRunner().invoke(cli, ["neighbors", "frog", "--where", "source = 'imdb'", "--store",
                                      str(glove_store.path)])
    assert result.exit_code == 1 and "unknown field 'source'" in result.stderr


def rare_spans(store, rows, n, rng, words=4):
    """(query, its source text) for n spans of `words` words taken from stored texts, each word
    in at most 3 stored texts."""
    counts = {}
    for r in rows:
        for w in set(re.findall(r"\w+", r["text"].lower())):
            counts[w] = counts.get(w, 0) + 1
    found = []
    for i in rng.permutation(len(rows)):
        tokens = rows[i]["text"].split()
        for start in range(0, max(0, len(tokens) - words)):
            span = tokens[start:start + words]
            plain = [re.findall(r"\w+", t.lower()) for t in span]
            if all(p and all(counts[w] <= 3 for w in p) for p in plain):
                found.append((" ".join(span), rows[i]["text"]))
                break
        if len(found) == n:
            break
    return found


def test_keyword_and_hybrid_find_the_text_a_rare_phrase_comes_from(store, reviews):
    rows, _, _ = reviews
    spans = rare_spans(store, rows, 40, np.random.default_rng(2))
    assert len(spans) >= 30
    found = {}
    for mode in ("vector", "keyword", "hybrid"):
        answers = store.hits([q for q, _ in spans], k=10, mode=mode)
        found[mode] = sum(source in [h.text for h in hits] for (_, source), hits in zip(spans, answers))
        for hits in answers:
            for hit in hits:
                if mode != "vector":
                    assert hit.lists and hit.fused > 0 and set(hit.lists) <= {"vector", "keyword"}
                    assert (hit.vector_rank is not None) == ("vector" in hit.lists)
                    assert (hit.keyword_rank is not None) == ("keyword" in hit.lists)
    assert found["keyword"] == len(spans)  # every rare span finds its text by its words
    assert found["hybrid"] >= max(found["vector"], found["keyword"]) - 1
    assert found["hybrid"] > found["vector"] or found["vector"] == len(spans)


def test_keyword_ranking_is_fts5s_own(store, reviews, monkeypatch):
    """Alternatives of single words are ranked without FTS5 scoring every text that holds a common
    word: from the postings kept beside the index (the default), or, for a store without them,
    with MaxScore pruning. Both give the texts and BM25 scores of FTS5's own ORDER BY rank over
    every match."""
    from simdex.engine.backends import local

    rows, _, _ = reviews
    rng = np.random.default_rng(17)
    vocabulary = sorted({w for r in rows for w in re.findall(r"\w+", r["text"].lower()) if w.isascii()})
    common = ["the", "a", "film", "movie", "is", "and", "of", "story"]
    queries = [" OR ".join(f'"{w}"' for w in [*rng.choice(vocabulary, size=int(rng.integers(1, 5)), replace=False),
                                               *rng.choice(common, size=int(rng.integers(1, 3)), replace=False)])
               for _ in range(60)]
    queries += ['"the" OR "film" OR "gripping"', '"a" OR "of" OR "thriller" OR "sea"', '"movie" OR "boring"',
                '"film" OR "film" OR "noir"', '"zzzunseen" OR "the"', '"café" OR "naïve"', '"Film" OR "NOIR"',
                '"sci-fi" OR "film"']
    assert store.conn.execute("SELECT count(*) FROM text_lengths").fetchone()[0] > 0
    from_postings = {(q, limit): store.keyword_rows(q, limit) for q in queries for limit in (3, 10, 50)}
    monkeypatch.setattr(local.LocalStore, "_postings_totals", lambda self: None)  # a store without them
    pruned = {key: store.keyword_rows(*key) for key in from_postings}
    calls = []
    original = local.LocalStore._best_of_alternatives
    monkeypatch.setattr(local.LocalStore, "_best_of_alternatives",
                        lambda self, *args: calls.append(original(self, *args)) or None)  # rank every match
    for (q, limit), (rows_found, scores) in from_postings.items():
        every_rows, every_scores = store.keyword_rows(q, limit)
        assert len(every_rows) == len(rows_found), q
        # the same arithmetic as FTS5's bm25(), so the same doubles (float32 on the way out)
        np.testing.assert_array_equal(scores, every_scores, err_msg=q)
        np.testing.assert_array_equal(rows_found, every_rows, err_msg=q)  # ties by rowid, as FTS5's rank
        pruned_rows, pruned_scores = pruned[(q, limit)]
        np.testing.assert_allclose(pruned_scores, every_scores, rtol=1e-5, err_msg=q)
        above = every_scores > every_scores[-1] + 1e-5 if len(every_scores) else every_scores.astype(bool)
        assert set(pruned_rows[above]) == set(every_rows[above]), q
    assert sum(found is not None for found in calls) >= 40  # pruning answered many of them


def test_phrases_required_and_excluded_words_work_as_in_fts5(store, reviews):
    rows, _, _ = reviews

    def words_of(text):
        return re.findall(r"\w+", text.lower())

    for hit in store.hits(['"the acting"'], k=50, mode="keyword")[0]:
        tokens = words_of(hit.text)
        assert any(tokens[i:i + 2] == ["the", "acting"] for i in range(len(tokens)))
    for hit in store.hits(["film +boring -plot"], k=50, mode="keyword")[0]:
        assert "boring" in words_of(hit.text) and "plot" not in words_of(hit.text)
    answers = store.hits(["boring NOT film"], k=50, mode="keyword")[0]  # FTS5's own syntax, as it is
    assert answers and all("film" not in words_of(h.text) and "boring" in words_of(h.text) for h in answers)
    phrase = store.hits(['"the acting"'], k=50, mode="keyword", where="label = 0")[0]
    assert phrase and all(h.fields["label"] == 0 for h in phrase)
    # a word in more than a tenth of the texts does not rank every text in a query of alternatives
    assert fts_query("the zombies", store) == '"zombies"'
    assert fts_query("+the zombies", store) == '("the") AND ("the" OR "zombies")'
    result = CliRunner().invoke(cli, ["search", 'NEAR("the" AND', "--mode", "keyword", "--store", str(store.path)])
    assert result.exit_code == 1 and result.stderr.startswith("Error: keyword query")


def test_an_incremental_encode_extends_the_fields_and_the_text_index(store, reviews, tmp_path, monkeypatch):
    import shutil

    from simdex.engine.backends import local

    rows, later, root = reviews
    copy = tmp_path / "store"
    shutil.copytree(store.path, copy)
    spans = rare_spans(Store.open(copy), later, 5, np.random.default_rng(4))
    assert spans
    assert not any(source in [h.text for h in hits]
                   for (_, source), hits in zip(spans, Store.open(copy).hits([q for q, _ in spans], mode="keyword")))
    result = CliRunner().invoke(cli, ["encode", str(root / "more.csv"), "--id-column", "id", "--max-length", "64",
                                      "--store", str(copy), "--json"])  # the store's fields, read again
    assert result.exit_code == 0, result.output
    grown = Store.open(copy)
    assert grown.version.count == len(rows) + len(later) and grown.fields() == store.fields()
    answers = grown.hits([q for q, _ in spans], k=10, mode="keyword")
    assert all(source in [h.text for h in hits] for (_, source), hits in zip(spans, answers))
    new = {r["text"]: r for r in later}
    hits = grown.hits(["a film"], k=200, where="words IS NOT NULL")[0]
    assert any(h.text in new for h in hits)
    for hit in hits:
        if hit.text in new:
            assert hit.fields == {k: new[hit.text][k] for k in ("source", "label", "words")}
    # the previous version's full text is its own still
    old = Store.open(copy, version=1)
    assert not any(source in [h.text for h in hits]
                   for (_, source), hits in zip(spans, old.hits([q for q, _ in spans], mode="keyword")))
    # different fields for the same store are refused
    result = CliRunner().invoke(cli, ["encode", str(root / "more.csv"), "--fields", "source", "--store", str(copy)])
    assert result.exit_code == 1 and "keeps the fields" in result.stderr
    # the new segment's postings joined the index's: each version's keyword ranking is FTS5's own
    queries = [" OR ".join(f'"{w}"' for w in re.findall(r"\w+", q.lower()) + ["film"]) for q, _ in spans]
    ranked = {(n, q): Store.open(copy, version=n).keyword_rows(q, 20) for n in (1, 2) for q in queries}
    monkeypatch.setattr(local.LocalStore, "_postings_totals", lambda self: None)
    monkeypatch.setattr(local.LocalStore, "_best_of_alternatives", lambda self, *args: None)  # FTS5 ranks all
    for (n, q), (found, scores) in ranked.items():
        every, every_scores = Store.open(copy, version=n).keyword_rows(q, 20)
        np.testing.assert_array_equal(found, every, err_msg=q)
        np.testing.assert_array_equal(scores, every_scores, err_msg=q)


def test_fields_go_to_milvus_and_back_and_filter_the_same(store, reviews, tmp_path):
    rows, _, _ = reviews
    address = f"milvus-lite://{tmp_path}/m.db/reviews"
    runner = CliRunner()
    result = runner.invoke(cli, ["push", "--to", address, "--store", str(store.path), "--json"])
    assert result.exit_code == 0, result.output
    remote = Store.open(address)
    assert remote.fields() == store.fields()
    rng = np.random.default_rng(8)
    queries = ["a gripping thriller", "a waste of time"]
    for _ in range(15):
        text, _ = random_filter(rng)
        for exact in (True, False):
            assert [[h.text for h in hits] for hits in remote.hits(queries, k=10, where=text, exact=exact)] == \
                [[h.text for h in hits] for hits in store.hits(queries, k=10, where=text, exact=True)], text
    sample = remote.hits(["a gripping thriller"], k=5, where="words IS NULL")[0]
    assert sample and all(h.fields["words"] is None for h in sample)
    with pytest.raises(Exception, match="keyword and hybrid search read the full-text index"):
        remote.hits(["thriller"], mode="keyword")
    back = tmp_path / "back"
    result = runner.invoke(cli, ["pull", "--from", address, "--store", str(back), "--json"])
    assert result.exit_code == 0, result.output
    pulled = Store.open(back)
    assert pulled.fields() == store.fields()
    assert pulled.field_values(range(pulled.version.count), list(store.fields())) == \
        store.field_values(range(store.version.count), list(store.fields()))
    spans = rare_spans(pulled, rows, 5, np.random.default_rng(6))
    answers = pulled.hits([q for q, _ in spans], k=10, mode="keyword")  # the pulled store has its text index
    assert all(source in [h.text for h in hits] for (_, source), hits in zip(spans, answers))


def test_the_api_takes_the_same_modes_and_filters(store):
    from starlette.testclient import TestClient

    from simdex.web.app import create_app

    with TestClient(create_app(str(store.path))) as client:
        info = client.get("/api/info").json()
        assert info["fields"] == {"source": "text", "label": "integer", "words": "integer"}
        answers = client.get("/api/search", params={"q": "a gripping thriller", "k": 5, "mode": "hybrid",
                                                    "where": "label = 1 AND source = 'rotten_tomatoes'"}).json()
        assert len(answers) == 5 and all(a["label"] == 1 and a["source"] == "rotten_tomatoes" for a in answers)
        assert all(set(a["lists"]) <= {"vector", "keyword"} and a["fused"] > 0 for a in answers)
        cli_run = CliRunner().invoke(cli, ["search", "a gripping thriller", "-k", "5", "--mode", "hybrid", "--where",
                                           "label = 1 AND source = 'rotten_tomatoes'", "--store", str(store.path),
                                           "--json"])
        assert [json.loads(line) for line in cli_run.stdout.splitlines()] == answers
        bad = client.get("/api/search", params={"q": "x", "where": "label >"})
        assert bad.status_code == 400 and "position" in bad.json()["error"]
        bad = client.get("/api/search", params={"q": "x", "mode": "fuzzy"})
        assert bad.status_code == 400 and "--mode" in bad.json()["error"]


def test_fields_that_do_not_read_as_their_type_name_the_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("text,year\na fine film,1999\nanother film,2001\na third one,soon\n")
    store = Store.create(tmp_path / "s")
    with pytest.raises(Exception, match=r"line 4.*'year': 'soon' is not an integer"):
        encode_input(store, str(path), fields="year:int")
    assert store.versions() == []
    result = CliRunner().invoke(cli, ["encode", str(path), "--fields", "year,rating", "--store", str(tmp_path / "t")])
    assert result.exit_code == 1 and "no column 'rating' for --fields" in result.stderr


def test_a_store_made_before_postings_gets_them_when_opened(store, tmp_path, monkeypatch):
    """A store from before the keyword postings (schema 5) is upgraded the next time it is opened
    for writing (read-only, it says it needs the upgrade, as for every schema change): the
    postings of every text written, the same ranking as FTS5's."""
    import shutil
    import sqlite3

    from simdex.engine.backends import local
    from simdex.engine.errors import StoreReadOnly

    copy = tmp_path / "old"
    shutil.copytree(store.path, copy)
    with sqlite3.connect(copy / "store.db") as conn:  # back to schema 5, as an older simdex left it
        conn.execute("DROP TABLE text_postings")
        conn.execute("DROP TABLE text_lengths")
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm006_text_postings'")
        conn.execute("PRAGMA user_version = 5")
    with pytest.raises(StoreReadOnly, match="upgrade"):
        Store.open(copy, read_only=True)
    queries = ['"the" OR "film" OR "gripping"', '"movie" OR "boring" OR "dull"', '"a" OR "warm" OR "comedy"']
    upgraded = Store.open(copy)
    assert upgraded.conn.execute("SELECT sum(count) FROM text_lengths").fetchone()[0] == \
        upgraded.conn.execute("SELECT count(*) FROM texts_docsize").fetchone()[0]
    ranked = {q: upgraded.keyword_rows(q, 20) for q in queries}
    monkeypatch.setattr(local.LocalStore, "_postings_totals", lambda self: None)
    monkeypatch.setattr(local.LocalStore, "_best_of_alternatives", lambda self, *args: None)  # FTS5 ranks all
    for q, (found, scores) in ranked.items():
        every, every_scores = Store.open(copy).keyword_rows(q, 20)
        np.testing.assert_array_equal(found, every, err_msg=q)
        np.testing.assert_array_equal(scores, every_scores, err_msg=q)
