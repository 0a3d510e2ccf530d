import tracemalloc

from engine.inference.completion_cache import CompletionCache


def test_exact_and_typed_ahead():
    cache = CompletionCache(4)
    cache.put("a.py", "x = ", "\n", "compute(1, 2)")
    assert cache.get("a.py", "x = ", "\n") == ("compute(1, 2)", "lru")
    assert cache.get("a.py", "x = com", "\n") == ("pute(1, 2)", "typed_ahead")
    assert cache.get("a.py", "x = cox", "\n") is None  # typed something else
    assert cache.get("a.py", "x = com", "\nchanged") is None  # the suffix changed
    assert cache.get("b.py", "x = com", "\n") is None
    assert cache.get("a.py", "x = compute(1, 2)", "\n") is None  # fully typed: nothing left to show


def test_lru_bound():
    cache = CompletionCache(2)
    for i in range(3):
        cache.put("a.py", f"p{i}", "", f"c{i}")
    assert cache.get("a.py", "p0", "") is None
    assert cache.get("a.py", "p2", "") == ("c2", "lru")


def _long_prefix() -> str:
    return "import os\n" * 200_000 + "x = "  # 2 MB


def test_typed_ahead_needs_the_same_prefix_not_only_its_length():
    """The shown prefix is kept as length + digest, not as text: an edit above the cursor that keeps the
    prefix's length still stops typed-ahead reuse, and a 2 MB prefix is not held by the cache."""
    cache = CompletionCache(4)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        cache.put("a.py", _long_prefix(), "\n", "compute(1, 2)")  # the caller's prefix is gone after this
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < 100_000, held
    prefix = _long_prefix()
    assert cache.get("a.py", prefix + "com", "\n") == ("pute(1, 2)", "typed_ahead")
    edited = "import oz\n" + prefix[10:]  # same length, different text above the cursor
    assert len(edited) == len(prefix)
    assert cache.get("a.py", edited + "com", "\n") is None
