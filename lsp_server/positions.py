"""Positions between the engine and the editor: the one place that converts them.

The engine counts characters in Unicode code points (``line``, ``character``, or an offset into the text);
the client counts in the encoding negotiated at ``initialize`` (UTF-16 unless agreed otherwise). Incoming
positions go through pygls's document (its lines, its codec), so a request is read the way pygls tracks the
buffer; outgoing positions are computed on LSP's own line ends (``\\n``, ``\\r\\n``, ``\\r``), the only ones an
editor counts.
"""

from __future__ import annotations

import re
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.workspace import TextDocument
from pygls.workspace.position_codec import PositionCodec, ServerTextPosition, ServerTextRange

_BREAK = re.compile(r"(\r\n|\r|\n)")


def check_position(document: TextDocument, position: types.Position) -> None:
    """InvalidParams for a position the document does not have: a line past its end (the line after the last
    line break is the end position, and exists), a column inside a character (between the two halves of a
    UTF-16 surrogate pair, or of a UTF-8 sequence). A column past the end of its line is valid: LSP says it
    means the line's end."""
    lines = document.lines
    if position.line > len(lines):
        raise JsonRpcInvalidParams(f"position line {position.line} is past the end of the document "
                                   f"({len(lines)} lines)")
    if position.line == len(lines):
        return
    codec = document.position_codec
    units = 0
    for char in lines[position.line]:
        if units >= position.character:
            return
        width = codec.impl.code_units_for_char(char)
        if units < position.character < units + width:
            raise JsonRpcInvalidParams(f"position {position.line}:{position.character} splits the character "
                                       f"U+{ord(char):04X} ({width} code units in {codec.encoding})")
        units += width


def from_client(document: TextDocument, position: types.Position) -> ServerTextPosition:
    """A client position in ``document`` as an engine position (code points); see ``check_position``."""
    check_position(document, position)
    return document.position_from_client_units(position)


def range_from_client(document: TextDocument, client_range: types.Range) -> ServerTextRange:
    """A client range in ``document`` as an engine range (code points); see ``check_position``."""
    check_position(document, client_range.start)
    check_position(document, client_range.end)
    return document.range_from_client_units(client_range)


def position_param(value: Any, name: str) -> types.Position:
    """A ``{line, character}`` object from a custom request's params (pygls does not check those)."""
    if not isinstance(value, dict) or not isinstance(value.get("line"), int) or not isinstance(value.get("character"), int) \
            or value["line"] < 0 or value["character"] < 0:
        raise JsonRpcInvalidParams(f"{name} must be a position {{line, character}} with non-negative integers")
    return types.Position(line=value["line"], character=value["character"])


def _client_lines(text: str) -> list[str]:
    """The lines of ``text`` as an editor counts them, each with its line end."""
    parts = _BREAK.split(text)
    return [parts[i] + (parts[i + 1] if i + 1 < len(parts) else "") for i in range(0, len(parts), 2)]


def to_client(codec: PositionCodec, text: str, line: int, character: int) -> types.Position:
    """An engine position in ``text`` as a client position; a line past the end is (line count, 0)."""
    return codec.position_to_client_units(_client_lines(text), ServerTextPosition(line, character))


def offset_to_client(codec: PositionCodec, text: str, offset: int) -> types.Position:
    """An offset into ``text`` as a client position."""
    before = text[:offset]
    breaks = list(_BREAK.finditer(before))
    line_start = breaks[-1].end() if breaks else 0
    return types.Position(line=len(breaks), character=codec.client_num_units(before[line_start:]))
