"""Ingest vector files: simdex against gensim's loaders, side by side.

Files: glove.6B.50d.txt (GloVe text) and the same vectors in word2vec binary; a synthetic
1,000,000 x 300 word2vec binary file (1.2 GB); a fastText .bin model with fastText's default
2,000,000 buckets, trained here with the fastText library on the packaged reviews (dim 100).
Each round runs both in fresh processes, alternating. Reported: the time inside the process
(gensim's load call; simdex's whole ingest: parse, normalise, SQLite and tensor written,
committed), the whole process's wall time (imports included) and its peak RSS. Then a cold
`simdex neighbors excelent` (a word the model never saw) on the fastText store.

    .venv/bin/python benchmarks/bench_ingest.py [--rounds 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import PYTHON, SIMDEX, glove_text, machine, median, run_measured, write_section

GENSIM = """
import sys, time
from gensim.models import KeyedVectors
from gensim.models.fasttext import load_facebook_vectors
t = time.perf_counter()
if sys.argv[2] == "binary":
    kv = KeyedVectors.load_word2vec_format(sys.argv[1], binary=True)
elif sys.argv[2] == "fasttext":
    kv = load_facebook_vectors(sys.argv[1])
else:
    kv = KeyedVectors.load_word2vec_format(sys.argv[1], no_header=True)
print(time.perf_counter() - t)
"""
CALLS = {"text": "load_word2vec_format(no_header=True)", "binary": "load_word2vec_format(binary=True)",
         "fasttext": "load_facebook_vectors()"}


def binary_copy(text_path) -> str:
    """benchmarks/data/glove.6B.50d.bin: the same vectors in word2vec binary, written by gensim."""
    path = text_path.with_suffix(".bin")
    if not path.exists():
        import numpy as np
        from gensim.models import KeyedVectors

        from simdex.engine import packaged

        words, matrix, _ = packaged.load()
        kv = KeyedVectors(vector_size=matrix.shape[1], dtype=np.float32)
        kv.add_vectors(words, np.asarray(matrix))
        kv.save_word2vec_format(str(path), binary=True)
    return str(path)


def synthetic_binary(data: Path, rows: int = 1_000_000, dim: int = 300) -> str:
    """benchmarks/data/synthetic-1m-300.bin: word2vec binary of random words and vectors (seeded)."""
    path = data / f"synthetic-{rows // 1_000_000}m-{dim}.bin"
    if not path.exists():
        import numpy as np

        rng = np.random.default_rng(0)
        tmp = path.with_suffix(".partial")
        with open(tmp, "wb") as f:
            f.write(f"{rows} {dim}\n".encode())
            for start in range(0, rows, 50_000):
                block = rng.standard_normal((50_000, dim), dtype=np.float32)
                tags = rng.integers(1 << 30, size=len(block))
                f.write(b"".join(f"w{start + i:07d}x{tags[i]:x} ".encode() + block[i].tobytes() + b"\n"
                                 for i in range(len(block))))
        tmp.rename(path)
    return str(path)


def fasttext_model(data: Path) -> str:
    """benchmarks/data/reviews-2m.bin: skipgram, dim 100, fastText's default 2,000,000 buckets,
    trained by the fastText library on the packaged reviews (all 33,530)."""
    path = data / "reviews-2m.bin"
    if not path.exists():
        from simdex.engine import packaged
        from simdex.engine.training.labelled import tokenize

        corpus = data / "reviews.txt"
        with open(corpus, "w", encoding="utf-8") as f:
            for source in ("imdb", "rotten_tomatoes"):
                for text in packaged.reviews(source)[0]:
                    f.write(" ".join(tokenize(text)) + "\n")
        # in a fresh interpreter: fasttext-modern 0.10's trainer fails with "Encountered NaN." in a
        # process whose heap has been used (see tests/test_fasttext.py's train)
        script = ("import fasttext, sys; fasttext.train_unsupervised(sys.argv[1], model='skipgram', dim=100, "
                  "epoch=5, minCount=5, bucket=2_000_000, thread=2, verbose=0).save_model(sys.argv[2])")
        subprocess.run([sys.executable, "-c", script, str(corpus), str(path)], check=True)
    return str(path)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="the GloVe files only")
    args = parser.parse_args()
    text = glove_text()
    files = [("glove.6B.50d.txt (GloVe text)", str(text), "text"),
             ("glove.6B.50d.bin (word2vec binary)", binary_copy(text), "binary")]
    if not args.quick:
        files += [("synthetic 1,000,000 x 300 (word2vec binary)", synthetic_binary(text.parent), "binary"),
                  ("a fastText .bin: 100-d, 2,000,000 buckets, trained on the packaged reviews",
                   fasttext_model(text.parent), "fasttext")]
    tables = []
    cold = None
    for label, path, mode in files:
        rows = {"gensim": [], "simdex": []}
        for round_ in range(args.rounds):
            wall, rss, out = run_measured([PYTHON, "-c", GENSIM, path, mode])
            rows["gensim"].append((float(out), wall, rss))
            store = tempfile.mkdtemp(prefix="simdex-bench-")
            try:
                wall, rss, out = run_measured([SIMDEX, "ingest", path, "--store", store, "--json"])
                if mode == "fasttext" and round_ == args.rounds - 1:
                    cold = [run_measured([SIMDEX, "neighbors", "excelent", "--store", store, "-k", "5", "--json"])
                            for _ in range(7)]
            finally:
                shutil.rmtree(store)
            rows["simdex"].append((json.loads(out)["seconds"], wall, rss))
            print(f"{mode} round {round_ + 1}: gensim {rows['gensim'][-1]}, simdex {rows['simdex'][-1]}", flush=True)
        g = [median(column) for column in zip(*rows["gensim"])]
        s = [median(column) for column in zip(*rows["simdex"])]
        size = Path(path).stat().st_size / 2**20
        tables.append(f"""### {label}, {size:,.0f} MiB

| | load / ingest (s) | whole process (s) | peak RSS (MiB) |
|---|---|---|---|
| gensim `{CALLS[mode]}` | {g[0]:.2f} | {g[1]:.2f} | {g[2]:.0f} |
| `simdex ingest` (parse, normalise, SQLite + safetensors, commit) | {s[0]:.2f} | {s[1]:.2f} | {s[2]:.0f} |
| ratio simdex / gensim | **{s[0] / g[0]:.3f}** | {s[1] / g[1]:.3f} | **{s[2] / g[2]:.2f}** |
""")
    if cold:
        answer = [json.loads(line)["word"] for line in cold[0][2].splitlines()]
        tables.append(f"A cold `simdex neighbors excelent` on the fastText store (a word the model never saw, answered "
                      f"from its subwords; a fresh process, median of {len(cold)}): "
                      f"**{median([c[0] for c in cold]):.3f} s**, peak RSS {median([c[1] for c in cold]):.0f} MiB; "
                      f"it answered {', '.join(answer)}.\n")
    tables_text = "\n".join(tables)
    body = f"""## Ingest: GloVe 6B 50d (400,000 x 50), a 1M x 300 binary file, a fastText .bin

`benchmarks/bench_ingest.py --rounds {args.rounds}`; medians of {args.rounds} alternating rounds, fresh processes.
Machine: {machine()}

{tables_text}
Targets: the text file in at most 1/5 (0.2) of gensim's time; every binary file (word2vec binary,
fastText .bin) in at most half of gensim's time; peak memory below gensim's (at most 0.6x for the
fastText model); the cold query on the fastText store under 0.5 s. gensim's load builds a
KeyedVectors in memory; simdex's ingest also normalises the rows, writes the SQLite vocabulary and
the safetensors matrices (for fastText, the n-gram buckets too), and commits the version.
"""
    write_section("ingest", body)


if __name__ == "__main__":
    main()
