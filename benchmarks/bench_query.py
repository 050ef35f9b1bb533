"""A cold query, and agreement with gensim, on GloVe 6B 50d.

Cold: a fresh process answering `neighbors king` (k=10): `simdex neighbors king` against
python + gensim `KeyedVectors.load(mmap='r')` + `most_similar('king')`. Both whole-process wall
times, alternating, median of --runs. Agreement: top-10 neighbours of sampled words and
analogies, simdex (exact) against gensim on the same vectors.

    .venv/bin/python benchmarks/bench_query.py [--runs 7]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np

from common import DATA, PYTHON, SIMDEX, machine, median, run_measured, write_section

GENSIM = """
import sys
from gensim.models import KeyedVectors
kv = KeyedVectors.load(sys.argv[1], mmap="r")
for word, score in kv.most_similar("king", topn=10):
    print(word, score)
"""


def gensim_kv():
    from gensim.models import KeyedVectors

    from simdex.engine import packaged

    words, matrix, _ = packaged.load()
    kv = KeyedVectors(vector_size=matrix.shape[1], dtype=np.float32)
    kv.add_vectors(words, np.asarray(matrix))
    return kv


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    from simdex.engine import Store
    from simdex.engine.words.ingest import ingest

    DATA.mkdir(exist_ok=True)
    kv = gensim_kv()
    kv_path = DATA / "glove.6B.50d.kv"
    kv.save(str(kv_path))
    store_path = Path(tempfile.mkdtemp(prefix="simdex-bench-"))
    try:
        ingest(Store.create(store_path), None)
        store = Store.open(store_path)
        simdex_times, gensim_times = [], []
        for _ in range(args.runs):
            wall, _, out_s = run_measured([SIMDEX, "neighbors", "king", "--exact", "--store", str(store_path)])
            simdex_times.append(wall)
            wall, _, out_g = run_measured([PYTHON, "-c", GENSIM, str(kv_path)])
            gensim_times.append(wall)
        ours = [line.split()[1] for line in out_s.splitlines()[1:]]
        theirs = [line.split()[0] for line in out_g.splitlines()]
        assert ours == theirs, (ours, theirs)

        rng = np.random.default_rng(0)
        words = [kv.index_to_key[i] for i in rng.choice(100_000, size=300, replace=False)]
        same, worst = 0, 0.0
        for word in words:
            a, b = store.neighbors(word, k=10), kv.most_similar(word, topn=10)
            same += [w for w, _ in a] == [w for w, _ in b]
            worst = max(worst, float(np.max(np.abs(np.array([s for _, s in a]) - [s for _, s in b]))))
        triples = [words[i:i + 3] for i in range(0, 300, 3)]
        same_analogy, worst_analogy = 0, 0.0
        for a, b, c in triples:
            x, y = store.analogy(a, b, c, k=10), kv.most_similar(positive=[b, c], negative=[a], topn=10)
            same_analogy += [w for w, _ in x] == [w for w, _ in y]
            worst_analogy = max(worst_analogy, float(np.max(np.abs(np.array([s for _, s in x]) - [s for _, s in y]))))
    finally:
        shutil.rmtree(store_path)
    s, g = median(simdex_times), median(gensim_times)
    body = f"""## Cold query and agreement with gensim: GloVe 6B 50d

`benchmarks/bench_query.py --runs {args.runs}`; whole fresh processes, alternating, medians.
Machine: {machine()}

| fresh process answering `neighbors king` (k=10) | wall (s) |
|---|---|
| python + gensim `KeyedVectors.load(mmap='r')` + `most_similar` | {g:.3f} |
| `simdex neighbors king --exact` | {s:.3f} |
| ratio simdex / gensim | **{s / g:.3f}** |

Target: half of gensim's time or less. The answers were the same ten words.

Agreement (exact search, same vectors): top-10 neighbours identical for {same}/300 sampled words
(max score difference {worst:.1e}); analogy top-10 identical for {same_analogy}/100 sampled triples
(max score difference {worst_analogy:.1e}).
"""
    write_section("query", body)


if __name__ == "__main__":
    main()
