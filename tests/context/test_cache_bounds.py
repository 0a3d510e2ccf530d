"""The context caches are bounded, and the bounds follow the budget in use (``engine.context.cache_sizes``)."""

from __future__ import annotations

from ctx_helpers import estimate_context

from engine.context import cache_sizes, redact
from engine.context.builder import build
from engine.context.files import FileCache
from engine.model.tokens import TokenCounter


def test_a_larger_budget_raises_the_bounds_and_a_smaller_one_keeps_them(repo, index):
    ws, cache = estimate_context(repo, index)
    counter = ws.counter
    assert counter.max_cached_tokens == cache_sizes.MIN_TOKENS
    text = (repo / "app/report.py").read_text()
    build(ws, cache, "app/report.py", text, 2, 0, 65_536)
    assert counter.max_cached_tokens == cache_sizes.token_cache_tokens(65_536) == 32 * 65_536
    assert redact.cache_limit() >= cache_sizes.redaction_cache_chars(65_536)
    build(ws, cache, "app/report.py", text, 2, 0, 2048)
    assert counter.max_cached_tokens == 32 * 65_536  # never shrinks: the large prompt's chunks stay hits
    assert cache_sizes.token_cache_tokens(1 << 20) == cache_sizes.MAX_TOKENS  # a 1M-token budget: capped
    assert cache_sizes.redaction_cache_chars(1 << 20) == cache_sizes.MAX_CHARS


def test_the_token_cache_evicts_least_recently_used_chunks_at_its_bound():
    counter = TokenCounter(lambda text: list(range(len(text))), "chars", max_cached_tokens=100)
    texts = [f"{i:02d}" * 10 for i in range(30)]  # 20 tokens each
    for text in texts:
        counter.ids(text)
    assert counter.held_tokens <= 100 and counter.entries == 5
    misses = counter.misses
    counter.ids(texts[-1])
    assert counter.misses == misses  # the latest chunks are still there
    counter.ids(texts[0])
    assert counter.misses == misses + 1  # the oldest went
    counter.reserve(1000)
    for text in texts:
        counter.ids(text)
    assert counter.held_tokens == 600 and counter.max_cached_tokens == 1000


def test_the_file_cache_keeps_to_its_character_bound(repo, index):
    files = sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*.py") if p.stat().st_size > 0)
    sizes = {f: len((repo / f).read_text()) for f in files}
    bound = sum(sizes.values()) // 2
    cache = FileCache(max_chars=bound)
    checked: set[str] = set()
    for path in files:
        assert cache.get(index, str(repo), path, checked) is not None
    held = sum(len(cache.get(index, str(repo), path, checked)[0]) for path in files if path in cache)
    assert held == cache.chars <= bound
    assert files[-1] in cache and len(cache) < len(files)
