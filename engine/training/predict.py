"""`simdex predict`: label texts with the classifier trained on the version read.

    predictions = predict(store, ["a gripping thriller", "a dull mess"])
    # -> [Prediction(text=..., label="positive", probability=0.97), ...]

A classifier is kept per version (STORE/classifiers/vN.pt, written by `simdex train sentiment`).
On a word store it carries its own word list and embedding rows, so it reads a text exactly as
validation did. On a sentence store it is a linear head over the version's encodings: the text
is encoded with the version's own encoder (the fine-tuned one, for a trained version) and
normalised, as in training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..backends.local import LocalStore, local_store
from ..errors import SimdexError
from ..files import atomic_write
from .labelled import tokenize


@dataclass
class Prediction:
    text: str
    label: str
    probability: float  # of that label

    JSON_FIELDS = ("text", "label", "probability")


def save_classifier(store: LocalStore, version: int, saved: dict) -> None:
    import torch

    with atomic_write(store.classifier_path(version, for_writing=True)) as tmp:
        torch.save(saved, tmp)


def load_classifier(store) -> dict:
    import torch

    number = store.version.number
    path = local_store(store, "predict", then="predict there").classifier_path(number)
    if not path.exists():
        raise SimdexError(f"{store.location}: no classifier for version {number} (train one with "
                          f"`simdex train sentiment`, or `simdex use` the version it was trained on)")
    return torch.load(path, weights_only=False, map_location="cpu")


def probabilities(store, saved: dict, texts: list[str]) -> np.ndarray:
    """P(label 1) of each text by a saved classifier of the store's version."""
    import torch

    if saved["kind"] == "encoder":
        unit = torch.from_numpy(store.encode(texts))
        logits = unit @ saved["head"]["weight"].T.float() + saved["head"]["bias"].float()
        return torch.softmax(logits, dim=1)[:, 1].numpy()
    from .classifiers import BUCKETS, build_classifier
    from .words import word_probabilities

    vectors = saved["state"]["embedding.weight"]
    ratios = torch.zeros(BUCKETS) if saved.get("ngrams") else None
    model = build_classifier(saved["model"], torch.zeros_like(vectors), freeze=True, ratios=ratios)
    model.load_state_dict(saved["state"])
    index = {word: i for i, word in enumerate(saved["words"])}
    ids = [np.array([index.get(w, 1) for w in tokenize(text)] or [1], dtype=np.int64) for text in texts]
    return word_probabilities(model, ids, saved["model"], saved["max_tokens"], "cpu", saved.get("frequent_ngrams"))


def predict(store, texts) -> list[Prediction]:
    texts = list(texts)
    if not texts:
        return []
    saved = load_classifier(store)
    positive = probabilities(store, saved, texts)
    predictions = []
    for text, p in zip(texts, positive):
        label = int(p > 0.5)
        predictions.append(Prediction(text, saved["labels"][label], round(float(p if label else 1 - p), 6)))
    return predictions
