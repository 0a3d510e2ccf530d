"""Following the disk: watch the workspace, debounce, batch, and fall back when watching is impossible.

Editors save by writing temp files and renaming, git checkouts touch thousands of files at once: events
are collected into a set and applied together after a short quiet period (``settings.debounce_s``, at
most ``_MAX_DELAY`` late under a constant stream); ``Index.update_paths`` re-parses only files whose
content hash changed. Past ``settings.watch_overflow`` pending paths, or when the kernel drops events,
a full warm ``build()`` is cheaper and safer than replaying every event.

How, by platform:
- Linux (inotify, one watch per directory): only directories the index walks are watched, so ignored
  trees (``.git``, ``node_modules``, build outputs, ``.gitignore``d paths) cost no watch. watchdog's
  inotify observer watches every subdirectory of a recursive watch and offers no way to prune, so
  the watches are added through ``inotify_simple`` (a thin wrapper of the three system calls), by
  indexer/inotify_source.py, which also keeps them in step with moved, deleted and re-permitted
  directories and a deleted or moved root.
- Elsewhere: watchdog's native observer (FSEvents, ReadDirectoryChangesW, kqueue), recursive, with
  ignored paths filtered out as events arrive.
- When the OS watch limit is reached (inotify ``ENOSPC``, or ``settings.watch_limit``): every watch is
  dropped and the watcher polls with warm builds (discovery honours the ignore rules; unchanged files
  are only stat'ed). ``mode`` says which; the server tells the user once.
"""

from __future__ import annotations

import errno
import importlib
import logging
import os
import sys
import threading
import time
from typing import Callable, Iterable, Protocol

from .discovery import GIT_EXCLUDE, IgnoreRules, is_rule_file
from .inotify_source import InotifySource, WatchLimitReached
from .settings import IndexSettings

log = logging.getLogger(__name__)

_MAX_DELAY = 0.3
_POLL_MIN_S = 2.0  # polling fallback: at least this long between warm builds ...
_POLL_FACTOR = 10  # ... and at least this many times the last build's duration


class WatchedIndex(Protocol):
    """What the watcher needs of the index it keeps up to date (``indexer.api.Index`` is one)."""

    @property
    def root(self) -> str: ...

    @property
    def settings(self) -> IndexSettings: ...

    @property
    def generation(self) -> int: ...

    def build(self) -> object: ...

    def update_paths(self, paths: Iterable[str]) -> list[str]: ...


class Watcher:
    """Watches one index's root and applies batches of changed paths to it on a thread of its own."""

    def __init__(self, index: WatchedIndex, on_change: Callable[[list[str]], None] | None) -> None:
        self.index = index
        self.on_change = on_change
        self.mode = ""
        self.limit_message = ""
        self.pending: set[str] = set()
        self.overflow = False
        self.cond = threading.Condition()
        self.first_event = 0.0
        self.last_event = 0.0
        self.stopped = False
        self.last_build_s = 0.0
        self._source: _Source | InotifySource | None = None
        self.thread = threading.Thread(target=self._run, name="coderflash-index-watch", daemon=True)
        self._rules = IgnoreRules(index.root, index.settings)

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> str:
        """Start watching; returns the mode ("inotify", "native" or "polling")."""
        try:
            self._source = InotifySource(self) if _inotify_available() else _NativeSource(self)
            self._source.start()
        except WatchLimitReached as exc:
            if self._source is not None:
                self._source.stop()
            self.limit_message = (f"coderflash: the system's file-watch limit was reached watching {self.index.root} "
                                  f"({exc}); checking for changes every few seconds instead. Raise "
                                  f"fs.inotify.max_user_watches to watch instantly.")
            log.warning(self.limit_message)
            self._source = _PollingSource(self)
            self._source.start()
        self.mode = self._source.mode
        self.thread.start()
        return self.mode

    def watched_directories(self) -> list[str]:
        """The directories watched one by one (inotify mode; empty otherwise): never an ignored tree."""
        source = self._source
        return sorted(source.watched) if isinstance(source, InotifySource) else []

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify_all()
        if self._source is not None:
            self._source.stop()
        if threading.current_thread() is not self.thread and self.thread.is_alive():
            self.thread.join(timeout=5)

    # -- events ----------------------------------------------------------------------------------
    def relevant(self, rel: str, is_dir: bool = False) -> bool:
        """Not inside .git and not ignored (ignore files themselves are relevant: they change the rules;
        ``.git/info/exclude`` is one)."""
        if rel != GIT_EXCLUDE and (not rel or rel == ".git" or rel.startswith(".git/")):
            return False
        if is_rule_file(rel):
            self._rules = IgnoreRules(self.index.root, self.index.settings)
            return True
        try:
            return not self._rules.is_ignored(rel, is_dir=is_dir)
        except Exception:  # noqa: BLE001 - a rule we cannot evaluate: let update_paths decide
            return True

    def add(self, rels: list[str]) -> None:
        """Queue repository-relative paths for the next batch."""
        if not rels:
            return
        with self.cond:
            now = time.monotonic()
            if not self.pending:
                self.first_event = now
            self.last_event = now
            self.pending.update(rels)
            if len(self.pending) > self.index.settings.watch_overflow:
                self.overflow = True
                self.pending.clear()
            self.cond.notify_all()

    def rescan(self) -> None:
        """Events were lost (kernel queue overflow): the next batch is a full warm build."""
        with self.cond:
            self.overflow = True
            self.first_event = self.last_event = time.monotonic()
            self.cond.notify_all()

    def _run(self) -> None:
        debounce = self.index.settings.debounce_s
        while True:
            with self.cond:
                while not self.stopped and not self.pending and not self.overflow:
                    self.cond.wait()
                if self.stopped:
                    return
                # wait for a quiet period, but never longer than _MAX_DELAY after the first event
                while not self.stopped:
                    now = time.monotonic()
                    left = min(self.last_event + debounce - now, self.first_event + _MAX_DELAY - now)
                    if left <= 0:
                        break
                    self.cond.wait(left)
                if self.stopped:
                    return
                batch = sorted(self.pending)
                overflow = self.overflow
                self.pending.clear()
                self.overflow = False
            self._apply(batch, overflow)

    def _apply(self, batch: list[str], overflow: bool) -> None:
        try:
            if overflow:
                generation = self.index.generation
                started = time.monotonic()
                self.index.build()
                self.last_build_s = time.monotonic() - started
                changed = ["*"] if self.index.generation != generation else []
            else:
                changed = self.index.update_paths(batch)
            if changed and self.on_change is not None:
                self.on_change(changed)
        except Exception:  # never let the watcher thread die
            log.exception("index update failed; rescanning")
            try:
                self.index.build()
            except Exception:
                log.exception("rescan failed")


class _Source:
    mode = ""

    def __init__(self, watcher: Watcher) -> None:
        self.w = watcher

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError


def _inotify_available() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        importlib.import_module("inotify_simple")
    except ImportError:
        return False
    return True


class _NativeSource(_Source):
    """watchdog's observer for the platform (recursive); ignored paths are dropped as events arrive."""

    mode = "native"

    def __init__(self, watcher: Watcher) -> None:
        super().__init__(watcher)
        from watchdog.observers import Observer

        self.observer = Observer()

    def start(self) -> None:
        from watchdog.events import FileSystemEvent, FileSystemEventHandler

        root = self.w.index.root
        watcher = self.w

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                if event.event_type in ("opened", "closed_no_write"):
                    return
                rels = []
                for p in (event.src_path, getattr(event, "dest_path", "")):
                    if not p:
                        continue
                    rel = os.path.relpath(os.fsdecode(p), root).replace(os.sep, "/")
                    if not rel.startswith("..") and watcher.relevant(rel, event.is_directory):
                        rels.append(rel)
                watcher.add(rels)

        try:
            self.observer.schedule(Handler(), root, recursive=True)
            self.observer.start()
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EMFILE):
                raise WatchLimitReached(exc.errno, str(exc)) from exc
            raise

    def stop(self) -> None:
        try:
            self.observer.stop()
            self.observer.join(timeout=2)
        except Exception:  # noqa: BLE001 - stopping a half-started observer
            pass


class _PollingSource(_Source):
    """No watches: a warm build every few seconds (only changed files are re-parsed)."""

    mode = "polling"

    def __init__(self, watcher: Watcher) -> None:
        super().__init__(watcher)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._poll, name="coderflash-index-poll", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()

    def _poll(self) -> None:
        interval = _POLL_MIN_S
        while not self.stopped.wait(interval):
            self.w.rescan()
            interval = max(_POLL_MIN_S, _POLL_FACTOR * self.w.last_build_s)
