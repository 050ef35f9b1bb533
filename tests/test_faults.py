"""Faults that come from the machine, made as a user's machine makes them: a disk that fills up,
read-only media, a directory this user may not write, too many open files, a vanished file,
a killed build. Each is one `Error:` line naming the file, and the store as it was.

The full disk and the read-only volume are real tmpfs mounts, which need root (CI runs as
root); elsewhere those tests are skipped with the reason."""

from __future__ import annotations

import gc
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from simdex.cli import cli
from simdex.engine import Store, StoreFault, StoreReadOnly, UnknownVersion
from simdex.engine.words.ingest import ingest

from conftest import needs_root, write_text

ROOT = Path(__file__).resolve().parent.parent


def invoke(*args, store):
    return CliRunner().invoke(cli, [*args, "--store", str(store)], catch_exceptions=False)


def big_glove(path, rows=30_000, dim=50):
    """A real GloVe text file whose version needs more than 2 MiB (6 MB of vectors)."""
    rng = np.random.default_rng(0)
    lines = [f"w{i} " + " ".join(f"{x:.4f}" for x in row) for i, row in enumerate(rng.normal(size=(rows, dim)))]
    return write_text(path, lines)


def assert_one_error_line(result, *fragments):
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


@needs_root
def test_a_disk_that_fills_up_during_an_ingest(small_disk, tmp_path, tiny_glove):
    store = small_disk / "store"
    assert invoke("ingest", str(tiny_glove), store=store).exit_code == 0
    result = invoke("ingest", str(big_glove(tmp_path / "big.txt")), store=store)
    assert_one_error_line(result, "No space left on device", "(the store is unchanged)")
    reopened = Store.open(store)
    assert [v.version for v in reopened.versions()] == [1]
    assert reopened.neighbors("king", k=1)[0][0] == "prince"
    assert sorted(p.name for p in (store / "vectors").iterdir()) == ["s1.safetensors"]


@needs_root
def test_a_store_on_read_only_media_answers_and_refuses_writes(small_disk, tiny_glove):
    store = small_disk / "store"
    assert invoke("ingest", str(tiny_glove), store=store).exit_code == 0
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    answer = invoke("neighbors", "king", "-k", "1", store=store)
    assert answer.exit_code == 0 and answer.stdout == "king\n   1  prince  0.9959\n"
    assert invoke("analogy", "man", "king", "woman", "-k", "1", store=store).exit_code == 0
    assert invoke("info", store=store).exit_code == 0
    assert Store.open(store).similarity("king", "queen") == pytest.approx(0.5)
    message = "the store is read-only (read-only file system): queries work, writes cannot"
    for args in (["ingest", str(tiny_glove)], ["use", "1"], ["index", "build", "--kind", "flat"]):
        assert_one_error_line(invoke(*args, store=store), str(store), message)
    with pytest.raises(StoreReadOnly):
        Store.open(store).set_current(1)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                    reason="root without its permission override needs root and setpriv")
def test_a_store_this_user_may_not_write(tiny_glove, tmp_path):
    """A store whose files this user may read but not write (root without CAP_DAC_OVERRIDE
    stands in for another user): queries answer, writes refuse."""
    store = tmp_path / "store"
    ingest(Store.create(store), tiny_glove)
    Store.open(store).close()  # leaves no -wal / -shm files
    for path in [store, *store.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    script = ("import sys; from click.testing import CliRunner; from simdex.cli import cli; "
              "r = CliRunner().invoke(cli, sys.argv[1:]); "
              "sys.stdout.write(r.stdout); sys.stderr.write(r.stderr); sys.exit(r.exit_code)")
    drop = "-dac_override,-dac_read_search"

    def unprivileged(*args):
        return subprocess.run(["setpriv", f"--inh-caps={drop}", f"--bounding-set={drop}", "--",
                               sys.executable, "-c", script, *args, "--store", str(store)],
                              cwd=ROOT, capture_output=True, text=True)

    try:
        answer = unprivileged("neighbors", "king", "-k", "1")
        assert answer.returncode == 0, answer.stderr
        assert answer.stdout == "king\n   1  prince  0.9959\n"
        refused = unprivileged("use", "1")
        assert refused.returncode == 1 and refused.stdout == ""
        assert refused.stderr == (f"Error: {store}: the store is read-only (permission denied: {store}): queries "
                                  f"work, writes cannot\n")
    finally:
        for path in [store, *store.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)


def test_too_many_open_files_is_one_error_line(tiny_glove, tmp_path):
    store = tmp_path / "store"
    ingest(Store.create(store), tiny_glove)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    runner = CliRunner()
    gc.collect()
    used = max(int(fd) for fd in os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (used + 1, hard))
    filler = []
    try:
        while True:  # take the free descriptors below the limit too
            filler.append(os.open(os.devnull, os.O_RDONLY))
    except OSError:
        pass
    try:
        result = runner.invoke(cli, ["neighbors", "king", "--store", str(store)])
    finally:
        for fd in filler:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert_one_error_line(result, str(store / "store.db"))
    assert invoke("neighbors", "king", "-k", "1", store=store).exit_code == 0


def test_a_failed_statement_never_leaves_the_write_lock_held(tiny_store):
    tiny_store.conn.execute("CREATE TRIGGER sabotage BEFORE INSERT ON meta BEGIN SELECT RAISE(ABORT, 'boom'); END")
    with pytest.raises(sqlite3.IntegrityError):
        tiny_store.set_current(1)
    assert not tiny_store.conn.in_transaction
    other = sqlite3.connect(tiny_store.path / "store.db", isolation_level=None, timeout=0.1)
    other.execute("BEGIN IMMEDIATE")  # the lock is free
    other.execute("ROLLBACK")
    # a version writer whose commit fails (a duplicated key breaks the vocabulary's unique index)
    with pytest.raises(sqlite3.IntegrityError):
        with tiny_store.new_version(kind="words", dim=2) as writer:
            writer.append(np.eye(2, dtype=np.float32), ["a", "a"], [1, 1], [1, 2])
            writer.commit()
    assert not tiny_store.conn.in_transaction
    assert [v.version for v in Store.open(tiny_store.path).versions()] == [1]
    assert sorted(p.name for p in (tiny_store.path / "vectors").iterdir()) == ["s1.safetensors"]


def open_database_files(path) -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith(str(path / "store.db")):
                count += 1
        except OSError:
            pass
    return count


def test_opening_a_bad_version_closes_its_connection(tiny_store):
    tiny_store.close()  # no other connection here (SQLite keeps a closed file open while one is)
    assert open_database_files(tiny_store.path) == 0
    with pytest.raises(UnknownVersion) as info:
        Store.open(tiny_store.path, version=9)
    assert info.value is not None  # the traceback (and its frames) are still alive here
    assert open_database_files(tiny_store.path) == 0


def test_a_killed_index_build_leaves_no_temporary_file(tiny_store):
    from simdex.indexes import build_index

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    directory = tiny_store.path / "indexes"
    directory.mkdir(exist_ok=True)
    leftover = directory / f".tmp-{dead.pid}-0123456789abcdef.faiss"
    leftover.write_bytes(b"half an index")
    alive = directory / f".tmp-{os.getpid()}-fedcba9876543210.faiss"  # a build still running here
    alive.write_bytes(b"")
    build_index(tiny_store, kind="flat")
    names = sorted(p.name for p in directory.iterdir())
    assert names == sorted([alive.name, "v1-1.faiss"])


def test_a_vanished_index_file_searches_exactly_with_a_notice(tiny_store):
    from simdex.indexes import build_index

    build_index(tiny_store, kind="flat")
    os.remove(tiny_store.path / "indexes" / "v1-1.faiss")
    result = invoke("neighbors", "king", "-k", "1", store=tiny_store.path)
    assert result.exit_code == 0 and result.stdout == "king\n   1  prince  0.9959\n"
    assert result.stderr.startswith("notice: the index file ") and "is missing: searching exactly" in result.stderr


def test_a_store_directory_that_is_a_file(tmp_path):
    path = tmp_path / "file"
    path.write_text("not a store")
    assert_one_error_line(invoke("ingest", store=path), f"{path}: exists and is not a directory")
    assert_one_error_line(invoke("info", store=path), f"{path}: not a directory")


def test_a_damaged_database_is_one_error_line(tiny_store):
    (tiny_store.path / "store.db").write_bytes(b"this is not SQLite" * 100)
    for name in ("store.db-wal", "store.db-shm"):
        (tiny_store.path / name).unlink(missing_ok=True)
    result = invoke("neighbors", "king", store=tiny_store.path)
    assert_one_error_line(result, str(tiny_store.path / "store.db"))
    with pytest.raises(StoreFault):
        Store.open(tiny_store.path)
