"""The server process tunes glibc's malloc (lsp_server/process_memory.py): eight threads allocating get at
most two heaps, where glibc alone gives each its own (counted by glibc itself, ``malloc_info``); large blocks
churned through a cache leave no free memory resident. Each in a fresh interpreter, so the settings are made
before any thread starts as in ``coderflash serve``."""

from __future__ import annotations

import ctypes
import subprocess
import sys

import pytest

CHILD = r"""
import ctypes, sys, tempfile, threading
sys.path.insert(0, {repo!r})
if {cap}:
    from lsp_server.process_memory import limit_malloc_arenas
    assert limit_malloc_arenas(), "the cap was not set"
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
start = threading.Barrier(8)

def churn():
    start.wait()
    kept = [bytes(4000 + i) for i in range(2000)]  # over pymalloc's size: served by malloc
    del kept

threads = [threading.Thread(target=churn) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
with tempfile.NamedTemporaryFile(suffix=".xml") as out:
    fp = libc.fopen(out.name.encode(), b"w")
    libc.malloc_info(0, fp)
    libc.fclose(fp)
    print(open(out.name).read().count("<heap nr="))
"""


def _run_child(template: str, **values: object) -> str:
    """``template`` (formatted with this checkout's root as ``repo`` and ``values``) run by a fresh
    interpreter with a bare environment; its standard output."""
    from pathlib import Path

    repo = str(Path(__file__).resolve().parents[2])
    child = subprocess.run([sys.executable, "-c", template.format(repo=repo, **values)], capture_output=True,
                           text=True, timeout=120, env={"PATH": "/usr/bin:/bin"})
    assert child.returncode == 0, child.stderr
    return child.stdout


def _heaps_in_child(cap: bool) -> int:
    return int(_run_child(CHILD, cap=cap).strip())


@pytest.mark.skipif(not sys.platform.startswith("linux") or not hasattr(ctypes.CDLL(None), "gnu_get_libc_version"),
                    reason="the arena cap is glibc's (Linux); other C libraries are left alone")
def test_eight_threads_allocating_share_at_most_two_heaps():
    assert _heaps_in_child(cap=False) > 2  # glibc alone: the test can tell
    assert _heaps_in_child(cap=True) <= 2


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallinfo2 and /proc: Linux")
def test_memory_usage_tells_live_memory_from_sqlites_and_follows_both() -> None:
    """``coderflash/status`` ``memory``: 20 MB held raise ``malloc_in_use_mb`` by about that and releasing them
    lowers it again; a connection's page cache filling raises ``sqlite_mb``, and closing it gives it back."""
    import sqlite3

    from lsp_server.process_memory import memory_usage

    before = memory_usage()
    held = [bytearray(1_000_000) for _ in range(20)]
    holding = memory_usage()
    del held
    released = memory_usage()
    assert holding["malloc_in_use_mb"] - before["malloc_in_use_mb"] > 15  # other threads of the run allocate too
    assert holding["malloc_in_use_mb"] - released["malloc_in_use_mb"] > 15
    assert holding["rss_mb"] > 0  # (not compared: in a long run freed memory already resident is reused)

    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t(x TEXT)")
    conn.executemany("INSERT INTO t VALUES (?)", [("x" * 200,)] * 10_000)
    filled = memory_usage()
    conn.close()
    closed = memory_usage()
    assert filled["sqlite_mb"] - before["sqlite_mb"] > 1.5  # 2 MB of rows in the page cache
    assert filled["sqlite_mb"] - closed["sqlite_mb"] > 1.5


CACHE_CHILD = r"""
import json, random, sys
from collections import deque
sys.path.insert(0, {repo!r})
from lsp_server import process_memory
if {fixed}:
    assert process_memory.fix_mmap_threshold(), "the threshold was not set"
rng = random.Random(5)
cache, kept = deque(), []
for i in range(3000):
    cache.append(b"x" * rng.randrange(40_000, 400_000))  # an LRU of large entries of varying size
    if len(cache) > 20:
        cache.popleft()
    kept.append(bytes(600 + i % 7))  # a small block that outlives them (over pymalloc's 512 bytes: malloc's)
print(json.dumps(process_memory.memory_usage()))
"""


def _cache_churn_in_child(fixed: bool) -> dict:
    import json

    return json.loads(_run_child(CACHE_CHILD, fixed=fixed))


@pytest.mark.skipif(not sys.platform.startswith("linux") or not hasattr(ctypes.CDLL(None), "gnu_get_libc_version"),
                    reason="the mmap threshold is glibc's (Linux); other C libraries are left alone")
def test_large_blocks_churned_through_a_cache_leave_no_free_memory_resident():
    """An LRU of 40-400 KB entries with small blocks allocated between them (as the server's caches of texts
    and token ids are): with glibc's moving threshold the evicted entries leave holes in the heap that stay
    resident; with the threshold fixed each is its own map, gone when freed."""
    moving, fixed = _cache_churn_in_child(fixed=False), _cache_churn_in_child(fixed=True)
    assert moving["malloc_free_mb"] > 2  # the test can tell
    assert fixed["malloc_free_mb"] < 0.5
    assert moving["rss_mb"] - fixed["rss_mb"] > 2
