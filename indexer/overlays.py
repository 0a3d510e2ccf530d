"""Open editor buffers (overlays): their text wins over the disk until the buffer closes.

A buffer is re-parsed on every change the editor sends, so it goes through the edit parser (which
reuses the previous tree) and skips the write when its content hash is the one already indexed. A buffer
the index would skip on disk (larger than ``max_file_size``, binary, minified) is not indexed as an overlay.

``version`` counts the changes of what the overlays make the index serve (a buffer opened with unsaved text,
edited, closed without saving): callers that keep selections across index generations key them on it, since
the files' on-disk stamps do not move when only a buffer does. Opening or closing a buffer that equals the
disk leaves it alone (the repository the index serves is the same).
"""

from __future__ import annotations

from typing import Callable

from .incremental import Updater
from .parse_pool import PARSER_CRASHED
from .ranker import Ranker
from .reparse import EditParser
from .settings import is_secret_path
from .state import IndexState
from .worker import content_hash, content_skip_reason


class Overlays:
    """Sets and clears the overlays of one index."""

    def __init__(self, state: IndexState, ranker: Ranker, edit_parser: EditParser, updater: Updater) -> None:
        self.state = state
        self.ranker = ranker
        self.edit_parser = edit_parser
        self.updater = updater
        self.version = 0  # bumped, under the store's lock, when an overlay changes the text the index serves

    def set_overlay(self, path: str, text: str, keep_if: Callable[[], bool] | None = None) -> None:
        state = self.state
        rel = state.rel(path)
        if not rel or rel.startswith("../") or is_secret_path(rel, state.settings.secret_globs):
            return  # outside the root (a code action on another folder's file) or a secret: never indexed
        data = text.encode("utf-8", "surrogatepass")
        if (len(data) > state.settings.max_file_size or content_skip_reason(data, state.settings.max_line_length)
                or state.skipped.get(rel) == PARSER_CRASHED):
            # a buffer the index would not take from disk (too large, binary, minified) is not indexed either:
            # parsing an 8 MB buffer holds the store for seconds and stalls every completion meanwhile; nor is
            # the buffer of a file that killed its parser process (parsed here, it could take the server down:
            # once saved, a worker process parses it, see parse_pool.py)
            if rel in state.overlays:
                self.clear_overlay(rel)  # back to what the disk says
            return
        h = content_hash(data)
        store = state.store
        with store.lock:
            if keep_if is not None and not keep_if():  # closed meanwhile: its clear_overlay ran or is queued
                return
            state.overlays[rel] = text
            row = store.conn.execute("SELECT id, hash, overlay FROM files WHERE path=?", (rel,)).fetchone()
            if row is not None and row[1] == h and row[2]:
                return
            if row is None or row[1] != h:
                self.version += 1  # a new text for the path (the same text as an overlay: only the flag moves)
            lang, parsed = self.edit_parser.parse(rel, data)
            store.begin()
            try:
                fid = store.write_file(row[0] if row else None, rel, len(data), -1, h, lang, parsed, overlay=True)
                if row is None:
                    state.files_changed()
                state.resolve_imports(None if row is None else {fid})
                store.commit()
            except BaseException:
                if store.conn.in_transaction:
                    store.rollback()
                raise
            self.ranker.update(fid, parsed)
            state.changed()
            state.touch_recent(rel)

    def clear_overlay(self, path: str) -> None:
        state = self.state
        rel = state.rel(path)
        with state.store.lock:
            self.edit_parser.forget(rel)
            if state.overlays.pop(rel, None) is None:
                return
            if self.updater.update_paths([rel]):  # the disk differs from the buffer (or lacks the file)
                self.version += 1
