"""The fast text documents (lsp_server/fast_documents.py) agree with pygls's own on generated edits: the same
text after every incremental change and the same code-point positions, for ASCII and non-ASCII lines,
CRLF, columns and lines past the end, reversed ranges, in UTF-16, UTF-8 and UTF-32."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from lsprotocol import types
from pygls.workspace import TextDocument
from pygls.workspace.position_codec import PositionCodec

from lsp_server.fast_documents import FastPositionCodec, FastTextDocument

ENCODINGS = [types.PositionEncodingKind.Utf16, types.PositionEncodingKind.Utf8, types.PositionEncodingKind.Utf32]
chars = st.sampled_from(list("abc xyz_(){}:=\t") + ["\n", "\r\n", "é", "😀", "中", "𝄞"])
texts = st.lists(chars, max_size=60).map("".join)
positions = st.builds(types.Position, line=st.integers(0, 8), character=st.integers(0, 30))


@settings(max_examples=1500, deadline=None, derandomize=True, database=None)
@given(text=texts, edits=st.lists(st.tuples(positions, positions, texts), min_size=1, max_size=6),
       encoding=st.sampled_from(ENCODINGS))
def test_incremental_changes_agree_with_pygls(text: str, edits, encoding) -> None:
    slow = TextDocument("file:///a.py", source=text, position_codec=PositionCodec(encoding))
    fast = FastTextDocument("file:///a.py", source=text, position_codec=FastPositionCodec(encoding))
    for start, end, new in edits:
        for doc in (slow, fast):
            doc.apply_change(types.TextDocumentContentChangePartial(
                range=types.Range(start=types.Position(start.line, start.character),
                                  end=types.Position(end.line, end.character)), text=new))
        assert fast.source == slow.source


@settings(max_examples=1500, deadline=None, derandomize=True, database=None)
@given(text=texts, position=positions, encoding=st.sampled_from(ENCODINGS))
def test_positions_agree_with_pygls(text: str, position: types.Position, encoding) -> None:
    lines = text.splitlines(True)
    slow_pos = types.Position(position.line, position.character)
    fast_pos = types.Position(position.line, position.character)
    assert (FastPositionCodec(encoding).position_from_client_units(lines, fast_pos)
            == PositionCodec(encoding).position_from_client_units(lines, slow_pos))
    assert fast_pos == slow_pos  # pygls writes its clamp back into the position; so do we
