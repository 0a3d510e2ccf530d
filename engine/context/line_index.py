"""A file's lines as offsets into its text: what the context's file cache keeps instead of a list of lines.

Why: the cache holds every file the prompts show (hundreds), and an open buffer's entry is made again after
each edit, so as lists it held one string object per line, about a hundred thousand of them, and replaced
thousands at a time (170,000 lines split per 4,000 of the soak's editor events, replayed in-process). One
array of line starts per file is one object, and a line is cut out of the text only when a snippet asks for
it. The server's soak (bench/load_bench.py) beside one with lists: 8 MB less resident, Python's live objects
9 MB fewer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import overload

import numpy as np

_LF, _CR = 10, 13


def _line_bounds(text: str) -> np.ndarray:
    """Where each line starts, then the text's length: lines end at LSP's line ends only (``\\r\\n``, ``\\r``,
    ``\\n``; ``engine.text_position.split_lines``), and no empty line follows a final line end."""
    if text.isascii():
        codes = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    else:
        codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    lone_cr = codes == _CR
    lone_cr[:-1] &= codes[1:] != _LF
    ends = np.flatnonzero((codes == _LF) | lone_cr) + 1
    bounds = np.concatenate(([0], ends)).astype(np.int64)
    if bounds[-1] != len(text):
        bounds = np.append(bounds, len(text))
    return bounds


class LineIndex(Sequence[str]):
    """``split_lines(text)`` as a read-only sequence (each line with its line end), stored as the text plus
    the offsets where its lines start. Indexing cuts the line out; a slice is a list of lines."""

    __slots__ = ("text", "_bounds")

    def __init__(self, text: str) -> None:
        self.text = text
        self._bounds = _line_bounds(text)

    def __len__(self) -> int:
        return len(self._bounds) - 1

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        count = len(self)
        if index < 0:
            index += count
        if not 0 <= index < count:
            raise IndexError("line index out of range")
        return self.text[int(self._bounds[index]):int(self._bounds[index + 1])]

    def start(self, line: int) -> int:
        """The offset in ``text`` where ``line`` starts; ``len(self)`` gives the text's length. Why: a caller
        that finds a definition's name on its line (``import_lists.module_names``) searches the text between
        two starts, which this index already holds, instead of splitting the file again."""
        if not 0 <= line < len(self._bounds):
            raise IndexError("line index out of range")
        return int(self._bounds[line])
