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
