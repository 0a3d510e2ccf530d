"""Recent completions, served again without the model.

Two lookups, both keyed by the text around the cursor (not by line/column, which shift with edits above):

- exact: the same document prefix and suffix as a recent request (the user moved away and came back, an
  editor re-asked after a focus change) → the same completion;
- typed-ahead: the user typed characters that the last completion shown for this document predicted →
  the rest of that completion, so ghost text keeps up with typing and the model is not called at all.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

from engine.text_digest import text_digest

SUFFIX_KEY_CHARS = 2048  # the suffix that must match (edits far below the cursor do not invalidate)


def _key(path: str, prefix: str, suffix: str) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for part in (path, prefix, suffix[:SUFFIX_KEY_CHARS]):
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.digest()


@dataclass
class _Shown:
    """The last completion shown in a document, and the prefix it was shown after as its length and
    digest: that is enough to tell whether the user typed on from there, and the text itself (up to the
    whole file, one per open document, replaced at every completion) need not stay alive."""

    prefix_chars: int
    prefix_digest: bytes
    suffix: str
    completion: str

    def typed_after(self, prefix: str) -> str | None:
        """What was typed after the shown prefix, when ``prefix`` extends it; else None."""
        n = self.prefix_chars
        if len(prefix) < n or text_digest(prefix[:n]) != self.prefix_digest:
            return None
        return prefix[n:]


class CompletionCache:
    """An LRU of completions plus, per document, the last completion shown (for typed-ahead reuse)."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._lru: OrderedDict[bytes, str] = OrderedDict()
        self._shown: OrderedDict[str, _Shown] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.typed_ahead_hits = 0
        self.misses = 0

    def put(self, path: str, prefix: str, suffix: str, completion: str) -> None:
        if not completion or self.size <= 0:
            return
        key, shown = _key(path, prefix, suffix), _Shown(len(prefix), text_digest(prefix), suffix[:SUFFIX_KEY_CHARS],
                                                        completion)
        with self._lock:
            self._lru[key] = completion
            self._lru.move_to_end(key)
            while len(self._lru) > self.size:
                self._lru.popitem(last=False)
            self._shown[path] = shown
            self._shown.move_to_end(path)
            while len(self._shown) > 64:
                self._shown.popitem(last=False)

    def get(self, path: str, prefix: str, suffix: str) -> tuple[str, str] | None:
        """``(completion, how)`` with how ``"lru"`` or ``"typed_ahead"``; None on a miss."""
        with self._lock:
            hit = self._lru.get(_key(path, prefix, suffix))
            if hit is not None:
                self._lru.move_to_end(_key(path, prefix, suffix))
                self.hits += 1
                return hit, "lru"
            shown = self._shown.get(path)
            if shown is not None and suffix[:SUFFIX_KEY_CHARS] == shown.suffix:
                typed = shown.typed_after(prefix)
                if typed and len(typed) < len(shown.completion) and shown.completion.startswith(typed):
                    self.typed_ahead_hits += 1
                    return shown.completion[len(typed):], "typed_ahead"
            self.misses += 1
            return None

    def invalidate(self, path: str) -> None:
        with self._lock:
            self._shown.pop(path, None)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"entries": len(self._lru), "hits": self.hits, "typed_ahead_hits": self.typed_ahead_hits,
                    "misses": self.misses}
