"""Inline completions sized to a first-token time target, from speeds measured on this machine and model.

Why: a keystroke's completion waits for everything in its prompt the KV cache does not hold yet. On a
2-core CPU the 0.5B coder model evaluates ~80 prompt tokens a second, so an 8K-token prompt from cold takes
~100 s and even a 512-token suffix re-evaluated per keystroke takes seconds; with the 30B model on a GPU the
same wall stands at larger sizes. Three levers, each sized from measured speed:

- the suffix (re-evaluated on every keystroke: it follows the cursor) gets about half of what the target
  allows (a power of two, kept through small changes of speed, never over three quarters; never under
  ``MIN_SUFFIX_TOKENS``);
- the repository part that is not resident yet is left out of the prompt: the prompt keeps the repository
  files the KV cache already holds (whole file blocks, a prefix of the full prompt, so nothing is
  re-evaluated), and the low-priority warm-up evaluates the rest while the editor is idle — each later
  completion carries more of it, until the prompt is the full budget's (``budget_in_effect``);
- ``coderflash/status`` reports the measured speeds and what is in effect.

Before the first measurement nothing is cut: the request deadline (``completion.timeout_ms``) still applies.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Sequence

from engine.model.backend import GenerationResult
from engine.model.prompt_format import Piece, PromptFormat

GPU_TARGET_MS = 300
CPU_TARGET_MS = 800
# The suffix never shrinks below about one line: what follows the cursor tells the model where to stop. 8,
# not 16: on a slow or busy CPU the keystroke's evaluation is the suffix, and 16 tokens alone took ~650 ms
# (the 0.5B model at ~25 tokens/s for small batches) — the floor, not the plan, then missed an 800 ms target.
MIN_SUFFIX_TOKENS = 8
MIN_WARM_UP_CHUNK = 16  # tokens: smaller prefill chunks cost more per token than they save a keystroke
MIN_PREFILL_SAMPLE = 8  # prompt tokens evaluated: fewer measure one decode step more than prefill speed
EMA = 0.3  # weight of a new measurement: speeds follow load changes within a few requests
MARGIN = 0.75  # of the target: what a keystroke evaluates varies by a few tokens around the plan
SMALL_BATCH = 128  # prompt tokens: fewer are a keystroke's evaluation, more a prefill's
# Prompt tokens from which an evaluation is a long one: attention over a long context makes each token cost
# more (the 0.5B here: 97 tokens/s over 2K, 65 over 8K; a tiny model ~25K over a few hundred, ~9K over 8K).
LONG_BATCH = 2048
# Before a keystroke-sized evaluation has been measured, its speed is guessed from a prefill's: small
# batches evaluate far slower per token (0.5B on one core: 16 tokens at ~33 tokens/s, 512 at ~85).
SMALL_OVER_LARGE = 0.4
QUIET_MS = 1000  # an idle-time warm-up starts after this long without a keystroke (typing bursts pause less)


def target_ms(setting: int, gpu: bool) -> int:
    """The first-token target: the setting, or 0 → 300 ms with GPU offload, 800 ms on a CPU."""
    return setting if setting > 0 else (GPU_TARGET_MS if gpu else CPU_TARGET_MS)


@dataclass
class Plan:
    """What one completion may evaluate and how its prompt is sized."""

    target_ms: int
    evaluable_tokens: int  # prompt tokens that fit the target after one decode step
    suffix_tokens: int

    @property
    def warm_up_chunk(self) -> int:
        """Prefill chunk of an idle-time warm-up: a keystroke pre-empting it waits for one chunk at most."""
        return max(MIN_WARM_UP_CHUNK, floor_pow2(self.evaluable_tokens))


class SpeedMeter:
    """Exponential averages of prefill tokens/s and decode ms/token from the generations that ran."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.prefill_tokens_per_s: float | None = None  # prefills of SMALL_BATCH tokens or more
        self.keystroke_tokens_per_s: float | None = None  # fewer: what the plan sizes
        self.long_prefill_tokens_per_s: float | None = None  # LONG_BATCH or more (also in prefill_tokens_per_s)
        self.decode_ms_per_token: float | None = None
        self.samples = 0
        self._suffix: int | None = None  # the suffix size planned last (see ``_steady_suffix``)

    def _mix(self, old: float | None, new: float) -> float:
        return new if old is None else (1 - EMA) * old + EMA * new

    def observe(self, result: GenerationResult) -> None:
        """Learn from a finished generation: decode speed from the tokens after the first, prefill speed from
        the time to the first token (or to the deadline that cut the prefill) minus one decode step."""
        with self._lock:
            if result.generated_tokens >= 3 and result.elapsed_ms > result.first_token_ms > 0:
                step = (result.elapsed_ms - result.first_token_ms) / (result.generated_tokens - 1)
                self.decode_ms_per_token = self._mix(self.decode_ms_per_token, step)
            spent = result.first_token_ms or (result.elapsed_ms if result.finish_reason == "deadline" else 0.0)
            if spent > 0:
                spent -= min(spent / 2, self.decode_ms_per_token or 0.0)
            self._add_prefill(result.evaluated_tokens, spent)

    def observe_prefill(self, tokens: int, elapsed_ms: float) -> None:
        """A prefill of ``tokens`` took ``elapsed_ms`` (a warm-up's)."""
        with self._lock:
            self._add_prefill(tokens, elapsed_ms)

    def _add_prefill(self, tokens: int, elapsed_ms: float) -> None:
        """(Lock held.) Prefill speed, kept apart for keystroke-sized and prefill-sized evaluations."""
        if tokens < MIN_PREFILL_SAMPLE or elapsed_ms <= 0:
            return
        speed = tokens / elapsed_ms * 1000.0
        if tokens >= SMALL_BATCH:
            self.prefill_tokens_per_s = self._mix(self.prefill_tokens_per_s, speed)
            if tokens >= LONG_BATCH:
                self.long_prefill_tokens_per_s = self._mix(self.long_prefill_tokens_per_s, speed)
        else:
            self.keystroke_tokens_per_s = self._mix(self.keystroke_tokens_per_s, speed)
        self.samples += 1

    def plan(self, target: int, suffix_tokens: int) -> Plan | None:
        """The sizes for a target of ``target`` ms; None until prefill speed has been measured."""
        with self._lock:
            small, large, step = self.keystroke_tokens_per_s, self.prefill_tokens_per_s, self.decode_ms_per_token
            long = self.long_prefill_tokens_per_s
        if small is None and large is None:
            return None
        step = step or 0.0
        # The plan is sized from the slowest speed measured for evaluations up to its own size: a keystroke's
        # speed says nothing of a prefill across a long context (a tiny model's small batches ran at ~18K
        # tokens/s, its 8K-token prefills at ~9K: planned from the first alone, first tokens took 0.9-1.05 s
        # against 800 ms).
        def evaluable_at(tokens_per_s: float) -> int:
            return max(0, int((target - step) * tokens_per_s / 1000.0 * MARGIN))

        tps = small if small is not None else large * SMALL_OVER_LARGE  # type: ignore[operator]
        for size, speed in ((SMALL_BATCH, large), (LONG_BATCH, long)):
            if speed is not None and evaluable_at(tps) >= size:
                tps = min(tps, speed)
        evaluable = evaluable_at(tps)
        suffix = max(MIN_SUFFIX_TOKENS, min(suffix_tokens, floor_pow2(evaluable // 2)))
        with self._lock:
            self._suffix = _steady_suffix(self._suffix, suffix, evaluable, suffix_tokens)
            return Plan(target, evaluable, self._suffix)

    def to_json(self) -> dict[str, object]:
        with self._lock:
            return {"prefill_tokens_per_s": _round(self.prefill_tokens_per_s),
                    "keystroke_tokens_per_s": _round(self.keystroke_tokens_per_s),
                    "long_prefill_tokens_per_s": _round(self.long_prefill_tokens_per_s),
                    "decode_tokens_per_s": _round(1000.0 / self.decode_ms_per_token) if self.decode_ms_per_token
                    else None, "samples": self.samples}


def _steady_suffix(last: int | None, wanted: int, evaluable: int, setting: int) -> int:
    """The suffix size to plan: ``last`` while it is within one power of two of ``wanted`` and still fits
    (three quarters of what may be evaluated, the setting), else ``wanted``. Why: every change of the suffix
    size re-evaluates the prompt's tail once, and speed averages wobble across a power-of-two boundary;
    a one-step wobble should not cost a re-evaluation, a real change of speed should."""
    if last is None or last > setting or last > max(MIN_SUFFIX_TOKENS, evaluable * 3 // 4):
        return wanted
    return last if wanted // 2 <= last <= wanted * 2 else wanted


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def floor_pow2(n: int) -> int:
    """The largest power of two ≤ n (0 for n < 1): a suffix size that stays put while speeds wobble."""
    return 1 << (n.bit_length() - 1) if n >= 1 else 0


def repository_cut(pieces: Sequence[Piece], fmt: PromptFormat, repository: int, piece_tokens: Sequence[int],
                   resident: int) -> int | None:
    """Where to cut the repository part so that what stays is resident, or None when it all is: the prompt
    is then ``pieces[:cut] + pieces[repository:]``. ``repository``: how many leading pieces are the
    repository part (``runtime.repository_prefix``); ``piece_tokens``: each piece's token count;
    ``resident``: leading prompt tokens the KV cache holds. The cut falls at a file separator, so the prompt
    stays well formed and everything before the cut is exactly what is resident; the repository header
    (before the first file) always stays."""
    sep = fmt.file_sep_id
    if sep is None or repository <= 0:
        return None
    cut, used = None, 0
    for i in range(repository):
        if pieces[i] == sep and (cut is None or used <= resident):
            cut = i
        used += piece_tokens[i]
    if used <= resident or cut is None:
        return None
    return cut


def trim_current_prefix(pieces: list[Piece], fmt: PromptFormat, piece_tokens: list[int], room: int,
                        tokens_of) -> tuple[list[Piece], list[int]]:
    """The prompt with the current file's prefix cut from its start until the pieces after the cursor
    file's header cost at most ``room`` tokens: whole cells first, then whole lines of the cursor's cell (its
    last line, where the cursor is, always stays). ``tokens_of(text)``: a text piece's token count.

    Why from the start: the text right before the cursor matters most, and the evaluated part must stay
    within the target when nothing of the current file is resident yet (a cold file, a far cursor move)."""
    if fmt.prefix_id not in pieces or fmt.suffix_id not in pieces:
        return pieces, piece_tokens
    first = len(pieces) - 1 - pieces[::-1].index(fmt.prefix_id)
    last = len(pieces) - 1 - pieces[::-1].index(fmt.suffix_id)
    cells = list(range(first + 1, last))
    pieces, piece_tokens = list(pieces), list(piece_tokens)
    cost = sum(piece_tokens[first:])
    dropped: set[int] = set()
    while cost > room and len(cells) > 1:
        i = cells.pop(0)
        cost -= piece_tokens[i]
        dropped.add(i)
    if cost > room and cells and isinstance(pieces[cells[0]], str):
        i = cells[0]
        lines = pieces[i].splitlines(keepends=True)
        while len(lines) > 1 and cost > room:
            head = lines.pop(0)
            cost -= tokens_of(head)
        pieces[i] = "".join(lines)
        piece_tokens[i] = tokens_of(pieces[i])
    keep = [i for i in range(len(pieces)) if i not in dropped]
    return [pieces[i] for i in keep], [piece_tokens[i] for i in keep]

