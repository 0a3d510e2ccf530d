"""The first tokens of a greedy completion under a ``NameRule``: the model's own most likely name among the
ones the rule allows.

First the greedy path: while it writes a name the rule may still allow, nothing changes (the same tokens as
without a rule). Only when the greedy name turns out wrong (a name the list already holds, or none the
listed module defines) does the decoder look further, each candidate evaluated once on top of the prompt in
the KV cache and the cache rolled back between them:

- a rule that allows a few names (at most ``MAX_SCORED``, an export list near its end) has each of them scored
  whole (the log-probability of its tokens after the text the greedy path wrote before its name) and the
  likeliest written. Why not the search below: with six names allowed among a 150K-token vocabulary, none
  was among the 8 likeliest next tokens often enough for 16 steps to find one, and the search gave up and let
  greedy write the listed name it had refused (seeds 21, 26 and 27 of ``bench/quality_bench.py`` at 8K);
- any other rule gets a best-first search over the next most likely tokens, scored by the sequence's
  log-probability.

Both are bounded (``MAX_EVALS``/``MAX_SCORED_EVALS`` decode steps, the request's deadline and cancel); when
nothing is found the completion goes on as plain greedy decoding would have.
"""

from __future__ import annotations

import heapq
import time
from typing import Any, Callable, Collection

import numpy as np

from engine.model.backend import CancelToken
from engine.model.name_rule import NameRule

MAX_EVALS = 16  # decode steps the search may spend (one token each; ~20-40 ms each for a 0.5B model on a CPU)
BRANCHES = 8  # the most likely next tokens tried at each step
MAX_NAME_TOKENS = 12  # a name still being written after this many tokens is left to the model
MAX_SCORED = 8  # a rule allowing at most this many names has each scored whole instead of searched for
MAX_SCORED_EVALS = 48  # decode steps scoring them may spend


class _Tree:
    """Token sequences after the prompt, their next-token log-probabilities, and the KV cache moved between
    them (``base``: the prompt's length; the cache holds ``base`` + ``kv`` tokens)."""

    def __init__(self, llm: Any) -> None:
        self.llm = llm
        self.base = llm.n_tokens
        self.kv: tuple[int, ...] = ()
        self.evals = 0
        self._logprobs: dict[tuple[int, ...], np.ndarray] = {(): _current_logprobs(llm)}

    def _shared(self, seq: tuple[int, ...], most: int) -> int:
        """How many of ``seq``'s first tokens (at most ``most``) the cache already holds."""
        keep = 0
        while keep < min(len(self.kv), most) and self.kv[keep] == seq[keep]:
            keep += 1
        return keep

    def holds(self, seq: tuple[int, ...]) -> bool:
        """Whether ``seq``'s next-token log-probabilities are known (no decode step needed)."""
        return seq in self._logprobs

    def logprobs(self, seq: tuple[int, ...]) -> np.ndarray:
        if seq not in self._logprobs:
            keep = self._shared(seq, len(seq) - 1)  # the last token is evaluated again for its logits
            self.truncate(keep)
            self.llm.eval(list(seq[keep:]))
            self.kv, self.evals = seq, self.evals + 1
            self._logprobs[seq] = _current_logprobs(self.llm)
        return self._logprobs[seq]

    def truncate(self, keep: int) -> None:
        self.llm._ctx.kv_cache_seq_rm(-1, self.base + keep, -1)
        self.llm.n_tokens = self.base + keep
        self.kv = self.kv[:keep]

    def settle(self, seq: tuple[int, ...]) -> None:
        """Leave the cache holding ``seq`` but its last token (the sample loop evaluates that one next)."""
        want = seq[:-1]
        keep = self._shared(want, len(want))
        self.truncate(keep)
        if want[keep:]:
            self.llm.eval(list(want[keep:]))
            self.kv = want

    def restore(self) -> None:
        """Back to the prompt alone with its last position's logits current, as before the search."""
        if self.kv or self.evals:
            self.truncate(0)
            last = int(self.llm.input_ids[self.base - 1])
            self.llm._ctx.kv_cache_seq_rm(-1, self.base - 1, -1)
            self.llm.n_tokens = self.base - 1
            self.llm.eval([last])


def _current_logprobs(llm: Any) -> np.ndarray:
    logits = np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(llm.n_vocab(),)).astype(np.float64)
    top = logits.max()
    return logits - top - np.log(np.exp(logits - top).sum())


def first_name_tokens(llm: Any, rule: NameRule, stop_ids: Collection[int], stop_strings: Collection[str] = (),
                      deadline: float | None = None, cancel: CancelToken | None = None) -> list[int] | None:
    """The tokens the completion starts with (the cache holds all but the last), or None: decode as usual
    (the cache and logits are as they were). ``llm`` has just evaluated the prompt."""
    tree = _Tree(llm)

    def verdict(seq: tuple[int, ...]) -> str:
        ending = seq[-1] in stop_ids
        text = "" if ending else llm.detokenize(list(seq)).decode("utf-8", "replace")
        if ending or any(stop in text for stop in stop_strings):
            return "bad" if rule.required else "ok"  # the completion would end before a name
        return rule.verdict(text)

    seq: tuple[int, ...] = ()
    while len(seq) < MAX_NAME_TOKENS:  # the greedy path, unchanged while the rule allows it
        nxt = seq + (int(np.argmax(tree.logprobs(seq))),)
        state = verdict(nxt)
        if state == "ok":
            tree.settle(nxt)
            return list(nxt)
        if state == "bad":
            break
        seq = nxt
    else:
        tree.restore()
        return None
    if rule.allowed is not None and len(rule.allowed) <= MAX_SCORED:
        found = _likeliest_allowed(tree, llm, rule, _lead(llm, rule, nxt), deadline, cancel)
    else:
        found = _best_first(tree, verdict, deadline, cancel)
    if found is None:
        tree.restore()
        return None
    tree.settle(found)
    return list(found)


def _out_of_time(deadline: float | None, cancel: CancelToken | None) -> bool:
    """Whether the search or the scoring must stop now: the request's deadline passed or it was cancelled."""
    return (deadline is not None and time.monotonic() >= deadline) or (cancel is not None and cancel.cancelled)


def _best_first(tree: _Tree, verdict: Callable[[tuple[int, ...]], str], deadline: float | None,
                cancel: CancelToken | None) -> tuple[int, ...] | None:
    """The most likely sequence (by log-probability) whose first name the rule accepts, expanding at most
    ``MAX_EVALS`` sequences; None when none was found in time."""
    heap: list[tuple[float, bool, tuple[int, ...]]] = [(0.0, False, ())]
    while heap:
        cost, done, seq = heapq.heappop(heap)
        if done:
            return seq
        if seq and (tree.evals >= MAX_EVALS or len(seq) >= MAX_NAME_TOKENS):
            continue
        if _out_of_time(deadline, cancel):
            return None
        logprobs = tree.logprobs(seq)
        for token in np.argpartition(-logprobs, BRANCHES)[:BRANCHES]:
            child = seq + (int(token),)
            state = verdict(child)
            if state != "bad":
                heapq.heappush(heap, (cost - float(logprobs[token]), state == "ok", child))
    return None


def _lead(llm: Any, rule: NameRule, refused: tuple[int, ...]) -> str:
    """What the model wrote before the name the rule refused (the line's indentation, a line break): the
    allowed names are scored after the same text. Nothing when a name was being typed at the cursor."""
    if rule.typed:
        return ""
    text = llm.detokenize(list(refused)).decode("utf-8", "replace")
    return text[:len(text) - len(text.lstrip())]


def _likeliest_allowed(tree: _Tree, llm: Any, rule: NameRule, lead: str, deadline: float | None,
                       cancel: CancelToken | None) -> tuple[int, ...] | None:
    """The tokens of ``lead`` + the allowed name (its rest after ``rule.typed``) the model finds likeliest, each
    scored by the sum of its tokens' log-probabilities; None when no name could be scored in time or within
    ``MAX_SCORED_EVALS`` decode steps (a name partly scored when they ran out is not chosen)."""
    best: tuple[float, tuple[int, ...]] | None = None
    for name in rule.allowed or ():
        if not name.startswith(rule.typed) or name in rule.banned:
            continue
        text = lead + name[len(rule.typed):]
        if not text:
            continue
        seq = tuple(llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))
        score = 0.0
        for k in range(len(seq)):
            if _out_of_time(deadline, cancel):
                return best[1] if best else None
            if not tree.holds(seq[:k]) and tree.evals >= MAX_SCORED_EVALS:
                return best[1] if best else None
            score += float(tree.logprobs(seq[:k])[seq[k]])
        if best is None or score > best[0]:
            best = (score, seq)
    return best[1] if best else None
