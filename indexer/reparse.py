"""Incremental re-parsing of edited files and buffers: tell tree-sitter what changed, reuse the rest.

While someone types, the same few files are parsed again and again; keeping their last trees makes
each parse cost the edit, not the file.
"""

from __future__ import annotations

import tree_sitter as ts

from .languages import is_parseable, language_for_path, load
from .parsed import ParsedFile
from .parser import lf_rows, parse_source
from .worker import parse_bytes

_KEPT_TREES = 8  # the files edited or open most recently keep their trees


def _common_prefix(a: bytes, b: bytes) -> int:
    """Length of the common prefix (binary search over C-speed slice compares)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _point(src: bytes, byte: int) -> tuple[int, int]:
    return src.count(b"\n", 0, byte), byte - (src.rfind(b"\n", 0, byte) + 1)


def reparse(lang_name: str, old_src: bytes, old_tree: ts.Tree, new_src: bytes) -> ts.Tree:
    """Incremental re-parse of an edited buffer.

    The edit is the span between the common prefix and the common suffix, which is
    exact for a single edit and still correct (just less reuse) for several.
    """
    start = _common_prefix(old_src, new_src)
    limit = min(len(old_src), len(new_src)) - start
    lo, hi = 0, limit
    while lo < hi:  # common suffix, not overlapping the prefix
        mid = (lo + hi + 1) // 2
        if old_src[len(old_src) - mid:] == new_src[len(new_src) - mid:]:
            lo = mid
        else:
            hi = mid - 1
    old_end, new_end = len(old_src) - lo, len(new_src) - lo
    old_tree.edit(start_byte=start, old_end_byte=old_end, new_end_byte=new_end,
                  start_point=_point(old_src, start), old_end_point=_point(old_src, old_end),
                  new_end_point=_point(new_src, new_end))
    return load(lang_name).parser.parse(new_src, old_tree)


class EditParser:
    """Parses edited files and buffers, against their previous trees when those are still kept.

    Not thread-safe on its own: the index calls it under its store lock."""

    def __init__(self) -> None:
        self._trees: dict[str, tuple[bytes, ts.Tree]] = {}  # path -> (text, tree), least recent first

    def parse(self, rel: str, data: bytes) -> tuple[str | None, ParsedFile]:
        """The language and parse of ``data``, the new text of ``rel``."""
        lang = language_for_path(rel)
        if not is_parseable(lang):
            return parse_bytes(rel, data)
        data = lf_rows(data)  # lines at every line end, as the editor counts them (kept so for the next edit)
        assert lang is not None
        prev = self._trees.pop(rel, None)
        try:
            if prev is not None:
                tree = reparse(lang, prev[0], prev[1], data)
            else:
                tree = load(lang).parser.parse(data)
            parsed = parse_source(lang, data, tree=tree)
        except Exception:
            return parse_bytes(rel, data)
        self._trees[rel] = (data, tree)
        while len(self._trees) > _KEPT_TREES:
            self._trees.pop(next(iter(self._trees)))
        return lang, parsed

    def forget(self, rel: str) -> None:
        """The buffer closed: its next parse starts from scratch."""
        self._trees.pop(rel, None)
