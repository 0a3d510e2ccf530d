"""Positions between the engine and the editor: the one place that converts them.

The engine counts characters in Unicode code points (``line``, ``character``, or an offset into the text);
the client counts in the encoding negotiated at ``initialize`` (UTF-16 unless agreed otherwise). Both ways
lines end at LSP's own line ends (``\\n``, ``\\r\\n``, ``\\r``), the only ones an editor counts: pygls's
document splits with ``str.splitlines``, which also breaks at a form feed or U+2028 and so read every position
after one on the wrong line. The documents' incremental edits (fast_documents.py) use the same conversion.
"""

from __future__ import annotations

from typing import Any, Sequence

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.workspace import TextDocument
from pygls.workspace.position_codec import PositionCodec, ServerTextPosition, ServerTextRange

from engine.text_position import LSP_BREAK, ends_with_break, split_lines


def check_position(codec: PositionCodec, lines: Sequence[str], position: types.Position) -> None:
    """InvalidParams for a position the document (``split_lines`` of its text) does not have: a line past
    its end (the line after the last line is the end position, and exists), a column inside a character
    (between the two halves of a UTF-16 surrogate pair, or of a UTF-8 sequence). A column past the end of
    its line is valid: LSP says it means the line's end."""
    if position.line > len(lines):
        raise JsonRpcInvalidParams(f"position line {position.line} is past the end of the document "
                                   f"({len(lines)} lines)")
    if position.line == len(lines):
        return
    units = 0
    for char in lines[position.line]:
        if units >= position.character:
            return
        width = codec.impl.code_units_for_char(char)
        if units < position.character < units + width:
            raise JsonRpcInvalidParams(f"position {position.line}:{position.character} splits the character "
                                       f"U+{ord(char):04X} ({width} code units in {codec.encoding})")
        units += width


def server_position(codec: PositionCodec, lines: Sequence[str], position: types.Position) -> ServerTextPosition:
    """``position`` (client units) on ``lines`` (``split_lines``) in code points. A column past the end of
    its line is the line's end, before its line break; a line past the last one is the end of the
    document; a column inside a character moves past it (``check_position`` refuses those in requests).
    ``position`` is left as it is: pygls wrote its clamp into it, and a reply's range built from the
    request's position then pointed somewhere the client never asked about."""
    if position.line >= len(lines):
        if not lines or ends_with_break(lines[-1]):
            return ServerTextPosition(len(lines), 0)
        return ServerTextPosition(len(lines) - 1, len(lines[-1]))
    line = lines[position.line].rstrip("\r\n")
    if line.isascii():  # almost every line of code: one code unit per code point in every encoding
        return ServerTextPosition(position.line, min(position.character, len(line)))
    units = 0
    for index, char in enumerate(line):
        if units >= position.character:
            return ServerTextPosition(position.line, index)
        units += codec.impl.code_units_for_char(char)
    return ServerTextPosition(position.line, len(line))


def from_client(document: TextDocument, position: types.Position) -> ServerTextPosition:
    """A client position in ``document`` as an engine position (code points); see ``check_position``."""
    lines = split_lines(document.source)
    check_position(document.position_codec, lines, position)
    return server_position(document.position_codec, lines, position)


def range_from_client(document: TextDocument, client_range: types.Range) -> ServerTextRange:
    """A client range in ``document`` as an engine range (code points), start first; see ``check_position``.
    An editor sends a selection made backwards (a diagnostic may carry one too) with ``end`` before ``start``:
    taken as it came, a rewrite sent the model an empty block and answered with a TextEdit no client can apply."""
    codec, lines = document.position_codec, split_lines(document.source)
    check_position(codec, lines, client_range.start)
    check_position(codec, lines, client_range.end)
    start, end = server_position(codec, lines, client_range.start), server_position(codec, lines, client_range.end)
    return ServerTextRange(start=min(start, end), end=max(start, end))


def position_param(value: Any, name: str) -> types.Position:
    """A ``{line, character}`` object from a custom request's params (pygls does not check those)."""
    if not isinstance(value, dict) or not all(isinstance(value.get(k), int) and not isinstance(value.get(k), bool)
                                              and value[k] >= 0 for k in ("line", "character")):
        raise JsonRpcInvalidParams(f"{name} must be a position {{line, character}} with non-negative integers")
    return types.Position(line=value["line"], character=value["character"])


def _client_lines(text: str) -> list[str]:
    """The lines of ``text`` as an editor counts them, each with its line end."""
    parts = LSP_BREAK.split(text)
    return [parts[i] + (parts[i + 1] if i + 1 < len(parts) else "") for i in range(0, len(parts), 2)]


def to_client(codec: PositionCodec, text: str, line: int, character: int) -> types.Position:
    """An engine position in ``text`` as a client position; a line past the end is (line count, 0)."""
    return codec.position_to_client_units(_client_lines(text), ServerTextPosition(line, character))


def offset_to_client(codec: PositionCodec, text: str, offset: int) -> types.Position:
    """An offset into ``text`` as a client position."""
    before = text[:offset]
    breaks = list(LSP_BREAK.finditer(before))
    line_start = breaks[-1].end() if breaks else 0
    return types.Position(line=len(breaks), character=codec.client_num_units(before[line_start:]))
