"""The current buffer's part of a prompt: the prefix before the cursor (favoured) and a bounded suffix.

The current file's share falls with the budget: the prefix may take up to 70% at small budgets and
``1024 + budget/4`` beyond (37% at 8K, 28% at 32K, 25% at 256K), the suffix ``budget/8`` up to 256 tokens
at small budgets (then ``budget/16``, at most ``suffix_tokens``). Why: with the real 0.5B coder model
(``bench/quality_probe.py``, 30 cuts in 5 corpora nobody tuned to, 2K tokens) identifier exact match rose
with the current file's share — 0.52 at the old 36%, 0.55 at 50%, 0.59 at 80%, 0.62 for the buffer alone —
so at small budgets the text around the cursor is worth more than the repository's ranked definitions;
at large budgets the file rarely needs more and the repository gets the rest.

The prefix starts on a line grid and is laid out as one piece per grid cell, so typing changes (and
re-counts) only the cursor's cell and does not shift the first line of the prompt's current-file part.
Only the buffer is read (never the index's copy of the file).
"""

from __future__ import annotations

from typing import Iterable

from engine.context.redact import may_hold_key_block, redact, redact_cached
from engine.context.result import split_at_cursor
from engine.model.tokens import TokenCounter
from engine.text_position import split_lines

# Lines per prefix grid cell: the current file's prefix starts on a multiple of this, and each cell is
# its own prompt piece, so typing does not shift the first line of the prompt's current-file part.
PREFIX_GRID_LINES = 32
SUFFIX_CHARS_PER_TOKEN = 16  # a suffix is pre-cut to this many characters per allowed token
CHARS_PER_TOKEN_ESTIMATE = 3  # code averages ~3.5 characters per token: this errs on the larger side


def suffix_cap(suffix_tokens: int, budget: int) -> int:
    return min(suffix_tokens, max(budget // 16, min(256, budget // 8)))


def prefix_cap(budget: int) -> int:
    return min(budget * 7 // 10, 1024 + budget // 4)


def reserve(budget: int, current_cost: int) -> int:
    """Room kept for the current file, rounded up so small edits keep the rest of the layout stable."""
    quantum = max(32, budget // 64)
    return -(-current_cost // quantum) * quantum


def full_reserve(budget: int, suffix_tokens: int) -> int:
    """Room the current file may take at most (its caps), as ``reserve`` rounds it: what the repository
    layers leave for it whatever the file holds, so their content does not depend on the file's length."""
    return reserve(budget, prefix_cap(budget) + suffix_cap(suffix_tokens, budget))


def file_reserve(budget: int, suffix_tokens: int, text_chars: int, current_cost: int = 0) -> int:
    """Room the per-file layers leave for a file of ``text_chars`` characters: its estimated cost rounded
    up to a quarter of the budget, at most ``full_reserve``. A small file does not hold back the room
    its caps would allow (at 2K that is 82% of the prompt); the coarse step keeps the per-file layers
    unchanged while typing except when the file crosses a step. ``current_cost``, when known (what the
    current-file part costs), bounds the estimate from below: text with more tokens than characters/3
    (CJK, long numbers) must not push the prompt over its budget."""
    step = max(32, budget // 4)
    estimate = max(text_chars // CHARS_PER_TOKEN_ESTIMATE + 1, current_cost)
    return min(full_reserve(budget, suffix_tokens), -(-estimate // step) * step)


def current_part(counter: TokenCounter, fim: bool, suffix_tokens: int, text: str, line: int, character: int,
                 budget: int, fixed: int, kind: str = "code") -> tuple[list[str], str, int]:
    """(prefix cells, suffix, cursor offset): the redacted current-file part within its caps; ``fixed``
    is what the prompt format's fixed pieces cost, ``kind`` the file's redaction kind (``redact.kind_for``).
    No suffix when the format has no infill."""
    prefix_raw, suffix_raw = split_at_cursor(text, line, character)
    offset = len(prefix_raw)
    cap = min(suffix_cap(suffix_tokens, budget), (budget - fixed) // 4)
    if may_hold_key_block(text):  # a key block may span the cut: redact the whole buffer first
        prefix, suffix = redact(prefix_raw, kind), redact(suffix_raw, kind)
        suffix = head_lines(counter, suffix, cap) if fim else ""
        room = min(prefix_cap(budget), budget - fixed - counter.count(suffix))
        cells = [cut_prefix(counter, prefix, room)]
    else:
        suffix = redact(head_lines(counter, suffix_raw, cap), kind) if fim else ""
        suffix = head_lines(counter, suffix, cap)
        room = min(prefix_cap(budget), budget - fixed - counter.count(suffix))
        cells = prefix_cells(counter, text, offset, line, room, kind)
    return [c for c in cells if c], suffix, offset


def cut_prefix(counter: TokenCounter, prefix: str, cap: int) -> str:
    """The prefix from the earliest grid line whose tail fits ``cap`` tokens (whole text; slow path)."""
    if counter.count(prefix) <= cap:
        return prefix
    lines = split_lines(prefix)  # the editor's lines: a grid cell is PREFIX_GRID_LINES of them
    cells = [("".join(lines[i:i + PREFIX_GRID_LINES]), i) for i in range(0, len(lines), PREFIX_GRID_LINES)]
    used = 0
    start_line = len(lines)
    for cell_text, first in reversed(cells):
        cost = counter.count(cell_text)
        if used + cost > cap:
            break
        used += cost
        start_line = first
    if start_line >= len(lines):  # not even the cursor's cell fits: keep whole lines from the end
        return tail_lines(counter, lines, cap)
    return "".join(lines[start_line:])


def tail_lines(counter: TokenCounter, lines: list[str], cap: int) -> str:
    """The last whole lines that fit ``cap`` tokens."""
    return "".join(reversed(_lines_within(counter, reversed(lines), cap)))


def _lines_within(counter: TokenCounter, lines: Iterable[str], cap: int) -> list[str]:
    """The leading ``lines`` (in the order given) whose tokens add up to at most ``cap``."""
    kept: list[str] = []
    used = 0
    for text_line in lines:
        cost = counter.count(text_line)
        if used + cost > cap:
            break
        kept.append(text_line)
        used += cost
    return kept


def prefix_cells(counter: TokenCounter, text: str, offset: int, line: int, cap: int,
                 kind: str = "code") -> list[str]:
    """The prefix before ``offset`` as redacted grid cells (absolute lines ``k*GRID…``), the earliest
    kept cell being the first whose tail fits ``cap``. Only the cells kept are read, redacted and
    counted, and all but the cursor's cell are cache hits while typing."""
    grid = PREFIX_GRID_LINES
    line_start = text.rfind("\n", 0, offset) + 1
    cell_first = (line // grid) * grid
    # the cursor's cell: from its first line to the cursor
    pos = line_start
    for _ in range(line - cell_first):
        pos = text.rfind("\n", 0, pos - 1) + 1
    cells: list[str] = [redact(text[pos:offset], kind)]
    used = counter.count(cells[0])
    if used > cap:  # not even the cursor's cell fits: whole lines from the end
        return [tail_lines(counter, split_lines(cells[0]), cap)]
    while pos > 0:
        end = pos
        for _ in range(grid):
            pos = text.rfind("\n", 0, pos - 1) + 1
            if pos == 0:
                break
        cell = redact_cached(text[pos:end], kind)
        cost = counter.count(cell)
        if used + cost > cap:
            break
        used += cost
        cells.append(cell)
    cells.reverse()
    return [c for c in cells if c]


def head_lines(counter: TokenCounter, text: str, cap: int) -> str:
    """The first whole lines of ``text`` that fit ``cap`` tokens (a long text is pre-cut by characters)."""
    if len(text) > cap * SUFFIX_CHARS_PER_TOKEN:
        text = text[:cap * SUFFIX_CHARS_PER_TOKEN]
        text = text[:text.rfind("\n") + 1] if "\n" in text else text
    if counter.count(text) <= cap:
        return text
    return "".join(_lines_within(counter, split_lines(text), cap))
