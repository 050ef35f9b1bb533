"""fastText .bin models: a model trained here with the fastText library on real reviews, and the
small models gensim's test suite ships, read into stores whose vectors (of words in the vocabulary
and of words the model never saw) agree with fastText's own `get_word_vector`; every query verb
answering unknown words from their subwords; bad files refused with one Error line and nothing
written; and `export --format fasttext-bin` giving fastText back the same vectors."""

from __future__ import annotations

import json
import struct
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from simdex import Store
from simdex.cli import cli
from simdex.engine import packaged
from simdex.engine.training.labelled import tokenize
from simdex.engine.words.fasttext import MAGIC, read_model
from simdex.engine.words.ingest import ingest

from conftest import needs_root

fasttext = pytest.importorskip("fasttext")
fasttext.FastText.eprint = lambda *_: None  # its load warnings
UNSEEN = ["excelent", "unbelieveable", "moviegoer", "Ünïcödé", "приветик", "filmmmm"]


def gensim_data(name: str) -> str:
    from gensim.test.utils import datapath

    return datapath(name)


def train(method: str, data, out, quantize: bool = False, **params):
    """A model fastText trains on `data` and saves to `out`, loaded here.

    fasttext-modern 0.10's trainer appears to read memory it never initialised: in a process whose heap
    has been used (a pytest run, a second model) it fails within a fraction of a second with
    "Encountered NaN.", at any learning rate, while a fresh interpreter (memory from the OS comes
    zeroed) trains the same model every time. So each model is trained in a process of its own."""
    script = ("import fasttext, json, sys\n"
              "method, data, out, quantize, params = sys.argv[1:]\n"
              "model = getattr(fasttext, method)(data, **json.loads(params))\n"
              "if quantize == '1':\n"
              "    model.quantize(input=data, qnorm=True, retrain=False, cutoff=500)\n"
              "model.save_model(out)\n")
    done = subprocess.run([sys.executable, "-c", script, method, str(data), str(out), "1" if quantize else "0",
                           json.dumps(dict(params, verbose=0))], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return fasttext.load_model(str(out))


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row by row; two zero vectors (a word fastText never updated) count as agreeing."""
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    both_zero = (na < 1e-9) & (nb < 1e-9)
    return np.where(both_zero, 1.0, (a * b).sum(axis=1) / np.maximum(na * nb, 1e-12))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A skipgram model the fastText library trains on 3,000 packaged IMDB reviews, and a store of it."""
    root = tmp_path_factory.mktemp("fasttext")
    texts, _ = packaged.reviews("imdb")
    corpus = root / "corpus.txt"
    corpus.write_text("".join(" ".join(tokenize(text)) + "\n" for text in texts[:3000]))
    path = root / "reviews.bin"
    model = train("train_unsupervised", corpus, path, model="skipgram", dim=24, epoch=3, minCount=3, bucket=100_000,
                  thread=1)
    store = Store.create(root / "store")
    result = ingest(store, path)
    return model, path, store, result


def test_vectors_agree_with_fasttext_in_and_out_of_the_vocabulary(trained):
    model, _, store, result = trained
    assert (result.count, result.dim, result.subwords) == (len(model.words), 24, 100_000)
    assert store.keys() == list(model.words) and store.version.format == "fasttext-bin"
    ours = np.array(store.matrix()) * store.norms()[:, None]
    theirs = np.stack([model.get_word_vector(w) for w in model.words])
    assert cosines(ours, theirs).min() >= 0.9999
    np.testing.assert_allclose(store.norms(), np.linalg.norm(theirs, axis=1), rtol=1e-5)
    unseen = np.stack([store.subwords().vector(w) for w in UNSEEN])
    assert cosines(unseen, np.stack([model.get_word_vector(w) for w in UNSEEN])).min() >= 0.9999
    assert store.from_subwords(UNSEEN) == UNSEEN and store.from_subwords(["movie"]) == []
    # the same neighbours as fastText's own (by cosine over the vocabulary)
    for word in ["movie", "excelent", "actor"]:
        theirs = [w for _, w in model.get_nearest_neighbors(word, k=10)]
        assert [w for w, _ in store.neighbors(word, k=10)] == theirs
    # the buckets are read memory-mapped from the store's file, not loaded
    subwords = store.subwords()
    assert isinstance(subwords.buckets.base, np.memmap) or isinstance(subwords.buckets, np.memmap)
    assert subwords.buckets.shape == (100_000, 24)


@pytest.mark.parametrize("name, reference", [
    ("lee_fasttext_new.bin", "fasttext"), ("toy-model.bin", "fasttext"), ("crime-and-punishment.bin", "fasttext"),
    ("pang_lee_polarity_fasttext.bin", "fasttext"),  # supervised: its input vectors, no subwords
    ("lee_fasttext.bin", "gensim"), ("non_ascii_fasttext.bin", "gensim"),  # the old layout: fastText 0.9 refuses it
])
def test_the_models_gensim_ships(tmp_path, name, reference):
    path = gensim_data(name)
    store = Store.create(tmp_path / "s")
    ingest(store, path)
    model = read_model(path)  # (a word that is not UTF-8 is keyed escaped: neither reference finds it by that key)
    words = [w for w, raw in zip(store.keys(), model.raw_words) if raw == w.encode()]
    if reference == "fasttext":
        model = fasttext.load_model(path)
        vector = model.get_word_vector
    else:
        from gensim.models.fasttext import load_facebook_vectors

        kv = load_facebook_vectors(path)
        vector = kv.__getitem__
        words = [w for w in words if w != "</s>"]  # gensim gives EOS n-grams; fastText (initNgrams) gives it none
    ours = np.stack([store.vector(w) for w in words])
    assert cosines(ours, np.stack([vector(w) for w in words])).min() >= 0.9999
    if store.subwords() is not None:
        unseen = [w for w in UNSEEN if store.find(w) is None]
        assert cosines(np.stack([store.vector(w) for w in unseen]), np.stack([vector(w) for w in unseen])).min() \
            >= 0.9999
    else:
        assert name.startswith("pang_lee")


def test_a_model_of_non_utf8_text_is_hashed_from_its_bytes(tmp_path):
    """cp852_fasttext.bin was trained on cp852 text: simdex keys its undecodable words with
    backslash escapes, as gensim does, and hashes their n-grams from the bytes, as fastText does;
    gensim hashes the escaped keys instead, so the two agree on the decodable words only."""
    from gensim.models.fasttext import load_facebook_vectors

    path = gensim_data("cp852_fasttext.bin")
    store = Store.create(tmp_path / "s")
    ingest(store, path)
    assert store.version.metrics["undecodable"] == 69
    kv = load_facebook_vectors(path)
    plain = [w for w in store.keys() if w.isascii() and "\\x" not in w]
    assert len(plain) == 102 and set(store.keys()) == set(kv.key_to_index)
    assert cosines(np.stack([store.vector(w) for w in plain]), np.stack([kv[w] for w in plain])).min() >= 0.9999
    model = read_model(path)
    raw = dict(zip(model.words, model.raw_words))
    escaped = next(w for w in store.keys() if "\\x" in w)
    assert raw[escaped] == escaped.encode().decode("unicode_escape").encode("latin-1")


def test_every_verb_answers_unknown_words_from_their_subwords(trained):
    _, _, store, _ = trained
    runner = CliRunner()

    def run(*args):
        result = runner.invoke(cli, [*args, "--store", str(store.path), "--json"])
        assert result.exit_code == 0, result.output
        return [json.loads(line) for line in result.stdout.splitlines()]

    first = run("neighbors", "excelent", "-k", "3")[0]
    assert first["oov"] is True and first["oov_words"] == ["excelent"] and first["word"] != "excelent"
    assert run("neighbors", "movie", "-k", "1")[0].keys() == {"query", "rank", "word", "score"}
    assert run("neighbors", "excelent - bad + goood", "-k", "1")[0]["oov_words"] == ["excelent", "goood"]
    similar = run("similarity", "excelent", "excellent")[0]
    assert similar["oov"] is True and similar["score"] == pytest.approx(
        float(np.dot(store.vector("excelent"), store.vector("excellent"))), abs=1e-6)
    assert run("analogy", "man", "king", "womn", "-k", "1")[0]["oov_words"] == ["womn"]
    assert run("doesnt-match", "excelent", "wonderful", "terible")[0]["oov"] is True
    assert run("rank", "excelent", "excellent")[0]["rank"] >= 1
    assert run("similarity", "excelent + film", "great + movie")[0]["oov_words"] == ["excelent"]
    # evaluation skips unknown words (gensim's protocol) unless --oov
    plain, with_oov = run("eval", "pairs")[0], run("eval", "pairs", "--oov")[0]
    assert plain["oov"] > 0 and with_oov["pairs"] > plain["pairs"]
    # the explorer
    from starlette.testclient import TestClient

    from simdex.web.app import create_app

    with TestClient(create_app(str(store.path))) as client:
        answers = client.get("/api/neighbors", params={"q": "excelent", "k": 3}).json()
        assert answers[0]["oov"] is True
        assert client.get("/api/map", params={"q": "excelent", "k": 5}).json()["points"][0]["word"] == "excelent"


def test_a_store_without_subwords_keeps_the_unknown_word_error(tiny_store):
    result = CliRunner().invoke(cli, ["neighbors", "kng", "--store", str(tiny_store.path)])
    assert result.exit_code == 1 and result.stderr.startswith("Error: unknown word 'kng'") and "'king'" in \
        result.stderr


def broken(tmp_path, source, name, change) -> str:
    data = bytearray(open(source, "rb").read())
    change(data)
    path = tmp_path / name
    path.write_bytes(bytes(data))
    return str(path)


def test_bad_models_are_one_error_line_and_write_nothing(tmp_path, trained):
    _, path, _, _ = trained
    size = path.stat().st_size
    cases = {
        "truncated": (broken(tmp_path, path, "cut.bin", lambda d: d.__delitem__(slice(size // 2, None))),
                      "truncated"),
        "magic": (broken(tmp_path, path, "magic.bin", lambda d: d.__setitem__(slice(0, 4), struct.pack("<i", -7))),
                  "not a fastText model: magic number -7"),
        "bucket": (broken(tmp_path, path, "bucket.bin",  # the header's bucket count, which the matrix contradicts
                          lambda d: d.__setitem__(slice(40, 44), struct.pack("<i", 30_000))),
                   "the input matrix is"),
        "version": (broken(tmp_path, path, "v13.bin", lambda d: d.__setitem__(slice(4, 8), struct.pack("<i", 13))),
                    "fastText model version 13"),
    }
    assert struct.unpack("<i", open(path, "rb").read(4))[0] == MAGIC
    store = tmp_path / "store"
    runner = CliRunner()
    assert runner.invoke(cli, ["ingest", "--limit", "100", "--store", str(store)]).exit_code == 0
    for name, (bad, message) in cases.items():
        result = runner.invoke(cli, ["ingest", bad, "--store", str(store)])
        assert result.exit_code == 1 and result.stderr.startswith(f"Error: {bad}") and message in result.stderr, \
            (name, result.output)
        assert result.stderr.count("\n") == 1
    assert [v.version for v in Store.open(store).versions()] == [1]
    assert not [p for p in (store / "vectors").iterdir() if "subwords" in p.name or p.name.startswith(".tmp")]


@needs_root
def test_a_disk_that_fills_up_while_the_buckets_are_copied(small_disk, trained):
    """The n-gram buckets (9.6 MB) do not fit on a 2 MiB disk: one Error line naming the file and
    the disk's complaint, and the store as it was."""
    _, path, _, _ = trained
    store = small_disk / "store"
    runner = CliRunner()
    assert runner.invoke(cli, ["ingest", "--limit", "100", "--store", str(store)]).exit_code == 0
    result = runner.invoke(cli, ["ingest", str(path), "--store", str(store)])
    assert result.exit_code == 1 and result.stderr.startswith(f"Error: {store}") and result.stderr.count("\n") == 1, \
        result.output
    assert "No space left on device" in result.stderr and "(the store is unchanged)" in result.stderr
    assert [v.version for v in Store.open(store).versions()] == [1]
    assert sorted(p.name for p in (store / "vectors").iterdir()) == ["s1.safetensors"]


def test_a_quantised_model_is_refused(tmp_path):
    texts, labels = packaged.reviews("rotten_tomatoes")
    data = tmp_path / "train.txt"
    data.write_text("".join(f"__label__{y} {' '.join(tokenize(t))}\n" for t, y in zip(texts[:3000], labels[:3000])))
    ftz = tmp_path / "model.ftz"
    train("train_supervised", data, ftz, quantize=True, dim=16, epoch=1, bucket=2_000, minn=2, maxn=3)
    result = CliRunner().invoke(cli, ["ingest", str(ftz), "--format", "fasttext-bin", "--store", str(tmp_path / "s")])
    assert result.exit_code == 1 and "a quantised model (.ftz" in result.stderr, result.output


@pytest.mark.parametrize("scale", ["unit", "original"])
def test_export_gives_fasttext_the_same_vectors(tmp_path, trained, glove_store, scale):
    model, _, store, _ = trained
    out = tmp_path / "back.bin"
    result = CliRunner().invoke(cli, ["export", str(out), "--format", "fasttext-bin", "--scale", scale,
                                      "--store", str(store.path)])
    assert result.exit_code == 0, result.output
    back = fasttext.load_model(str(out))
    assert list(back.words) == store.keys()
    words = store.keys()[:500]
    expected = np.stack([model.get_word_vector(w) if scale == "original" else store.vector(w) for w in words])
    np.testing.assert_allclose(np.stack([back.get_word_vector(w) for w in words]), expected, atol=2e-5)
    # words outside the vocabulary keep the model's own subword vectors
    np.testing.assert_allclose(np.stack([back.get_word_vector(w) for w in UNSEEN]),
                               np.stack([model.get_word_vector(w) for w in UNSEEN]), atol=2e-5)
    if scale == "unit":  # a store without subwords: a model without them, each word its own row
        plain = tmp_path / "glove.bin"
        assert CliRunner().invoke(cli, ["export", str(plain), "--format", "fasttext-bin", "--store",
                                        str(glove_store.path)]).exit_code == 0
        glove = fasttext.load_model(str(plain))
        np.testing.assert_allclose(glove.get_word_vector("king"), glove_store.vector("king"), atol=1e-6)
        assert not np.any(glove.get_word_vector("excelent"))


def test_a_pushed_version_keeps_answering_from_its_subwords(tmp_path, trained):
    _, _, store, _ = trained
    address = f"milvus-lite://{tmp_path}/m.db/ft"
    runner = CliRunner()
    assert runner.invoke(cli, ["push", "--to", address, "--store", str(store.path)]).exit_code == 0
    remote = Store.open(address)
    np.testing.assert_allclose(remote.vector("excelent"), store.vector("excelent"), atol=1e-6)
    assert [w for w, _ in remote.neighbors("excelent", k=5, exact=True)] == \
        [w for w, _ in store.neighbors("excelent", k=5, exact=True)]
