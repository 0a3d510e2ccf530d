"""``load_bench.py --trace-python``'s instrument (bench/soak_tracing.py), on a real child process: the line
that keeps allocating between samples is the one reported as grown, a line that allocated once before the
samples is not, and processes that are not the server are left alone."""

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


def _child(tracing: SoakTracing, *argv: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", CHILD, *argv], stdout=subprocess.PIPE, text=True,
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


def test_other_processes_are_not_traced(tmp_path: Path) -> None:
    tracing = SoakTracing(tmp_path, frames=1)
    proc = _child(tracing, "something", "else")
    try:
        tracing.sample(proc.pid)  # SIGUSR2 with Python's default action: the process ends
        proc.wait(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode != 0 and not list((tmp_path / "trace-snapshots").glob("*.snap"))
