"""Context assembly: the prompt for a cursor position, within a token budget, in the model's format.

This first version lays out the current file only (prefix favoured, a bounded suffix); repository
context from the index is added by the repository-context builder behind the same ``ContextResult``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Sequence

from engine.model.prompt_format import Piece, PromptFormat
from engine.context.redact import redact
from engine.text_position import offset_at
from engine.model.tokens import ESTIMATE_BYTES_PER_TOKEN, TokenCounter


@dataclass
class Section:
    kind: str  # "repo_header" | "file" | "outline" | "definition" | "current_prefix" | "current_suffix" | ...
    path: str
    symbol: str
    tokens: int

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "path": self.path, "symbol": self.symbol, "tokens": self.tokens}


@dataclass
class ContextResult:
    pieces: list[Piece]
    prompt: str
    prompt_tokens: int
    budget: int
    tokenizer: str
    shared_prefix_tokens: int
    sections: list[Section] = field(default_factory=list)
    elapsed_ms: float = 0.0
    prefix: str = ""
    suffix: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "prompt": self.prompt,
            "prompt_tokens": self.prompt_tokens,
            "budget": self.budget,
            "tokenizer": self.tokenizer,
            "shared_prefix_tokens": self.shared_prefix_tokens,
            "sections": [s.to_json() for s in self.sections],
            "elapsed_ms": self.elapsed_ms,
        }


def split_at_cursor(text: str, line: int, character: int) -> tuple[str, str]:
    offset = offset_at(text, line, character)
    return text[:offset], text[offset:]


def _tail_within(counter: TokenCounter, text: str, budget: int) -> str:
    """The longest suffix of ``text`` (cut at a line start) that fits ``budget`` tokens."""
    if counter.count(text) <= budget:
        return text
    lines = text.splitlines(keepends=True)
    kept: list[str] = []
    used = 0
    for line_text in reversed(lines):
        cost = counter.count(line_text)
        if used + cost > budget:
            break
        kept.append(line_text)
        used += cost
    return "".join(reversed(kept))


def _head_within(counter: TokenCounter, text: str, budget: int) -> str:
    """The longest prefix of ``text`` (cut at a line end) that fits ``budget`` tokens."""
    if counter.count(text) <= budget:
        return text
    kept: list[str] = []
    used = 0
    for line_text in text.splitlines(keepends=True):
        cost = counter.count(line_text)
        if used + cost > budget:
            break
        kept.append(line_text)
        used += cost
    return "".join(kept)


class SharedPrefixTracker:
    """How many leading tokens a prompt shares with the previous one for the same workspace.

    Compared piece by piece (identical pieces add their cached token count), so a 256K-token prompt is
    not walked token by token; inside the first differing text piece the common prefix is measured in
    token ids (exact tokenizer) or estimated from the common characters (estimate counter, rounded down).
    """

    def __init__(self, counter: TokenCounter | None = None) -> None:
        self.counter = counter
        self._previous: list[Piece] | None = None

    def update(self, pieces: Sequence[Piece], ids: Sequence[int] | None = None) -> int:
        previous, self._previous = self._previous, list(pieces)
        if previous is None or self.counter is None:
            return 0
        counter = self.counter
        shared = 0
        for a, b in zip(previous, pieces):
            if a == b:
                shared += 1 if isinstance(a, int) else counter.count(a)
                continue
            if isinstance(a, str) and isinstance(b, str):
                if counter.exact:
                    ia, ib = counter.ids(a), counter.ids(b)
                    n = 0
                    for x, y in zip(ia, ib):
                        if x != y:
                            break
                        n += 1
                    shared += n
                else:
                    common = os.path.commonprefix([a, b])
                    shared += int(len(common.encode("utf-8", "surrogatepass")) / ESTIMATE_BYTES_PER_TOKEN)
            break
        return shared


class CurrentFileContext:
    """Current-file FIM context: the stable per-file header first, then prefix and suffix."""

    def __init__(self, fmt: PromptFormat, counter: TokenCounter, repo_name: str = "",
                 suffix_tokens: int = 512) -> None:
        self.fmt = fmt
        self.counter = counter
        self.repo_name = repo_name
        self.suffix_tokens = suffix_tokens
        self.tracker = SharedPrefixTracker(counter)

    def build(self, path: str, text: str, line: int, character: int, budget: int) -> ContextResult:
        start = time.perf_counter()
        prefix, suffix = split_at_cursor(text, line, character)
        prefix, suffix = redact(prefix), redact(suffix)
        header = self.fmt.repo_header(self.repo_name) if self.repo_name else []
        header += self.fmt.current_file_header(path)
        skeleton = self.fmt.infill("", "")
        fixed = self.counter.count_pieces(header) + self.counter.count_pieces(skeleton)
        if fixed > budget:
            raise ValueError(f"budget {budget} is smaller than the prompt format's fixed {fixed} tokens")
        remaining = budget - fixed
        if self.fmt.fim:
            suffix = _head_within(self.counter, suffix, min(self.suffix_tokens, remaining // 4))
        else:
            suffix = ""
        remaining -= self.counter.count(suffix)
        prefix = _tail_within(self.counter, prefix, remaining)
        pieces = header + self.fmt.infill(prefix, suffix)
        pieces = [p for p in pieces if p != ""]
        total = self.counter.count_pieces(pieces)
        sections = [Section("file_header", path, "", self.counter.count_pieces(header)),
                    Section("current_prefix", path, "", self.counter.count(prefix)),
                    Section("current_suffix", path, "", self.counter.count(suffix))]
        shared = self.tracker.update(pieces)
        return ContextResult(pieces, self.fmt.render(pieces), total, budget, self.counter.name, shared,
                             sections, round((time.perf_counter() - start) * 1000, 3), prefix, suffix)
