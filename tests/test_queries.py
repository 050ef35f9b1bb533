"""Exact neighbours, expressions, analogies and similarity: hand-made cases with known answers,
then the real packaged GloVe against gensim's KeyedVectors on the same vectors."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from simdex.engine import BadQuery, EmptyStore, Store, StoreNotFound, UnknownVersion, UnknownWord, query
from simdex.engine.words.ingest import ingest

from conftest import write_text


def test_neighbors_exact_order_on_hand_made_vectors(tiny_store):
    answers = tiny_store.neighbors("king", k=3)
    assert [w for w, _ in answers] == ["prince", "man", "queen"]
    assert_allclose([s for _, s in answers], [1.9 / np.sqrt(2 * 1.82), 1 / np.sqrt(2 * 1.01), 0.5], rtol=1e-6)


def test_analogy_add_and_mul_on_hand_made_vectors(tiny_store):
    assert tiny_store.analogy("man", "king", "woman", k=1)[0][0] == "queen"
    assert tiny_store.analogy("man", "king", "woman", k=1, method="mul")[0][0] == "queen"
    # the three question words are never answers
    assert {w for w, _ in tiny_store.analogy("man", "king", "woman", k=10)} == {"queen", "prince", "apple"}


def test_expression_equals_analogy(tiny_store):
    assert tiny_store.neighbors("king - man + woman", k=3) == tiny_store.analogy("man", "king", "woman", k=3)


def test_restrict_searches_only_the_first_n_rows(tiny_store):
    assert [w for w, _ in tiny_store.neighbors("king", k=10, restrict=3)] == ["man", "queen"]


def test_k_larger_than_the_vocabulary(tiny_store):
    assert len(tiny_store.neighbors("king", k=100)) == 5


def test_similarity(tiny_store):
    assert tiny_store.similarity("king", "queen") == pytest.approx(0.5, abs=1e-7)
    assert tiny_store.similarity("king", "king") == pytest.approx(1.0, abs=1e-6)


def test_neighbors_of_vector(tiny_store):
    assert tiny_store.neighbors_of_vector([0, 0, 0, 5], k=1)[0][0] == "apple"
    with pytest.raises(ValueError, match="dimension 4"):
        tiny_store.neighbors_of_vector([1, 2, 3])


def test_unknown_word_offers_close_spellings(tiny_store):
    with pytest.raises(UnknownWord) as info:
        tiny_store.neighbors("qeen")
    assert str(info.value) == "unknown word 'qeen': not in the vocabulary; did you mean 'queen'?"
    with pytest.raises(UnknownWord, match="did you mean 'king'"):
        tiny_store.similarity("King", "queen")


@pytest.mark.parametrize("text, message", [
    ("", "empty query"),
    ("king -", "ends with an operator"),
    ("king + - man", "two operators in a row"),
    ("- man", "no positive term"),
])
def test_malformed_expressions(text, message):
    with pytest.raises(BadQuery, match=message):
        query.parse_expression(text)


def test_expression_parsing():
    assert query.parse_expression("king - man + woman") == (["king", "woman"], ["man"])
    assert query.parse_expression("x-ray + new york") == (["x-ray", "new york"], [])
    assert query.parse_expression("- man + king") == (["king"], ["man"])


def test_search_matches_a_brute_force_reference():
    rng = np.random.default_rng(0)
    xb = query.normalize(rng.normal(size=(2000, 16)))
    xq = query.normalize(rng.normal(size=(37, 16)))
    D, I = query.search(xb, xq, 10)
    reference = np.argsort(-(xq @ xb.T), axis=1, kind="stable")[:, :10]
    assert_array_equal(I, reference)
    assert_allclose(D, np.take_along_axis(xq @ xb.T, reference, axis=1), rtol=1e-6)


def test_store_errors(tmp_path, tiny_store):
    with pytest.raises(StoreNotFound, match="no simdex store here"):
        Store.open(tmp_path / "nothing")
    empty = Store.create(tmp_path / "empty")
    with pytest.raises(EmptyStore):
        empty.neighbors("king")
    with pytest.raises(UnknownVersion, match="no version 7 \\(versions: 1\\)"):
        Store.open(tiny_store.path, version=7)


def test_versions_are_kept_and_readable(tiny_store, tmp_path):
    ingest(tiny_store, write_text(tmp_path / "v2.txt", ["king 0 1", "queen 1 0"]))
    assert Store.open(tiny_store.path).version.dim == 2
    old = Store.open(tiny_store.path, version=1)
    assert old.version.dim == 4 and old.neighbors("king", k=1)[0][0] == "prince"


# -- the real packaged GloVe 6B 50d, against gensim -----------------------------------------------

def test_glove_answers_the_readme_questions(glove_store):
    assert glove_store.analogy("man", "king", "woman")[0][0] == "queen"
    assert "toad" in [w for w, _ in glove_store.neighbors("frog")]
    assert glove_store.neighbors("king - man + woman", k=1)[0][0] == "queen"


def sample_words(kv, n=40, seed=7):
    rng = np.random.default_rng(seed)
    return [kv.index_to_key[i] for i in rng.choice(50_000, size=n, replace=False)]


def test_neighbors_agree_with_gensim(glove_store, glove_kv):
    for word in sample_words(glove_kv):
        ours = glove_store.neighbors(word, k=10)
        theirs = glove_kv.most_similar(word, topn=10)
        assert [w for w, _ in ours] == [w for w, _ in theirs], word
        assert_allclose([s for _, s in ours], [s for _, s in theirs], atol=1e-5)


def test_restricted_neighbors_agree_with_gensim(glove_store, glove_kv):
    for word in sample_words(glove_kv, n=10, seed=8):
        ours = glove_store.neighbors(word, k=10, restrict=30_000)
        theirs = glove_kv.most_similar(word, topn=10, restrict_vocab=30_000)
        assert [w for w, _ in ours] == [w for w, _ in theirs], word


def test_analogies_agree_with_gensim(glove_store, glove_kv):
    words = sample_words(glove_kv, n=60, seed=9)
    for a, b, c in zip(words[0::3], words[1::3], words[2::3]):
        ours = glove_store.analogy(a, b, c, k=10)
        theirs = glove_kv.most_similar(positive=[b, c], negative=[a], topn=10)
        assert [w for w, _ in ours] == [w for w, _ in theirs], (a, b, c)
        assert_allclose([s for _, s in ours], [s for _, s in theirs], atol=1e-5)
        ours = glove_store.analogy(a, b, c, k=10, method="mul")
        theirs = glove_kv.most_similar_cosmul(positive=[b, c], negative=[a], topn=10)
        assert [w for w, _ in ours] == [w for w, _ in theirs], (a, b, c)
        assert_allclose([s for _, s in ours], [s for _, s in theirs], atol=1e-5)


def test_similarity_agrees_with_gensim(glove_store, glove_kv):
    words = sample_words(glove_kv, n=40, seed=10)
    for a, b in zip(words[0::2], words[1::2]):
        assert glove_store.similarity(a, b) == pytest.approx(float(glove_kv.similarity(a, b)), abs=1e-6)
