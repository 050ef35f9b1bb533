"""Shared by the benchmarks: the real glove.6B.50d.txt, fresh-process timing, RESULTS.md sections."""

from __future__ import annotations

import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "data"
RESULTS = HERE / "RESULTS.md"
PYTHON = sys.executable
SIMDEX = str(Path(sys.executable).with_name("simdex"))


def glove_text() -> Path:
    """benchmarks/data/glove.6B.50d.txt, written once from the packaged vectors."""
    path = DATA / "glove.6B.50d.txt"
    if not path.exists():
        from simdex.engine import packaged

        DATA.mkdir(exist_ok=True)
        print(f"writing {path} from the packaged vectors ...", file=sys.stderr)
        packaged.write_glove_text(path)
    return path


def run_measured(argv, env=None) -> tuple[float, float, str]:
    """Run argv in a fresh process: (wall seconds, peak RSS in MiB, stdout).

    The peak RSS comes from GNU time's %M (the kernel's maxrss of that one process)."""
    started = time.perf_counter()
    process = subprocess.run(["/usr/bin/time", "-f", "maxrss_kb=%M", *argv], capture_output=True,
                             env=env, cwd=ROOT)
    wall = time.perf_counter() - started
    err = process.stderr.decode()
    if process.returncode != 0:
        raise RuntimeError(f"{argv} failed ({process.returncode}): {err[-2000:]}")
    peak_kb = int(re.findall(r"maxrss_kb=(\d+)", err)[-1])
    return wall, peak_kb / 1024, process.stdout.decode()


def median(values) -> float:
    return statistics.median(values)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        total = int(re.search(r"MemTotal:\s+(\d+)", open("/proc/meminfo").read()).group(1))
        memory = f", {total / 2**20:.0f} GiB RAM"
    except (OSError, AttributeError):
        pass
    versions = []
    for name in ("numpy", "faiss", "gensim", "pyarrow", "torch"):
        try:
            module = __import__(name)
            versions.append(f"{name} {module.__version__}")
        except ImportError:
            pass
    return (f"{cpu}, {os.cpu_count()} cores{memory}; {platform.system()} {platform.release()}; "
            f"Python {platform.python_version()}; " + ", ".join(versions))


def write_section(name: str, body: str) -> None:
    """Replace (or add) the section between <!-- name:start --> and <!-- name:end --> in RESULTS.md."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.strip()}\n{end}"
    text = (RESULTS.read_text() if RESULTS.exists() else
            "# simdex benchmark results\n\nEach section is written by the script it names; rerun it to refresh.\n")
    if start in text:
        text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(text)
    print(body)
