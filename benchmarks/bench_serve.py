"""`simdex serve` under load: neighbour requests through the tuned HNSW index, 8 concurrent clients.

The server is `simdex serve` in its own process on a loopback port; the clients are 8 threads of
one process, each on a keep-alive connection, asking `/api/neighbors?q=WORD&k=10` for words
drawn from the first 30,000. Bounded: `--requests` in all or `--seconds`, whichever ends first.
The anchor is the same queries answered in-process by `Store.neighbors` (no HTTP), one thread.

    .venv/bin/python benchmarks/bench_serve.py [--requests 20000] [--seconds 60]
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import numpy as np

from simdex.engine import Store  # noqa: E402
from simdex.engine.words.ingest import ingest  # noqa: E402
from simdex.indexes import build_index  # noqa: E402

from common import SIMDEX, machine, write_section

CLIENTS = 8


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(port: int, process, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"simdex serve exited with {process.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/api/info")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("simdex serve did not answer in time")


def client(port: int, words, budget: dict, latencies: list, errors: list) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for word in words:
        if time.monotonic() > budget["deadline"]:
            break
        started = time.perf_counter()
        connection.request("GET", "/api/neighbors?" + urllib.parse.urlencode({"q": word, "k": 10}))
        response = connection.getresponse()
        body = response.read()
        latencies.append(time.perf_counter() - started)
        if response.status != 200 or len(json.loads(body)) != 10:
            errors.append((word, response.status))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.create(Path(tmp) / "glove")
        ingest(store, None)
        built = build_index(store, kind="hnsw")
        words = store.keys()[:30_000]
        rng = np.random.default_rng(0)
        queries = [words[i] for i in rng.integers(0, len(words), size=args.requests)]

        started = time.perf_counter()
        for word in queries[:2000]:
            store.neighbors(word, k=10)
        in_process = (time.perf_counter() - started) / 2000
        store.close()

        port = free_port()
        server = subprocess.Popen([str(SIMDEX), "serve", "--store", str(Path(tmp) / "glove"), "--port", str(port)],
                                  stderr=subprocess.DEVNULL)
        try:
            wait_until_up(port, server)
            warm: list = []
            client(port, queries[:300], {"deadline": float("inf")}, warm, [])
            latencies, errors = [], []
            budget = {"deadline": time.monotonic() + args.seconds}
            threads = [threading.Thread(target=client, args=(port, queries[i::CLIENTS], budget, latencies, errors))
                       for i in range(CLIENTS)]
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            seconds = time.perf_counter() - started
        finally:
            server.terminate()
            server.wait(10)

    ms = np.array(latencies) * 1000
    lines = [f"Machine: {machine()}", "",
             f"HNSW index ({built.factory}, recall@10 {built.recall_at_10:.4f}); {len(latencies):,} requests "
             f"`/api/neighbors?q=WORD&k=10` from {CLIENTS} keep-alive clients in {seconds:.1f}s; "
             f"{len(errors)} errors.", "",
             "| | requests/s | p50 (ms) | p99 (ms) | max (ms) |", "|---|---|---|---|---|",
             f"| simdex serve, {CLIENTS} clients | {len(latencies) / seconds:,.0f} | {np.percentile(ms, 50):.2f} | "
             f"{np.percentile(ms, 99):.2f} | {ms.max():.2f} |",
             f"| Store.neighbors in-process (anchor, 1 thread, no HTTP) | {1 / in_process:,.0f} | "
             f"{in_process * 1000:.2f} | | |",
             "", "Target: at least 500 requests/s with p99 under 50 ms (8 clients, 2 cores)."]
    write_section("serve", "## Serving (`bench_serve.py`)\n\n" + "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
