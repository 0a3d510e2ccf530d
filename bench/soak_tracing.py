"""Which Python allocations of the server grow over a soak (``load_bench.py --trace-python FRAMES``), and
whether Python's object allocator holds more memory as the soak goes on (``--pymalloc-stats``).

RSS alone cannot say whether a rise is a structure that keeps growing (a leak) or a bounded cache still
filling. This runs the server with ``tracemalloc`` armed by a signal: the first sample after warm-up starts
tracing, each later sample writes a snapshot; the report lists the source lines whose live allocations grew
most from the first snapshot to the last, with their size at every snapshot, so a line that rises and then
holds (a cache at its bound) reads apart from one that rises at every sample.

Tracing costs time and memory: the soak's RSS figures of such a run are not comparable with a plain one.

Every sample also records pymalloc's own figures (``sys._debugmallocstats``: milliseconds, nothing allocated
in the object domain): its 1 MiB arenas, the bytes of live objects in them, and the bytes free inside partly
used pools and in unused pools. Why: the soak's remaining creep is in anonymous memory, much of it where
pymalloc keeps Python's small objects. Live bytes flat while arenas and free bytes grow is fragmentation of
the object allocator, which no glibc setting reaches; live bytes growing is a leak. With ``frames`` 0 only
these figures are taken (no tracemalloc), so the run's RSS stays comparable with a plain one; with tracing
CPython prints none (tracemalloc wraps the allocator), so a traced run has no pymalloc figures.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "lsp"))

from real_repos import alive  # noqa: E402

# Loaded by every Python process started with this directory on PYTHONPATH; acts only in the server.
_SITECUSTOMIZE = '''
import os, sys
if os.environ.get("CF_BENCH_TRACE_FRAMES") and "lsp_server" in sys.orig_argv and "serve" in sys.orig_argv:
    import signal, time, tracemalloc

    def _pymalloc_stats(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        saved = os.dup(2)
        sys.stderr.flush()
        os.dup2(fd, 2)
        try:
            sys._debugmallocstats()  # writes to the C level's stderr only
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(fd)

    def _on_signal(signum, frame):
        out = os.path.join(os.environ["CF_BENCH_TRACE_DIR"], f"{time.time_ns()}")
        _pymalloc_stats(out + ".part")
        frames = int(os.environ["CF_BENCH_TRACE_FRAMES"])
        if frames and not tracemalloc.is_tracing():
            tracemalloc.start(frames)
        elif frames:
            tracemalloc.take_snapshot().dump(out + ".snap.part")
            os.replace(out + ".snap.part", out + ".snap")
        os.replace(out + ".part", out + ".pymalloc")

    signal.signal(signal.SIGUSR2, _on_signal)
'''


class SoakTracing:
    """The environment that arms the server, the signal at each sample, and the report (``frames`` 0:
    pymalloc's figures only, no tracemalloc)."""

    def __init__(self, work: Path, frames: int) -> None:
        self.site = work / "trace-site"
        self.snapshots = work / "trace-snapshots"
        self.site.mkdir(parents=True, exist_ok=True)
        self.snapshots.mkdir(parents=True, exist_ok=True)
        (self.site / "sitecustomize.py").write_text(_SITECUSTOMIZE)
        self.frames = frames

    def env(self) -> dict[str, str]:
        path = os.pathsep.join(p for p in (str(self.site), os.environ.get("PYTHONPATH", "")) if p)
        return {"PYTHONPATH": path, "CF_BENCH_TRACE_FRAMES": str(self.frames),
                "CF_BENCH_TRACE_DIR": str(self.snapshots)}

    def sample(self, pid: int, timeout: float = 120.0) -> None:
        """Record pymalloc's figures and start tracing (first call) or write a snapshot; wait until the
        server has written them."""
        before = len(list(self.snapshots.glob("*.pymalloc")))
        os.kill(pid, signal.SIGUSR2)
        deadline = time.monotonic() + timeout
        while len(list(self.snapshots.glob("*.pymalloc"))) == before and time.monotonic() < deadline:
            if not alive({pid}):
                return
            time.sleep(0.1)

    def report(self, top: int = 15) -> dict:
        """pymalloc's figures at every sample when not tracing; when tracing, the ``top`` source lines by
        growth from the first snapshot to the last, KiB at every snapshot."""
        files = sorted(self.snapshots.glob("*.snap"))
        out: dict = {"snapshots": len(files)}
        if not self.frames:  # tracemalloc wraps the allocator, and CPython then prints no pymalloc figures
            out["pymalloc"] = [pymalloc_figures(f.read_text()) for f in sorted(self.snapshots.glob("*.pymalloc"))]
        if len(files) < 2:
            return out
        own = tracemalloc.Filter(False, tracemalloc.__file__)
        sizes: list[dict[str, int]] = []
        for f in files:
            stats = tracemalloc.Snapshot.load(str(f)).filter_traces([own]).statistics("lineno")
            sizes.append({f"{_short(s.traceback[0].filename)}:{s.traceback[0].lineno}": s.size for s in stats})
        lines = set().union(*sizes)
        grown = sorted(lines, key=lambda k: sizes[-1].get(k, 0) - sizes[0].get(k, 0), reverse=True)[:top]
        return {**out, "frames": self.frames,
                "traced_kib": [round(sum(s.values()) / 1024) for s in sizes],
                "grown_kib": {k: [round(s.get(k, 0) / 1024) for s in sizes] for k in grown}}


# ``sys._debugmallocstats`` lines → figure names; the unused pools' line reads "N unused pools * 16384 bytes = B".
_PYMALLOC_LINES = {"arenas": "# arenas allocated current", "live_kib": "# bytes in allocated blocks",
                   "free_in_pools_kib": "# bytes in available blocks", "unused_pools_kib": " unused pools * "}


def pymalloc_figures(text: str) -> dict[str, int]:
    """Arenas held now, KiB of live objects, KiB free inside partly used pools and in unused pools; a
    figure the output lacks (a build without pymalloc) is left out."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        for name, marker in _PYMALLOC_LINES.items():
            if marker in line and "=" in line and name not in out:
                value = int(line.rsplit("=", 1)[1].strip().replace(",", ""))
                out[name] = value if name == "arenas" else round(value / 1024)
    return out


_REPO = str(Path(__file__).resolve().parent.parent) + os.sep


def _short(filename: str) -> str:
    return filename[len(_REPO):] if filename.startswith(_REPO) else filename
