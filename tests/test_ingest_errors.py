"""Bad input: one clear error naming the file, the line and the problem, and the store unchanged.
And atomicity: a failure, a Ctrl-C or a kill in the middle of an ingest leaves the old version."""

from __future__ import annotations

import gzip
import os
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from simdex.engine import BadVectorFile, Store
from simdex.engine.progress import Progress
from simdex.engine.words.ingest import ingest

from conftest import tiny_lines, write_text

GOOD = tiny_lines()  # six 4-d lines


def error_of(store, path, **options) -> str:
    with pytest.raises(BadVectorFile) as info:
        ingest(store, path, **options)
    return str(info.value)


def assert_unchanged(store, versions_before):
    """No new version, no stray rows, no stray files; the old current version still answers."""
    reopened = Store.open(store.path)
    assert [v.version for v in reopened.versions()] == versions_before
    known = set(versions_before)
    assert {row[0] for row in reopened.conn.execute("SELECT DISTINCT segment FROM vocab")} <= known
    files = sorted(p.name for p in (store.path / "vectors").iterdir())
    assert files == [f"s{n}.safetensors" for n in versions_before]
    if versions_before:
        assert reopened.current_version() == versions_before[-1]
        assert reopened.neighbors("king", k=1)[0][0] == "prince"


@pytest.mark.parametrize("line, problem", [
    ("bad 1 2 3", "expected a word and 4 values, found 3 values"),
    ("bad 1 2 3 4 5", "expected a word and 4 values, found 5 values"),
    ("bad 1 2 abc 4", "non-numeric value 'abc'"),
    ("bad 1 nan 3 4", "NaN or infinite value"),
    ("bad 1 2 -inf 4", "NaN or infinite value"),
    ("bad", "expected a word and 4 values, found 0 values"),
])
def test_a_bad_line_names_file_line_and_problem(tiny_store, tmp_path, line, problem):
    path = write_text(tmp_path / "bad.txt", GOOD[:3] + [line] + GOOD[3:])
    assert error_of(tiny_store, path) == f"{path}, line 4: {problem}"
    assert_unchanged(tiny_store, [1])


def test_undecodable_bytes(tiny_store, tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes(("\n".join(GOOD[:2]) + "\n").encode() + b"caf\xe9 1 2 3 4\n")
    assert error_of(tiny_store, path) == f"{path}, line 3: undecodable bytes (not UTF-8) at column 4"
    assert_unchanged(tiny_store, [1])


def test_header_disagreeing_with_the_body(tiny_store, tmp_path):
    fewer = write_text(tmp_path / "fewer.txt", GOOD, header="8 4")
    assert error_of(tiny_store, fewer) == f"{fewer}: the header says 8 vectors but the file holds 6"
    more = write_text(tmp_path / "more.txt", GOOD, header="2 4")
    assert error_of(tiny_store, more) == f"{more}, line 4: more vectors than the header's count of 2"
    wrong_dim = write_text(tmp_path / "dim.txt", GOOD, header="6 5")
    assert error_of(tiny_store, wrong_dim) == f"{wrong_dim}, line 2: expected a word and 5 values, found 4 values"
    assert_unchanged(tiny_store, [1])


def test_empty_and_blank_files(store, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    assert error_of(store, empty) == f"{empty}: empty file"
    blank = tmp_path / "blank.txt"
    blank.write_bytes(b"\n \n\n")
    assert error_of(store, blank) == f"{blank}: empty file (no vectors)"
    assert store.versions() == []


def test_missing_path_and_directory(store, tmp_path):
    assert error_of(store, tmp_path / "nope.txt") == f"{tmp_path / 'nope.txt'}: no such file"
    assert error_of(store, tmp_path) == f"{tmp_path}: is a directory, not a vector file"


def test_truncated_gzip(tiny_store, tmp_path):
    rng = np.random.default_rng(1)
    lines = [f"w{i} " + " ".join(f"{x:.5f}" for x in rng.normal(size=4)) for i in range(50_000)]
    data = gzip.compress(("\n".join(lines) + "\n").encode())
    path = tmp_path / "cut.txt.gz"
    path.write_bytes(data[: len(data) // 2])
    message = error_of(tiny_store, path)
    assert message.startswith(f"{path}: truncated or corrupt gz data after line ")
    assert_unchanged(tiny_store, [1])


def test_truncated_binary(tiny_store, tmp_path):
    path = tmp_path / "cut.bin"
    records = b"".join(w.encode() + b" " + struct.pack("<4f", 1, 2, 3, 4) + b"\n" for w in ["a", "b", "c"])
    path.write_bytes(b"3 4\n" + records[:-10])
    assert error_of(tiny_store, path) == f"{path}: truncated: the header says 3 vectors, the file ends inside vector 3"
    assert_unchanged(tiny_store, [1])


def test_skip_mode_counts_and_names_the_first_lines(store, tmp_path):
    lines = GOOD[:2] + ["x 1 2", "y 1 2 3 q"] + GOOD[2:4] + ["z nan 1 1 1"] + GOOD[4:]
    result = ingest(store, write_text(tmp_path / "s.txt", lines), on_error="skip")
    assert (result.count, result.skipped) == (6, 3)
    assert result.first_skipped == ["line 3", "line 4", "line 7"]
    assert store.version.metrics["first_skipped"] == ["line 3", "line 4", "line 7"]


def test_a_bad_line_deep_in_a_large_file_changes_nothing(tiny_store, tmp_path):
    rng = np.random.default_rng(2)
    lines = [f"w{i} " + " ".join(f"{x:.5f}" for x in rng.normal(size=4)) for i in range(120_000)]
    lines[110_000] = "w110000 1 2 3"
    path = write_text(tmp_path / "big.txt", lines)
    assert error_of(tiny_store, path) == f"{path}, line 110001: expected a word and 4 values, found 3 values"
    assert_unchanged(tiny_store, [1])


def test_ctrl_c_in_the_middle_changes_nothing(tiny_store, tmp_path):
    rng = np.random.default_rng(3)
    lines = [f"w{i} " + " ".join(f"{x:.5f}" for x in rng.normal(size=4)) for i in range(200_000)]
    path = write_text(tmp_path / "big.txt", lines)

    def interrupt(label, done, shown):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ingest(tiny_store, path, progress=Progress.calling(interrupt))
    assert_unchanged(tiny_store, [1])


def test_a_killed_ingest_leaves_the_old_version_answering(tiny_store, tmp_path):
    rng = np.random.default_rng(4)
    lines = [f"w{i} " + " ".join(f"{x:.5f}" for x in rng.normal(size=4)) for i in range(200_000)]
    path = write_text(tmp_path / "big.txt", lines)
    script = textwrap.dedent(f"""
        import os, signal
        from simdex.engine import Store
        from simdex.engine.progress import Progress
        from simdex.engine.words.ingest import ingest
        def die(label, done, shown):
            if shown["vectors"] > 50_000:
                os.kill(os.getpid(), signal.SIGKILL)
        ingest(Store.open({str(tiny_store.path)!r}), {str(path)!r}, progress=Progress.calling(die))
    """)
    process = subprocess.run([sys.executable, "-c", script], cwd=os.getcwd())
    assert process.returncode == -9
    reopened = Store.open(tiny_store.path)
    assert reopened.current_version() == 1
    assert reopened.neighbors("king", k=1)[0][0] == "prince"
    # the killed writer's partial matrix is cleaned up by the next writer, which succeeds
    result = ingest(reopened, path)
    assert result.version == 2 and result.count == 200_000
    assert sorted(p.name for p in (tiny_store.path / "vectors").iterdir()) == ["s1.safetensors", "s2.safetensors"]


def test_errors_come_in_file_order(tiny_store, tmp_path):
    # a bad number (found when its batch is parsed) before a bad shape (found as it is read)
    path = write_text(tmp_path / "order.txt", GOOD[:1] + ["x 1 abc 3 4", GOOD[1], "y 1 2"] + GOOD[2:])
    assert error_of(tiny_store, path) == f"{path}, line 2: non-numeric value 'abc'"
    result = ingest(tiny_store, path, on_error="skip")
    assert result.first_skipped == ["line 2", "line 4"] and result.count == 6


def test_bad_binary_records(store, tmp_path):
    def record(word: bytes, *values):
        return word + b" " + struct.pack("<4f", *values) + b"\n"

    path = tmp_path / "bad.bin"
    path.write_bytes(b"4 4\n" + record(b"a", 1, 0, 0, 0) + record(b"b", 1, float("nan"), 0, 0)
                     + record(b"c\xff", 0, 1, 0, 0) + record(b"d", 0, 0, 1, 0))
    assert error_of(store, path) == f"{path}: vector 2: NaN or infinite value"
    result = ingest(store, path, on_error="skip")
    assert (result.count, result.skipped, result.first_skipped) == (2, 2, ["vector 2", "vector 3"])
    assert store.keys() == ["a", "d"]
    extra = tmp_path / "extra.bin"
    extra.write_bytes(b"1 4\n" + record(b"a", 1, 0, 0, 0) + record(b"b", 0, 1, 0, 0))
    assert error_of(store, extra) == f"{extra}: more data after the 1 vectors the header announces"
