"""What a classifier's probabilities score against the truth: the one definition the trainer, its
report and `simdex predict`'s checks share."""

from __future__ import annotations

import numpy as np


def accuracy_and_f1(probability: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(accuracy, F1 of the positive class) of P(label 1) thresholded at 0.5."""
    guess, truth = (np.asarray(probability) > 0.5).astype(np.int64), np.asarray(truth)
    tp = int(((guess == 1) & (truth == 1)).sum())
    precision = tp / max(int((guess == 1).sum()), 1)
    recall = tp / max(int((truth == 1).sum()), 1)
    return float((guess == truth).mean()), (2 * precision * recall / (precision + recall) if tp else 0.0)
