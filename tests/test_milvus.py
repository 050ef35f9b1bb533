"""Stores in Milvus (milvus-lite in-process, and a milvus-lite server on a loopback port), checked
against the local store's exact answers on the same vectors."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from simdex import Store
from simdex.cli import cli
from simdex.engine.backends.transfer import copy_version
from simdex.engine.progress import Progress, Task
from simdex.engine.words.evaluate import evaluate_analogies
from simdex.engine.words.ingest import ingest

from conftest import write_text

ROWS = 5000


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """The first 5,000 packaged GloVe words in a local store, and pushed to milvus-lite."""
    root = tmp_path_factory.mktemp("milvus")
    local = Store.create(root / "local")
    ingest(local, None, limit=ROWS)
    address = f"milvus-lite://{root}/stores.db/glove"
    runner = CliRunner()
    result = runner.invoke(cli, ["push", "--to", address, "--store", str(root / "local"), "--json"],
                           env={"SIMDEX_MILVUS_REQUEST_MB": "0.5"})  # four inserts: rows numbered across them
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert (record["version"], record["count"], record["dim"]) == (1, ROWS, 50)
    return local, Store.open(address), address


def sample_words(local, n=40):
    rng = np.random.default_rng(0)
    return [local.keys()[i] for i in rng.choice(ROWS, n, replace=False)]


def test_exact_neighbours_agree_with_the_local_store(stores):
    local, milvus, _ = stores
    for word in sample_words(local):
        assert [w for w, _ in milvus.neighbors(word, k=10, exact=True)] == \
               [w for w, _ in local.neighbors(word, k=10, exact=True)]
    np.testing.assert_array_equal(milvus.matrix(), local.matrix())
    assert milvus.keys() == local.keys()
    np.testing.assert_array_equal(milvus.norms(), local.norms())


def test_index_neighbours_expressions_and_restrict(stores):
    local, milvus, _ = stores
    recall = np.mean([len({w for w, _ in milvus.neighbors(word, k=10)} &
                          {w for w, _ in local.neighbors(word, k=10, exact=True)}) / 10
                      for word in sample_words(local)])
    assert recall >= 0.95
    assert milvus.version.config["index"]["recall_at_10"] >= 0.95
    assert milvus.neighbors("king - man + woman", k=1)[0][0] == "queen"
    restricted = milvus.neighbors("paris", k=10, restrict=1000)
    assert len(restricted) == 10 and all(local.id_of(w) < 1000 for w, _ in restricted)
    assert [w for w, _ in restricted] == [w for w, _ in local.neighbors("paris", k=10, restrict=1000, exact=True)]


@pytest.mark.parametrize("method", ["add", "mul"])
def test_analogies_through_milvus_are_reranked_exactly(stores, method):
    local, milvus, _ = stores
    assert milvus.analogy("man", "king", "woman", method=method)[0][0] == "queen"
    through = evaluate_analogies(milvus, restrict=ROWS, method=method)
    exact = evaluate_analogies(local, restrict=ROWS, method=method, exact=True)
    assert "Milvus HNSW" in through.search and through.questions == exact.questions
    assert abs(through.accuracy - exact.accuracy) <= 0.005


def test_the_commands_on_a_milvus_address(stores, tmp_path):
    local, _, address = stores
    runner = CliRunner()

    def run(*args):
        result = runner.invoke(cli, [*args, "--store", address])
        assert result.exit_code == 0, result.output
        return result.stdout

    assert "milvus-hnsw" in run("info")
    assert "queen" in run("analogy", "man", "king", "woman", "--method", "mul")
    assert json.loads(run("similarity", "king", "queen", "--json"))["score"] == \
        pytest.approx(local.similarity("king", "queen"), abs=1e-6)
    assert json.loads(run("neighbors", "paris", "-k", "1", "--json").splitlines()[0])["word"] == "france"
    assert "wordsim353" in run("eval", "pairs")
    run("export", str(tmp_path / "milvus.txt"))
    assert CliRunner().invoke(cli, ["export", str(tmp_path / "local.txt"), "--store", str(local.path)]).exit_code == 0
    assert (tmp_path / "milvus.txt").read_bytes() == (tmp_path / "local.txt").read_bytes()


def test_the_explorer_serves_a_milvus_store(stores):
    from starlette.testclient import TestClient

    from simdex.web.app import create_app

    local, _, address = stores
    with TestClient(create_app(address)) as client:
        answers = client.get("/api/neighbors", params={"q": "paris", "k": 5}).json()
        assert [a["word"] for a in answers] == [w for w, _ in local.neighbors("paris", k=5, exact=True)]
        assert client.get("/api/map", params={"q": "paris", "k": 5}).json()["points"][0]["word"] == "paris"
        assert client.get("/api/info").json()["served"] == address


def test_versions_use_and_pull(tmp_path):
    address = f"milvus-lite://{tmp_path}/m.db/words"
    runner = CliRunner()
    for limit in ("3000", "2000"):
        result = runner.invoke(cli, ["ingest", "--limit", limit, "--store", address])
        assert result.exit_code == 0, result.output
    milvus = Store.open(address)
    assert [(v.version, v.count) for v in milvus.versions()] == [(1, 3000), (2, 2000)]
    assert milvus.version.version == 2
    assert runner.invoke(cli, ["use", "1", "--store", address]).exit_code == 0
    assert Store.open(address).version.count == 3000
    result = runner.invoke(cli, ["pull", "--from", address, "--store", str(tmp_path / "back"), "--json"])
    assert result.exit_code == 0, result.output
    back = Store.open(tmp_path / "back")
    np.testing.assert_array_equal(back.matrix(), Store.open(address).matrix())
    assert back.keys() == Store.open(address).keys()


class Stop(Exception):
    pass


def test_a_failed_push_never_switches_the_alias(stores, tmp_path):
    local, _, _ = stores
    address = f"milvus-lite://{tmp_path}/m.db/half"
    first = Store.create(address)
    copy_version(local, first)

    class Stopping(Progress, Task):  # interrupted after the first batch of rows
        def task(self, label, total=None, unit="it"):
            return self

        def update(self, done, **shown):
            raise Stop

    with pytest.raises(Stop):
        copy_version(local, Store.open(address), progress=Stopping())
    again = Store.open(address)
    assert again.current_version() == 1 and [v.version for v in again.versions()] == [1]
    assert not again.client.has_collection(again.collection(2))  # the unfinished collection is gone
    assert again.neighbors("king", k=1)[0][0] == "prince"


def test_faults_are_one_error_line_naming_the_address(stores, tmp_path):
    local, _, _ = stores
    runner = CliRunner()
    unreachable = runner.invoke(cli, ["neighbors", "king", "--store", "milvus://127.0.0.1:9/glove"])
    assert unreachable.exit_code == 1 and unreachable.output.startswith("Error: milvus://127.0.0.1:9/glove: "), \
        unreachable.output
    missing = runner.invoke(cli, ["neighbors", "king", "--store", f"milvus-lite://{tmp_path}/none.db/glove"])
    assert missing.exit_code == 1 and "no simdex store at this Milvus address" in missing.output
    bad = runner.invoke(cli, ["neighbors", "king", "--store", "milvus://host/with-dash"])
    assert bad.exit_code == 1 and "a Milvus address is" in bad.output
    budget = runner.invoke(cli, ["push", "--to", f"milvus-lite://{tmp_path}/b.db/b", "--store", str(local.path)],
                           env={"SIMDEX_MILVUS_REQUEST_MB": "lots"})
    assert budget.exit_code == 1 and budget.output.startswith("Error: SIMDEX_MILVUS_REQUEST_MB=lots"), budget.output

    address = f"milvus-lite://{tmp_path}/gone.db/gone"
    copy_version(local, Store.create(address))
    store = Store.open(address)
    store.client.drop_collection(store.collection(1))  # vanished behind the store's back
    vanished = runner.invoke(cli, ["neighbors", "king", "--store", address])
    assert vanished.exit_code == 1 and vanished.output.startswith(f"Error: {address}: "), vanished.output
    assert len(vanished.output.strip().splitlines()) == 1


def test_sentences_pushed_and_searched(tmp_path):
    texts = write_text(tmp_path / "texts.txt", ["a gripping thriller with a twist", "a dull and lifeless comedy",
                                                "the soup was cold", "a moving story of two brothers"])
    runner = CliRunner()
    local = str(tmp_path / "sentences")
    assert runner.invoke(cli, ["encode", str(texts), "--store", local]).exit_code == 0
    address = f"milvus-lite://{tmp_path}/s.db/sentences"
    assert runner.invoke(cli, ["push", "--to", address, "--store", local]).exit_code == 0
    here, there = Store.open(local), Store.open(address)
    query = "an exciting suspense film"
    found, expected = there.search(query, k=4), here.search(query, k=4, exact=True)
    assert [text for text, _ in found] == [text for text, _ in expected]
    np.testing.assert_allclose([s for _, s in found], [s for _, s in expected], atol=1e-5)
    assert there.version.kind == "sentences" and there.version.config["model"] == here.version.config["model"]


def test_encode_into_milvus(tmp_path):
    address = f"milvus-lite://{tmp_path}/e.db/reviews"
    runner = CliRunner()
    first = write_text(tmp_path / "first.txt", ["a gripping thriller with a twist", "the soup was cold"])
    result = runner.invoke(cli, ["encode", str(first), "--store", address, "--json"])
    assert result.exit_code == 0, result.output
    assert (json.loads(result.stdout)["version"], json.loads(result.stdout)["added"]) == (1, 2)
    more = write_text(tmp_path / "more.txt", ["the soup was cold", "a dull and lifeless comedy"])
    result = runner.invoke(cli, ["encode", str(more), "--store", address, "--json"])
    record = json.loads(result.stdout)
    assert (record["version"], record["parent"], record["added"], record["duplicates"], record["count"]) == \
        (2, 1, 1, 1, 3)
    store = Store.open(address)
    assert store.keys() == ["a gripping thriller with a twist", "the soup was cold", "a dull and lifeless comedy"]
    assert store.search("a boring film", k=1)[0][0] == "a dull and lifeless comedy"
    assert [v.parent for v in store.versions()] == [None, 1]
    refused = runner.invoke(cli, ["encode", str(more), "--quantize", "int8", "--store", f"milvus-lite://{tmp_path}/q.db/x"])
    assert refused.exit_code == 1 and "int8" in refused.output and "simdex push" in refused.output, refused.output


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_milvus_server_on_a_loopback_port(stores, tmp_path):
    """The network path: `milvus-lite server` on 127.0.0.1, reached through milvus://."""
    local, _, _ = stores
    port = free_port()
    server = subprocess.Popen([str(Path(sys.executable).with_name("milvus-lite")), "server", "--data-dir",
                               str(tmp_path / "server"), "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert server.poll() is None and time.monotonic() < deadline, "milvus-lite server did not start"
            time.sleep(0.2)
        address = f"milvus://127.0.0.1:{port}/glove"
        runner = CliRunner()
        result = runner.invoke(cli, ["push", "--to", address, "--store", str(local.path)])
        assert result.exit_code == 0, result.output
        answer = runner.invoke(cli, ["analogy", "man", "king", "woman", "--json", "--store", address])
        assert answer.exit_code == 0 and json.loads(answer.stdout.splitlines()[0])["word"] == "queen", answer.output
        remote = Store.open(address)
        assert [w for w, _ in remote.neighbors("paris", k=10, exact=True)] == \
               [w for w, _ in local.neighbors("paris", k=10, exact=True)]
        remote.close()
    finally:
        server.terminate()
        server.wait(20)
    gone = CliRunner().invoke(cli, ["neighbors", "king", "--store", f"milvus://127.0.0.1:{port}/glove"])
    assert gone.exit_code == 1 and gone.output.startswith(f"Error: milvus://127.0.0.1:{port}/glove: "), gone.output
