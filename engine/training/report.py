"""What training changed: the report `simdex train` prints and keeps in the new version's metrics.

Word stores (`word_report`), for each stage of the vectors (the parent's, after training, after
the polarity step):
- the same-polarity share of the 10 nearest lexicon words (VADER and AFINN, which only measure),
  for the lexicon words the training split uses (the words training can move) and for all;
- the Google analogies (3CosAdd, restrict 30,000, exact) and the word-pair benchmarks;
and, between the parent and the final vectors: the words that moved most, neighbour overlap@10
(for sample words, and as one number over a seeded sample of the frequent words), and the
neighbours of sample words before and after.

Sentence stores (`sentence_report`): held-out accuracy and F1 of the fine-tuned model beside
the frozen baseline's; the label agreement of each held-out text's 10 nearest training texts,
before and after (the neighbours of a review should share its sentiment more often); the
neighbours of sample texts before and after; how far the store's vectors moved (the mean cosine
of each text to its old vector).
"""

from __future__ import annotations

import numpy as np

from .. import query
from ..errors import SimdexError
from ..words import evaluate
from .lexicons import lexicons, same_polarity_share

SAMPLE_WORDS = ("excellent", "terrible", "good", "bad", "boring", "brilliant", "awful", "wonderful",
                "king", "france", "computer", "water")
RESTRICT = 30_000  # the frequent words: where a move matters, and what the analogy measure searches


class Vectors:
    """A store read with other vectors (a stage of training), for the evaluations: the same keys,
    norms and ranks; this matrix; searched exactly."""

    def __init__(self, store, matrix: np.ndarray):
        self.store, self.unit = store, matrix

    def __getattr__(self, name):
        return getattr(self.store, name)

    def matrix(self):
        return self.unit

    def vectors(self):
        return self.unit

    def searcher(self):
        return None


def knowledge(store) -> dict:
    """The bundled benchmarks on a store (or Vectors), searched exactly over the frequent words;
    None where the vocabulary holds too few of a benchmark's words to measure."""
    from .. import packaged

    analogies = evaluate.evaluate_analogies(store, restrict=RESTRICT, exact=True)
    result = {"analogies": round(analogies.accuracy, 6) if analogies.questions else None}
    for name, path in packaged.PAIR_SETS.items():
        try:
            result[name] = round(evaluate.evaluate_pairs(store, path).spearman, 6)
        except SimdexError:  # fewer than two pairs in the vocabulary
            result[name] = None
    return result


def word_report(parent, stages: dict[str, np.ndarray], training_words: set[str]) -> dict:
    """The report for the parent store's vectors and `stages` ({"trained": matrix, "polarity":
    matrix}, in order; unit rows over the parent's keys, the last one written)."""
    key_to_id = parent.key_to_id()
    matrices = {"parent": np.asarray(parent.matrix()), **stages}
    polarity = {}
    for name, lexicon in lexicons().items():
        seen = {w for w in lexicon if w in training_words}
        polarity[name] = {"training_words": {}, "all_words": {}}
        for stage, matrix in matrices.items():
            share, counted = same_polarity_share(matrix, key_to_id, lexicon, only=seen)
            polarity[name]["training_words"][stage] = None if share is None else round(share, 4)
            polarity[name]["training_words_count"] = counted
            share, counted = same_polarity_share(matrix, key_to_id, lexicon)
            polarity[name]["all_words"][stage] = None if share is None else round(share, 4)
            polarity[name]["all_words_count"] = counted
    measures = {stage: knowledge(parent if stage == "parent" else Vectors(parent, matrix))
                for stage, matrix in matrices.items()}
    return {"lexicons": polarity, "knowledge": measures,
            "drift": drift(parent.keys(), matrices["parent"], list(matrices.values())[-1], key_to_id)}


def drift(keys: list[str], before: np.ndarray, after: np.ndarray, key_to_id: dict[str, int], *,
          sample_words=SAMPLE_WORDS, sample: int = 500, seed: int = 0) -> dict:
    """How far the frequent words moved between two matrices over the same keys."""
    limit = min(RESTRICT, len(before))
    before, after = before[:limit], after[:limit]
    cosine = (before * after).sum(axis=1)
    moved = np.argsort(cosine, kind="stable")[:10]
    words = [w for w in sample_words if key_to_id.get(w, limit) < limit]
    rows = np.array([key_to_id[w] for w in words], dtype=np.int64)
    random_rows = np.random.default_rng(seed).choice(limit, size=min(sample, limit), replace=False)
    return {
        "restrict": limit,
        "mean_cosine_to_parent": round(float(cosine.mean()), 6),
        "most_moved": [{"word": keys[i], "cosine": round(float(cosine[i]), 4)} for i in moved],
        "overlap_at_10": {w: round(float(o), 2) for w, o in zip(words, _overlap(before, after, rows))},
        "mean_overlap_at_10": round(float(_overlap(before, after, random_rows).mean()), 4),
        "neighbours": {w: {"before": _neighbour_words(before, keys, i), "after": _neighbour_words(after, keys, i)}
                       for w, i in zip(words[:4], rows[:4])},
    }


def _overlap(before: np.ndarray, after: np.ndarray, rows: np.ndarray, k: int = 10) -> np.ndarray:
    """For each row, |top-k before ∩ top-k after| / k (the word itself left out)."""
    if len(rows) == 0:
        return np.zeros(0)
    _, old = query.search(before, before[rows], k + 1)
    _, new = query.search(after, after[rows], k + 1)
    return np.array([len((set(o) & set(n)) - {r}) / k for r, o, n in zip(rows, old, new)])


def _neighbour_words(matrix: np.ndarray, keys, row: int, k: int = 5) -> list[str]:
    _, ids = query.search(matrix, matrix[row:row + 1], k + 1)
    return [keys[i] for i in ids[0] if i != row][:k]


# -- sentence stores ------------------------------------------------------------------------------------

def label_agreement(encodings: np.ndarray, labels: np.ndarray, train: np.ndarray, val: np.ndarray,
                    k: int = 10) -> float:
    """The mean share of each held-out text's k nearest training texts (cosine) with its label."""
    _, neighbours = query.search(np.ascontiguousarray(encodings[train]), encodings[val], k)
    return float((labels[train][neighbours] == labels[val][:, None]).mean())


def sentence_report(texts: list[str], labels: np.ndarray, train: np.ndarray, val: np.ndarray,
                    before: np.ndarray, after: np.ndarray, *, moved: float | None, samples: int = 3,
                    seed: int = 0) -> dict:
    """`before` / `after`: every labelled text's unit encoding with the old and the new encoder;
    `moved`: the mean cosine of the store's texts to their old vectors."""
    picks = np.random.default_rng(seed).choice(val, size=min(samples, len(val)), replace=False)

    def neighbours(encodings, row):
        _, ids = query.search(np.ascontiguousarray(encodings[train]), encodings[[row]], 3)
        return [{"text": texts[train[i]], "label": int(labels[train[i]])} for i in ids[0]]

    return {
        "label_agreement_at_10": {"before": round(label_agreement(before, labels, train, val), 4),
                                  "after": round(label_agreement(after, labels, train, val), 4)},
        "mean_cosine_to_parent": None if moved is None else round(moved, 6),
        "neighbours": [{"text": texts[row], "label": int(labels[row]), "before": neighbours(before, row),
                        "after": neighbours(after, row)} for row in picks],
    }
