"""Echoes: a completion that begins by writing again the text right before the cursor.

After an accessor (``map.entry(self.to_owned()).``, ``String::``, ``xml.dom.minidom.``) the 0.5B coder model
often starts by repeating what precedes it and then writes what it means to come after it:
``unwrap().into_deserializer())`` after ``take().unwrap().``, ``minidom.Document()`` after
``xml.dom.minidom.``. It re-anchors on a token boundary it saw in training; what follows the echo is its guess
for the cursor. So the echo is cut off and the rest shown (``strip_echo``, one of ``postprocess``'s rules).

Measured over every committed row of ``bench/results/quality_*.json`` (four prompt methods, 2K and 8K, seeds
14-22; cuts other than function bodies): 59 completions began with an echo, all wrong; with the echo cut off
13 are right (engine 5 of 24, Aider-style map 3 of 20, Jaccard windows 3 of 13, buffer-only 2 of 2), the other
46 stay wrong; no expected answer begins with an echo. Refusing the echo while decoding instead (the model's
next preference; tried first) made 3 of the 32 rows of the eight targeted echo cuts right (``--case-ids``),
cutting it off 6: after ``take().unwrap().`` at 8K the next preference was ``map(Some)``, what followed the
echo ``into_deserializer())``. In real code the pattern is rare: at the 1.35M token boundaries of six corpora
(CPython's unittest, xml, email, asyncio; TanStack query-core, immer, serde-json) the text after an accessor
repeats a tail of five or more characters before it 12 times (``datetime.datetime``, ``mock.mock``,
``super::super::``).

Only tails that end at the cursor with an accessor count, start at a token boundary on a non-space
character and hold at least ``MIN_ECHO_CHARS`` non-space characters: a repeated argument (``None, None``) or a
repeated word after a space is ordinary code.
"""

from __future__ import annotations

import re

ACCESSORS = (".", "::", "->")  # what ends the text before the cursor when an echo is looked for
MIN_ECHO_CHARS = 5  # the shortest tail (accessor included, spaces not) that counts: ``self.``, ``Self::``
MAX_ECHO_CHARS = 400  # the longest: a line's worth; a minified file's line holds a million characters
_WORD = re.compile(r"\w")


def echo_tails(before_cursor: str, longest: int = MAX_ECHO_CHARS) -> tuple[str, ...]:
    """The tails of the cursor's line (``before_cursor``: the text before the cursor) that a completion
    beginning with them repeats: those ending at the cursor with an accessor, starting at a token boundary on
    a non-space character, with at least ``MIN_ECHO_CHARS`` non-space characters and at most ``longest``
    characters (``MAX_ECHO_CHARS`` at most); shortest first."""
    line = before_cursor[before_cursor.rfind("\n") + 1:]
    if not line.endswith(ACCESSORS):
        return ()
    first = max(0, len(line) - min(longest, MAX_ECHO_CHARS))
    tails = []
    solid = 0  # non-space characters from ``start`` to the cursor
    word = False  # whether a word character was seen there
    for start in range(len(line) - 1, first - 1, -1):
        ch = line[start]
        if ch.isspace():
            continue  # on a space: not where a token the model could echo begins
        solid += 1
        word = word or bool(_WORD.match(ch))
        if start > 0 and _WORD.match(ch) and _WORD.match(line[start - 1]):
            continue  # inside a word
        if solid >= MIN_ECHO_CHARS and word:
            tails.append(line[start:])
    return tuple(tails)


def strip_echo(text: str, before_cursor: str) -> str:
    """``text`` without the longest tail of ``before_cursor`` it begins with (``echo_tails``); as it is when it
    begins with none. Every tail ends with an accessor, so what is cut is whole tokens of code."""
    echoed = [t for t in echo_tails(before_cursor, len(text)) if text.startswith(t)]  # none longer than the text
    return text[len(max(echoed, key=len)):] if echoed else text
