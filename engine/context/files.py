"""Repository file texts as prompts show them (redacted), cached across requests and index generations.

Keyed by path and (size, mtime) so edits on disk are seen; an open buffer (an index overlay) by its text.
A file on disk is stat'ed at most once per index generation (``checked``, kept by that generation's
memo), not on every request that shows it.
"""

from __future__ import annotations

import os
from collections import OrderedDict

from engine.context.index_view import RepoIndex
from engine.context.line_index import LineIndex
from engine.context.redact import kind_for, redact_cached
from engine.text_position import to_lf


class FileCache:
    """Redacted file texts (``\\n`` line ends) and their lines, numbered as the index numbers its rows (a
    snippet cuts the index's line range out of them: a break the index does not count, such as the form feed
    ``str.splitlines`` breaks at, shifted every snippet after it), kept as offsets into the text
    (``LineIndex``). An LRU of at most ``max_files`` files and ``max_chars`` characters (a snippet shows a
    few lines but the whole file is kept to cut it from: without a size bound, a session over a large
    repository would end up holding most of it)."""

    def __init__(self, max_files: int = 50_000, max_chars: int = 64_000_000) -> None:
        self._data: OrderedDict[str, tuple[tuple, str, LineIndex]] = OrderedDict()
        self._max = max_files
        self._max_chars = max_chars
        self._chars = 0

    @property
    def chars(self) -> int:
        """Characters of file text held now."""
        return self._chars

    def __contains__(self, path: str) -> bool:
        return path in self._data

    def __len__(self) -> int:
        return len(self._data)

    def get(self, index: RepoIndex, root: str, path: str, checked: set[str]) -> tuple[str, LineIndex] | None:
        """(text, lines) of ``path`` as the prompt may show it; None when the index cannot read it."""
        hit = self._data.get(path)
        text = index.overlays.get(path)  # one look-up: the buffer may close on another thread meanwhile
        if text is not None:
            stamp: tuple = ("overlay", hash(text))
        elif hit is not None and path in checked and hit[0][0] != "overlay":
            self._data.move_to_end(path)
            return hit[1], hit[2]
        else:
            try:
                st = os.stat(os.path.join(root, path))
                stamp = (st.st_size, st.st_mtime_ns)
            except OSError:
                stamp = ("missing",)
            checked.add(path)
        if hit is not None and hit[0] == stamp:
            self._data.move_to_end(path)
            return hit[1], hit[2]
        if text is None:
            text = index.read_text(path)
        if text is None:
            return None
        text = redact_cached(to_lf(text), kind_for(path))  # a CRLF repository's prompt in \n, as the model read code
        lines = LineIndex(text)  # the index's rows: ``splitlines`` also broke at form feeds (stdlib pages)
        if hit is not None:
            self._chars -= len(hit[1])
        self._data[path] = (stamp, text, lines)
        self._data.move_to_end(path)
        self._chars += len(text)
        while (len(self._data) > self._max or self._chars > self._max_chars) and len(self._data) > 1:
            _, old = self._data.popitem(last=False)
            self._chars -= len(old[1])
        return text, lines
