"""What context building returns: the prompt (pieces and text), its token count and sections, and how
much of it the previous prompt shared; plus the cursor split both the builder and the runtime use.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Sequence

from engine.model.name_rule import NameRule
from engine.model.prompt_format import Piece
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
    # The cursor line's indentation when nothing else precedes the cursor on it: left out of the prompt
    # (``prefix`` ends at the line break), so the model writes the line whole — indentation included —
    # from a token boundary it saw in training; the runtime takes it off what the model wrote.
    indent: str = ""
    # the first name the completion may write (inside an import list: one the list lacks), for the decoder
    name_rule: NameRule | None = None

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


def cursor_indentation(prefix: str) -> str:
    """The whitespace between the last line break of ``prefix`` and the cursor, when that is all the
    cursor's line holds before the cursor (after Enter in an editor); else ""."""
    line = prefix[prefix.rfind("\n") + 1:]
    return line if line and not line.strip(" \t") else ""


def split_at_cursor(text: str, line: int, character: int) -> tuple[str, str]:
    offset = offset_at(text, line, character)
    return text[:offset], text[offset:]


class SharedPrefixTracker:
    """How many leading tokens a prompt shares with the previous one for the same workspace.

    Compared piece by piece (identical pieces add their cached token count), so a 256K-token prompt is
    not walked token by token; inside the first differing text piece the common prefix is measured in
    token ids (exact tokenizer) or estimated from the common characters (estimate counter, rounded down).
    """

    def __init__(self, counter: TokenCounter) -> None:
        self.counter = counter
        self._previous: list[Piece] | None = None

    def update(self, pieces: Sequence[Piece]) -> int:
        """Leading tokens ``pieces`` shares with the pieces of the previous call (0 on the first)."""
        previous, self._previous = self._previous, list(pieces)
        if previous is None:
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
