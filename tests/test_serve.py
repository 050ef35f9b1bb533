"""`simdex serve`'s API through Starlette's TestClient, on the real packaged GloVe: every route,
every bad parameter, concurrent requests, and nothing written to the store."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from simdex.cli import cli
from simdex.web.app import create_app

from conftest import write_text


@pytest.fixture(scope="module")
def client(glove_store):
    with TestClient(create_app(str(glove_store.path))) as client:
        yield client


def test_info_names_the_store(client, glove_store):
    info = client.get("/api/info").json()
    assert info["served"] == str(glove_store.path) and info["versions"][0]["count"] == 400_000


def test_neighbors_of_words_and_expressions(client, glove_store):
    answers = client.get("/api/neighbors", params={"q": "frog", "k": 5}).json()
    assert [a["word"] for a in answers] == [w for w, _ in glove_store.neighbors("frog", k=5)]
    assert "toad" in [a["word"] for a in answers]
    assert answers[0].keys() == {"query", "rank", "word", "score"} and answers[0]["rank"] == 1
    expression = client.get("/api/neighbors", params={"q": "king - man + woman", "k": 3}).json()
    assert expression[0]["word"] == "queen"


@pytest.mark.parametrize("method", ["add", "mul"])
def test_analogy(client, method):
    answers = client.get("/api/analogy", params={"a": "man", "b": "king", "c": "woman", "method": method}).json()
    assert answers[0]["word"] == "queen" and answers[0]["query"] == "man : king :: woman : ?"


def test_similarity_and_doesnt_match(client, glove_store):
    result = client.get("/api/similarity", params={"a": "cat", "b": "dog"}).json()
    assert result == {"a": "cat", "b": "dog", "score": round(glove_store.similarity("cat", "dog"), 6)}
    odd = client.get("/api/doesnt-match", params={"words": "breakfast cereal dinner lunch"}).json()
    assert odd["word"] == "cereal"


def test_suggest_is_by_frequency(client, glove_store):
    words = client.get("/api/suggest", params={"prefix": "fro", "k": 4}).json()["words"]
    keys = glove_store.keys()
    expected = [w for w in keys[:20_000] if w.startswith("fro")][:4]
    assert words == expected and words[0] == "from"
    assert client.get("/api/suggest", params={"prefix": "zzzzqqq"}).json()["words"] == []


def test_map_projects_the_query_and_its_neighbours(client):
    points = client.get("/api/map", params={"q": "frog", "k": 12}).json()["points"]
    assert len(points) == 13 and points[0]["word"] == "frog" and points[0]["query"]
    assert "toad" in [p["word"] for p in points[1:]]
    assert all(-1 <= p["x"] <= 1 and -1 <= p["y"] <= 1 for p in points)
    assert max(max(abs(p["x"]), abs(p["y"])) for p in points) == 1.0


@pytest.mark.parametrize("route, params, status, message", [
    ("neighbors", {"q": "frgo"}, 404, "unknown word 'frgo'"),
    ("neighbors", {}, 400, "missing parameter 'q'"),
    ("neighbors", {"q": "frog", "k": "0"}, 400, "k must be between 1 and 500"),
    ("neighbors", {"q": "frog", "k": "100000"}, 400, "k must be between 1 and 500"),
    ("neighbors", {"q": "frog", "k": "ten"}, 400, "k must be a whole number"),
    ("neighbors", {"q": "x" * 1001}, 400, "longer than 1000 characters"),
    ("analogy", {"a": "man", "b": "king"}, 400, "missing parameter 'c'"),
    ("analogy", {"a": "man", "b": "king", "c": "woman", "method": "sub"}, 400, "method"),
    ("similarity", {"a": "cat", "b": "dgo"}, 404, "unknown word 'dgo'"),
    ("map", {"q": "frog", "k": "301"}, 400, "k must be between 1 and 300"),
    ("search", {"q": "a gripping thriller"}, 400, "sentence"),
])
def test_a_users_mistake_is_a_4xx_with_an_error(client, route, params, status, message):
    response = client.get(f"/api/{route}", params=params)
    assert response.status_code == status and message in response.json()["error"], response.text


def test_unknown_words_come_with_close_spellings(client, glove_store):
    from simdex.engine.errors import UnknownWord

    with pytest.raises(UnknownWord) as raised:
        glove_store.neighbors("frgo")
    body = client.get("/api/neighbors", params={"q": "frgo"}).json()
    assert body["word"] == "frgo" and body["suggestions"] == raised.value.suggestions and "forgo" in body["suggestions"]


def test_unknown_routes_and_methods(client):
    assert client.get("/api/nothing").status_code == 404
    assert client.get("/api/nothing").json() == {"error": "no route /api/nothing"}
    assert client.post("/api/neighbors", params={"q": "frog"}).status_code == 405


def test_the_page_and_its_files(client):
    page = client.get("/")
    assert page.status_code == 200 and "simdex explorer" in page.text
    for name in ("app.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200
    assert "http" not in page.text.replace("http-equiv", "")  # no CDN: nothing fetched from elsewhere


def test_concurrent_requests_give_the_answers_of_single_ones(client):
    words = ["frog", "king", "paris", "computer", "water", "happy", "river", "music"]
    alone = {w: client.get("/api/neighbors", params={"q": w}).json() for w in words}
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda w: (w, client.get("/api/neighbors", params={"q": w}).json()), words * 10))
    assert all(answer == alone[w] for w, answer in together)


def test_serving_writes_nothing(tmp_path, tiny_store):
    before = {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in tiny_store.path.rglob("*") if p.is_file()}
    with TestClient(create_app(str(tiny_store.path))) as client:
        assert client.get("/api/neighbors", params={"q": "king", "k": 2}).status_code == 200
        assert client.get("/api/analogy", params={"a": "man", "b": "king", "c": "woman"}).json()[0]["word"] == "queen"
    after = {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in tiny_store.path.rglob("*") if p.is_file()}
    assert after == before


def test_sentence_stores_are_searched(tmp_path):
    texts = write_text(tmp_path / "texts.txt", ["a gripping thriller with a twist", "a dull and lifeless comedy",
                                                "the soup was cold"])
    store = tmp_path / "sentences"
    assert CliRunner().invoke(cli, ["encode", str(texts), "--store", str(store)]).exit_code == 0
    with TestClient(create_app(str(store))) as client:
        answers = client.get("/api/search", params={"q": "an exciting suspense film", "k": 2}).json()
        assert answers[0]["text"] == "a gripping thriller with a twist" and len(answers) == 2
        assert client.get("/api/map", params={"q": "soup"}).status_code == 400


def test_serve_refuses_a_missing_store(tmp_path):
    result = CliRunner().invoke(cli, ["serve", "--store", str(tmp_path / "nowhere")])
    assert result.exit_code == 1 and result.output.startswith("Error: "), result.output
