"""A real Milvus standalone server (the binary the `milvus` package bundles) on loopback ports, with
authorization on and its request limit (proxy.grpc.serverMaxRecvSize) set to 1 MB: the faults
milvus-lite cannot show (a wrong token, a request over the limit) and the network path against a
server that enforces them.

CI (SIMDEX_REQUIRE_MILVUS=1, set by .ci/run) fails when the server cannot be started; elsewhere
the module skips with the reason."""

from __future__ import annotations

import json
import os
import socket

import numpy as np
import pytest
from click.testing import CliRunner

from simdex import Store
from simdex.cli import cli
from simdex.engine.words.ingest import ingest

ROWS = 5000
LIMIT = 1 << 20             # the server's request limit here; 5,000 GloVe rows are ~1.6 MB
TOKEN = "root:Milvus"       # Milvus's default credentials, with authorization enabled


def _require(reason: str):
    if os.environ.get("SIMDEX_REQUIRE_MILVUS"):
        raise RuntimeError(f"the Milvus standalone test is required here: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    try:
        from milvus import MilvusServer, MilvusServerConfig
    except ImportError:
        _require("the `milvus` package (a Milvus standalone binary) is not installed: pip install -e '.[dev]'")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = MilvusServerConfig(data_dir=str(tmp_path_factory.mktemp("milvus-standalone")))
    config.set("authorization_enabled", True)
    config.set("proxy_port", port)
    config.set("proxy.grpc.serverMaxRecvSize", LIMIT)
    milvus = MilvusServer(config)
    try:
        milvus.start()
    except Exception as e:  # noqa: BLE001 - the reason goes into the skip / failure
        milvus.stop()
        _require(f"Milvus standalone did not start: {e}")
    yield f"127.0.0.1:{port}"
    milvus.stop()


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    store = Store.create(tmp_path_factory.mktemp("standalone-local") / "local")
    ingest(store, None, limit=ROWS)
    return store


def run(*args, token=TOKEN, request_mb=None):
    env = {"SIMDEX_MILVUS_TOKEN": token, "SIMDEX_MILVUS_REQUEST_MB": request_mb}
    return CliRunner().invoke(cli, list(args), env=env)


def one_error_line(result, address: str) -> str:
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {address}: "), result.output
    return lines[0]


def test_a_wrong_or_missing_token_is_one_error_line(server):
    address = f"milvus://{server}/glove"
    for token in ("root:wrong", ""):
        line = one_error_line(run("info", "--store", address, token=token), address)
        assert "wrong or missing token" in line and "SIMDEX_MILVUS_TOKEN" in line


def test_push_batched_under_the_servers_limit_and_queried(server, local, monkeypatch):
    address = f"milvus://{server}/glove"
    pushed = run("push", "--to", address, "--store", str(local.path), "--json", request_mb="0.5")
    assert pushed.exit_code == 0, pushed.output
    assert (json.loads(pushed.stdout)["version"], json.loads(pushed.stdout)["count"]) == (1, ROWS)
    answer = run("analogy", "man", "king", "woman", "--json", "--store", address)
    assert answer.exit_code == 0 and json.loads(answer.stdout.splitlines()[0])["word"] == "queen", answer.output

    monkeypatch.setenv("SIMDEX_MILVUS_TOKEN", TOKEN)
    remote = Store.open(address)
    rng = np.random.default_rng(1)
    for word in [local.keys()[i] for i in rng.choice(ROWS, 20, replace=False)]:
        assert [w for w, _ in remote.neighbors(word, k=10, exact=True)] == \
               [w for w, _ in local.neighbors(word, k=10, exact=True)], word
        found = {w for w, _ in remote.neighbors(word, k=10)}  # through the server's HNSW index
        assert len(found & {w for w, _ in local.neighbors(word, k=10, exact=True)}) >= 8, word
    tuned = remote.version.config["index"]
    assert tuned["M"] == 16 and tuned["efConstruction"] == 200 and tuned["recall_at_10"] >= 0.95
    remote.close()


def test_a_request_over_the_limit_is_one_error_line_and_switches_nothing(server, local, monkeypatch):
    address = f"milvus://{server}/limited"
    assert run("push", "--to", address, "--store", str(local.path), request_mb="0.5").exit_code == 0
    # the default budget (32 MB per request) sends the 5,000 rows at once: over this server's 1 MB
    line = one_error_line(run("push", "--to", address, "--store", str(local.path)), address)
    assert f"over the server's limit of {LIMIT:,} bytes" in line and "SIMDEX_MILVUS_REQUEST_MB" in line, line

    monkeypatch.setenv("SIMDEX_MILVUS_TOKEN", TOKEN)
    remote = Store.open(address)
    assert remote.current_version() == 1 and [v.version for v in remote.versions()] == [1]
    assert not remote.client.has_collection(remote.collection(2))  # the unfinished collection is gone
    remote.client.drop_collection(remote.collection(1))  # now it vanishes behind the store's back
    remote.close()
    one_error_line(run("neighbors", "king", "--store", address), address)



def test_fields_and_filters_on_the_server_answer_as_the_local_store(server, tmp_path, monkeypatch):
    from simdex.engine import packaged

    texts, labels = packaged.reviews("rotten_tomatoes")
    path = tmp_path / "rt.csv"
    with open(path, "w", encoding="utf-8") as f:
        f.write("text,label,half\n")
        for i in range(400):
            text = texts[i].strip().replace('"', "'")
            f.write(f'"{text}",{labels[i]},{"" if i % 5 == 0 else i % 2}\n')
    store = tmp_path / "sentences"
    encoded = run("encode", str(path), "--fields", "label,half", "--max-length", "48", "--store", str(store))
    assert encoded.exit_code == 0, encoded.output
    address = f"milvus://{server}/sentences"
    pushed = run("push", "--to", address, "--store", str(store), "--json", request_mb="0.5")
    assert pushed.exit_code == 0, pushed.output

    monkeypatch.setenv("SIMDEX_MILVUS_TOKEN", TOKEN)
    remote, local = Store.open(address), Store.open(store)
    assert remote.fields() == local.fields() == {"label": "integer", "half": "integer"}
    queries = ["a gripping thriller", "dull and lifeless", "a warm comedy"]
    for where in ("label = 1", "half IS NULL", "NOT (half = 1)", "label = 0 AND half IN (0, 1)",
                  "label = 1 OR half IS NOT NULL", "NOT (label = 1 OR half = 0)"):
        truth = [[(h.text, h.fields) for h in hits] for hits in local.hits(queries, k=10, where=where, exact=True)]
        for exact in (True, False):
            found = remote.hits(queries, k=10, where=where, exact=exact)
            assert [[(h.text, h.fields) for h in hits] for hits in found] == truth, where
    remote.close()
