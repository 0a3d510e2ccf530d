"""``load_bench.py --trace-python`` and ``--pymalloc-stats``' instrument (bench/soak_tracing.py), on a real
child process: the line that keeps allocating between samples is the one reported as grown, a line that
allocated once before the samples is not; pymalloc's live bytes follow small objects the child keeps; and
processes that are not the server are left alone."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from soak_tracing import SoakTracing  # noqa: E402

# Stands in for the server: its argv names ``lsp_server serve`` as `python -m lsp_server serve` does.
CHILD = """
import sys, time
kept = [bytes(200_000)]  # allocated before tracing starts: not growth
grow = []
print("ready", flush=True)
while True:
    grow.append(bytearray(20_000))  # the leak
    time.sleep(0.01)
"""


def _child(tracing: SoakTracing, *argv: str, code: str = CHILD) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", code, *argv], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, **tracing.env()})
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def test_the_growing_line_is_reported(tmp_path: Path) -> None:
    tracing = SoakTracing(tmp_path, frames=1)
    proc = _child(tracing, "lsp_server", "serve")
    try:
        for _ in range(3):
            tracing.sample(proc.pid)
            time.sleep(0.5)
        report = tracing.report(top=3)
    finally:
        proc.kill()
    assert report["snapshots"] == 2
    line, sizes = next(iter(report["grown_kib"].items()))
    leak = CHILD.split("\n").index("    grow.append(bytearray(20_000))  # the leak") + 1
    assert line == f"<string>:{leak}", report
    assert sizes[1] > sizes[0] > 0
    assert "pymalloc" not in report  # tracemalloc wraps the allocator: CPython prints no pymalloc figures


# Keeps small objects (ints, short strs, tuples: pymalloc's) at every round.
SMALL_OBJECTS_CHILD = CHILD.replace("grow.append(bytearray(20_000))", "grow.extend((i, str(i)) for i in range(2_000))")


def test_pymalloc_figures_follow_live_objects_without_tracing(tmp_path: Path) -> None:
    tracing = SoakTracing(tmp_path, frames=0)
    proc = _child(tracing, "lsp_server", "serve", code=SMALL_OBJECTS_CHILD)
    try:
        for _ in range(2):
            tracing.sample(proc.pid)
            time.sleep(1.0)
        report = tracing.report()
    finally:
        proc.kill()
    first, last = report["pymalloc"]
    assert report["snapshots"] == 0  # no tracemalloc
    assert set(first) == {"arenas", "live_kib", "free_in_pools_kib", "unused_pools_kib"}
    assert last["live_kib"] > first["live_kib"] + 1000  # ~100 rounds of 2,000 tuples, ints and strs kept
    assert last["arenas"] * 1024 >= last["live_kib"] > 0


def test_other_processes_are_not_traced(tmp_path: Path) -> None:
    tracing = SoakTracing(tmp_path, frames=1)
    proc = _child(tracing, "something", "else")
    try:
        tracing.sample(proc.pid)  # SIGUSR2 with Python's default action: the process ends
        proc.wait(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode != 0 and not list((tmp_path / "trace-snapshots").glob("*.snap"))
