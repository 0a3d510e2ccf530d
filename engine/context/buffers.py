"""Editor buffers into the index: the index is read as the repository state, so an edited buffer must
become the index's overlay of its file, but never per keystroke (an overlay re-parses the file and
bumps the index generation, which drops every memoised answer).
"""

from __future__ import annotations

import os
from typing import Callable

from engine.context.index_view import RepoIndex
from engine.text_position import to_lf


def sync_overlay(index: RepoIndex, root: str, path: str, text: str,
                 is_open: Callable[[str], bool]) -> None:
    """The buffer replaces the saved file in the index (an overlay) when they differ (re-parses) — while the
    editor still has it open (``is_open``: a request may arrive after the editor closed it)."""
    keep_if = lambda: is_open(path)  # noqa: E731 - asked by the index under its lock
    overlay = index.overlays.get(path)  # one look-up: the buffer may close on another thread meanwhile
    if overlay is not None:
        if overlay != text:
            index.set_overlay(path, text, keep_if)
        return
    try:
        with open(os.path.join(root, path), "rb") as f:
            on_disk = f.read().decode("utf-8", "replace")
    except OSError:
        on_disk = None
    if on_disk != text:
        index.set_overlay(path, text, keep_if)


def leave_file(index: RepoIndex, last: tuple[str, str] | None, rel: str, log: Callable[[str], None],
               is_open: Callable[[str], bool]) -> None:
    """Completion is in ``rel``; ``last`` is the (path, buffer) of the previous request. When completion
    moved to another file, that buffer, when it is open in the index (an overlay) and was edited since,
    becomes that overlay. Line ends do not count: the builder reads buffers with ``\\n`` line ends
    (``to_lf``) while the overlay of an untouched CRLF buffer holds the editor's text, and re-parsing it for
    nothing bumps the index generation."""
    if last is None or last[0] == rel:
        return
    overlay = index.overlays.get(last[0])
    if overlay is not None and to_lf(overlay) != to_lf(last[1]):
        try:
            index.set_overlay(last[0], last[1], lambda: is_open(last[0]))
        except Exception as exc:
            log(f"overlay sync failed: {exc}")
