"""Which name a completion may write first, when the repository says so.

Inside an import or export list the set of right answers is known before the model runs: a name the listed
module defines and the list does not name yet (``engine/context/import_lists``). An IDE offers exactly those
names; a small model, shown them, still often writes a name the list already holds (seeds 14-18 of
``bench/quality_bench.py``: 8 of the 11 cross-file cuts inside lists at 2K, every method wrong). The rule is
handed to the decoder, which keeps the model's own preference among the names the rule allows
(``first_name``), in the spirit of monitor-guided decoding (Agrawal et al., 2023).

Why a module of its own: the context builder states the rule (it knows the list and the module), the backend
enforces it (it holds the logits); neither should know how the other does its part.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from typing import Literal

_NAME = re.compile(r"[A-Za-z_$][\w$]*")
_NAME_CHAR = re.compile(r"[\w$]")

Verdict = Literal["open", "ok", "bad"]


@dataclass(frozen=True)
class NameRule:
    """The first name the completion writes (``typed``, the name part before the cursor, included) must be one
    of ``allowed`` (sorted; None: any name) and none of ``banned``. Words in ``passes`` (``type`` in
    ``export { type X }``) may come first and hand the rule to the next name. A path (``de::Visitor``) is left to
    the model unless the rule ``judges_paths`` (after ``module.``, the path's first name is the module's
    attribute), and so is what does not start with a name (``}``, a comment) unless a name is ``required``: the
    list goes on after the cursor, where closing it or ending the completion would break it (the 0.5B model,
    kept from repeating a listed name, closed the list instead)."""

    typed: str = ""
    allowed: tuple[str, ...] | None = None
    banned: frozenset[str] = frozenset()
    passes: frozenset[str] = field(default_factory=frozenset)
    required: bool = False
    judges_paths: bool = False

    def could_become_allowed(self, prefix: str) -> bool:
        if self.allowed is None:
            return True
        at = bisect.bisect_left(self.allowed, prefix)
        return at < len(self.allowed) and self.allowed[at].startswith(prefix)

    def accepts(self, name: str) -> bool:
        if name in self.banned:
            return False
        if self.allowed is None:
            return True
        at = bisect.bisect_left(self.allowed, name)
        return at < len(self.allowed) and self.allowed[at] == name

    def verdict(self, generated: str) -> Verdict:
        """``"open"`` while the first name is still being written and can still be allowed, ``"ok"`` once it
        is complete and allowed (or the text is not a name at all), ``"bad"`` when it can no longer be."""
        text = self.typed + generated
        pos = 0 if self.typed else len(text) - len(text.lstrip())
        while True:
            if pos >= len(text):
                return "open"
            m = _NAME.match(text, pos)
            if m is None:
                return "bad" if self.required else "ok"  # it closes the list, or writes a comment
            name, rest = m.group(0), text[m.end():]
            if not rest:
                growing = self.could_become_allowed(name) or any(p.startswith(name) for p in self.passes)
                return "open" if growing else "bad"
            if rest == ":" or rest.startswith("::") or rest.startswith("."):
                if rest == ":":
                    return "open"
                if not self.judges_paths:
                    return "ok"  # a path's first part, not a listed name
                return "ok" if self.accepts(name) else "bad"
            if name in self.passes and rest[0].isspace():
                after = len(rest) - len(rest.lstrip())
                pos = m.end() + after
                continue
            return "ok" if self.accepts(name) else "bad"


def name_before(text: str) -> str:
    """The name characters right before the end of ``text`` (the part of a name typed before the cursor)."""
    end = len(text)
    while end > 0 and _NAME_CHAR.match(text[end - 1]):
        end -= 1
    return text[end:]
