"""How far word polarities learned from the packaged reviews agree with the sentiment lexicons.

The trainer's refinement (engine/training/polarity.py) can only teach the vectors the polarities the reviews
show. This measures, on each dataset's training split (20% held out, seed 0, as the trainer
splits), how often a word's polarity from the reviews has the sign VADER and AFINN give it:
- the naive-Bayes log-count ratio of the words seen in at least N training texts (|ratio| >= t);
- a ridge probe from the GloVe 50d vector to that ratio, fitted on those words and applied to
  every lexicon word in the vocabulary (a polarity for words the reviews rarely hold);
- the trainer's own probe: logistic, in the sentence encoder's space (all-MiniLM-L6-v2), taught
  by the clearly polar words as the trainer teaches it.

The lexicons are only read to measure, as in bench_train.py. If vectors were sorted purely by a
polarity that agrees with a lexicon on a share a of its words, a word's neighbours would share
its lexicon polarity about a^2 + (1 - a)^2 of the time; GloVe's own neighbours already give 0.73
(VADER), so a source needs a > 0.84 to raise the share by itself. The trainer does not sort
by its probe: it adds the probe's score as one coordinate, which raises the share with less.

    .venv/bin/python benchmarks/bench_polarity_sources.py
"""

from __future__ import annotations

import numpy as np
import torch
from simdex.engine import Store
from simdex.engine.sentences.model import Encoder
from simdex.engine.training.labelled import held_out, read_labelled, tokenize
from simdex.engine.training.lexicons import lexicons as measured_lexicons
from simdex.engine.training.polarity import PROBE_MIN_RATIO, WORD, default_min_docs, word_polarities
from simdex.engine.training.probe import fit_probe, probe_scores
from simdex.engine.words.ingest import ingest

from common import machine, write_section

SETTINGS = ((5, 0.5), (20, 0.5), (20, 1.0), (50, 1.0))


def agreement(polarity: dict[str, float], lexicon: dict[str, float]) -> tuple[float, int]:
    shared = [w for w in lexicon if w in polarity and lexicon[w] != 0]
    if not shared:
        return float("nan"), 0
    return float(np.mean([np.sign(polarity[w]) == np.sign(lexicon[w]) for w in shared])), len(shared)


def main() -> None:
    import tempfile

    lexicons = {name.upper(): words for name, words in measured_lexicons().items()}
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.create(f"{tmp}/glove")
        ingest(store, None)
        key_to_id = store.key_to_id()
        unit = np.asarray(store.matrix(), dtype=np.float32)
        unit = unit / (np.linalg.norm(unit, axis=1, keepdims=True) + 1e-12)
    encoder = Encoder.load()

    header = "| dataset | words (texts >= N, \\|ratio\\| >= t) | source | " + \
             " | ".join(f"{name}: words, sign agreement" for name in lexicons) + " |"
    lines = [f"Machine: {machine()}", "", header, "|---|---|---|" + "---|" * len(lexicons)]
    for dataset in ("imdb", "rotten_tomatoes"):
        texts, labels, *_ = read_labelled(dataset=dataset)
        tokens = [tokenize(text) for text in texts]
        rows = np.flatnonzero(~held_out(labels, 0.2, seed=0))  # the rows the trainer learns from
        for min_docs, threshold in SETTINGS:
            polarity = word_polarities(tokens, labels, rows, min_docs=min_docs, threshold=threshold)
            known = [w for w in polarity if w in key_to_id]
            X = unit[[key_to_id[w] for w in known]]
            y = np.clip([polarity[w] for w in known], -3, 3)
            weights = np.linalg.solve(X.T @ X + 10.0 * np.eye(X.shape[1]), X.T @ y)
            cells = {"naive-Bayes ratio": [], "ridge probe, every lexicon word": []}
            for lexicon in lexicons.values():
                cells["naive-Bayes ratio"].append(agreement(polarity, lexicon))
                in_vocab = [w for w in lexicon if w in key_to_id]
                probe = dict(zip(in_vocab, unit[[key_to_id[w] for w in in_vocab]] @ weights))
                cells["ridge probe, every lexicon word"].append(agreement(probe, lexicon))
            for source, results in cells.items():
                lines.append(f"| {dataset} | {len(polarity):,} (N={min_docs}, t={threshold}) | {source} | " +
                             " | ".join(f"{n:,}, {a:.3f}" for a, n in results) + " |")
        # the trainer's polarity probe (engine/training/polarity.py), as it is taught, on every lexicon word
        polarity = word_polarities(tokens, labels, rows)
        taught = [w for w, r in polarity.items() if abs(r) >= PROBE_MIN_RATIO and WORD.fullmatch(w)]
        x = torch.from_numpy(encoder.encode(taught)[0])
        weights = fit_probe(x, torch.tensor([float(polarity[w] > 0) for w in taught]))
        results = []
        for lexicon in lexicons.values():
            words = [w for w in lexicon if w in key_to_id]
            probe = dict(zip(words, probe_scores(weights, torch.from_numpy(encoder.encode(words)[0])).numpy()))
            results.append(agreement(probe, lexicon))
        lines.append(f"| {dataset} | {len(taught):,} (N={default_min_docs(len(rows))}, t={PROBE_MIN_RATIO}) "
                     f"| the trainer's probe "
                     f"(all-MiniLM-L6-v2), every lexicon word | " +
                     " | ".join(f"{n:,}, {a:.3f}" for a, n in results) + " |")
    lines += ["", "A polarity source must agree with a lexicon on more than about 0.84 of the words to raise "
              "the same-polarity share above GloVe's 0.73 (VADER) by sorting alone (a^2 + (1 - a)^2). Given "
              "as one coordinate beside the vectors' own neighbourhoods, as the trainer gives its probe's "
              "scores, less agreement suffices: see bench_train.py."]
    write_section("polarity-sources", "## Word polarities from the reviews against the lexicons "
                  "(`bench_polarity_sources.py`)\n\n" + "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
