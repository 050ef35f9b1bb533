"""The sentiment trainer on word stores: a tiny data set with a known answer, the real IMDB reviews
for a short smoke run, the tie, the n-gram features and the sentence head as options, lineage and
`use`, resume, interruption, bad inputs, and `simdex predict`. (Sentence stores:
tests/test_train_sentences.py.)"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner

from simdex import Store
from simdex.cli import cli
from simdex.engine.progress import Progress
from simdex.engine.training.train import TrainConfig, train_sentiment
from simdex.engine.words.ingest import ingest

from conftest import write_text

POSITIVE = ["good", "great", "superb", "lovely", "fine", "brilliant"]
NEGATIVE = ["bad", "awful", "dreadful", "poor", "dull", "terrible"]
NEUTRAL = ["movie", "film", "plot", "actor", "scene", "story", "music", "ending", "cast", "script", "camera",
           "dialogue"]


def tiny_sentiment_store(tmp_path, unseen=()):
    """8-d vectors where each positive word lies next to its negative antonym (as in GloVe), and
    the `unseen` words (which no review uses) at random."""
    rng = np.random.default_rng(1)
    lines = []
    for good, bad in zip(POSITIVE, NEGATIVE):
        base = rng.normal(size=8)
        for word in (good, bad):
            lines.append(f"{word} " + " ".join(f"{x:.6f}" for x in base + 0.2 * rng.normal(size=8)))
    for word in NEUTRAL + list(unseen):
        lines.append(f"{word} " + " ".join(f"{x:.6f}" for x in rng.normal(size=8)))
    store = Store.create(tmp_path / "store")
    ingest(store, write_text(tmp_path / "vectors.txt", lines))
    return store


def tiny_reviews(path, n=400, seed=0):
    """Texts of neutral words and one or two polar words; the label is their polarity."""
    rng = np.random.default_rng(seed)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["review", "sentiment"])
        for i in range(n):
            label = i % 2
            polar = list(rng.choice(POSITIVE if label else NEGATIVE, size=rng.integers(1, 3)))
            words = polar + list(rng.choice(NEUTRAL, size=4))
            rng.shuffle(words)
            writer.writerow([" ".join(words), "pos" if label else "neg"])
    return path


def cosine(store, a, b):
    return float(np.dot(store.matrix()[store.id_of(a)], store.matrix()[store.id_of(b)]))


def tiny_config(**overrides):
    """Antonyms start side by side here, so the rows must move far: a loose tie."""
    return TrainConfig(**{"epochs": 8, "lr": 1e-2, "embedding_lr": 3.0, "batch_size": 16, "tie": 1.0, **overrides})


def test_the_classifier_learns_and_polar_words_move_apart(tmp_path):
    store = tiny_sentiment_store(tmp_path)
    data = tiny_reviews(tmp_path / "reviews.csv")
    before = {(a, b): cosine(store, a, b) for a, b in [("good", "bad"), ("good", "great"), ("awful", "dreadful")]}
    result = train_sentiment(store, str(data), text_column="review", label_column="sentiment", config=tiny_config())
    assert result.val_accuracy >= 0.95
    assert (result.version, result.parent) == (2, 1) and store.version.version == 2
    assert result.vocabulary == 24 and result.new_words == 0
    after = {pair: cosine(store, *pair) for pair in before}
    assert after[("good", "bad")] < before[("good", "bad")] - 0.1  # antonyms pushed apart
    assert after[("good", "great")] > before[("good", "great")]    # same polarity pulled together
    assert after[("awful", "dreadful")] > before[("awful", "dreadful")]
    assert abs(cosine(store, "movie", "film") - float(np.dot(*Store.open(store.path, version=1).matrix()[[12, 13]]))) \
        < 0.05  # a neutral word barely moves
    assert result.polarity and not result.ngrams and result.sentence_head_accuracy is None
    polarity = result.report["polarity_step"]
    assert polarity["polar_words"] == 12 and polarity["strength"] in [s for s, _ in polarity["strength_curve"]]
    assert polarity["same_polarity_share_after"] >= polarity["same_polarity_share_before"]
    np.testing.assert_allclose(np.linalg.norm(store.matrix(), axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(store.norms(), Store.open(store.path, version=1).norms())  # original norms kept


def test_the_polarity_probe_carries_to_words_the_reviews_never_use(tmp_path):
    """The reviews use none of these words; the probe in the sentence encoder's space still gives
    them their polarity, so each moves towards the polar words of its own side. The encodings
    are cached in the store, and a second run reads them instead of encoding again."""
    unseen_positive, unseen_negative = ["wonderful", "excellent", "delightful"], ["horrible", "dismal", "atrocious"]
    store = tiny_sentiment_store(tmp_path, unseen_positive + unseen_negative)
    data = tiny_reviews(tmp_path / "reviews.csv")

    def leaning(s, word):  # mean cosine to the positive words minus mean cosine to the negative ones
        return np.mean([cosine(s, word, p) for p in POSITIVE]) - np.mean([cosine(s, word, n) for n in NEGATIVE])

    # the same run without the step: the step's own contribution is the difference
    without = tiny_sentiment_store(tmp_path / "without", unseen_positive + unseen_negative)
    train_sentiment(without, str(data), text_column="review", label_column="sentiment",
                    config=tiny_config(polarity=False))
    # (here training alone already sorts the 12 polar words, so the held-out ones leave the
    # strength nothing to gain: it is given)
    result = train_sentiment(store, str(data), text_column="review", label_column="sentiment",
                             config=tiny_config(polarity_strength=0.3))
    shift = {w: leaning(store, w) - leaning(without, w) for w in unseen_positive + unseen_negative}
    assert min(shift[w] for w in unseen_positive) > 0.02 and max(shift[w] for w in unseen_negative) < -0.02, shift
    assert np.mean([shift[w] for w in unseen_positive]) > 0.05 > -0.05 > np.mean([shift[w] for w in unseen_negative])
    assert min(leaning(store, w) for w in unseen_positive) > max(leaning(store, w) for w in unseen_negative)
    polarity = result.report["polarity_step"]
    # 2 of the 12 polar words held out of the probe to choose the strength on; 30 words scored
    assert (polarity["probe_words"], polarity["probe_held_out_words"], polarity["scored_words"]) == (10, 2, 30)
    assert polarity["strength"] == 0.3
    cached = list((store.path / "train").glob("word-encodings-*.npy"))
    assert len(cached) == 1 and np.load(cached[0]).shape == (30, 384)

    store.set_current(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("simdex.engine.sentences.model.Encoder.load",
                      lambda *a, **k: pytest.fail("the words were encoded again"))
        again = train_sentiment(store, str(data), text_column="review", label_column="sentiment",
                                config=tiny_config(polarity_strength=0.3))
    assert again.report["polarity_step"] == polarity


def test_lineage_use_and_predict(tmp_path):
    store = tiny_sentiment_store(tmp_path)
    data = tiny_reviews(tmp_path / "reviews.csv")
    runner = CliRunner()
    env = {"SIMDEX_STORE": str(store.path)}
    result = runner.invoke(cli, ["train", "sentiment", str(data), "--text-column", "review", "--label-column",
                                 "sentiment", "--epochs", "8", "--lr", "0.01", "--batch-size", "16", "--tie", "1",
                                 "--json"], env=env)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["version"] == 2 and record["parent"] == 1 and record["model"] == "bag"
    versions = [json.loads(line) for line in runner.invoke(cli, ["versions", "--json"], env=env).stdout.splitlines()]
    assert [(v["version"], v["parent"], v["current"]) for v in versions] == [(1, None, False), (2, 1, True)]
    metrics = versions[1]["metrics"]
    assert metrics["val_accuracy"] == record["val_accuracy"] and "drift" in metrics and "polarity_step" in metrics
    assert metrics["knowledge"]["parent"]["analogies"] is None  # 24 words: no analogy question applies
    assert set(metrics["lexicons"]) == {"vader", "afinn"}
    trained = Store.open(store.path)
    assert [s.keys for s in trained.segments()] == [s.keys for s in Store.open(store.path, version=1).segments()]

    predicted = runner.invoke(cli, ["predict", "a superb lovely film", "a dreadful dull plot", "--json"], env=env)
    assert predicted.exit_code == 0, predicted.output
    rows = [json.loads(line) for line in predicted.stdout.splitlines()]
    assert [(r["text"], r["label"]) for r in rows] == [("a superb lovely film", "pos"), ("a dreadful dull plot", "neg")]
    assert all(0.5 < r["probability"] <= 1 for r in rows)
    texts = tmp_path / "texts.txt"
    texts.write_text("a superb lovely film\n\na dreadful dull plot\n")
    from_file = runner.invoke(cli, ["predict", "--file", str(texts)], env=env)
    assert from_file.exit_code == 0 and [line.split()[0] for line in from_file.stdout.splitlines()] == ["pos", "neg"]

    assert runner.invoke(cli, ["use", "1"], env=env).exit_code == 0
    assert Store.open(store.path).version.version == 1
    missing = runner.invoke(cli, ["predict", "a superb film"], env=env)
    assert missing.exit_code == 1 and "no classifier for version 1" in missing.output


def test_the_index_is_rebuilt_and_compare_freeze_prints_both(tmp_path):
    store = tiny_sentiment_store(tmp_path)
    data = str(tiny_reviews(tmp_path / "reviews.csv"))
    runner = CliRunner()
    env = {"SIMDEX_STORE": str(store.path)}
    assert runner.invoke(cli, ["index", "build", "--kind", "flat"], env=env).exit_code == 0
    result = runner.invoke(cli, ["train", "sentiment", data, "--text-column", "review", "--label-column",
                                 "sentiment", "--epochs", "8", "--lr", "0.01", "--batch-size", "16", "--tie", "1",
                                 "--compare-freeze"], env=env)
    assert result.exit_code == 0, result.output
    header, accuracy = result.stdout.splitlines()[:2]
    assert header.split() == ["frozen", "fine-tuned"] and accuracy.startswith("val_accuracy")
    frozen, tuned = map(float, accuracy.split()[1:])
    assert tuned > frozen + 0.05  # the tutorial's exercise: antonyms start side by side, only fine-tuning parts them
    assert "frozen: the word vectors did not change" in result.stdout
    assert "the flat index was rebuilt for version 2" in result.stderr
    info = json.loads(runner.invoke(cli, ["info", "--json"], env=env).stdout)
    assert info["current"] == 2 and info["index"]["version"] == 2 and not info["index"]["stale"]


def test_the_python_api_keeps_the_index_in_step_as_the_cli_does(tmp_path):
    from simdex.indexes import build_index

    store = tiny_sentiment_store(tmp_path)
    build_index(store, kind="flat")
    result = train_sentiment(store, str(tiny_reviews(tmp_path / "reviews.csv")), text_column="review",
                             label_column="sentiment", config=tiny_config())
    assert result.index.action == "rebuilt" and result.index.built.version == result.version == 2
    assert store.index_state()["version"] == 2 and not store.index_state()["stale"]
    assert store.searcher() is not None and store.notice is None


def test_frozen_and_random_runs_write_no_version(tmp_path):
    store = tiny_sentiment_store(tmp_path)
    data = str(tiny_reviews(tmp_path / "reviews.csv"))
    frozen = train_sentiment(store, data, text_column="review", label_column="sentiment",
                             config=tiny_config(freeze=True))
    assert frozen.version is None and "frozen" in frozen.note and store.version.version == 1
    assert len(store.versions()) == 1
    custom = train_sentiment(store, data, text_column="review", label_column="sentiment",
                             config=tiny_config(init="random", dim=16))
    assert custom.version is None and "16-d" in custom.note and len(store.versions()) == 1
    assert custom.val_accuracy > 0.9


def test_same_seed_same_numbers(tmp_path):
    data = str(tiny_reviews(tmp_path / "reviews.csv"))
    runs = []
    for name in ("a", "b"):
        store = tiny_sentiment_store(tmp_path / name)
        result = train_sentiment(store, data, text_column="review", label_column="sentiment", config=tiny_config())
        runs.append((result.val_accuracy, np.array(store.matrix())))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


class Interrupt(Exception):
    pass


def test_interrupted_training_leaves_the_store_and_resumes_to_the_same_result(tmp_path):
    data = str(tiny_reviews(tmp_path / "reviews.csv"))
    straight = tiny_sentiment_store(tmp_path / "straight")
    train_sentiment(straight, data, text_column="review", label_column="sentiment", config=tiny_config())

    store = tiny_sentiment_store(tmp_path / "interrupted")

    def stop_in_epoch_3(label, done, shown):
        if label.startswith("epoch 3/") and done:
            raise Interrupt

    with pytest.raises(Interrupt):
        train_sentiment(store, data, text_column="review", label_column="sentiment", config=tiny_config(),
                        progress=Progress.calling(stop_in_epoch_3))
    assert store.version.version == 1 and len(Store.open(store.path).versions()) == 1
    assert (store.path / "train" / "checkpoint.pt").exists()
    other = tiny_config(seed=5)
    with pytest.raises(Exception, match="checkpoint is for other config"):
        train_sentiment(store, data, text_column="review", label_column="sentiment", config=other, resume=True)
    resumed = train_sentiment(store, data, text_column="review", label_column="sentiment", config=tiny_config(),
                              resume=True)
    assert resumed.version == 2 and not (store.path / "train" / "checkpoint.pt").exists()
    np.testing.assert_array_equal(np.array(store.matrix()), np.array(Store.open(straight.path).matrix()))


def test_new_words_join_with_add_new_words(tmp_path):
    store = tiny_sentiment_store(tmp_path)
    data = tmp_path / "reviews.csv"
    tiny_reviews(data)
    text = data.read_text().replace("superb", "splendiferous")
    data.write_text(text)
    result = train_sentiment(store, str(data), text_column="review", label_column="sentiment",
                             config=tiny_config(add_new_words=True))
    assert result.new_words == 1
    assert store.keys()[-1] == "splendiferous" and store.version.count == 25
    assert len(store.segments()) == 2  # the parent's words, then the new one


@pytest.mark.parametrize("content, options, message", [
    ("text,sentiment\ngood film,pos\n", ["--label-column", "stars"], "no column 'stars' for --label-column"),
    ("review,label\ngood film,pos\n", [], "no column 'text' (columns: review, label; pick one with --text-column)"),
    ("text,label\ngood film,pos\nbad film,neg\nfine film,meh\n", [], "labels must be two classes; found 3"),
    ("text,label\ngood film,pos\n,neg\n", [], "line 3: empty text"),
    ("text,label\ngood film,pos\ngood film,pos\n", [], "found only 'pos'"),
])
def test_bad_labelled_files(tmp_path, content, options, message):
    store = tiny_sentiment_store(tmp_path)
    data = tmp_path / "bad.csv"
    data.write_text(content)
    result = CliRunner().invoke(cli, ["train", "sentiment", str(data), "--store", str(store.path), *options])
    assert result.exit_code == 1 and result.output.startswith("Error: ") and message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert len(Store.open(store.path).versions()) == 1


@pytest.mark.parametrize("args, message", [
    (["--dataset", "yelp"], "unknown dataset 'yelp'"),
    ([], "give a DATA file or --dataset"),
    (["--dataset", "imdb", "--model", "transformer"], "--model"),
    (["--dataset", "imdb", "--dim", "100"], "--dim is for --init random"),
    (["--dataset", "imdb", "--max-length", "64"], "--max-length: only for sentence stores"),
    (["--dataset", "imdb", "--model", "cnn", "--ngrams"], "--ngrams is for --model bag"),
])
def test_bad_options(tmp_path, args, message):
    store = tiny_sentiment_store(tmp_path)
    result = CliRunner().invoke(cli, ["train", "sentiment", *args, "--store", str(store.path)])
    assert result.exit_code != 0 and message in result.output, result.output
    assert len(Store.open(store.path).versions()) == 1


def test_the_tie_holds_rows_back_and_resume_is_checked_before_training(tmp_path):
    data = str(tiny_reviews(tmp_path / "reviews.csv"))
    moved = {}
    for tie in (0.0, 10.0, 1e6):
        store = tiny_sentiment_store(tmp_path / f"tie{tie}")
        original = np.array(store.matrix())
        train_sentiment(store, data, text_column="review", label_column="sentiment",
                        config=tiny_config(tie=tie, polarity=False, embedding_lr=30.0))
        moved[tie] = float((np.array(store.matrix()) * original).sum(axis=1).mean())
    assert moved[10.0] > moved[0.0] + 0.05, moved  # tied rows stay nearer to where they started
    # the tie's step is exact: lr x tie far past where a gradient step on it would overshoot and
    # diverge (here 30 x 1e6 x a row's share of the batch), and the rows stay where they started
    assert moved[1e6] > 0.9999, moved
    store = tiny_sentiment_store(tmp_path / "resume")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("simdex.engine.training.words.WordData.__init__",
                      lambda *a, **k: pytest.fail("the data was prepared before the resume check"))
        with pytest.raises(Exception, match="no checkpoint to resume from"):
            train_sentiment(store, data, text_column="review", label_column="sentiment", config=tiny_config(),
                            resume=True)


def test_imdb_smoke_run_on_real_reviews_and_glove(tmp_path):
    """2,000 real IMDB reviews on the first 50,000 packaged GloVe words: the classifier beats chance
    clearly, the report measures what moved (lexicons, analogies, pairs), analogies and WordSim
    stay put, the new version answers queries, and predict labels obvious reviews. The same data
    with --ngrams names the features in the result."""
    from simdex.engine import packaged

    texts, labels = packaged.reviews("imdb")
    rng = np.random.default_rng(0)
    pick = rng.choice(len(texts), 2000, replace=False)
    data = tmp_path / "imdb.jsonl"
    data.write_text("".join(json.dumps({"text": texts[i], "label": int(labels[i])}) + "\n" for i in pick))
    store = Store.create(tmp_path / "glove")
    ingest(store, None, limit=50_000)
    result = train_sentiment(store, str(data), config=TrainConfig())
    assert result.val_accuracy > 0.65 and result.version == 2  # 1,600 training texts: well above chance
    assert not result.ngrams and result.sentence_head_accuracy is None
    knowledge = result.report["knowledge"]
    assert list(knowledge) == ["parent", "trained", "polarity"]
    assert abs(knowledge["polarity"]["analogies"] - knowledge["parent"]["analogies"]) < 0.02
    assert abs(knowledge["polarity"]["wordsim353"] - knowledge["parent"]["wordsim353"]) < 0.02
    vader = result.report["lexicons"]["vader"]
    assert vader["training_words_count"] < vader["all_words_count"] and set(vader["all_words"]) == set(knowledge)
    assert store.analogy("man", "king", "woman")[0][0] == "queen"
    from simdex.engine.training.predict import predict

    labels = [p.label for p in predict(store, ["a wonderful, moving film with superb acting",
                                               "the worst movie ever, a boring waste of time"])]
    assert labels == ["1", "0"]  # the file's own labels

    store.set_current(1)
    with_ngrams = train_sentiment(store, str(data), config=TrainConfig(ngrams=True, polarity=False))
    assert with_ngrams.ngrams and with_ngrams.val_accuracy > 0.65
    assert predict(store, ["a boring waste of time"])[0].label == "0"


def test_the_sentence_head_is_opt_in_and_reported_apart(tmp_path):
    """Rotten Tomatoes' sentences: --sentence-head reports the MiniLM head's accuracy and the blend
    in fields of their own; val_accuracy stays the word model's, which `simdex predict` reproduces
    exactly over the validation texts. Without the option the encoder is never loaded."""
    from simdex.engine import packaged
    from simdex.engine.training.labelled import held_out
    from simdex.engine.training.predict import predict

    texts, labels = packaged.reviews("rotten_tomatoes")
    pick = np.random.default_rng(0).choice(len(texts), 3000, replace=False)
    texts, labels = [texts[i] for i in pick], labels[pick]
    data = tmp_path / "rt.csv"
    with open(data, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(zip(texts, labels.tolist()))
    store = Store.create(tmp_path / "glove")
    ingest(store, None, limit=50_000)
    result = train_sentiment(store, str(data), config=TrainConfig(epochs=3, polarity=False, sentence_head=True))
    assert result.sentence_head_accuracy > 0.7 and result.blended_accuracy > 0.7
    val = np.flatnonzero(held_out(labels, 0.2, 0))
    predicted = np.array([int(p.label) for p in predict(store, [texts[i] for i in val])])
    assert float((predicted == labels[val]).mean()) == pytest.approx(result.val_accuracy, abs=1e-9)

    store.set_current(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("simdex.engine.sentences.model.Encoder.load",
                      lambda *a, **k: pytest.fail("the encoder was loaded"))
        off = train_sentiment(store, str(data), config=TrainConfig(epochs=3, polarity=False))
        assert off.sentence_head_accuracy is None
        predict(store, ["a dull mess"])


def test_a_run_that_diverges_says_so_and_writes_nothing(tmp_path):
    """A learning rate far too high for the classifier: the loss stops being a number, and the run
    ends with one Error: line naming the epoch, the store as it was (no vectors of NaN)."""
    store = tiny_sentiment_store(tmp_path)
    data = tiny_reviews(tmp_path / "reviews.csv")
    result = CliRunner().invoke(cli, ["train", "sentiment", str(data), "--text-column", "review", "--label-column",
                                      "sentiment", "--lr", "1e30", "--store", str(store.path)])
    assert result.exit_code == 1 and result.output.startswith("Error: training diverged in epoch 1"), result.output
    assert len(result.output.strip().splitlines()) == 1
    assert len(Store.open(store.path).versions()) == 1
