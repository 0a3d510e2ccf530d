"""File-system watching with watchdog: debounce, batch, and fall back to a rescan.

Editors save by writing temp files and renaming, git checkouts touch thousands
of files at once: events are collected into a set and applied together after a
short quiet period (``settings.debounce_s``, at most ~0.3 s late under a
constant stream).  Past ``settings.watch_overflow`` pending paths, or when the
observer reports an error, a full (warm) ``build()`` is cheaper and safer than
replaying every event.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Callable

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

if TYPE_CHECKING:
    from .api import Index

log = logging.getLogger(__name__)

_MAX_DELAY = 0.3


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: "Watcher") -> None:
        self.w = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        paths = [event.src_path]
        dest = getattr(event, "dest_path", None)
        if dest:
            paths.append(dest)
        self.w.add(paths)


class Watcher:
    def __init__(self, index: "Index", on_change: Callable[[list[str]], None] | None) -> None:
        self.index = index
        self.on_change = on_change
        self.pending: set[str] = set()
        self.overflow = False
        self.cond = threading.Condition()
        self.first_event = 0.0
        self.last_event = 0.0
        self.stopped = False
        self.observer = Observer()
        self.thread = threading.Thread(target=self._run, name="coderflash-index-watch", daemon=True)
        self._git_dir = os.path.join(index.root, ".git") + os.sep

    def start(self) -> None:
        self.observer.schedule(_Handler(self), self.index.root, recursive=True)
        self.observer.start()
        self.thread.start()

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify_all()
        try:
            self.observer.stop()
            self.observer.join(timeout=2)
        except Exception:
            pass
        if threading.current_thread() is not self.thread:
            self.thread.join(timeout=5)

    def add(self, paths: list[str]) -> None:
        rels = []
        for p in paths:
            p = os.fsdecode(p)
            if p.startswith(self._git_dir):
                continue  # git internals: never indexed
            rels.append(p)
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
                    quiet_left = self.last_event + debounce - now
                    hard_left = self.first_event + _MAX_DELAY - now
                    left = min(quiet_left, hard_left)
                    if left <= 0:
                        break
                    self.cond.wait(left)
                if self.stopped:
                    return
                batch = list(self.pending)
                overflow = self.overflow
                self.pending.clear()
                self.overflow = False
            try:
                if overflow:
                    self.index.build()
                    changed = ["*"]
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
