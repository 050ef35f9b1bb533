"""The `simdex` command through click's CliRunner: exit codes, exact output, clean errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from simdex import Store
from simdex.cli import cli

from conftest import tiny_lines, write_text


@pytest.fixture
def run(tmp_path):
    store = str(tmp_path / "store")

    def invoke(*args, store_path=store):
        result = CliRunner().invoke(cli, list(args), env={"SIMDEX_STORE": store_path}, catch_exceptions=False)
        return result

    invoke.store = store
    return invoke


@pytest.fixture
def tiny(run, tiny_glove):
    assert run("ingest", str(tiny_glove)).exit_code == 0
    return run


def json_lines(result):
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_ingest_json(run, tiny_glove):
    result = run("ingest", str(tiny_glove), "--json")
    assert result.exit_code == 0, result.output
    [record] = json_lines(result)
    assert list(record) == ["version", "count", "dim", "skipped", "duplicates", "seconds"]
    assert {k: record[k] for k in ("version", "count", "dim", "skipped", "duplicates")} == \
        {"version": 1, "count": 6, "dim": 4, "skipped": 0, "duplicates": 0}


def test_ingest_text_output_and_store_option(run, tiny_glove, tmp_path):
    other = tmp_path / "elsewhere"
    result = CliRunner().invoke(cli, ["ingest", str(tiny_glove), "--store", str(other)])
    assert result.exit_code == 0
    assert result.stdout.startswith("version 1: 6 vectors of dimension 4 (glove) in ")
    assert Store.open(other).keys()[0] == "king"


def test_neighbors_json_and_table(tiny):
    result = tiny("neighbors", "king", "-k", "2", "--json")
    records = json_lines(result)
    assert [(r["query"], r["rank"], r["word"]) for r in records] == [("king", 1, "prince"), ("king", 2, "man")]
    assert [r["score"] for r in records] == pytest.approx([1.9 / np.sqrt(2 * 1.82), 1 / np.sqrt(2 * 1.01)], abs=2e-6)
    assert all(list(r) == ["query", "rank", "word", "score"] for r in records)
    table = tiny("neighbors", "king", "-k", "2")
    assert table.stdout == "king\n   1  prince  0.9959\n   2  man     0.7036\n"


def test_several_queries_and_a_query_file(tiny, tmp_path):
    queries = tmp_path / "q.txt"
    queries.write_text("queen\n\nking - man + woman\n")
    result = tiny("neighbors", "prince", "--file", str(queries), "-k", "1", "--json")
    assert [(r["query"], r["word"]) for r in json_lines(result)] == [
        ("prince", "king"), ("queen", "woman"), ("king - man + woman", "queen")]


def test_analogy_and_similarity(tiny):
    assert tiny("analogy", "man", "king", "woman", "-k", "1").stdout == "man : king :: woman : ?\n   1  queen  0.9597\n"
    [record] = json_lines(tiny("analogy", "man", "king", "woman", "-k", "1", "--method", "mul", "--json"))
    assert (record["query"], record["rank"], record["word"]) == ("man : king :: woman : ?", 1, "queen")
    assert json_lines(tiny("similarity", "king", "queen", "--json")) == [{"a": "king", "b": "queen", "score": 0.5}]


def test_info(tiny):
    [record] = json_lines(tiny("info", "--json"))
    assert record["store"] == tiny.store and record["current"] == 1 and record["index"] is None
    [version] = record["versions"]
    assert {k: version[k] for k in ("version", "kind", "count", "dim", "parent")} == \
        {"version": 1, "kind": "words", "count": 6, "dim": 4, "parent": None}
    assert version["source"].endswith("tiny.txt") and version["bytes"] == 512 + 6 * 4 * 4
    assert "* v1" in tiny("info").stdout


@pytest.mark.parametrize("args, message", [
    (["neighbors", "qeen"], "Error: unknown word 'qeen': not in the vocabulary; did you mean 'queen'?\n"),
    (["analogy", "man", "king", "wman"],
     "Error: unknown word 'wman': not in the vocabulary; did you mean 'woman', 'man'?\n"),
    (["neighbors", "king +"], "Error: malformed expression 'king +': it ends with an operator\n"),
    (["similarity", "king", "--version", "9", "queen"], None),
])
def test_user_mistakes_are_one_error_line(tiny, args, message):
    result = tiny(*args)
    assert result.exit_code == 1
    assert result.stdout == ""
    if message:
        assert result.stderr == message
    else:
        assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


def test_missing_store_and_bad_file(run, tmp_path):
    result = run("neighbors", "king", store_path=str(tmp_path / "none"))
    assert result.exit_code == 1
    assert result.stderr == (f"Error: {tmp_path / 'none'}: no simdex store here (create one with "
                             f"`simdex ingest SOURCE`)\n")
    bad = write_text(tmp_path / "bad.txt", tiny_lines()[:2] + ["x 1 2"])
    result = run("ingest", str(bad))
    assert result.exit_code == 1
    assert result.stderr == f"Error: {bad}, line 3: expected a word and 4 values, found 2 values\n"
    result = run("ingest", str(tmp_path / "missing.txt"))
    assert result.stderr == f"Error: {tmp_path / 'missing.txt'}: no such file\n"


def test_bad_options_are_usage_errors(tiny):
    result = tiny("neighbors", "king", "-k", "0")
    assert result.exit_code == 2 and "Error: Invalid value for '-k'" in result.stderr
    result = tiny("ingest", "x", "--on-error", "ignore")
    assert result.exit_code == 2 and "Error: Invalid value for '--on-error'" in result.stderr


def test_skip_reports_on_stderr(run, tmp_path):
    path = write_text(tmp_path / "s.txt", tiny_lines()[:2] + ["x 1 2"] + tiny_lines()[2:])
    result = run("ingest", str(path), "--on-error", "skip", "--json")
    assert result.exit_code == 0
    assert json_lines(result)[0]["skipped"] == 1
    assert result.stderr == "skipped 1 bad line(s), first: line 3\n"


def test_export_round_trips_and_gensim_reads_it(tiny, tmp_path):
    from gensim.models import KeyedVectors

    store = Store.open(tiny.store, version=1)
    for fmt, binary in [("word2vec", False), ("word2vec-binary", True)]:
        out = tmp_path / f"out.{fmt}"
        [record] = json_lines(tiny("export", str(out), "--format", fmt, "--scale", "original", "--json"))
        assert record == {"path": str(out), "count": 6, "dim": 4}
        kv = KeyedVectors.load_word2vec_format(str(out), binary=binary)
        assert kv.index_to_key == store.keys()
        np.testing.assert_allclose(kv["king"], [1, 1, 0, 0], rtol=1e-6)
    glove = tmp_path / "out.txt"
    tiny("export", str(glove))
    assert tiny("ingest", str(glove), "--json").exit_code == 0
    assert Store.open(tiny.store).version.version == 2
    np.testing.assert_allclose(Store.open(tiny.store).matrix(), store.matrix(), rtol=1e-6, atol=1e-7)
    npy = tmp_path / "out.npy"
    tiny("export", str(npy), "--format", "npy", "--version", "1")
    np.testing.assert_allclose(np.load(npy), store.matrix())
    assert (tmp_path / "out.npy.vocab.txt").read_text().split("\n")[:2] == ["king", "queen"]


def test_queries_from_stdin(tiny):
    result = CliRunner().invoke(cli, ["neighbors", "--file", "-", "-k", "1", "--json"], input="queen\nprince\n",
                                env={"SIMDEX_STORE": tiny.store})
    assert [(r["query"], r["word"]) for r in json_lines(result)] == [("queen", "woman"), ("prince", "king")]


def test_a_busy_store_is_a_clear_error(tiny, tiny_glove, monkeypatch):
    import sqlite3

    holder = sqlite3.connect(f"{tiny.store}/store.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        result = CliRunner().invoke(cli, ["ingest", str(tiny_glove)],
                                    env={"SIMDEX_STORE": tiny.store, "SIMDEX_BUSY_TIMEOUT": "0.2"})
        reader = tiny("neighbors", "king", "-k", "1")  # readers are not blocked by a writer
    finally:
        holder.execute("ROLLBACK")
    assert result.exit_code == 1
    assert result.stderr == (f"Error: {tiny.store}: another simdex process is writing to this store; try again "
                             f"when it is done\n")
    assert reader.exit_code == 0 and reader.stdout.startswith("king\n   1  prince")


def test_a_missing_vectors_file_is_a_clear_error(tiny):
    import os

    os.remove(f"{tiny.store}/vectors/s1.safetensors")
    result = tiny("neighbors", "king")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {tiny.store}/vectors/s1.safetensors: the vectors of version 1 "
                                    f"cannot be read")


def test_use_switches_the_current_version(tiny, tmp_path):
    tiny("ingest", str(write_text(tmp_path / "v2.txt", ["king 0 1", "queen 1 0"])))
    assert json_lines(tiny("use", "1", "--json")) == [{"current": 1}]
    assert tiny("neighbors", "king", "-k", "1").stdout.startswith("king\n   1  prince")
    missing = tiny("use", "7")
    assert missing.exit_code == 1 and missing.stderr.startswith(f"Error: {tiny.store}: no version 7 (versions: 1, 2)")


def test_a_word_query_imports_neither_torch_nor_sqlite_utils(tiny):
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from simdex.cli import cli\n"
        f"result = CliRunner().invoke(cli, ['neighbors', 'king', '--store', {tiny.store!r}])\n"
        "assert result.exit_code == 0, result.output\n"
        "print(sorted(m for m in ('torch', 'sqlite_utils', 'faiss', 'pyarrow') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_text_exports_read_back_exactly(tmp_path):
    """Every stored float32 survives a glove / word2vec text export (9 significant digits)."""
    rng = np.random.default_rng(7)
    rows = rng.normal(size=(300, 13)).astype(np.float32)
    source = write_text(tmp_path / "r.txt",
                        [f"w{i} " + " ".join(repr(float(x)) for x in row) for i, row in enumerate(rows)])
    store = str(tmp_path / "store")
    assert CliRunner().invoke(cli, ["ingest", str(source), "--store", store]).exit_code == 0
    stored = Store.open(store).matrix()
    for fmt, skip in [("glove", 0), ("word2vec", 1)]:
        for scale, expected in [("unit", stored), ("original", stored * Store.open(store).norms()[:, None])]:
            out = tmp_path / f"out.{fmt}.{scale}"
            result = CliRunner().invoke(cli, ["export", str(out), "--format", fmt, "--scale", scale, "--store", store])
            assert result.exit_code == 0, result.output
            lines = out.read_text().splitlines()[skip:]
            values = np.array([[np.float32(v) for v in line.split()[1:]] for line in lines], dtype=np.float32)
            np.testing.assert_array_equal(values, expected.astype(np.float32))
