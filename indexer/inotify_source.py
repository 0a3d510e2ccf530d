"""Linux: one inotify watch per directory the index walks, kept in step with the tree as it changes.

inotify watches inodes, not names, so the bookkeeping (watch descriptor <-> repository-relative directory)
must follow the tree, or a watch ends up under a stale name and a directory that later takes that name is
never watched:
- a directory moved away (out of the workspace, or renamed within it) loses its watches at once; its new
  name, if inside the workspace, is watched afresh like a directory created there;
- a directory whose metadata changes (chmod) is walked again: one that could not be watched while it was
  unreadable is watched once it is readable;
- an ignore file that changes walks its directory again: directories it no longer ignores get watches;
- the root itself deleted or moved away: every watch is dropped, the index is rebuilt (it empties), and the
  root path is checked every read timeout until a directory is there again, which is then watched and
  indexed from scratch.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from typing import Any, Protocol

from .discovery import GIT_EXCLUDE, RULE_FILE_NAMES, discover
from .settings import IndexSettings

log = logging.getLogger(__name__)

_READ_TIMEOUT_MS = 200
_GIT_INFO = GIT_EXCLUDE.rsplit("/", 1)[0]


class WatchLimitReached(OSError):
    """The OS (or ``settings.watch_limit``) allows no more watches."""


class _Index(Protocol):
    @property
    def root(self) -> str: ...

    @property
    def settings(self) -> IndexSettings: ...


class EventSink(Protocol):
    """What the source hands events to (``indexer.watch.Watcher`` is one)."""

    @property
    def index(self) -> _Index: ...

    def relevant(self, rel: str, is_dir: bool = False) -> bool: ...

    def add(self, rels: list[str]) -> None: ...

    def rescan(self) -> None: ...


class InotifySource:
    """Watches the directories the index walks; new directories are watched as they appear."""

    mode = "inotify"

    def __init__(self, watcher: EventSink) -> None:
        from inotify_simple import INotify, flags

        self.w = watcher
        self.flags = flags
        self.mask = (flags.CREATE | flags.DELETE | flags.MODIFY | flags.CLOSE_WRITE | flags.MOVED_FROM
                     | flags.MOVED_TO | flags.ATTRIB | flags.DELETE_SELF | flags.MOVE_SELF | flags.ONLYDIR)
        self._new_inotify = INotify
        self.inotify: Any = INotify()
        self.dirs: dict[int, str] = {}  # watch descriptor -> repository-relative directory ("" = root)
        self.watched: dict[str, int] = {}
        self.limit = watcher.index.settings.watch_limit
        self.stopped = False
        self.root_lost = False  # the root is gone (deleted or moved away): wait for a directory there again
        self.thread = threading.Thread(target=self._read, name="coderflash-inotify", daemon=True)

    def start(self) -> None:
        self.watch_tree("")
        self.root_lost = "" not in self.watched
        self.thread.start()

    def watch_tree(self, rel_dir: str) -> None:
        """Watch ``rel_dir`` and every directory below it that the index would walk."""
        result = discover(self.w.index.root, self.w.index.settings, subdir=rel_dir)
        for d in [rel_dir] + [x for x in result.dirs if x != rel_dir]:
            self._watch(d)
        if rel_dir == "" and os.path.isdir(os.path.join(self.w.index.root, _GIT_INFO)):
            self._watch(_GIT_INFO)  # the one directory of .git that holds an ignore file

    def _watch(self, rel_dir: str) -> None:
        if rel_dir in self.watched:
            return
        if self.limit is not None and len(self.watched) >= self.limit:
            raise WatchLimitReached(errno.ENOSPC, f"watch limit {self.limit} reached")
        path = os.path.join(self.w.index.root, rel_dir) if rel_dir else self.w.index.root
        try:
            wd = self.inotify.add_watch(path, self.mask)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise WatchLimitReached(errno.ENOSPC, "inotify watch limit reached") from exc
            return  # gone or unreadable meanwhile: its parent's events (ATTRIB once readable) bring it back
        self.dirs[wd] = rel_dir
        self.watched[rel_dir] = wd

    def _watch_below(self, rel_dir: str) -> None:
        try:
            self.watch_tree(rel_dir)
        except WatchLimitReached as exc:
            log.warning("watch limit reached below %s: %s; rescanning instead", rel_dir or ".", exc)
            self.w.rescan()

    def _forget(self, rel_dir: str) -> None:
        """``rel_dir`` moved away or was deleted: drop the watches of its subtree, which no longer lies there."""
        prefix = rel_dir + "/"
        for d in [d for d in self.watched if d == rel_dir or d.startswith(prefix)]:
            wd = self.watched.pop(d)
            self.dirs.pop(wd, None)
            try:
                self.inotify.rm_watch(wd)
            except OSError:  # already gone with its directory
                pass

    def _reset(self) -> None:
        """Drop every watch (a fresh inotify instance: the old one may watch a tree moved elsewhere)."""
        old, self.inotify = self.inotify, self._new_inotify()
        self.dirs.clear()
        self.watched.clear()
        try:
            old.close()
        except OSError:
            pass

    def _root_back(self) -> None:
        """A directory is at the root path again: watch it and rebuild the index from what it holds."""
        if self.watched:
            self._reset()
        self._watch_below("")
        if "" in self.watched:
            self.root_lost = False
            self.w.rescan()

    def stop(self) -> None:
        self.stopped = True
        try:
            self.inotify.close()
        except OSError:
            pass

    def _read(self) -> None:
        try:
            while not self.stopped:
                if self.root_lost and os.path.isdir(self.w.index.root):
                    self._root_back()
                try:
                    events = self.inotify.read(timeout=_READ_TIMEOUT_MS)
                except (OSError, ValueError):
                    if self.stopped:
                        return
                    time.sleep(_READ_TIMEOUT_MS / 1000)
                    continue
                self._handle(events)
        finally:
            try:
                self.inotify.close()  # the instance _reset made after stop() closed the previous one
            except OSError:
                pass

    def _handle(self, events: list[Any]) -> None:
        flags = self.flags
        rels: list[str] = []
        rewalk: set[str] = set()
        for event in events:
            if event.mask & flags.Q_OVERFLOW:
                self.w.rescan()
                continue
            parent = self.dirs.get(event.wd)
            if parent is None:
                continue
            if event.mask & (flags.IGNORED | flags.DELETE_SELF | flags.MOVE_SELF):
                if parent == "" and event.mask & (flags.DELETE_SELF | flags.MOVE_SELF):
                    log.warning("the workspace root %s was deleted or moved away", self.w.index.root)
                    self._reset()
                    self.root_lost = True
                    self.w.rescan()
                    return  # the rest of this batch names a tree that is no longer at the root
                if event.mask & flags.IGNORED:
                    self.dirs.pop(event.wd, None)
                    if self.watched.get(parent) == event.wd:
                        del self.watched[parent]
                continue
            if not event.name:  # the watched directory itself: its parent's watch names it
                continue
            rel = f"{parent}/{event.name}" if parent else event.name
            is_dir = bool(event.mask & flags.ISDIR)
            if is_dir and event.mask & (flags.MOVED_FROM | flags.DELETE):
                self._forget(rel)
            if event.name in RULE_FILE_NAMES:
                rewalk.add(parent)
            elif rel == GIT_EXCLUDE:
                rewalk.add("")  # rules for the whole tree
            if not self.w.relevant(rel, is_dir):
                continue
            if is_dir and event.mask & (flags.CREATE | flags.MOVED_TO | flags.ATTRIB):
                self._watch_below(rel)
            rels.append(rel)
        for rel_dir in sorted(rewalk):  # directories an ignore file no longer ignores get watches
            self._watch_below(rel_dir)
        self.w.add(rels)
