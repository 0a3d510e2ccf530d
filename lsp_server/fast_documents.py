"""Buffer bookkeeping at typing speed: pygls's text documents with two hot paths made cheap.

Why: at 2,000 didChange per second (the load benchmark, bench/load_bench.py), pygls 2.1 spent most of the
server's time in two places that loop in Python: converting a client column to a code-point column (one
call per character of the line) and applying an incremental change (one ``StringIO.write`` per line of
the document). Completions queued behind them for seconds. Here an ASCII line (almost every line of
code) converts in O(1), and a change is applied with slices and sums done in C.

Lines end at LSP's line ends only (``\\r\\n``, ``\\r``, ``\\n``; engine/text_position.py), where pygls used
``str.splitlines``: after a form feed or a U+2028 it applied an edit on the wrong line, and the server's
buffer no longer matched the editor's. A column past its line's end is the line's end, before the line break
(pygls took one character less on the last line, or the position after a lone ``\\r``); a reversed range is
read start-first, as vscode-languageserver's own text document does (tests/lsp/test_fast_documents.py
checks all of it against a plain character-by-character reference on generated edits).

``install(workspace)`` switches a pygls workspace (created by pygls at ``initialize``, before any document
is opened) to these classes.
"""

from __future__ import annotations

from typing import Sequence

from lsprotocol import types
from pygls.workspace import TextDocument, Workspace
from pygls.workspace.position_codec import PositionCodec, ServerTextPosition

from engine.text_position import split_lines

from .positions import server_position


class FastPositionCodec(PositionCodec):
    """pygls's codec reading a client column on LSP lines (``positions.server_position``): O(1) on an ASCII
    line, and the position it is given is left unchanged."""

    def position_from_client_units(self, lines: Sequence[str], position: types.Position) -> ServerTextPosition:
        return server_position(self, lines, position)


class FastTextDocument(TextDocument):
    """pygls's text document on LSP lines; an incremental change is spliced with C-level slices and sums.

    The lines are kept with the text they split (``_lines`` for ``_lines_of``) and a change re-splits only
    the lines it touched: splitting the whole buffer on every keystroke (a regular-expression scan plus one
    string per line) was most of the server's time at 2,000 didChange per second over 20 large documents."""

    _lines: list[str] | None = None
    _lines_of: str | None = None  # the source ``_lines`` split (identity: pygls may replace the source)

    @property
    def lines(self) -> Sequence[str]:
        """LSP's lines, so that pygls's own position helpers agree with the editor too."""
        source = self.source
        if self._lines is None or self._lines_of is not source:
            self._lines, self._lines_of = split_lines(source), source
        return self._lines

    def _apply_incremental_change(self, change: types.TextDocumentContentChangePartial) -> None:
        source = self.source
        lines = list(self.lines)  # a copy: a reader may still hold the old list
        start = server_position(self._position_codec, lines, change.range.start)
        end = server_position(self._position_codec, lines, change.range.end)
        if end < start:
            start, end = end, start
        begin = sum(map(len, lines[:start.line])) + start.character
        stop = begin - start.character + sum(map(len, lines[start.line:end.line])) + end.character
        self._source = source[:begin] + change.text + source[stop:]
        head = lines[start.line][:start.character] if start.line < len(lines) else ""
        tail = lines[end.line][end.character:] if end.line < len(lines) else ""
        middle = head + change.text + tail
        if not head and start.line and middle.startswith("\n") and lines[start.line - 1].endswith("\r"):
            return  # the previous line's lone \r and this \n become one \r\n: ``lines`` splits it all again
        lines[start.line:end.line + 1] = split_lines(middle)
        self._lines, self._lines_of = lines, self._source


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
