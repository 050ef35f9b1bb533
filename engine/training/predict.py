"""`simdex predict`: label texts with the last classifier trained on the current version.

    predictions = predict(store, ["a gripping thriller", "a dull mess"])
    # -> [Prediction(text=..., label="positive", probability=0.97), ...]

The classifier (STORE/classifiers/vN.pt, written by `simdex train sentiment`) carries its own
word list and embedding rows, so it reads a text exactly as it did in training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..backends.local import local_store
from ..errors import SimdexError
from .labelled import tokenize


@dataclass
class Prediction:
    text: str
    label: str
    probability: float  # of that label

    JSON_FIELDS = ("text", "label", "probability")


def load_classifier(store):
    import torch

    from .classifiers import build_classifier

    path = local_store(store, "predict", then="predict there").classifier_path(store.version.number)
    if not path.exists():
        raise SimdexError(f"{store.location}: no classifier for version {store.version.number} (train one with "
                          f"`simdex train sentiment`, or `simdex use` the version it was trained on)")
    saved = torch.load(path, weights_only=False, map_location="cpu")
    vectors = saved["state"]["embedding.weight"]
    model = build_classifier(saved["config"]["model"], torch.zeros_like(vectors), freeze=True)
    model.load_state_dict(saved["state"])
    model.eval()
    return model, saved


def predict(store, texts) -> list[Prediction]:
    import torch

    from .train import SentenceHead, TextBatch

    texts = list(texts)
    if not texts:
        return []
    model, saved = load_classifier(store)
    index = {word: i for i, word in enumerate(saved["words"])}
    ids = [np.array([index.get(w, 1) for w in tokenize(text)] or [1], dtype=np.int64) for text in texts]
    positive = []
    with torch.no_grad():
        for start in range(0, len(texts), 256):
            part = ids[start:start + 256]
            batch = TextBatch(part, np.zeros(len(part), dtype=np.int64), saved["config"]["model"],
                          saved["config"]["max_tokens"], saved["buckets"], "cpu", saved.get("frequent_ngrams"))
            positive.append(torch.softmax(model(batch), dim=1)[:, 1].numpy())
    positive = np.concatenate(positive)
    if saved.get("sentence_head"):  # the second view, averaged as in training (engine/train.py)
        positive = (positive + SentenceHead.probabilities(saved["sentence_head"], texts)) / 2
    predictions = []
    for text, p in zip(texts, positive):
        label = int(p > 0.5)
        predictions.append(Prediction(text, saved["labels"][label], round(float(p if label else 1 - p), 6)))
    return predictions
