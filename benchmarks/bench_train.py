"""Sentiment training on the packaged GloVe 6B 50d: accuracy, time, and what the vectors learned.

In one run, on a fresh store of the packaged vectors:
- IMDB (25,000 reviews, 20% held out, seed 0), default settings (`bag`, fine-tuned, refined):
  validation accuracy and training time; the same with --freeze;
- Rotten Tomatoes (8,530 sentences, 20% held out), default settings, from the original vectors;
- polarity: for the polar words of the VADER and AFINN lexicons (never trained on, only measured
  with), the share of their 10 nearest lexicon words that share their polarity, before and after;
- what must not change: Google analogy accuracy (3CosAdd, restrict 30,000, exact) and WordSim-353
  Spearman, before and after.

    .venv/bin/python benchmarks/bench_train.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import ROOT, machine, write_section

sys.path.insert(0, str(ROOT))

from engine import Store, packaged  # noqa: E402
from engine.evaluate import evaluate_analogies, evaluate_pairs  # noqa: E402
from engine.ingest import ingest  # noqa: E402
from engine.train import TrainConfig, train_sentiment  # noqa: E402


def vader() -> dict[str, float]:
    import vaderSentiment

    lexicon = {}
    for line in open(Path(vaderSentiment.__file__).parent / "vader_lexicon.txt", encoding="utf-8"):
        parts = line.split("\t")
        if len(parts) >= 2 and parts[0].isalpha() and float(parts[1]) != 0:
            lexicon[parts[0].lower()] = float(parts[1])
    return lexicon


def afinn() -> dict[str, float]:
    import afinn

    lexicon = {}
    for line in open(Path(afinn.__file__).parent / "data" / "AFINN-en-165.txt", encoding="utf-8"):
        word, score = line.rstrip("\n").rsplit("\t", 1)
        if " " not in word and float(score) != 0:
            lexicon[word] = float(score)
    return lexicon


def polarity_share(store, lexicon: dict[str, float], k: int = 10) -> tuple[float, int]:
    """The share of each lexicon word's k nearest lexicon words (cosine) with its polarity."""
    key_to_id = store.key_to_id()
    words = [w for w in lexicon if w in key_to_id]
    vectors = np.asarray(store.matrix()[np.array([key_to_id[w] for w in words])])
    sign = np.sign([lexicon[w] for w in words])
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    neighbours = np.argpartition(-similarity, k, axis=1)[:, :k]
    return float((sign[:, None] == sign[neighbours]).mean()), len(words)


def knowledge(store) -> dict[str, float]:
    analogies = evaluate_analogies(store, restrict=30_000, exact=True)
    pairs = evaluate_pairs(store, packaged.PAIR_SETS["wordsim353"], restrict=300_000)
    return {"vader": polarity_share(store, LEXICONS["vader"])[0], "afinn": polarity_share(store, LEXICONS["afinn"])[0],
            "analogy": analogies.accuracy, "wordsim": pairs.spearman}


LEXICONS = {"vader": vader(), "afinn": afinn()}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.create(Path(tmp) / "glove")
        ingest(store, None)
        before = knowledge(store)
        counts = {name: polarity_share(store, lexicon)[1] for name, lexicon in LEXICONS.items()}
        runs = []
        for dataset, freeze in [("imdb", False), ("imdb", True), ("rotten_tomatoes", False)]:
            store.set_current(1)
            started = time.perf_counter()
            result = train_sentiment(store, dataset=dataset, config=TrainConfig(freeze=freeze))
            runs.append((dataset, freeze, result, time.perf_counter() - started))
            print(f"{dataset} {'frozen' if freeze else 'fine-tuned'}: accuracy {result.val_accuracy:.4f} "
                  f"in {result.train_seconds:.0f}s", flush=True)
            if dataset == "imdb" and not freeze:
                imdb_version = result.version
        store.set_current(imdb_version)
        after = knowledge(Store.open(store.path))
        imdb = runs[0][2]

    lines = [f"Machine: {machine()}", "",
             "| data | vectors | validation accuracy | F1 | training (s) | whole run incl. refine + drift report (s) |",
             "|---|---|---|---|---|---|"]
    for dataset, freeze, result, seconds in runs:
        lines.append(f"| {dataset} | {'frozen' if freeze else 'fine-tuned'} | {result.val_accuracy:.4f} | "
                     f"{result.val_f1:.4f} | {result.train_seconds:.1f} | {seconds:.1f} |")
    lines += ["", "Targets: IMDB >= 0.90 in <= 300 s (aim 0.915); Rotten Tomatoes >= 0.79 (aim 0.81).", "",
              "What the IMDB-trained vectors know (before = the packaged GloVe, after = the new version):", "",
              "| measure | before | after | change |", "|---|---|---|---|"]
    names = {"vader": f"VADER polar words ({counts['vader']:,}): same-polarity share of 10 neighbours",
             "afinn": f"AFINN polar words ({counts['afinn']:,}): same-polarity share of 10 neighbours",
             "analogy": "Google analogies, 3CosAdd, restrict 30,000, exact", "wordsim": "WordSim-353 Spearman"}
    for key, name in names.items():
        lines.append(f"| {name} | {before[key]:.4f} | {after[key]:.4f} | {after[key] - before[key]:+.4f} |")
    polarity = imdb.report.get("polarity", {})
    lines += ["", f"Refinement: {polarity.get('polar_words', 0):,} polar words learned from the training split "
                  f"(naive-Bayes log-count ratio); among them the same-polarity share of 10 neighbours went "
                  f"{polarity.get('same_polarity_share_before', 0):.3f} -> {polarity.get('same_polarity_share_after', 0):.3f}.",
              "Targets: polarity share up clearly (aim VADER 0.85, AFINN 0.90); analogies down at most 0.015; "
              "WordSim down at most 0.02."]
    write_section("train", "## Sentiment training (`bench_train.py`)\n\n" + "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
