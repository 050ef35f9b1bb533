"""Milvus (milvus-lite in-process, and a real Milvus standalone server on loopback when the
`milvus` package is installed) against the local HNSW store, on the packaged GloVe 6B 50d.

In one run, on the same 400,000 vectors:
- push: the local store's version copied into each Milvus (rows/s), index built and tuned;
- batch neighbours: 2,000 words' top-10 in one batch (`neighbors --file`'s path), queries/s,
  through Milvus's HNSW and through the local FAISS HNSW index; recall@10 of both against exact;
- single queries: the latency of one `neighbors WORD` through each;
- analogies: the Google set over the first 300,000 words (gensim's default restriction) through
  each index, over-fetched and re-ranked exactly, against exact search.

    .venv/bin/python benchmarks/bench_milvus.py
"""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from simdex.engine import Store  # noqa: E402
from simdex.engine.backends.transfer import copy_version  # noqa: E402
from simdex.engine.words.evaluate import evaluate_analogies  # noqa: E402
from simdex.engine.words.ingest import ingest  # noqa: E402
from simdex.indexes import build_index  # noqa: E402

from common import machine, write_section


def recall(found, truth) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


@contextlib.contextmanager
def standalone(data_dir: str):
    """The address of a Milvus 2.3.5 standalone server (the binary the `milvus` package bundles) on a
    loopback port, authorization on; None where the package is missing."""
    try:
        from milvus import MilvusServer, MilvusServerConfig
    except ImportError:
        yield None
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = MilvusServerConfig(data_dir=data_dir)
    config.set("authorization_enabled", True)
    config.set("proxy_port", port)
    server = MilvusServer(config)
    server.start()
    os.environ["SIMDEX_MILVUS_TOKEN"] = "root:Milvus"
    try:
        yield f"milvus://127.0.0.1:{port}/glove"
    finally:
        server.stop()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, standalone(f"{tmp}/standalone") as server:
        local = Store.create(Path(tmp) / "local")
        ingest(local, None)
        build_index(local, kind="hnsw")
        local = Store.open(Path(tmp) / "local")
        backends = {"Milvus HNSW (milvus-lite)": f"milvus-lite://{tmp}/milvus.db/glove"}
        if server:
            backends["Milvus HNSW (standalone 2.3.5, loopback)"] = server
        pushes, remotes = {}, {}
        for name, address in backends.items():
            pushes[name] = copy_version(local, Store.create(address))
            remotes[name] = Store.open(address)
            remotes[name].keys()

        rng = np.random.default_rng(0)
        words = [local.keys()[i] for i in rng.choice(30_000, 2000, replace=False)]
        truth = [[w for w, _ in answers] for answers in local.neighbors_many(words, k=10, exact=True)]
        rows = {}
        for name, store in {"local FAISS HNSW": local, **remotes}.items():
            store.neighbors_many(words[:50], k=10)  # warm
            started = time.perf_counter()
            found = [[w for w, _ in answers] for answers in store.neighbors_many(words, k=10)]
            batch_seconds = time.perf_counter() - started
            single = []
            for word in words[:30]:
                started = time.perf_counter()
                store.neighbors(word, k=10)
                single.append(time.perf_counter() - started)
            analogies = evaluate_analogies(store, restrict=300_000)
            rows[name] = (len(words) / batch_seconds, recall(found, truth), statistics.median(single) * 1000,
                          analogies.accuracy, analogies.seconds)
        exact = evaluate_analogies(local, restrict=300_000, exact=True)
        tuned = {name: store.version.config["index"] for name, store in remotes.items()}
        for store in remotes.values():
            store.close()

    lines = [f"Machine: {machine()}", ""]
    for name, pushed in pushes.items():
        lines.append(f"- Push of {pushed.count:,} x {pushed.dim} into {name} (insert, HNSW build, ef tuning): "
                     f"{pushed.seconds:.1f} s, {pushed.count / pushed.seconds:,.0f} rows/s; tuned "
                     f"{tuned[name]}.")
    lines += ["", "| backend | batch neighbours (queries/s, 2,000 in one batch) | recall@10 vs exact "
              "| one query (ms, median) "
             "| Google analogies @300,000 | analogy eval (s) |", "|---|---|---|---|---|---|"]
    for name, (qps, rec, single_ms, accuracy, seconds) in rows.items():
        lines.append(f"| {name} | {qps:,.0f} | {rec:.4f} | {single_ms:.1f} | {accuracy:.4f} | {seconds:.1f} |")
    lines += [f"| exact (numpy) | | 1.0000 | | {exact.accuracy:.4f} | {exact.seconds:.1f} |", "",
              "Targets: analogies through Milvus within 0.005 of exact; batch queries go in requests of up to 1,024 "
              "queries."]
    write_section("milvus", "## Milvus (`bench_milvus.py`)\n\n" + "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
