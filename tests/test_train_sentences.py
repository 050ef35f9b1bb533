"""The sentiment trainer on a sentence store: the packaged all-MiniLM-L6-v2 fine-tuned on real Rotten
Tomatoes sentences (a few hundred, one short epoch: the machinery, not the accuracy, which
benchmarks/bench_train.py measures), the model folder it keeps, the re-encoded version, search
and predict with the new encoder, `use` going back, the frozen baseline, exact resume, the
index, and a Milvus store told what to do."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from simdex import Store
from simdex.cli import cli
from simdex.engine import packaged
from simdex.engine.errors import BadOption
from simdex.engine.progress import Progress
from simdex.engine.sentences.encode import encode_input
from simdex.engine.training.config import EncoderTrainConfig
from simdex.engine.training.labelled import held_out
from simdex.engine.training.predict import predict
from simdex.engine.training.train import train_sentiment

N = 200


@pytest.fixture(scope="module")
def reviews(tmp_path_factory):
    """N Rotten Tomatoes sentences as a labelled CSV and as a text file to encode."""
    texts, labels = packaged.reviews("rotten_tomatoes")
    pick = np.random.default_rng(3).choice(len(texts), N, replace=False)
    texts, labels = [texts[i].strip() for i in pick], labels[pick]
    root = tmp_path_factory.mktemp("rt")
    csv = root / "rt.csv"
    with open(csv, "w", encoding="utf-8") as f:
        f.write("text,label\n" + "".join(f'"{t.replace(chr(34), chr(39))}",{y}\n' for t, y in zip(texts, labels)))
    lines = root / "rt.txt"
    lines.write_text("".join(t.replace('"', "'") + "\n" for t in texts))
    return [t.replace('"', "'") for t in texts], labels, csv, lines


def fresh_store(tmp_path, lines):
    store = Store.create(tmp_path / "sentences")
    encode_input(store, str(lines))
    return store


def quick(**overrides):
    return EncoderTrainConfig(**{"epochs": 1, "batch_size": 16, "max_length": 32, "lr": 1e-4, "soup": 1, **overrides})


def test_the_encoder_is_fine_tuned_kept_re_encoded_and_searched_with(tmp_path, reviews):
    texts, labels, csv, lines = reviews
    store = Store.create(tmp_path / "sentences")
    encode_input(store, str(csv), fields="label")  # the texts keep their labels, to filter on
    from simdex.indexes import build_index

    build_index(store, kind="flat")
    before = np.array(store.matrix())
    result = train_sentiment(store, str(csv), config=quick())
    assert (result.kind, result.version, result.parent) == ("sentences", 2, 1)
    assert result.index.action == "rebuilt" and store.index_state()["version"] == 2
    assert 0.5 <= result.val_accuracy <= 1 and 0.5 <= result.frozen_accuracy <= 1
    version = store.version
    assert version.config["model"] == result.encoder and result.encoder.startswith("store:models/encoder-")
    folder = store.stored_file(result.encoder[len("store:"):])
    assert (folder / "model.safetensors").is_file() and (folder / "modules.json").is_file()

    # every text re-encoded: the new rows are the new encoder's vectors, and they moved
    after = np.array(store.matrix())
    assert after.shape == before.shape and not np.allclose(after, before)
    np.testing.assert_allclose(np.linalg.norm(after, axis=1), 1.0, rtol=1e-5)
    assert [s.keys for s in store.segments()] == [s.keys for s in Store.open(store.path, version=1).segments()]

    # the folder loads in transformers and sentence-transformers, with the store's vectors
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel

    AutoModel.from_pretrained(folder)
    st = SentenceTransformer(str(folder), device="cpu").encode(texts[:5], normalize_embeddings=True)
    np.testing.assert_allclose((st * after[:5]).sum(axis=1), 1.0, atol=1e-4)
    # search encodes queries with the fine-tuned encoder
    np.testing.assert_allclose(store.encode([texts[7]])[0], after[7], atol=1e-5)
    assert store.search(texts[7], k=1)[0][0] == texts[7]
    # the new version keeps the texts' fields
    assert store.fields() == {"label": "integer"}
    hits = store.hits([texts[7]], k=10, where=f"label = {1 - labels[7]}")[0]
    assert len(hits) == 10 and all(hit.fields["label"] == 1 - labels[7] for hit in hits)

    report = result.report
    assert set(report["label_agreement_at_10"]) == {"before", "after"}
    assert 0 < report["mean_cosine_to_parent"] < 1 and len(report["neighbours"]) == 3
    assert report["accuracy"]["frozen"]["accuracy"] == pytest.approx(result.frozen_accuracy)
    assert store.version.metrics["label_agreement_at_10"] == report["label_agreement_at_10"]

    # predict reads the store's encoder and the head exactly as validation did
    val = np.flatnonzero(held_out(labels, 0.2, 0))
    guessed = np.array([int(p.label) for p in predict(store, [texts[i] for i in val])])
    assert float((guessed == labels[val]).mean()) == pytest.approx(result.val_accuracy, abs=1e-9)

    # `use 1` goes back to the old model and vectors together
    store.set_current(1)
    old = Store.open(store.path)
    assert old.encoder().folder.label == "packaged:all-MiniLM-L6-v2"
    np.testing.assert_allclose(old.encode([texts[7]])[0], before[7], atol=1e-5)


def test_frozen_baseline_and_compare_freeze(tmp_path, reviews):
    _, _, csv, lines = reviews
    store = fresh_store(tmp_path, lines)
    frozen = train_sentiment(store, str(csv), config=quick(freeze=True))
    assert frozen.version is None and frozen.val_accuracy == frozen.frozen_accuracy and "frozen" in frozen.note
    assert len(store.versions()) == 1
    assert predict(store, ["a dull, lifeless mess"])[0].label in ("0", "1")
    result = CliRunner().invoke(cli, ["train", "sentiment", str(csv), "--store", str(store.path), "--epochs", "1",
                                      "--batch-size", "16", "--max-length", "32", "--compare-freeze"])
    assert result.exit_code == 0, result.output
    header, accuracy = result.stdout.splitlines()[:2]
    assert header.split() == ["frozen", "fine-tuned"] and accuracy.startswith("val_accuracy")
    assert "every text re-encoded with the fine-tuned encoder" in result.stdout
    assert "a soup of 3 runs averaged into one model; each alone: validation accuracy" in result.stdout


class Interrupt(Exception):
    pass


def test_an_interrupted_run_resumes_to_the_same_model(tmp_path, reviews):
    _, _, csv, lines = reviews
    straight = fresh_store(tmp_path / "a", lines)
    done = train_sentiment(straight, str(csv), config=quick(epochs=2))

    store = fresh_store(tmp_path / "b", lines)

    def stop_in_epoch_2(label, position, shown):
        if label.startswith("epoch 2/") and position:
            raise Interrupt

    with pytest.raises(Interrupt):
        train_sentiment(store, str(csv), config=quick(epochs=2), progress=Progress.calling(stop_in_epoch_2))
    assert len(Store.open(store.path).versions()) == 1 and (store.path / "train" / "checkpoint.pt").exists()
    resumed = train_sentiment(store, str(csv), config=quick(epochs=2), resume=True)
    assert resumed.val_accuracy == done.val_accuracy
    np.testing.assert_array_equal(np.array(store.matrix()), np.array(straight.matrix()))


def test_a_soup_averages_its_runs_and_resumes_between_and_inside_them(tmp_path, reviews):
    """A soup's first run is the single run; the kept encoder is the average of its runs' weights;
    a run interrupted inside its second member, then again while averaging, resumes to the same model
    as an uninterrupted one."""
    import torch
    from safetensors.torch import load_file

    _, _, csv, lines = reviews
    single = train_sentiment(fresh_store(tmp_path / "single", lines), str(csv), config=quick(epochs=2))
    straight = fresh_store(tmp_path / "a", lines)
    done = train_sentiment(straight, str(csv), config=quick(epochs=2, soup=2))
    assert len(done.soup_members) == 2 and done.best_epoch is None and done.epochs == sum(
        m["epochs"] for m in done.soup_members)
    assert done.soup_members[0]["val_accuracy"] == single.val_accuracy
    assert straight.version.metrics["soup_members"] == done.soup_members

    store = fresh_store(tmp_path / "b", lines)
    kept = store.path / "train"

    def stop_at(prefix):
        def stop(label, position, shown):
            if label.startswith(prefix) and position:
                raise Interrupt
        return Progress.calling(stop)

    with pytest.raises(Interrupt):  # inside the second run: the first is kept, the second's checkpoint
        train_sentiment(store, str(csv), config=quick(epochs=2, soup=2), progress=stop_at("member 2/2: epoch 2/"))
    assert (kept / "member-0.pt").exists() and not (kept / "member-1.pt").exists()
    with pytest.raises(Interrupt):  # while averaging: both runs kept
        train_sentiment(store, str(csv), config=quick(epochs=2, soup=2), resume=True,
                        progress=stop_at("averaging"))
    members = [torch.load(kept / f"member-{m}.pt", weights_only=False)["state"] for m in (0, 1)]
    assert len(Store.open(store.path).versions()) == 1
    resumed = train_sentiment(store, str(csv), config=quick(epochs=2, soup=2), resume=True)
    assert resumed.val_accuracy == done.val_accuracy and resumed.soup_members == done.soup_members
    np.testing.assert_array_equal(np.array(store.matrix()), np.array(straight.matrix()))
    assert not list(kept.glob("member-*.pt")) and not (kept / "checkpoint.pt").exists()
    weights = load_file(store.stored_file(resumed.encoder[len("store:"):]) / "model.safetensors")
    name = "encoder.layer.5.output.dense.weight"
    assert not torch.equal(members[0]["encoder." + name], members[1]["encoder." + name])
    torch.testing.assert_close(weights[name], (members[0]["encoder." + name] + members[1]["encoder." + name]) / 2)


def test_word_options_are_refused_and_a_milvus_store_is_told_what_to_do(tmp_path, reviews):
    _, _, csv, lines = reviews
    store = fresh_store(tmp_path, lines)
    runner = CliRunner()
    refused = runner.invoke(cli, ["train", "sentiment", str(csv), "--store", str(store.path), "--ngrams"])
    assert refused.exit_code == 1 and "--ngrams: only for word stores" in refused.output, refused.output
    address = f"milvus-lite://{tmp_path}/m.db/reviews"
    assert runner.invoke(cli, ["push", "--to", address, "--store", str(store.path)]).exit_code == 0
    remote = runner.invoke(cli, ["train", "sentiment", str(csv), "--store", address, "--json"])
    assert remote.exit_code == 1 and "work in one" in remote.output and "simdex pull" in remote.output, remote.output
    assert json.loads(runner.invoke(cli, ["info", "--json", "--store", address]).stdout)["current"] == 1


def test_the_contrastive_term_draws_one_labels_texts_together(tmp_path, reviews):
    """The supervised contrastive term is smaller where texts of one label sit together than where
    they are mixed, matches its definition worked by hand, and its weight is checked."""
    import math

    import torch

    from simdex.engine.training.encoder import supervised_contrastive

    target = torch.tensor([0, 0, 1, 1])
    apart = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]], dtype=torch.float64)
    mixed = apart[[0, 2, 1, 3]]
    assert supervised_contrastive(apart, target, 0.1) < supervised_contrastive(mixed, target, 0.1)
    # apart: each text's one positive at cosine 1, its two negatives at 0
    by_hand = -math.log(math.exp(10) / (math.exp(10) + 2))
    assert supervised_contrastive(apart, target, 0.1).item() == pytest.approx(by_hand, rel=1e-5)
    _, _, csv, lines = reviews
    store = fresh_store(tmp_path, lines)
    refused = CliRunner().invoke(cli, ["train", "sentiment", str(csv), "--store", str(store.path),
                                       "--contrastive", "1"])
    assert refused.exit_code == 1 and "Error: --contrastive must be in [0, 1), got 1.0" in refused.output, \
        refused.output
    no_runs = CliRunner().invoke(cli, ["train", "sentiment", str(csv), "--store", str(store.path), "--soup", "0"])
    assert no_runs.exit_code == 2 and "Error: Invalid value for '--soup'" in no_runs.output, no_runs.output
    with pytest.raises(BadOption, match="--soup must be at least 1, got 0"):
        quick(soup=0).check()
    assert store.version.number == 1
