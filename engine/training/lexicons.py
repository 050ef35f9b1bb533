"""Two sentiment word lists that only measure: VADER and AFINN (the `vadersentiment` and `afinn`
packages). Nothing is trained or tuned on them; the report says how far a version's vectors put
same-polarity words next to each other by their count.

    share, words = same_polarity_share(matrix, key_to_id, LEXICONS()["vader"])
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np


@functools.cache
def lexicons() -> dict[str, dict[str, float]]:
    """{"vader": {word: valence}, "afinn": {word: score}}: single lower-case words, non-zero scores."""
    import afinn
    import vaderSentiment

    vader = {}
    for line in open(Path(vaderSentiment.__file__).parent / "vader_lexicon.txt", encoding="utf-8"):
        parts = line.split("\t")
        if len(parts) >= 2 and parts[0].isalpha() and float(parts[1]) != 0:
            vader[parts[0].lower()] = float(parts[1])
    scores = {}
    for line in open(Path(afinn.__file__).parent / "data" / "AFINN-en-165.txt", encoding="utf-8"):
        word, score = line.rstrip("\n").rsplit("\t", 1)
        if " " not in word and float(score) != 0:
            scores[word] = float(score)
    return {"vader": vader, "afinn": scores}


def same_polarity_share(matrix, key_to_id: dict[str, int], lexicon: dict[str, float], k: int = 10,
                        only=None) -> tuple[float | None, int]:
    """(the share of each lexicon word's k nearest lexicon words, by cosine among the lexicon words
    the store holds, that share its polarity; how many words it was measured on). `only`: a set
    of words to measure (their neighbours are still all the lexicon words held)."""
    words = [w for w in lexicon if w in key_to_id]
    if len(words) <= k:
        return None, len(words)
    vectors = np.asarray(matrix[np.array([key_to_id[w] for w in words])], dtype=np.float32)
    sign = np.sign([lexicon[w] for w in words])
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    neighbours = np.argpartition(-similarity, k, axis=1)[:, :k]
    same = sign[:, None] == sign[neighbours]
    measured = np.ones(len(words), dtype=bool) if only is None else np.array([w in only for w in words])
    if not measured.any():
        return None, 0
    return float(same[measured].mean()), int(measured.sum())
