"""How the server process uses the C allocator: at most two glibc heap arenas.

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
import os
import sys

M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)
SERVER_ARENAS = 2


def limit_malloc_arenas(arenas: int = SERVER_ARENAS) -> bool:
    """Cap glibc's heap arenas for this process (call before threads start); True when the cap was set."""
    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(None)
        if not hasattr(libc, "gnu_get_libc_version"):  # not glibc
            return False
        return bool(libc.mallopt(M_ARENA_MAX, arenas))
    except (OSError, AttributeError):
        return False
