"""Ingest glove.6B.50d.txt: simdex against gensim's load_word2vec_format, side by side.

Each round runs both in fresh processes, alternating. Reported: the time inside the process
(gensim's load call; simdex's whole ingest: parse, normalise, SQLite and tensor written,
committed), the whole process's wall time (imports included) and its peak RSS.

    .venv/bin/python benchmarks/bench_ingest.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile

from common import PYTHON, SIMDEX, glove_text, machine, median, run_measured, write_section

GENSIM = """
import sys, time
from gensim.models import KeyedVectors
t = time.perf_counter()
kv = KeyedVectors.load_word2vec_format(sys.argv[1], no_header=True)
print(time.perf_counter() - t)
"""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    path = str(glove_text())
    rows = {"gensim": [], "simdex": []}
    for round_ in range(args.rounds):
        wall, rss, out = run_measured([PYTHON, "-c", GENSIM, path])
        rows["gensim"].append((float(out), wall, rss))
        store = tempfile.mkdtemp(prefix="simdex-bench-")
        try:
            wall, rss, out = run_measured([SIMDEX, "ingest", path, "--store", store, "--json"])
        finally:
            shutil.rmtree(store)
        rows["simdex"].append((json.loads(out)["seconds"], wall, rss))
        print(f"round {round_ + 1}: gensim {rows['gensim'][-1]}, simdex {rows['simdex'][-1]}")
    g = [median(column) for column in zip(*rows["gensim"])]
    s = [median(column) for column in zip(*rows["simdex"])]
    body = f"""## Ingest: glove.6B.50d.txt (400,000 x 50, 171 MB)

`benchmarks/bench_ingest.py --rounds {args.rounds}`; medians of {args.rounds} alternating rounds, fresh processes.
Machine: {machine()}

| | load / ingest (s) | whole process (s) | peak RSS (MiB) |
|---|---|---|---|
| gensim `load_word2vec_format(no_header=True)` | {g[0]:.2f} | {g[1]:.2f} | {g[2]:.0f} |
| `simdex ingest` (parse, normalise, SQLite + safetensors, commit) | {s[0]:.2f} | {s[1]:.2f} | {s[2]:.0f} |
| ratio simdex / gensim | **{s[0] / g[0]:.3f}** | {s[1] / g[1]:.3f} | {s[2] / g[2]:.2f} |

Target: ingest at most 1/5 (0.2) of gensim's time, peak memory no higher than gensim's.
"""
    write_section("ingest", body)


if __name__ == "__main__":
    main()
