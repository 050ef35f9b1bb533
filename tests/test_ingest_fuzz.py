"""Seeded random files mixing good lines with every kind of damage: ingest either succeeds with
exactly the good lines or fails with a BadVectorFile naming a line, and never leaves a partial
version behind. Both readers (fast and careful) are exercised."""

from __future__ import annotations

import numpy as np
import pytest

from simdex.engine import BadVectorFile, Store
from simdex.engine.words.ingest import ingest

DIM = 3
DAMAGE = [
    lambda rng, w: f"{w} 1 2",                      # too few values
    lambda rng, w: f"{w} 1 2 3 4",                  # too many
    lambda rng, w: f"{w} 1 x 3",                    # not a number
    lambda rng, w: f"{w} 1 nan 3",                  # NaN
    lambda rng, w: f"{w} inf 1 3",                  # infinity
    lambda rng, w: "",                              # blank (fine)
    lambda rng, w: "   ",                           # spaces only (fine)
    lambda rng, w: f"{w}\t1 2 3",                   # a tab (fine)
    lambda rng, w: f"{w}  1 2  3  ",                # runs of spaces (fine)
    lambda rng, w: "two words 1 2 3",              # a word with a space (fine)
]
FINE = {5, 6, 7, 8, 9}


def make_file(path, rng):
    lines, good, bad = [], [], []
    for i in range(int(rng.integers(1, 60))):
        word = f"w{i}"
        if rng.random() < 0.15:
            kind = int(rng.integers(len(DAMAGE)))
            text = DAMAGE[kind](rng, word)
            lines.append(text)
            if kind in FINE and text.strip():
                good.append(text.split()[0] if kind != 9 else "two words")
            elif kind not in FINE:
                bad.append(len(lines))
        else:
            values = rng.normal(size=DIM)
            lines.append(word + " " + " ".join(f"{v:.4f}" for v in values))
            good.append(word)
    newline = "\r\n" if rng.random() < 0.3 else "\n"
    data = newline.join(lines) + (newline if rng.random() < 0.7 else "")
    path.write_bytes((b"\xef\xbb\xbf" if rng.random() < 0.2 else b"") + data.encode())
    return good, bad


@pytest.mark.parametrize("seed", range(60))
def test_random_damage(tmp_path, seed):
    rng = np.random.default_rng(seed)
    path = tmp_path / "fuzz.txt"
    good, bad = make_file(path, rng)
    store = Store.create(tmp_path / "store")
    unique_good = list(dict.fromkeys(good))
    if bad:
        with pytest.raises(BadVectorFile) as info:
            ingest(store, path)
        assert str(info.value).startswith(f"{path}, line {bad[0]}: ")
        assert store.versions() == []
        assert list((tmp_path / "store" / "vectors").iterdir()) == []
    if not unique_good:
        with pytest.raises(BadVectorFile):
            ingest(store, path, on_error="skip")
        return
    result = ingest(store, path, on_error="skip")
    assert result.skipped == len(bad)
    assert result.first_skipped == [f"line {n}" for n in bad[:5]]
    assert Store.open(store.path).keys() == unique_good
    assert np.isfinite(Store.open(store.path).matrix()).all()
