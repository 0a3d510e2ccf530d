"""Echoes: a completion that begins by writing again the text right before the cursor.

After an accessor (``map.entry(self.to_owned()).``, ``String::``, ``xml.dom.minidom.``) the 0.5B coder model
often starts by repeating what precedes it — ``entry(self.to_owned()).value()``, ``String::new()``,
``minidom.Document()`` — which is never what the code says there. Measured over every row of
``bench/results/quality_*.json`` (all four prompt methods, 2K and 8K, seeds 14-22): 75 completions began with
such an echo and all 75 were wrong; none of the expected answers did. In the code itself the pattern is rare:
at the 1.35M token boundaries of six real corpora (CPython's unittest, xml, email, asyncio; TanStack
query-core, immer, serde-json) the text after an accessor repeats a tail of five or more characters before it
12 times (``datetime.datetime``, ``mock.mock``, ``super::super::``).

So the decoder treats an echo like a name the repository rules out (``name_rule``, ``first_name``): it keeps the
model's own next preference. Only tails that end at the cursor with an accessor count, start at a token
boundary and hold at least ``MIN_ECHO_CHARS`` characters: a repeated argument (``None, None``) or a repeated
word after a space is ordinary code.
"""

from __future__ import annotations

import re
from typing import Literal

ACCESSORS = (".", "::", "->")  # what ends the text before the cursor when an echo is checked
MIN_ECHO_CHARS = 5  # the shortest tail (accessor included, spaces not) that counts: ``self.``, ``Self::``
_WORD = re.compile(r"\w")

Verdict = Literal["open", "ok", "bad"]


def echo_tails(before_cursor: str) -> tuple[str, ...]:
    """The tails of the cursor's line (``before_cursor``: the text before the cursor) a completion must not
    begin with: those ending at the cursor with an accessor, starting at a token boundary on a non-space
    character, with at least ``MIN_ECHO_CHARS`` non-space characters; shortest first."""
    line = before_cursor[before_cursor.rfind("\n") + 1:]
    if not line.endswith(ACCESSORS):
        return ()
    tails = []
    for start in range(len(line) - 1, -1, -1):
        ch = line[start]
        if ch.isspace() or (start > 0 and _WORD.match(ch) and _WORD.match(line[start - 1])):
            continue  # inside a word, or on a space: not where a token the model could echo begins
        tail = line[start:]
        if len("".join(tail.split())) >= MIN_ECHO_CHARS and _WORD.search(tail):
            tails.append(tail)
    return tuple(tails)


def echo_verdict(tails: tuple[str, ...], generated: str) -> Verdict:
    """``"bad"`` once ``generated`` begins with one of ``tails``, ``"open"`` while it may still become one,
    ``"ok"`` when it can no longer (every tail ends with an accessor, so a whole tail is a whole echo)."""
    if any(generated.startswith(t) for t in tails):
        return "bad"
    if any(t.startswith(generated) for t in tails):
        return "open"
    return "ok"
