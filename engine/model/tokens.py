"""Token counting with the configured model's tokenizer, cached per chunk by content hash.

Why: a 256K-token assembly must not re-tokenize the repository on every keystroke. Chunks (a file body,
an outline, a window of the current buffer) are tokenized once; their ids are kept in an LRU bounded by the
total number of tokens held. Without a model, counts are an estimate: ``ceil(utf8_bytes / 3.2)``, which
over-counts typical source code for Qwen3's tokenizer (about 3.5–4 bytes per token), so a budget computed
with the estimate is never exceeded when the real tokenizer is used later.
"""

from __future__ import annotations

import math
from array import array
from collections import OrderedDict
from typing import Callable, Sequence

from engine.model.prompt_format import Piece
from engine.text_digest import text_digest

ESTIMATE_BYTES_PER_TOKEN = 3.2


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text.encode("utf-8", "surrogatepass")) / ESTIMATE_BYTES_PER_TOKEN)


class TokenCounter:
    """Exact counts (and ids) when a tokenizer is given; documented estimate otherwise."""

    def __init__(self, tokenize: Callable[[str], list[int]] | None = None, name: str = "estimate",
                 max_cached_tokens: int = 1 << 18) -> None:
        self._tokenize = tokenize
        self.name = name if tokenize is not None else "estimate"
        self.exact = tokenize is not None
        self._cache: OrderedDict[bytes, array | int] = OrderedDict()
        self._held = 0
        self._max = max_cached_tokens
        self.hits = 0
        self.misses = 0

    @property
    def max_cached_tokens(self) -> int:
        return self._max

    @property
    def held_tokens(self) -> int:
        """Token ids (or estimated counts) the cache holds now."""
        return self._held

    @property
    def entries(self) -> int:
        return len(self._cache)

    def reserve(self, tokens: int) -> None:
        """Keep at least ``tokens`` token ids from now on (the bound grows, never shrinks: see
        ``engine.context.cache_sizes``)."""
        self._max = max(self._max, tokens)

    def _key(self, text: str) -> bytes:
        return text_digest(text)

    def ids(self, text: str) -> array:
        """Token ids of a text chunk (exact tokenizer only)."""
        assert self._tokenize is not None, "ids() needs a tokenizer"
        if not text:
            return array("i")
        key = self._key(text)
        hit = self._cache.get(key)
        if isinstance(hit, array):
            self._cache.move_to_end(key)
            self.hits += 1
            return hit
        self.misses += 1
        value = array("i", self._tokenize(text))
        self._store(key, value, len(value))
        return value

    def count(self, text: str) -> int:
        if not text:
            return 0
        if self._tokenize is not None:
            return len(self.ids(text))
        key = self._key(text)
        hit = self._cache.get(key)
        if isinstance(hit, int):
            self.hits += 1
            return hit
        self.misses += 1
        value = estimate_tokens(text)
        self._store(key, value, 1)
        return value

    def count_pieces(self, pieces: Sequence[Piece]) -> int:
        return sum(1 if isinstance(p, int) else self.count(p) for p in pieces)

    def pieces_to_ids(self, pieces: Sequence[Piece]) -> list[int]:
        out: list[int] = []
        for piece in pieces:
            if isinstance(piece, int):
                out.append(piece)
            else:
                out.extend(self.ids(piece))
        return out

    def _store(self, key: bytes, value: array | int, weight: int) -> None:
        self._cache[key] = value
        self._held += weight
        while self._held > self._max and self._cache:
            _, old = self._cache.popitem(last=False)
            self._held -= len(old) if isinstance(old, array) else 1

    def clear(self) -> None:
        self._cache.clear()
        self._held = 0
