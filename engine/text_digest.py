"""Content keys for the engine's text caches (token ids, redactions, completions shown).

One spelling for all of them: a 16-byte blake2b of the UTF-8 text, with lone surrogates passed through
(``surrogatepass``) so that any ``str`` an editor sends has a key instead of raising in a cache lookup.
"""

from __future__ import annotations

import hashlib


def text_digest(text: str) -> bytes:
    """16 bytes that stand for ``text`` as a cache key."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
