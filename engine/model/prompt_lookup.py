"""Prompt-lookup drafts: the tokens that followed the latest earlier occurrence of the last few tokens.

Why: a completion mostly repeats what its prompt already shows — names and call shapes from the repository
context, the lines above, the code after the cursor. Drafting from the prompt needs no second model: the
model checks a whole draft in one batch (``LlamaBackend``), keeps the longest prefix it would have produced
itself, and greedy output stays exactly what one-token-at-a-time decoding gives. On a CPU a batch of ten
costs little more than one token (decoding is bound by reading the weights), so every accepted draft token
is nearly free.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


class PromptLookup:
    """The prompt's token ids plus the tokens generated so far, searched for n-gram continuations.

    ``max_ngram`` down to ``min_ngram`` tokens at the end are looked for, longest first; the most recent
    match wins (the cursor's neighbourhood and the code after it come last in a FIM prompt).
    """

    def __init__(self, prompt_ids: Sequence[int], max_draft: int = 10, max_ngram: int = 3,
                 min_ngram: int = 2, room: int = 512) -> None:
        self._ids = np.empty(len(prompt_ids) + room, dtype=np.int32)
        self._ids[: len(prompt_ids)] = prompt_ids
        self._n = len(prompt_ids)
        self.max_draft = max_draft
        self.max_ngram = max_ngram
        self.min_ngram = min_ngram

    def __len__(self) -> int:
        return self._n

    def append(self, token: int) -> None:
        """A token was generated (accepted drafts included)."""
        if self._n == len(self._ids):
            self._ids = np.concatenate([self._ids, np.empty(max(512, self._n // 4), dtype=np.int32)])
        self._ids[self._n] = token
        self._n += 1

    def draft(self, limit: int | None = None) -> list[int]:
        """Up to ``limit`` (default ``max_draft``) tokens predicted to follow; [] when nothing matches."""
        limit = self.max_draft if limit is None else min(limit, self.max_draft)
        if limit <= 0:
            return []
        ids, n = self._ids, self._n
        for size in range(self.max_ngram, self.min_ngram - 1, -1):
            if n <= size:
                continue
            tail = ids[n - size : n]
            starts = n - size  # window starts 0 … n-size-1: each has at least one token after it, tail excluded
            match = ids[:starts] == tail[0]
            for k in range(1, size):
                match &= ids[k : starts + k] == tail[k]
            hits = np.flatnonzero(match)
            if len(hits):
                begin = int(hits[-1]) + size
                return ids[begin : min(begin + limit, n)].tolist()
        return []
