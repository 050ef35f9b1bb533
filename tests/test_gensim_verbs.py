"""gensim's doesnt_match, rank and n_similarity: by hand on tiny vectors, then against gensim on
the packaged GloVe 6B 50d, through the Python API and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from simdex.cli import cli
from simdex.engine import BadQuery, UnknownWord


def run(store, *args):
    return CliRunner().invoke(cli, [*args, "--store", str(store.path)])


def test_doesnt_match_by_hand(tiny_store):
    # king, queen, prince share their first axis; apple shares nothing
    words = ["king", "queen", "prince", "apple"]
    unit = tiny_store.matrix()[tiny_store.ids_of(words)]
    mean = unit.mean(axis=0) / np.linalg.norm(unit.mean(axis=0))
    assert tiny_store.doesnt_match(words) == ("apple", pytest.approx(float(unit[3] @ mean), abs=1e-6))
    assert min(unit[:3] @ mean) > unit[3] @ mean
    with pytest.raises(BadQuery, match="at least two words"):
        tiny_store.doesnt_match(["king"])
    with pytest.raises(UnknownWord, match="'kng'"):
        tiny_store.doesnt_match(["king", "kng"])


def test_rank_by_hand(tiny_store):
    # king's neighbours: prince 0.996, man 0.704, queen 0.5, then woman and apple
    assert [tiny_store.rank("king", w) for w in ("prince", "man", "queen")] == [1, 2, 3]
    assert tiny_store.rank("king", "apple") == 4  # woman and apple tie at 0: neither is closer


def test_n_similarity_by_hand(tiny_store):
    # gensim averages the vectors as given (not unit length): king (1,1,0,0) + queen (1,0,1,0)
    first = np.array([2.0, 1.0, 1.0, 0.0])
    second = np.array([0.0, 1.0, 0.0, 0.1])
    expected = float(first @ second / np.linalg.norm(first) / np.linalg.norm(second))
    assert tiny_store.n_similarity(["king", "queen"], ["man"]) == pytest.approx(expected, abs=1e-6)
    assert tiny_store.similarity("king + queen", "man") == pytest.approx(expected, abs=1e-6)
    assert tiny_store.similarity("king", "queen") == pytest.approx(0.5)
    with pytest.raises(BadQuery, match="malformed set of words"):
        tiny_store.similarity("king + ", "man")


def test_cli_verbs(tiny_store):
    result = run(tiny_store, "doesnt-match", "king", "queen", "prince", "apple", "--json")
    assert result.exit_code == 0, result.output
    [record] = [json.loads(line) for line in result.stdout.splitlines()]
    assert list(record) == ["words", "word", "score"]
    assert (record["words"], record["word"]) == (["king", "queen", "prince", "apple"], "apple")
    assert run(tiny_store, "rank", "king", "man", "--json").stdout == '{"a": "king", "b": "man", "rank": 2}\n'
    assert run(tiny_store, "rank", "king", "man").stdout == "king  man  2\n"
    result = run(tiny_store, "similarity", "king + queen", "man", "--json")
    assert json.loads(result.stdout)["a"] == "king + queen"
    missing = run(tiny_store, "rank", "king", "mna")
    assert missing.exit_code == 1 and missing.stderr.startswith("Error: unknown word 'mna'")


# -- against gensim on the real vectors --------------------------------------------------------

def sample_words(store, n, seed):
    rng = np.random.default_rng(seed)
    keys = store.keys()
    return [keys[i] for i in rng.choice(20_000, size=n, replace=False)]


def test_doesnt_match_agrees_with_gensim(glove_store, glove_kv):
    rng = np.random.default_rng(1)
    assert glove_store.doesnt_match("breakfast cereal dinner lunch".split())[0] == \
        glove_kv.doesnt_match("breakfast cereal dinner lunch".split()) == "cereal"
    for _ in range(100):
        words = sample_words(glove_store, int(rng.integers(3, 7)), int(rng.integers(1 << 30)))
        assert glove_store.doesnt_match(words)[0] == glove_kv.doesnt_match(words), words


def test_rank_agrees_with_gensim(glove_store, glove_kv):
    rng = np.random.default_rng(2)
    words = sample_words(glove_store, 30, 3)
    for word in words:
        neighbours = [w for w, _ in glove_store.neighbors(word, k=50, exact=True)]
        far = sample_words(glove_store, 1, int(rng.integers(1 << 30)))[0]
        for other in [neighbours[0], neighbours[9], neighbours[49], far]:
            assert glove_store.rank(word, other) == glove_kv.rank(word, other), (word, other)


def test_n_similarity_agrees_with_gensim(glove_store, glove_kv):
    rng = np.random.default_rng(4)
    for seed in range(50):
        words = sample_words(glove_store, int(rng.integers(2, 8)), seed)
        half = len(words) // 2
        ours = glove_store.n_similarity(words[:half], words[half:])
        assert ours == pytest.approx(float(glove_kv.n_similarity(words[:half], words[half:])), abs=2e-6)
