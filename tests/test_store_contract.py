"""Every backend answers the read side of the Store contract (engine/store.py) alike: the same
word and sentence versions in a local store and in milvus-lite give the same keys, rows, norms,
ranks, lookups and exact answers; both write a version through the writer every backend has."""

from __future__ import annotations

import numpy as np
import pytest

from simdex import Store
from simdex.engine import LocalStore, MilvusStore, UnknownWord
from simdex.engine.backends.transfer import copy_version
from simdex.engine.sentences.encode import encode_input
from simdex.engine.store import VersionWriter, backend_for
from simdex.engine.words.ingest import ingest

ROWS = 2000
TEXTS = ["a gripping thriller with a twist", "a dull and lifeless comedy", "the soup was cold",
         "a moving story of two brothers", "an exciting heist film", "the service was slow"]
BACKENDS = ["local", "milvus-lite"]


@pytest.fixture(scope="module")
def words(tmp_path_factory):
    root = tmp_path_factory.mktemp("contract")
    local = Store.create(root / "local")
    ingest(local, None, limit=ROWS)
    address = f"milvus-lite://{root}/contract.db/words"
    copy_version(local, Store.create(address))
    return {"local": Store.open(root / "local"), "milvus-lite": Store.open(address)}


@pytest.fixture(scope="module")
def sentences(tmp_path_factory):
    root = tmp_path_factory.mktemp("contract_sentences")
    csv = root / "texts.csv"
    csv.write_text("id,text\n" + "".join(f"r{i},{text}\n" for i, text in enumerate(TEXTS)))
    local = Store.create(root / "local")
    encode_input(local, str(csv), id_column="id")
    address = f"milvus-lite://{root}/contract.db/sentences"
    copy_version(local, Store.create(address))
    return {"local": Store.open(root / "local"), "milvus-lite": Store.open(address)}


def test_every_backend_provides_the_whole_contract():
    assert {"keys", "matrix", "vectors", "versions", "searcher", "new_version", "find"} <= Store.__abstractmethods__
    for backend in (LocalStore, MilvusStore):
        assert backend.__abstractmethods__ == frozenset(), backend
    assert backend_for("some/path") is LocalStore and backend_for("name") is LocalStore
    assert backend_for("milvus://host:19530/x") is MilvusStore and backend_for("milvus-lite://a.db/x") is MilvusStore


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_read_side_of_a_word_store(words, backend):
    store, reference = words[backend], words["local"]
    assert store.location.endswith("words") if backend != "local" else store.location == str(reference.path)
    version = store.version
    assert (version.version, version.kind, version.count, version.dim) == (1, "words", ROWS, 50)
    assert [v.version for v in store.versions()] == [1] and store.current_version() == 1
    assert store.get_version(1).count == ROWS
    assert store.keys() == reference.keys()
    assert store.id_of("king") == reference.id_of("king") and store.keys_of([7, 3]) == reference.keys_of([7, 3])
    assert "king" in store.close_spellings("kign")
    np.testing.assert_array_equal(store.matrix(), reference.matrix())
    np.testing.assert_array_equal(np.asarray(store.vectors()[[5, 1, 5]]), reference.matrix()[[5, 1, 5]])
    np.testing.assert_array_equal(store.norms(), reference.norms())
    np.testing.assert_array_equal(store.norms_of([9, 2]), reference.norms()[[9, 2]])
    np.testing.assert_array_equal(store.ranks(), reference.ranks())
    np.testing.assert_allclose(store.tensor("cpu").numpy(), reference.matrix())
    assert store.info()["current"] == 1 and store.index_state() is None
    with pytest.raises(UnknownWord) as unknown:
        store.id_of("kingg")
    assert "king" in unknown.value.suggestions
    # the verbs, written once over the primitives, give the same answers exactly
    mine, theirs = store.neighbors("king", k=10, exact=True), reference.neighbors("king", k=10, exact=True)
    assert [w for w, _ in mine] == [w for w, _ in theirs]
    np.testing.assert_allclose([s for _, s in mine], [s for _, s in theirs], atol=1e-6)
    assert [w for w, _ in store.analogy("man", "king", "woman", k=3, exact=True, method="mul")] == \
        [w for w, _ in reference.analogy("man", "king", "woman", k=3, exact=True, method="mul")]
    assert store.similarity("city", "town") == pytest.approx(reference.similarity("city", "town"), abs=1e-6)
    assert store.doesnt_match(["monday", "tuesday", "car", "friday"])[0] == "car"
    assert store.rank("paris", "london") == reference.rank("paris", "london")


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_read_side_of_a_sentence_store(sentences, backend):
    store, reference = sentences[backend], sentences["local"]
    assert (store.version.kind, store.version.count) == ("sentences", len(TEXTS))
    assert store.keys() == TEXTS
    assert store.row_of_text("the soup was cold") == 2 and store.row_of_text("not stored") is None
    assert store.row_of_external_id("r4") == 4 and store.row_of_external_id("r99") is None
    assert store.external_ids([3, 0]) == ["r3", "r0"]
    found = store.search_many(["a tense crime movie"], k=3, exact=True)[0]
    assert [hit[:2] for hit in found] == [hit[:2] for hit in reference.search_many(["a tense crime movie"], k=3,
                                                                                     exact=True)[0]]
    assert found[0][1] == "a gripping thriller with a twist" and found[0][0] == "r0"


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_backend_writes_a_version_through_its_writer(tmp_path, backend):
    location = tmp_path / "w" if backend == "local" else f"milvus-lite://{tmp_path}/w.db/w"
    rows = np.eye(4, dtype=np.float32)
    with Store.create(location) as store:
        writer = store.new_version(kind="words", dim=4, source="test")
        assert isinstance(writer, VersionWriter)
        with writer:
            writer.append(rows, ["a", "b", "c", "d"], np.ones(4), np.arange(1, 5))
            assert writer.count == 4
            made = writer.commit()
        assert made.version == 1 and store.current_version() == 1
        with pytest.raises(RuntimeError), store.new_version(kind="words", dim=4) as failing:
            failing.append(rows, ["e", "f", "g", "h"], np.ones(4), np.arange(1, 5))
            raise RuntimeError("interrupted")
    reopened = Store.open(location)
    assert [v.version for v in reopened.versions()] == [1] and reopened.keys() == ["a", "b", "c", "d"]
    assert reopened.neighbors("a", k=1, exact=True)[0][0] in {"b", "c", "d"}
