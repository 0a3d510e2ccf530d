"""Positions in a buffer: 0-based line and character (Unicode code points) → string offset."""

from __future__ import annotations


class PositionError(ValueError):
    """A line/character outside the buffer."""


def offset_at(text: str, line: int, character: int) -> int:
    """Offset of (line, character); a character past the end of its line clamps to the line end."""
    if line < 0 or character < 0:
        raise PositionError(f"position must be non-negative, got line {line}, character {character}")
    start = 0
    for _ in range(line):
        nl = text.find("\n", start)
        if nl < 0:
            raise PositionError(f"line {line} is past the end of the buffer ({text.count(chr(10)) + 1} lines)")
        start = nl + 1
    end = text.find("\n", start)
    if end < 0:
        end = len(text)
    return min(start + character, end)


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
