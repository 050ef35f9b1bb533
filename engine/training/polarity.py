"""The polarity step: after training, a polarity coordinate taught by the labelled reviews.

    polarities = word_polarities(tokens, labels, train_rows)          # the training split only
    unit, report = polarity_coordinate(vectors, keys, polarities, encode)

Fine-tuning moves the rows the reviews use, each as far as the evidence about it pulls; it does
not put the words the reviews seldom use on a side. This step does, on purpose, and is reported
on its own (`--no-polarity` leaves it out):

1. A word's polarity is its naive-Bayes log-count ratio over the training split's documents
   (Wang & Manning 2012), r = log(P(word | positive) / P(word | negative)), for words found in
   at least `min_docs` documents (by default one in a thousand of the split, at least 5) whose
   |r| passes `threshold`.
2. The clearly polar ones (|r| >= 1: odds of e to 1) teach a logistic probe in the space of a
   sentence encoder (all-MiniLM-L6-v2, the store's sentence half), which scores every word of
   the vocabulary: what the encoder learned about words carries the reviews' polarities to
   words the reviews do not show.
3. The score (standardised, tanh, times a strength) replaces each vector's component along the
   direction in which the vectors vary least (their last principal axis), so same-polarity
   words draw together while analogies and word-pair similarities, which live in the other
   directions, keep what they had.

The strength is chosen on the reviews alone: a fifth of the clearly polar words is held out of
the probe, and for each strength of a grid (up to 0.3, so that the coordinate takes at most a
tenth of a unit vector's squared length) the same-polarity share of those words' nearest polar
words is measured; the smallest strength that reaches 90% of the best gain is kept. No lexicon
is read: VADER and AFINN only measure the result.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter

import numpy as np

from ..errors import StoreFault
from ..files import atomic_write, file_sha256
from ..progress import SILENT, Progress
from .probe import fit_probe, probe_scores


def default_min_docs(documents: int) -> int:
    """In how many of `documents` a word must be for its polarity to count: one in a thousand, at least 5."""
    return max(5, documents // 1000)


def word_polarities(tokens, labels, rows, *, min_docs: int | None = None, threshold: float = 0.5,
                    smoothing: float = 1.0) -> dict[str, float]:
    """{word: log-count ratio} of the polar words of the documents `rows` (the training split)."""
    if min_docs is None:
        min_docs = default_min_docs(len(rows))
    positive, negative = Counter(), Counter()
    for i in rows:
        (positive if labels[i] == 1 else negative).update(set(tokens[i]))
    n_pos = int((labels[rows] == 1).sum())
    n_neg = len(rows) - n_pos
    polar = {}
    for word in positive.keys() | negative.keys():
        p, q = positive[word], negative[word]
        if p + q < min_docs:
            continue
        ratio = math.log((p + smoothing) / (n_pos + smoothing)) - math.log((q + smoothing) / (n_neg + smoothing))
        if abs(ratio) >= threshold:
            polar[word] = ratio
    return polar


def _nearest(unit, k: int):
    import torch

    similarity = unit @ unit.T
    similarity.fill_diagonal_(-float("inf"))
    return torch.topk(similarity, k, dim=1).indices


def _same_polarity_share(unit, sign, k: int, among=None) -> float:
    """The share of each polar word's k nearest polar words that share its polarity (over the
    words `among` selects, all by default)."""
    neighbours = _nearest(unit, k)
    same = (sign[:, None] == sign[neighbours]).float()
    return float((same if among is None else same[among]).mean())


# -- the polarity coordinate ------------------------------------------------------------------------

WORD = re.compile(r"[^\W\d_]+(?:[-'][^\W\d_]+)*")  # letters, maybe joined by - or ': no numbers or symbols
PROBE_MIN_RATIO = 1.0  # the words the probe learns from: |log-count ratio| at least this (odds of e to 1)
REPORT_WORDS = 10_000  # the report's same-polarity share is measured on at most this many polar words
# the grid the strength is chosen from; at most 0.3: a coordinate then holds at most a tenth of a unit
# vector's squared length, and the other directions keep at least nine tenths of what they held
STRENGTHS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3)
KNEE = 0.9  # the smallest strength reaching this share of the best gain on held-out polar words


def polarity_coordinate(vectors: np.ndarray, keys: list[str], polarities: dict[str, float], encode, *,
                        strength: float | None = None, l2: float = 1e-3, k: int = 10,
                        seed: int = 0) -> tuple[np.ndarray, dict]:
    """Unit `vectors` whose least-used direction holds each word's polarity, and a report.

    `encode(words)` gives the sentence encoder's (n, d) encodings of the words. `strength`: None
    chooses it on held-out polar words (see the module's notes). The report says how many words
    taught the probe, how often it agreed with polar words it did not see, the strengths tried,
    and, among the training split's polar words, the share of each one's k nearest polar words
    that share its polarity, before and after.
    """
    import torch

    from ..words.ingest import unit_rows

    unit, norms = unit_rows(vectors)
    rows = np.array([i for i, word in enumerate(keys) if norms[i] > 0 and WORD.fullmatch(word)], dtype=np.int64)
    words = [keys[i] for i in rows]
    taught = np.array([j for j, word in enumerate(words) if abs(polarities.get(word, 0.0)) >= PROBE_MIN_RATIO],
                      dtype=np.int64)
    labels = np.array([polarities[words[j]] > 0 for j in taught])
    order = np.random.default_rng(seed).permutation(len(taught))
    cut = max(2, len(order) // 5)
    held, fit = order[:cut], order[cut:]  # held out of the probe, to choose the strength by
    if len(taught) < 10 or labels[fit].all() or not labels[fit].any():
        return unit, {"note": f"{len(taught)} clearly polar words (of both polarities, at least 10 needed): too few "
                              f"to teach the polarity probe; the vectors are as fine-tuned"}
    encodings = torch.from_numpy(np.asarray(encode(words), dtype=np.float32))
    x, y = encodings[torch.from_numpy(taught)], torch.from_numpy(labels.astype(np.float32))
    variances, axes = np.linalg.eigh(np.cov(unit[:min(len(unit), 50_000)], rowvar=False))  # ascending
    axis = axes[:, 0].astype(np.float32)

    def with_coordinate(base, scores, s):
        out = base.copy()
        coordinate = s * np.tanh(scores / max(float(scores.std()), 1e-12))
        out[rows] += (coordinate - out[rows] @ axis)[:, None] * axis[None, :]  # the other words keep theirs
        return unit_rows(out)[0]

    # the strength: the knee of the held-out polar words' share over the grid (the probe taught without them)
    held_scores = probe_scores(fit_probe(x[fit], y[fit], l2), encodings).numpy()
    taught_rows = rows[taught]
    sign = torch.from_numpy(np.where(labels, 1.0, -1.0))
    kk = min(k, max(1, len(taught) // 4))
    curve = []
    for s in (0.0,) + STRENGTHS:
        moved = with_coordinate(unit, held_scores, s)[taught_rows] if s else unit[taught_rows]
        curve.append((s, _same_polarity_share(torch.from_numpy(moved), sign, kk, among=torch.from_numpy(held))))
    held_agreement = round(float(((held_scores[taught[held]] > 0) == labels[held]).mean()), 4)
    if strength is None:
        gain = max(share for _, share in curve) - curve[0][1]
        strength = next(s for s, share in curve[1:] if share - curve[0][1] >= KNEE * gain) if gain > 0 else 0.0

    scores = probe_scores(fit_probe(x, y, l2), encodings).numpy()
    polar_rows = np.array([i for i, key in enumerate(keys) if key in polarities], dtype=np.int64)
    polar_words = len(polar_rows)
    if len(polar_rows) > REPORT_WORDS:  # the share compares every pair: a sample of a big corpus's words
        polar_rows = np.sort(np.random.default_rng(seed).choice(polar_rows, REPORT_WORDS, replace=False))
    polar_sign = torch.tensor([1.0 if polarities[keys[i]] > 0 else -1.0 for i in polar_rows])
    k = min(k, max(1, len(polar_rows) // 4))
    before = _same_polarity_share(torch.from_numpy(unit[polar_rows]), polar_sign, k)
    unit = with_coordinate(unit, scores, strength) if strength else unit
    report = {
        "polar_words": polar_words,  # the share is measured on at most REPORT_WORDS of them
        "same_polarity_share_before": round(before, 4),
        "same_polarity_share_after": round(_same_polarity_share(torch.from_numpy(unit[polar_rows]), polar_sign, k), 4),
        "probe_words": len(fit),
        "probe_held_out_words": len(held),
        "probe_held_out_agreement": held_agreement,
        "strength": strength,
        "strength_curve": [[s, round(share, 4)] for s, share in curve],
        "scored_words": len(rows),
        "replaced_variance_share": round(float(variances[0] / variances.sum()), 6),
    }
    return unit, report


class WordEncodings:
    """encode(words) for the polarity probe: the packaged sentence encoder's vectors of single
    words (in bfloat16 where the CPU has it: nearly exact, faster), cached in the store's training
    directory (float16) so that the next run on the store skips the minutes they take."""

    def __init__(self, store, device: str, progress: Progress = SILENT):
        self.directory, self.device, self.progress = store.training_directory(), device, progress

    def __call__(self, words: list[str]) -> np.ndarray:
        import torch

        from ..sentences.model import Encoder, resolve_model

        folder = resolve_model(None)
        digest = hashlib.sha256("\n".join([file_sha256(folder.weights), *words]).encode()).hexdigest()[:16]
        path = self.directory / f"word-encodings-{digest}.npy"
        if path.is_file():
            try:
                cached = np.load(path)
                if cached.shape[0] == len(words):
                    return cached.astype(np.float32)
            except (OSError, ValueError):
                pass  # unreadable: encode again
        bf16 = self.device == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported()
        encoder = Encoder.load(quantize="bf16" if bf16 else "none", device=self.device)
        encoder.short_in_float32 = 0  # single words: all short
        with self.progress.task("polarity probe: encoding the vocabulary's words (once per store)", total=len(words),
                                unit="words") as task:
            out = encoder.encode_all(words, task)
        self._cache(path, out)
        return out

    def _cache(self, path, encodings: np.ndarray) -> None:
        """Keep them for the next run, if the disk lets us (the run does not need the cache)."""
        try:
            with atomic_write(path, sync=False) as tmp, open(tmp, "wb") as f:
                np.save(f, encodings.astype(np.float16))
            for stale in path.parent.glob("word-encodings-*.npy"):  # another vocabulary's (or model's)
                if stale != path:
                    stale.unlink(missing_ok=True)
        except (OSError, StoreFault):
            pass
