"""Which Python allocations of the server grow over a soak (``load_bench.py --trace-python FRAMES``).

RSS alone cannot say whether a rise is a structure that keeps growing (a leak) or a bounded cache still
filling. This runs the server with ``tracemalloc`` armed by a signal: the first sample after warm-up starts
tracing, each later sample writes a snapshot; the report lists the source lines whose live allocations grew
most from the first snapshot to the last, with their size at every snapshot, so a line that rises and then
holds (a cache at its bound) reads apart from one that rises at every sample.

Tracing costs time and memory: the soak's RSS figures of such a run are not comparable with a plain one.
"""

from __future__ import annotations

import os
import signal
import time
import tracemalloc
from pathlib import Path

# Loaded by every Python process started with this directory on PYTHONPATH; acts only in the server.
_SITECUSTOMIZE = '''
import os, sys
if os.environ.get("CF_BENCH_TRACE_FRAMES") and "lsp_server" in sys.orig_argv and "serve" in sys.orig_argv:
    import signal, time, tracemalloc

    def _on_signal(signum, frame):
        if not tracemalloc.is_tracing():
            tracemalloc.start(int(os.environ["CF_BENCH_TRACE_FRAMES"]))
            return
        out = os.path.join(os.environ["CF_BENCH_TRACE_DIR"], f"{time.time_ns()}.snap")
        tracemalloc.take_snapshot().dump(out + ".part")
        os.replace(out + ".part", out)

    signal.signal(signal.SIGUSR2, _on_signal)
'''


class SoakTracing:
    """The environment that arms the server, the signal at each sample, and the report."""

    def __init__(self, work: Path, frames: int) -> None:
        self.site = work / "trace-site"
        self.snapshots = work / "trace-snapshots"
        self.site.mkdir(parents=True, exist_ok=True)
        self.snapshots.mkdir(parents=True, exist_ok=True)
        (self.site / "sitecustomize.py").write_text(_SITECUSTOMIZE)
        self.frames = frames
        self.started = False

    def env(self) -> dict[str, str]:
        path = os.pathsep.join(p for p in (str(self.site), os.environ.get("PYTHONPATH", "")) if p)
        return {"PYTHONPATH": path, "CF_BENCH_TRACE_FRAMES": str(self.frames),
                "CF_BENCH_TRACE_DIR": str(self.snapshots)}

    def sample(self, pid: int, timeout: float = 120.0) -> None:
        """Start tracing (first call) or write a snapshot and wait until it is on disk."""
        before = len(list(self.snapshots.glob("*.snap")))
        os.kill(pid, signal.SIGUSR2)
        if not self.started:
            self.started = True
            return
        deadline = time.monotonic() + timeout
        while len(list(self.snapshots.glob("*.snap"))) == before and time.monotonic() < deadline:
            time.sleep(0.1)

    def report(self, top: int = 15) -> dict:
        """The ``top`` source lines by growth from the first snapshot to the last, KiB at every snapshot."""
        files = sorted(self.snapshots.glob("*.snap"))
        if len(files) < 2:
            return {"snapshots": len(files)}
        own = tracemalloc.Filter(False, tracemalloc.__file__)
        sizes: list[dict[str, int]] = []
        for f in files:
            stats = tracemalloc.Snapshot.load(str(f)).filter_traces([own]).statistics("lineno")
            sizes.append({f"{_short(s.traceback[0].filename)}:{s.traceback[0].lineno}": s.size for s in stats})
        lines = set().union(*sizes)
        grown = sorted(lines, key=lambda k: sizes[-1].get(k, 0) - sizes[0].get(k, 0), reverse=True)[:top]
        return {"snapshots": len(files), "frames": self.frames,
                "traced_kib": [round(sum(s.values()) / 1024) for s in sizes],
                "grown_kib": {k: [round(s.get(k, 0) / 1024) for s in sizes] for k in grown}}


_REPO = str(Path(__file__).resolve().parent.parent) + os.sep


def _short(filename: str) -> str:
    return filename[len(_REPO):] if filename.startswith(_REPO) else filename
