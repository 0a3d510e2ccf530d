"""How much the context caches keep, sized from the largest token budget a workspace has assembled.

Why: the token-id and redaction caches are LRUs so a long session's memory stays flat, and their bound
decides *when* it is flat. It must hold every chunk the prompts of the budget in use show, for the few
dozen documents an editor keeps open (smaller, and every keystroke re-tokenizes or re-redacts repository
text); much larger, and the caches keep filling with superseded versions of edited buffers for hours. Bounds
sized for 1M-token prompts (4M token ids, 8M characters) made an 8K-budget editing session grow for 40,000
editor events before they were full (``bench/load_bench.py``'s soak). A bound only grows: a request with a
larger budget (the command line's ``--budget``, a chat) raises it for the rest of the session.
"""

from __future__ import annotations

PROMPTS_KEPT = 32  # prompts' worth of repository chunks kept (documents open at once, with room to spare)
CHARS_PER_TOKEN = 4  # source code with Qwen's tokenizer: about 3.5–4 characters a token

MIN_TOKENS, MAX_TOKENS = 1 << 18, 1 << 23  # 1 MB … 32 MB of int32 ids
MIN_CHARS, MAX_CHARS = 1 << 20, 8_000_000  # redacted texts: two 1M-token prompts at most


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def token_cache_tokens(budget: int) -> int:
    """Token ids the counter keeps for prompts of ``budget`` tokens."""
    return _clamp(PROMPTS_KEPT * budget, MIN_TOKENS, MAX_TOKENS)


def redaction_cache_chars(budget: int) -> int:
    """Characters of redacted text kept for prompts of ``budget`` tokens."""
    return _clamp(PROMPTS_KEPT * CHARS_PER_TOKEN * budget, MIN_CHARS, MAX_CHARS)
