"""Sentence encodings of the 8,530 Rotten Tomatoes sentences: simdex against sentence-transformers.

In one run, same threads, alternating rounds:
- throughput on the first 2,000 sentences: sentence-transformers' `encode(batch_size=32,
  normalize_embeddings=True)` on a loaded, warmed-up model, against `simdex encode --json`'s
  `seconds` (first text read to last row committed, model loading excluded), full precision and
  --quantize int8; and both whole processes;
- parity: every stored vector of the full set against sentence-transformers' (cosine);
- int8 against full precision: cosine of every sentence; top-10 search overlap on 200 held-out
  queries;
- the tuned HNSW index on the encoded set: recall@10 against exact search.

    .venv/bin/python benchmarks/bench_encode.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import PYTHON, ROOT, SIMDEX, machine, run_measured, write_section

ST_PROCESS = """
import sys, time
from sentence_transformers import SentenceTransformer
texts = [line.rstrip("\\n") for line in open(sys.argv[2], encoding="utf-8")]
model = SentenceTransformer(sys.argv[1], device="cpu")
vectors = model.encode(texts, batch_size=32, normalize_embeddings=True)
print(len(vectors))
"""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import torch
    from sentence_transformers import SentenceTransformer

    from simdex.engine import Store, packaged
    from simdex.engine.sentences.model import resolve_model
    from simdex.indexes import build_index

    torch.set_num_threads(2)
    texts = packaged.reviews("rotten_tomatoes")[0]
    folder = str(resolve_model(None).path)
    work = Path(tempfile.mkdtemp(prefix="simdex-bench-encode-"))
    try:
        first = work / "first2000.txt"
        first.write_text("".join(t + "\n" for t in texts[:2000]), encoding="utf-8")
        held_out, stored = texts[-200:], texts[:-200]
        everything = work / "rt.txt"
        everything.write_text("".join(t + "\n" for t in stored), encoding="utf-8")

        model = SentenceTransformer(folder, device="cpu")
        model.encode(texts[:64], batch_size=32)
        modes = ["none", "int8"] + (["bf16"] if torch.ops.mkldnn._is_mkldnn_bf16_supported() else [])
        ours = {mode: [] for mode in modes}
        theirs = []
        for round_ in range(args.rounds):
            started = time.perf_counter()
            model.encode(texts[:2000], batch_size=32, normalize_embeddings=True)
            theirs.append(time.perf_counter() - started)
            for quantize in modes:
                store = work / f"r{round_}-{quantize}"
                record = encode(first, store, quantize)
                ours[quantize].append(record["seconds"])
            print(f"round {round_ + 1}: sentence-transformers {theirs[-1]:.2f}s, simdex {ours['none'][-1]:.2f}s, "
                  f"int8 {ours['int8'][-1]:.2f}s", file=sys.stderr)
        st_wall = statistics.median(run_measured([PYTHON, "-c", ST_PROCESS, folder, str(first)])[0] for _ in range(2))
        our_wall = statistics.median(
            run_measured([SIMDEX, "encode", str(first), "--store", str(work / f"wall{i}"), "--json"])[0]
            for i in range(2))

        # parity and int8 quality over the whole set (minus the held-out queries)
        full, int8 = work / "full", work / "int8"
        full_record, int8_record = encode(everything, full, "none"), encode(everything, int8, "int8")
        full_store, int8_store = Store.open(full), Store.open(int8)
        reference = model.encode(full_store.keys(), batch_size=32, normalize_embeddings=True)
        parity = np.sum(full_store.matrix() * reference, axis=1)
        assert int8_store.keys() == full_store.keys()
        int8_cos = np.sum(full_store.matrix() * int8_store.matrix(), axis=1)
        bf16_parity = None
        if "bf16" in modes:
            encode(everything, work / "bf16", "bf16")
            bf16_parity = np.sum(Store.open(work / "bf16").matrix() * reference, axis=1)
        exact_full = full_store.search_many(held_out, k=10, exact=True)
        exact_int8 = int8_store.search_many(held_out, k=10, exact=True)
        overlap = np.mean([len({h[0] for h in a} & {h[0] for h in b}) / 10 for a, b in zip(exact_full, exact_int8)])

        built = build_index(full_store, kind="hnsw", target_recall=0.95)
        searched = Store.open(full).search_many(held_out, k=10)
        index_recall = np.mean([len({h[0] for h in a} & {h[0] for h in b}) / 10
                                for a, b in zip(exact_full, searched)])
    finally:
        shutil.rmtree(work)

    st, fp, q8 = (statistics.median(x) for x in (theirs, ours["none"], ours["int8"]))
    lines = [
        "## Sentence encodings: Rotten Tomatoes (8,530 sentences), all-MiniLM-L6-v2",
        "",
        f"`benchmarks/bench_encode.py --rounds {args.rounds}`; one process, alternating rounds, medians; 2 threads.",
        f"Machine: {machine()}",
        "",
        "### Throughput on the first 2,000 sentences",
        "",
        "| | seconds | sentences/s | vs sentence-transformers |",
        "|---|---|---|---|",
        f"| sentence-transformers `encode(batch_size=32, normalize_embeddings=True)`, loaded and warm | {st:.2f} | "
        f"{2000 / st:,.0f} | 1 |",
        f"| `simdex encode` (`seconds`: read, encode, store, commit) | {fp:.2f} | {2000 / fp:,.0f} "
        f"| **{st / fp:.2f}x** |",
        f"| `simdex encode --quantize int8` | {q8:.2f} | {2000 / q8:,.0f} | **{st / q8:.2f}x** |",
        *([f"| `simdex encode --quantize bf16` (this CPU has bfloat16 instructions) | "
           f"{statistics.median(ours['bf16']):.2f} | "
           f"{2000 / statistics.median(ours['bf16']):,.0f} | {st / statistics.median(ours['bf16']):.2f}x |"]
          if "bf16" in modes else []),
        "",
        f"Each round: sentence-transformers {', '.join(f'{x:.2f}' for x in theirs)} s; simdex "
        f"{', '.join(f'{x:.2f}' for x in ours['none'])} s; int8 {', '.join(f'{x:.2f}' for x in ours['int8'])} s.",
        f"Whole processes (import, load, encode; simdex also stores): sentence-transformers {st_wall:.2f} s, "
        f"`simdex encode` {our_wall:.2f} s.",
        "Targets: at least 1.3x full precision, 2.5x int8.",
        "",
        f"### Quality over the {len(stored):,} stored sentences",
        "",
        f"- parity, cosine of each stored vector to sentence-transformers': min **{parity.min():.6f}**, "
        f"mean {parity.mean():.6f} (target: every one >= 0.9999)",
        *([f"- bf16 (opt-in) against sentence-transformers: min {bf16_parity.min():.6f}, mean {bf16_parity.mean():.6f}"]
          if bf16_parity is not None else []),
        f"- int8 against full precision: min **{int8_cos.min():.4f}**, mean **{int8_cos.mean():.4f}** "
        f"(targets: >= 0.98, mean >= 0.99)",
        f"- top-10 `search` overlap, int8 against full precision, on 200 held-out queries: **{overlap:.3f}** "
        f"(target >= 0.9)",
        f"- encode of the set: {full_record['seconds']:.1f} s full precision, {int8_record['seconds']:.1f} s int8; "
        f"{full_record['truncated']} truncated",
        f"- HNSW index (`simdex index build`): recall@10 {built.recall_at_10:.4f} on its tuning sample "
        f"(efSearch {built.params.get('efSearch')}); on the 200 held-out queries against exact search "
        f"{index_recall:.4f}",
    ]
    write_section("encode", "\n".join(lines))


def encode(path, store, quantize) -> dict:
    args = [SIMDEX, "encode", str(path), "--store", str(store), "--json"]
    if quantize != "none":
        args += ["--quantize", quantize]
    result = subprocess.run(args, capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    return json.loads(result.stdout)


if __name__ == "__main__":
    main()
