"""Baseline prompts for the quality benchmark, each built to exactly a given number of prompt tokens.

Why exact: the benchmark compares what goes into the same number of tokens (the engine's own prompt size
for that case), counted with the model's tokenizer the way the backend counts them — text pieces are
tokenized one by one (``special=False``), control tokens are one id each — so a piece's tokens add up.

Every prompt uses the same Qwen repository layout as the engine's: ``<|repo_name|>name``, then other files
as ``<|file_sep|>path`` blocks (most relevant last, next to the current file), then ``<|file_sep|>path`` of
the current file and its FIM. Material is added greedily in priority order; the last gap is filled with the
head of the next unit (cut at a character), so the total lands on the target.
"""

from __future__ import annotations

from typing import Callable, Sequence

from engine.model.prompt_format import Piece, PromptFormat

Counter = Callable[[str], int]
NEAR_TRIES = 8  # characters either side of a cut point tried when a merge makes a count jump by two


def count_pieces(count: Counter, pieces: Sequence[Piece]) -> int:
    return sum(1 if isinstance(p, int) else count(p) for p in pieces if p != "")


def _fit(count: Counter, text: str, k: int, tail: bool) -> str:
    """The longest head (or tail) of ``text`` with exactly ``k`` tokens; the closest under ``k`` when no
    cut point gives exactly ``k``."""
    if k <= 0 or not text:
        return ""
    if count(text) <= k:
        return text

    def part(n: int) -> str:  # n characters of the text
        return text[len(text) - n:] if tail else text[:n]

    lo, hi = 0, len(text)  # part(lo) fits, part(hi) does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if count(part(mid)) <= k:
            lo = mid
        else:
            hi = mid
    if count(part(lo)) == k:
        return part(lo)
    for n in range(lo - 1, max(0, lo - NEAR_TRIES) - 1, -1):
        if count(part(n)) == k:
            return part(n)
    return part(lo)


def fit_head(count: Counter, text: str, k: int) -> str:
    return _fit(count, text, k, tail=False)


def fit_tail(count: Counter, text: str, k: int) -> str:
    return _fit(count, text, k, tail=True)


def engine_tail(pieces: Sequence[Piece], fmt: PromptFormat) -> list[Piece]:
    """The engine prompt's current-file part: from its last file separator (the current file's header)."""
    assert fmt.file_sep_id is not None
    at = len(pieces) - 1 - list(reversed(pieces)).index(fmt.file_sep_id)
    return list(pieces[at:])


def buffer_only(count: Counter, fmt: PromptFormat, repo_name: str, path: str, prefix: str, suffix: str,
                target: int, suffix_share: float = 0.125) -> tuple[list[Piece], str, str]:
    """The current buffer alone: (pieces, prefix used, suffix used). The suffix gets up to
    ``suffix_share`` of the room (whole lines), the prefix the rest (cut at its start to the exact
    count); room the prefix does not need goes to the suffix."""
    head = fmt.repo_header(repo_name) + fmt.current_file_header(path)
    room = target - count_pieces(count, head + fmt.infill("", ""))
    suf, used = "", 0
    for line in suffix.splitlines(keepends=True):
        cost = count(line)
        if used + cost > int(room * suffix_share):
            break
        suf += line
        used += cost
    pre = fit_tail(count, prefix, room - count(suf))
    if pre == prefix:  # the whole prefix fits: the rest of the room goes to the suffix
        suf = fit_head(count, suffix, room - count(pre))
    return head + fmt.infill(pre, suf), pre, suf


class Material:
    """Other files' text as file blocks, filled to an exact token count.

    ``units`` are (key, path, text) in priority order. Units with the same key share one block (their
    texts joined by newlines: the Aider map's lines of one file); else each unit is a block (a window)."""

    def __init__(self, count: Counter, fmt: PromptFormat) -> None:
        self.count = count
        self.fmt = fmt
        self.blocks: dict[object, tuple[str, str]] = {}  # key -> (path, content), in insertion order
        self.costs: dict[object, int] = {}
        self.total = 0
        self.added: list[tuple[object, str, str]] = []

    def _cost(self, path: str, content: str) -> int:
        return count_pieces(self.count, self.fmt.file_block(path, content))

    def _with(self, key: object, path: str, text: str) -> tuple[str, int]:
        old = self.blocks.get(key)
        content = text if old is None else old[1] + "\n" + text
        return content, self._cost(path, content) - self.costs.get(key, 0)

    def add(self, key: object, path: str, text: str, room: int) -> bool:
        content, delta = self._with(key, path, text)
        if self.total + delta > room:
            return False
        self.blocks[key] = (path, content)
        self.costs[key] = self.costs.get(key, 0) + delta
        self.total += delta
        self.added.append((key, path, text))
        return True

    def drop_last(self) -> tuple[object, str, str]:
        key, path, text = self.added.pop()
        old_path, content = self.blocks[key]
        content = content[: len(content) - len(text)].removesuffix("\n")
        if not content:
            del self.blocks[key]
            self.total -= self.costs.pop(key)
        else:
            self.blocks[key] = (old_path, content)
            new = self._cost(old_path, content)
            self.total += new - self.costs[key]
            self.costs[key] = new
        return key, path, text

    def add_partial(self, key: object, path: str, text: str, room: int) -> bool:
        """Add the longest head of ``text`` whose cost fills the room exactly (False when none does)."""
        need = room - self.total
        base = self.costs.get(key, 0)
        old = self.blocks.get(key)
        if old is None and self._cost(path, "") >= need:
            return False

        def delta(piece: str) -> int:
            content = piece if old is None else old[1] + "\n" + piece
            return self._cost(path, content) - base

        lo, hi = 0, len(text)
        if delta(text) <= need:
            lo = hi
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if delta(text[:mid]) <= need:
                lo = mid
            else:
                hi = mid
        for n in [lo] + list(range(lo - 1, max(0, lo - NEAR_TRIES) - 1, -1)):
            if n > 0 and delta(text[:n]) == need:
                return self.add(key, path, text[:n], room)
        return False

    def pieces(self) -> list[Piece]:
        """The blocks as prompt pieces, most important (first added) last."""
        out: list[Piece] = []
        for path, content in reversed(list(self.blocks.values())):
            out.extend(self.fmt.file_block(path, content))
        return out


def fill_material(count: Counter, fmt: PromptFormat, units: Sequence[tuple[object, str, str]], room: int,
                  scan: int = 4000) -> list[Piece]:
    """Greedy in priority order (a unit that does not fit is skipped, as Aider packs its map), then the
    gap filled with the head of the next unit; a gap too small for a new block gives back the last unit."""
    mat = Material(count, fmt)
    rest: list[tuple[object, str, str]] = []
    for i, (key, path, text) in enumerate(units):
        if i >= scan or mat.total >= room:
            rest.extend(units[i:i + NEAR_TRIES])
            break
        if not mat.add(key, path, text, room):
            rest.append((key, path, text))
    for _ in range(NEAR_TRIES):
        if mat.total >= room:
            break
        if any(mat.add_partial(k, p, t, room) for k, p, t in rest[:NEAR_TRIES]):
            break
        if not mat.added:
            break
        rest.insert(0, mat.drop_last())
    return mat.pieces()
