"""Shared fixtures: small hand-made vector files, and the real packaged GloVe (ingested once)."""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest

from simdex import Store
from simdex.engine.words.ingest import ingest


def write_text(path, lines, header=None, encoding="utf-8", newline="\n"):
    """A text vector file from `lines` (each "word v1 v2 ..."), with an optional "N D" header."""
    body = ([header] if header else []) + list(lines)
    path.write_bytes(newline.join(body).encode(encoding) + newline.encode())
    return path


TINY = {  # 4-d vectors with known geometry
    "king": [1.0, 1.0, 0.0, 0.0],
    "queen": [1.0, 0.0, 1.0, 0.0],
    "man": [0.0, 1.0, 0.0, 0.1],
    "woman": [0.0, 0.0, 1.0, 0.1],
    "prince": [0.9, 1.0, 0.1, 0.0],
    "apple": [0.0, 0.0, 0.0, 1.0],
}


def tiny_lines(vectors=TINY):
    return [f"{w} " + " ".join(f"{x:g}" for x in v) for w, v in vectors.items()]


@pytest.fixture
def tiny_glove(tmp_path):
    return write_text(tmp_path / "tiny.txt", tiny_lines())


@pytest.fixture
def store(tmp_path):
    return Store.create(tmp_path / "store")


@pytest.fixture
def tiny_store(store, tiny_glove):
    ingest(store, tiny_glove)
    return store


@pytest.fixture(scope="session")
def glove_store(tmp_path_factory):
    """The real packaged GloVe 6B 50d (400,000 x 50) in a store, ingested once per session."""
    path = tmp_path_factory.mktemp("glove") / "store"
    ingest(Store.create(path), None)
    return Store.open(path)


@pytest.fixture(scope="session")
def glove_kv():
    """gensim's KeyedVectors over the same packaged vectors: the reference."""
    from gensim.models import KeyedVectors

    from simdex.engine import packaged

    words, matrix, _ = packaged.load()
    kv = KeyedVectors(vector_size=matrix.shape[1], dtype=np.float32)
    kv.add_vectors(words, np.asarray(matrix))
    return kv


@pytest.fixture(scope="session")
def glove_text(tmp_path_factory):
    """The packaged vectors written once as a real glove.6B.50d.txt (171 MB)."""
    from simdex.engine import packaged

    return packaged.write_glove_text(tmp_path_factory.mktemp("glove_text") / "glove.6B.50d.txt")


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs (a small disk, read-only media) needs root")


@pytest.fixture
def small_disk(tmp_path):
    """A real 2 MiB file system, unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)
