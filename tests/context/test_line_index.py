"""engine/context/line_index.py: a file's lines as offsets into its text read exactly as ``split_lines``
(LSP's line ends only, each line with its end, no empty line after a final end), for any text; and a
cached file costs a few blocks, not one string per line."""

from __future__ import annotations

import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.context.line_index import LineIndex
from engine.text_position import split_lines

# line ends of every kind, splitlines' extra breaks (no line end in LSP), non-ASCII, astral, a lone surrogate
TEXT = st.lists(st.sampled_from(["a", " ", "é", "\U0001F600", "\n", "\r", "\r\n", "\x0c", "\u2028", "\x85",
                                 "\ud800", "\t"]), max_size=60).map("".join)


@settings(max_examples=400, deadline=None)
@given(TEXT)
def test_reads_as_split_lines(text: str) -> None:
    want = split_lines(text)
    lines = LineIndex(text)
    assert len(lines) == len(want)
    assert list(lines) == want
    for i in range(-len(want), len(want)):
        assert lines[i] == want[i]
    assert lines[1:-1] == want[1:-1] and lines[::2] == want[::2] and lines[5:100] == want[5:100]
    starts = [sum(map(len, want[:i])) for i in range(len(want) + 1)]  # the last: the text's length
    assert [lines.start(i) for i in range(len(want) + 1)] == starts


@pytest.mark.parametrize("bad", [2, -3])
def test_index_past_the_end_raises(bad: int) -> None:
    with pytest.raises(IndexError):
        LineIndex("a\nb\n")[bad]
    assert len(LineIndex("")) == 0 and list(LineIndex("x")) == ["x"]
    with pytest.raises(IndexError):
        LineIndex("a\nb\n").start(bad + 1 if bad > 0 else bad)


def test_a_long_file_is_a_few_blocks_not_a_string_per_line() -> None:
    """Why the file cache keeps this: 5,000 lines held as offsets are a handful of Python objects (and one
    buffer of offsets); as a list of lines, 5,000 objects that Python's allocator keeps scattered for as long
    as the file is cached."""
    text = "".join(f"    value_{i} = compute({i})\n" for i in range(5000))
    before = sys.getallocatedblocks()
    lines = LineIndex(text)
    as_offsets = sys.getallocatedblocks() - before
    before = sys.getallocatedblocks()
    listed = split_lines(text)
    as_list = sys.getallocatedblocks() - before
    assert len(lines) == len(listed) == 5000
    assert as_list >= 5000 and as_offsets < 20, (as_offsets, as_list)
