"""Positions in a buffer: 0-based line and character (Unicode code points) → string offset.

Lines end where LSP says they do: at ``\\r\\n``, ``\\r`` or ``\\n``, the only line ends an editor counts, so a
line number the language server passes in means the same line here. Python's ``str.splitlines`` also ends
lines at ``\\v``, ``\\f``, ``\\x1c``-``\\x1e``, ``\\x85``, U+2028 and U+2029 (a page break in a stdlib module, a
U+2028 in a JavaScript string): every position after one would land on the wrong line.
"""

from __future__ import annotations

import re

#: LSP's line ends, captured: ``LSP_BREAK.split(text)`` alternates lines and their line ends.
LSP_BREAK = re.compile(r"(\r\n|\r|\n)")
_OTHER_BREAKS = re.compile("[\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")  # splitlines' breaks that LSP's are not


class PositionError(ValueError):
    """A line/character outside the buffer."""


def split_lines(text: str) -> list[str]:
    """The lines of ``text`` as LSP counts them, each with its line end, and like ``str.splitlines(True)``
    no empty line after a final line end. Text without splitlines' extra breaks (almost all) is split by
    ``splitlines`` itself, in C: the language server splits the buffer on every keystroke."""
    if _OTHER_BREAKS.search(text) is None:
        return text.splitlines(True)
    parts = LSP_BREAK.split(text)
    lines = [parts[i] + parts[i + 1] for i in range(0, len(parts) - 1, 2)]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def line_texts(text: str) -> list[str]:
    """The lines of ``text`` as LSP counts them, without their line ends, and like ``str.split("\\n")`` with
    the empty line after a final line end (a position can stand there). For code that indexes lines by an
    editor's line number and joins them again: ``split("\\n")`` made a lone-CR document one line."""
    return LSP_BREAK.split(text)[::2]


def line_ending(text: str) -> str:
    """The document's line end: the first one in ``text``, ``"\\n"`` when it has none. Text the server
    inserts uses it, so a CRLF (Windows) or lone-CR document does not end up with mixed line ends."""
    found = LSP_BREAK.search(text)
    return found.group(1) if found else "\n"


def to_lf(text: str) -> str:
    """``text`` with each LSP line end written ``"\\n"``. Lines and characters stay where they were (a line
    end is not part of its line), so an editor's position means the same place in both. The model and the
    code that shapes its prompt and answer read ``\\n`` text; the document's own line end goes back on in
    ``with_line_ending``."""
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text  # per keystroke: no regex


def with_line_ending(text: str, eol: str) -> str:
    """``text`` (any LSP line ends) with ``eol`` at every line end."""
    return LSP_BREAK.sub(lambda _: eol, text) if eol != "\n" or "\r" in text else text


def ends_with_break(text: str) -> bool:
    """Whether the last line of ``text`` is the empty one after a line end (or the text is empty)."""
    return not text or text[-1] in "\r\n"


def offset_at(text: str, line: int, character: int) -> int:
    """Offset of (line, character); a character past the end of its line clamps to the line end, before
    its line break (a cursor never lands between the ``\\r`` and ``\\n`` of a CRLF)."""
    if line < 0 or character < 0:
        raise PositionError(f"position must be non-negative, got line {line}, character {character}")
    lines = split_lines(text)
    if line < len(lines):
        return sum(map(len, lines[:line])) + min(character, len(lines[line].rstrip("\r\n")))
    if line == len(lines) and ends_with_break(text):
        return len(text)
    count = len(lines) + ends_with_break(text)
    raise PositionError(f"line {line} is past the end of the buffer ({count} lines)")


def utf16_to_codepoint(line_text: str, utf16_character: int) -> int:
    """Convert an LSP UTF-16 column to a code-point column on one line."""
    units = 0
    for index, char in enumerate(line_text):
        if units >= utf16_character:
            return index
        units += 2 if ord(char) > 0xFFFF else 1
    return len(line_text)


def codepoint_to_utf16(line_text: str, character: int) -> int:
    return sum(2 if ord(c) > 0xFFFF else 1 for c in line_text[:character])
