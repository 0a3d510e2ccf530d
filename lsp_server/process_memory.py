"""How the server process uses memory: at most two glibc heap arenas, large blocks in maps of their own
(``fix_mmap_threshold``), and where its memory is (``memory_usage``).

Why: glibc gives each thread that allocates a heap arena of its own (up to eight per core), and memory freed
in one arena is reused only by allocations served from it. The server's threads — stdin reader, event loop,
inference worker, index jobs, model loaders, file watcher — each churn through short-lived native buffers
(token lists, tree-sitter trees, SQLite pages, llama.cpp batches), so over a long session freed memory is
spread thin over many arenas and the resident size creeps up. ``bench/load_bench.py``'s soak (100,000
editor events) measured the growth between its 40,000th and 80,000th event at +2.7 and +2.8 MB with glibc's
default and +1.3 MB with two arenas, about 6 MB less in all. Fewer arenas cost some lock contention inside
malloc, which is invisible beside a model's work. A ``MALLOC_ARENA_MAX`` the user set wins; other C libraries
(musl, macOS) are left alone.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
from typing import Any

M_ARENA_MAX = -8  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
SERVER_ARENAS = 2
SERVER_MMAP_THRESHOLD = 32 * 1024


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (on Linux), loaded once; None elsewhere (musl, macOS, Windows)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    return libc if hasattr(libc, "gnu_get_libc_version") else None


def limit_malloc_arenas(arenas: int = SERVER_ARENAS) -> bool:
    """Cap glibc's heap arenas for this process (call before threads start); True when the cap was set."""
    return _mallopt(M_ARENA_MAX, arenas, "MALLOC_ARENA_MAX")


def fix_mmap_threshold(threshold: int = SERVER_MMAP_THRESHOLD) -> bool:
    """Give every allocation of ``threshold`` bytes or more a map of its own, unmapped when it is freed; True
    when set. Why: glibc starts at 128 KiB and raises the threshold to the size of each mapped block freed, so
    after the first few buffers a long session's large ones (a document's text at each keystroke, a prompt,
    its token ids, cached files) all come from the heap, where the holes they leave between longer-lived
    blocks stay resident. The server's soak (bench/load_bench.py, 100,000 editor events) beside one with
    glibc's moving threshold: 158.0 against 167.2 MB resident at the end, 5.4 against 14.6 MB held free, +2.1
    against +4.0 MB over the second half. A ``MALLOC_MMAP_THRESHOLD_`` the user set wins."""
    return _mallopt(M_MMAP_THRESHOLD, threshold, "MALLOC_MMAP_THRESHOLD_")


def _mallopt(param: int, value: int, user_setting: str) -> bool:
    """glibc's ``mallopt(param, value)``; False off glibc, or when the user set ``user_setting`` (glibc's
    environment spelling of the same option), which wins."""
    libc = _glibc()
    if libc is None or user_setting in os.environ:
        return False
    return bool(libc.mallopt(param, value))


class _MallInfo2(ctypes.Structure):
    """glibc's ``struct mallinfo2`` (2.33 and later): byte counts as size_t."""
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                    "fsmblks", "uordblks", "fordblks", "keepcost")]


SQLITE_STATUS_MEMORY_USED = 0


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _malloc_bytes() -> tuple[int, int] | None:
    """(in use, held free) by glibc's malloc, in its heaps and its own maps; None off glibc or before 2.33."""
    mallinfo2 = getattr(_glibc(), "mallinfo2", None)
    if mallinfo2 is None:
        return None
    mallinfo2.restype = _MallInfo2
    info = mallinfo2()
    return info.uordblks + info.hblkhd, info.fordblks


@functools.cache
def _sqlite_status64() -> Any:
    """``sqlite3_status64`` of the SQLite the sqlite3 module uses (looked up once through that module's own
    extension, so the same library whether linked or built in); None when it cannot be found."""
    try:
        import _sqlite3

        return ctypes.CDLL(_sqlite3.__file__).sqlite3_status64
    except (ImportError, OSError, AttributeError, TypeError):
        return None


def _sqlite_bytes() -> int | None:
    """SQLite's own count of the memory it holds (page caches, compiled statements), process-wide."""
    status64 = _sqlite_status64()
    if status64 is None:
        return None
    current, highest = ctypes.c_int64(), ctypes.c_int64()
    if status64(SQLITE_STATUS_MEMORY_USED, ctypes.byref(current), ctypes.byref(highest), 0) != 0:
        return None
    return current.value


def memory_usage() -> dict[str, float]:
    """Where the process's memory is, in MB, for ``coderflash/status`` ``memory``: ``rss_mb`` (resident),
    ``malloc_in_use_mb`` and ``malloc_free_mb`` (held by glibc's malloc after it was freed: what fragmentation
    keeps resident), ``sqlite_mb``. Why: a resident size that creeps is either live memory (in use grows) or the
    allocator's (free grows), and the two need different fixes; ``bench/load_bench.py``'s soak records this.
    A figure this platform cannot give is left out."""
    out: dict[str, float] = {}
    rss = _rss_bytes()
    if rss is not None:
        out["rss_mb"] = round(rss / 1e6, 1)
    malloc = _malloc_bytes()
    if malloc is not None:
        out["malloc_in_use_mb"], out["malloc_free_mb"] = round(malloc[0] / 1e6, 1), round(malloc[1] / 1e6, 1)
    sqlite = _sqlite_bytes()
    if sqlite is not None:
        out["sqlite_mb"] = round(sqlite / 1e6, 2)
    return out
