"""An opt-in second view for word stores (`--sentence-head`): a logistic head on each text's
encoding by the packaged sentence encoder (all-MiniLM-L6-v2), fitted on the training split.

It never touches the word vectors and takes no part in training or early stopping: the trainer
reports its validation accuracy, and that of its average with the word model, in fields of
their own (`sentence_head_accuracy`, `blended_accuracy`). `val_accuracy` stays the word model's.
A user who wants the sentence encoder's own accuracy trains a sentence store instead.
"""

from __future__ import annotations

import numpy as np

from ..progress import SILENT, Progress
from .scores import accuracy_and_f1

L2 = 1e-4


def sentence_head_scores(texts, labels: np.ndarray, train: np.ndarray, val: np.ndarray, word_probability: np.ndarray,
                         device: str, progress: Progress = SILENT) -> dict:
    """{sentence_head_accuracy, blended_accuracy} on the validation rows; `word_probability`:
    the word model's P(label 1) of those rows."""
    import torch

    from ..sentences.model import Encoder
    from .probe import fit_probe, probe_scores

    with progress.task("sentence head: encoding the texts", total=len(texts), unit="texts") as task:
        encodings = torch.from_numpy(Encoder.load(device=device).encode_all(list(texts), task))
    weights = fit_probe(encodings[torch.from_numpy(train)], torch.from_numpy(labels[train]).float(), L2)
    head = probe_scores(weights, encodings[torch.from_numpy(val)]).sigmoid().numpy()
    return {"sentence_head_accuracy": round(accuracy_and_f1(head, labels[val])[0], 6),
            "blended_accuracy": round(accuracy_and_f1((head + word_probability) / 2, labels[val])[0], 6)}
