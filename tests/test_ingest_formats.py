"""Every input format and container, on small files made here; what lands in the store."""

from __future__ import annotations

import bz2
import gzip
import struct
import zipfile

import numpy as np
import pytest
from numpy.testing import assert_allclose

from simdex import Store
from simdex.engine.words.ingest import ingest
from simdex.engine.words.parsers import ReadReport, read_text_careful
from simdex.engine.words.sources import open_source

from conftest import TINY, tiny_lines, write_text

WORDS = list(TINY)
RAW = np.array(list(TINY.values()), dtype=np.float32)
UNIT = RAW / np.linalg.norm(RAW, axis=1, keepdims=True)


def check_tiny(store, expected_format=None):
    assert store.keys() == WORDS
    assert_allclose(store.matrix(), UNIT, rtol=1e-6)
    assert_allclose(store.norms(), np.linalg.norm(RAW, axis=1), rtol=1e-6)
    if expected_format:
        assert store.version.format == expected_format


def word2vec_binary(path, vectors=TINY, newline=True):
    with open(path, "wb") as f:
        f.write(f"{len(vectors)} {len(next(iter(vectors.values())))}\n".encode())
        for word, vector in vectors.items():
            f.write(word.encode() + b" " + struct.pack(f"<{len(vector)}f", *vector) + (b"\n" if newline else b""))
    return path


def test_glove_text(store, tiny_glove):
    result = ingest(store, tiny_glove)
    assert (result.version, result.count, result.dim, result.skipped, result.duplicates) == (1, 6, 4, 0, 0)
    check_tiny(store, "glove")
    assert store.version.sha256 is not None and len(store.version.sha256) == 64


def test_word2vec_text(store, tmp_path):
    path = write_text(tmp_path / "w.txt", tiny_lines(), header="6 4")
    ingest(store, path)
    check_tiny(store, "word2vec")


def test_fasttext_vec_with_trailing_spaces(store, tmp_path):
    path = write_text(tmp_path / "wiki.vec", [line + " " for line in tiny_lines()], header="6 4")
    ingest(store, path)
    check_tiny(store, "fasttext")


@pytest.mark.parametrize("newline", [True, False])
def test_word2vec_binary(store, tmp_path, newline):
    ingest(store, word2vec_binary(tmp_path / "w.bin", newline=newline))
    check_tiny(store, "word2vec-binary")


@pytest.mark.parametrize("block", [16, 64, 1000])
def test_word2vec_binary_across_block_ends(tmp_path, monkeypatch, block):
    """The binary reader's block cut small: records straddle its ends, some words (up to 150
    bytes of UTF-8) are longer than the block itself, and a duplicate comes in a later block;
    what lands is what gensim reads from the same file."""
    from gensim.models import KeyedVectors

    from simdex.engine.words import parsers

    monkeypatch.setattr(parsers, "_BINARY_BLOCK", block)
    monkeypatch.setattr(parsers, "BATCH_LINES", 7)
    rng = np.random.default_rng(block)
    words = [("é" * int(rng.integers(1, 75)) if i % 9 == 0 else f"w{i}") + str(i) for i in range(60)]
    vectors = {word: rng.standard_normal(5).astype(np.float32).tolist() for word in words}
    path = word2vec_binary(tmp_path / "w.bin", vectors, newline=bool(block % 2))
    with open(path, "ab") as f:  # the first word again, with another vector: dropped and counted
        f.write(words[0].encode() + b" " + struct.pack("<5f", *range(5)) + b"\n")
    data = path.read_bytes().replace(b"60 5\n", b"61 5\n", 1)
    path.write_bytes(data)
    store = Store.create(tmp_path / "s")
    result = ingest(store, path)
    assert (result.count, result.duplicates) == (60, 1)
    reference = KeyedVectors.load_word2vec_format(str(path), binary=True)
    assert store.keys() == words == reference.index_to_key[:60]  # (gensim leaves a None for the duplicate)
    expected = np.array([reference.get_vector(word) for word in words])
    assert_allclose(store.matrix(), expected / np.linalg.norm(expected, axis=1, keepdims=True), rtol=1e-6, atol=1e-7)
    assert_allclose(store.norms(), np.linalg.norm(expected, axis=1), rtol=1e-6)


@pytest.mark.parametrize("opener", [gzip.open, bz2.open])
def test_compressed_text(store, tmp_path, opener):
    path = tmp_path / "tiny.txt.z"
    with opener(path, "wb") as f:
        f.write(("\n".join(tiny_lines()) + "\n").encode())
    result = ingest(store, path)
    check_tiny(store, "glove")
    assert store.version.config["compression"] == ("gz" if opener is gzip.open else "bz2")
    assert result.count == 6


def test_gzipped_binary(store, tmp_path):
    raw = word2vec_binary(tmp_path / "w.bin").read_bytes()
    path = tmp_path / "w.bin.gz"
    path.write_bytes(gzip.compress(raw))
    ingest(store, path)
    check_tiny(store, "word2vec-binary")


def test_zip_with_one_member_and_with_member_option(store, tmp_path):
    path = tmp_path / "glove.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("glove.tiny.txt", "\n".join(tiny_lines()) + "\n")
    ingest(store, path)
    check_tiny(store)
    two = tmp_path / "two.zip"
    with zipfile.ZipFile(two, "w") as archive:
        archive.writestr("a.txt", "\n".join(tiny_lines()) + "\n")
        archive.writestr("b.txt", "x 1 2\n")
    with pytest.raises(Exception, match="holds 2 files; pick one with --member"):
        ingest(store, two)
    ingest(store, two, member="a.txt")
    check_tiny(Store.open(store.path))


def test_limit_reads_the_first_n(store, tiny_glove):
    result = ingest(store, tiny_glove, limit=3)
    assert result.count == 3 and store.keys() == WORDS[:3]
    assert store.version.config["limit"] == 3


def test_limit_with_header_and_binary(store, tmp_path):
    ingest(store, word2vec_binary(tmp_path / "w.bin"), limit=2)
    assert Store.open(store.path).keys() == WORDS[:2]


def test_crlf_bom_trailing_spaces_and_blank_lines(store, tmp_path):
    lines = [line + "  " for line in tiny_lines()]
    lines.insert(2, "")
    lines.insert(4, "   ")
    path = tmp_path / "messy.txt"
    path.write_bytes(b"\xef\xbb\xbf" + ("\r\n".join(lines) + "\r\n\r\n").encode())
    result = ingest(store, path)
    assert result.skipped == 0
    check_tiny(store)


def test_words_with_spaces_take_everything_before_the_last_d_fields(store, tmp_path):
    # As in glove.840B.300d: most words have no spaces, a few do.
    lines = ["the 1 0 0", "a 0 0.2 1", "new york 0 1 0", ". . . 0 0 1", "at name@domain.com 1 1 0", "of 1 0 1"]
    ingest(store, write_text(tmp_path / "840b.txt", lines))
    assert store.keys() == ["the", "a", "new york", ". . .", "at name@domain.com", "of"]
    assert store.neighbors("new york", k=1)[0][0] == "at name@domain.com"


def test_duplicates_keep_the_first_and_are_counted(store, tmp_path):
    path = write_text(tmp_path / "dup.txt", ["a 1 0", "b 0 1", "a 0 1", "c 1 1", "b 1 0"])
    result = ingest(store, path)
    assert (result.count, result.duplicates) == (3, 2)
    assert store.keys() == ["a", "b", "c"]
    assert_allclose(store.matrix()[0], [1, 0])
    assert list(store.ranks().tolist()) == [1, 2, 4]


def test_zero_vectors_are_kept_and_never_nan(store, tmp_path):
    path = write_text(tmp_path / "zero.txt", ["a 1 0", "z 0 0", "b 1 1"])
    ingest(store, path)
    matrix = store.matrix()
    assert np.isfinite(matrix).all()
    assert_allclose(matrix[1], [0, 0])
    assert store.norms()[1] == 0.0
    assert store.similarity("a", "z") == 0.0
    assert [(w, round(s, 4)) for w, s in store.neighbors("a", k=2)] == [("b", 0.7071), ("z", 0.0)]


def test_one_vector_and_one_dimension(store, tmp_path):
    ingest(store, write_text(tmp_path / "one.txt", ["only -2.5"]))
    assert store.keys() == ["only"] and store.matrix().tolist() == [[-1.0]]
    assert store.neighbors("only") == []


def test_the_careful_reader_agrees_with_the_fast_one(store, tmp_path):
    rng = np.random.default_rng(0)
    vectors = {f"w{i}": rng.normal(size=7).round(5).tolist() for i in range(3000)}
    path = write_text(tmp_path / "r.txt", tiny_lines(vectors))
    ingest(store, path)
    fast = np.array(store.matrix())
    source = open_source(path)
    careful = np.concatenate([b.rows for b in read_text_careful(source, report=ReadReport())])
    assert_allclose(fast * store.norms()[:, None], careful, rtol=1e-5, atol=1e-6)


def test_formats_can_be_forced(store, tmp_path):
    # "2 3" as a first line looks like a header; --format glove reads it as a 1-d vector.
    path = write_text(tmp_path / "odd.txt", ["2 3", "x 4"])
    result = ingest(store, path, format="glove")
    assert result.count == 2 and store.keys() == ["2", "x"]


def test_real_glove_text_file(store, glove_text, glove_store):
    """The real glove.6B.50d.txt through the fast text path gives the packaged vectors."""
    result = ingest(store, glove_text)
    assert (result.count, result.dim, result.duplicates, result.skipped) == (400_000, 50, 0, 0)
    assert store.keys()[:5] == ["the", ",", ".", "of", "to"]
    assert_allclose(store.matrix()[::997], glove_store.matrix()[::997], atol=2e-6)
    assert store.analogy("man", "king", "woman")[0][0] == "queen"
