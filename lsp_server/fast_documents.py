"""Buffer bookkeeping at typing speed: pygls's text documents with two hot paths made cheap.

Why: at 2,000 didChange per second (the load benchmark, bench/load_bench.py), pygls 2.1 spent most of the
server's time in two places that loop in Python: converting a client column to a code-point column (one
call per character of the line) and applying an incremental change (one ``StringIO.write`` per line of
the document). Completions queued behind them for seconds. Here an ASCII line (almost every line of
code) converts in O(1), and a change is applied with slices and joins done in C. Results are identical to
pygls's, quirks included (tests/lsp/test_fast_documents.py checks them against pygls on generated edits).

``install(workspace)`` switches a pygls workspace (created by pygls at ``initialize``, before any document
is opened) to these classes.
"""

from __future__ import annotations

from typing import Sequence

from lsprotocol import types
from pygls.workspace import TextDocument, Workspace
from pygls.workspace.position_codec import PositionCodec, ServerTextPosition


class FastPositionCodec(PositionCodec):
    """pygls's codec; a column on an ASCII line (code units = code points in every encoding) is O(1)."""

    def position_from_client_units(self, lines: Sequence[str], position: types.Position) -> ServerTextPosition:
        if not lines or position.line >= len(lines):
            return super().position_from_client_units(lines, position)
        line = lines[position.line]
        if not line.isascii():
            return super().position_from_client_units(lines, position)
        line = line.replace("\r\n", "\n")  # as pygls does
        length = len(line)
        if length == 0:
            return ServerTextPosition(position.line, 0)
        if position.character > length:
            position.character = length - 1  # pygls's clamp, which it writes back into the position
        return ServerTextPosition(line=position.line, character=min(position.character, length))


class FastTextDocument(TextDocument):
    """pygls's text document; an incremental change is spliced with C-level slices and joins."""

    def _apply_incremental_change(self, change: types.TextDocumentContentChangePartial) -> None:
        lines = self.lines
        server_range = self._position_codec.range_from_client_units(lines, change.range)
        start_line, start_col = server_range.start.line, server_range.start.character
        end_line, end_col = server_range.end.line, server_range.end.character
        if start_line == len(lines):  # an edit at the very end of the document
            self._source = self.source + change.text
            return
        if end_line < start_line:  # pygls writes every line unchanged for a reversed range
            self._source = "".join(lines)
            return
        parts = ["".join(lines[:start_line]), lines[start_line][:start_col], change.text]
        if end_line < len(lines):
            parts.append(lines[end_line][end_col:])
        parts.append("".join(lines[end_line + 1:]))
        self._source = "".join(parts)


class FastWorkspace(Workspace):
    """A workspace whose documents are ``FastTextDocument``s."""

    def _create_text_document(self, doc_uri: str, source: str | None = None, version: int | None = None,
                              language_id: str | None = None) -> TextDocument:
        return FastTextDocument(doc_uri, source=source, version=version, language_id=language_id,
                                sync_kind=self._sync_kind, position_codec=self._position_codec)


def install(workspace: Workspace) -> None:
    """Make ``workspace`` (no documents open yet) create fast documents with a fast codec."""
    workspace.__class__ = FastWorkspace
    workspace._position_codec = FastPositionCodec(workspace._position_codec.encoding)
