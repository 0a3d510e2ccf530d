"""The fast text documents (lsp_server/fast_documents.py) agree with a plain character-by-character reading
of LSP on generated edits: the same text after every incremental change and the same code-point positions,
for ASCII and non-ASCII lines, CRLF, lone CR, the characters ``str.splitlines`` breaks at and LSP does not
(form feed, U+2028, ...), columns and lines past the end, reversed ranges, in UTF-16, UTF-8 and UTF-32.

The reference is deliberately slow and obvious (one loop over the characters); the documents under test
split with C-level calls because they run on every keystroke. pygls itself is no reference: it splits lines
with ``str.splitlines`` and so reads positions after a form feed on the wrong line."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from lsprotocol import types

from engine.text_position import PositionError, offset_at, split_lines
from lsp_server.fast_documents import FastPositionCodec, FastTextDocument

ENCODINGS = [types.PositionEncodingKind.Utf16, types.PositionEncodingKind.Utf8, types.PositionEncodingKind.Utf32]
WIDTH = {types.PositionEncodingKind.Utf16: lambda c: 2 if ord(c) > 0xFFFF else 1,
         types.PositionEncodingKind.Utf8: lambda c: len(c.encode("utf-8")),
         types.PositionEncodingKind.Utf32: lambda c: 1}
NOT_LSP_BREAKS = ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]
chars = st.sampled_from(list("abc xyz_(){}:=\t") + ["\n", "\r\n", "\r", "é", "😀", "中", "𝄞"] + NOT_LSP_BREAKS)
texts = st.lists(chars, max_size=60).map("".join)
positions = st.builds(types.Position, line=st.integers(0, 8), character=st.integers(0, 30))


def reference_lines(text: str) -> list[tuple[int, int]]:
    """(start, end before the line break) of every line, LSP's way: only CR LF, CR and LF end a line."""
    spans, start, i = [], 0, 0
    while i < len(text):
        if text[i] in "\r\n":
            spans.append((start, i))
            i += 2 if text[i:i + 2] == "\r\n" else 1
            start = i
        else:
            i += 1
    spans.append((start, len(text)))
    return spans


def reference_offset(text: str, position: types.Position, encoding: str) -> int:
    """A client position as an offset: a line past the last is the end, a column past its line the line's
    end, a column inside a character the offset after it."""
    spans = reference_lines(text)
    if position.line >= len(spans):
        return len(text)
    offset, end = spans[position.line]
    units = 0
    while offset < end and units < position.character:
        units += WIDTH[encoding](text[offset])
        offset += 1
    return offset


@settings(max_examples=1500, deadline=None, derandomize=True, database=None)
@given(text=texts, edits=st.lists(st.tuples(positions, positions, texts), min_size=1, max_size=6),
       encoding=st.sampled_from(ENCODINGS))
def test_incremental_changes_agree_with_the_reference(text: str, edits, encoding) -> None:
    fast = FastTextDocument("file:///a.py", source=text, position_codec=FastPositionCodec(encoding))
    expected = text
    for start, end, new in edits:
        fast.apply_change(types.TextDocumentContentChangePartial(range=types.Range(start=start, end=end), text=new))
        a, b = sorted((reference_offset(expected, start, encoding), reference_offset(expected, end, encoding)))
        expected = expected[:a] + new + expected[b:]
        assert fast.source == expected
        assert list(fast.lines) == split_lines(expected)  # the lines kept across changes, re-split only in part


def test_a_lone_cr_and_an_inserted_newline_become_one_line_end() -> None:
    """The one change a partial re-split cannot see: a \\n typed at the start of the line after a lone \\r."""
    fast = FastTextDocument("file:///a.py", source="ab\rcd\n", position_codec=FastPositionCodec("utf-16"))
    assert list(fast.lines) == ["ab\r", "cd\n"]
    fast.apply_change(types.TextDocumentContentChangePartial(
        range=types.Range(start=types.Position(line=1, character=0), end=types.Position(line=1, character=0)),
        text="\n"))
    assert fast.source == "ab\r\ncd\n" and list(fast.lines) == ["ab\r\n", "cd\n"]


@settings(max_examples=1500, deadline=None, derandomize=True, database=None)
@given(text=texts, position=positions, encoding=st.sampled_from(ENCODINGS))
def test_positions_agree_with_the_reference(text: str, position: types.Position, encoding) -> None:
    document = FastTextDocument("file:///a.py", source=text, position_codec=FastPositionCodec(encoding))
    asked = types.Position(position.line, position.character)
    assert document.offset_at_position(asked) == reference_offset(text, position, encoding)
    assert asked == position  # pygls wrote its clamp into the position, and the reply's range came from it


@settings(max_examples=1500, deadline=None, derandomize=True, database=None)
@given(text=texts, line=st.integers(0, 8), character=st.integers(0, 30))
def test_engine_offsets_agree_with_the_reference(text: str, line: int, character: int) -> None:
    """The engine reads (line, code point) on the same lines the editor counts (UTF-32 is code points)."""
    utf32 = types.PositionEncodingKind.Utf32
    if line < len(reference_lines(text)):
        assert offset_at(text, line, character) == reference_offset(text, types.Position(line, character), utf32)
    else:
        try:
            offset_at(text, line, character)
        except PositionError:
            return
        raise AssertionError(f"line {line} of {text!r} should be past the end")


def test_a_form_feed_line_keeps_the_edit_on_the_editors_line() -> None:
    """A page break on its own line (the stdlib's email/*.py): the editor's line 3 is ``    return ``."""
    document = FastTextDocument("file:///a.py", source="import os\n\x0c\ndef f():\n    return \n")
    document.apply_change(types.TextDocumentContentChangePartial(
        range=types.Range(start=types.Position(3, 11), end=types.Position(3, 11)), text="os.getcwd()"))
    assert document.source == "import os\n\x0c\ndef f():\n    return os.getcwd()\n"
