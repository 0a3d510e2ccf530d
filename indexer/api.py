"""The ``Index`` facade the context engine and LSP server code against.

Orchestrates discovery -> parsing (a process pool for the cold index,
in-process for small batches and edits) -> store -> import resolution ->
ranking.  All public methods take and return repository-relative POSIX paths
and are safe to call from several threads (one RLock around the store).

The work is done by one object per job, all sharing one ``IndexState``: ``Builder`` (indexer/build.py),
``Updater`` (indexer/incremental.py), ``Overlays`` (indexer/overlays.py), ``Queries``
(indexer/queries.py), ``Ranker`` (indexer/ranker.py) and, once started, the ``Watcher``
(indexer/watch.py).  This module owns their lifecycle and is the one public surface.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Iterable

from .build import Builder, ProgressFn
from .incremental import Updater
from .models import Definition, FileInfo, IndexStats, Reference
from .overlays import Overlays
from .queries import Queries
from .ranker import Ranker
from .reparse import EditParser
from .settings import IndexSettings
from .state import IndexState
from .store import Store
from .watch import Watcher


def db_path_for(root: str, cache_dir: str | Path) -> Path:
    return Path(cache_dir) / "index" / f"{hashlib.sha1(root.encode()).hexdigest()[:16]}.sqlite"


class Index:
    """A persistent, incrementally updated index of one workspace root."""

    def __init__(self, root: str, store: Store, settings: IndexSettings) -> None:
        self.root = root
        self.store = store
        self.settings = settings
        self._state = IndexState(root, store, settings)
        self._ranker = Ranker(self._state)
        self._builder = Builder(self._state, self._ranker)
        edit_parser = EditParser()
        self._updater = Updater(self._state, self._ranker, edit_parser, self._builder)
        self._overlays = Overlays(self._state, self._ranker, edit_parser, self._updater)
        self._queries = Queries(self._state)
        self._watcher: Watcher | None = None

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def open(cls, root: Path | str, cache_dir: Path | str, settings: IndexSettings | None = None) -> "Index":
        """Open (or create) the index of ``root``; a corrupt or old-schema database is rebuilt."""
        root_s = os.path.realpath(os.fspath(root))
        settings = settings or IndexSettings()
        store = Store(db_path_for(root_s, cache_dir), root_s)
        store.ensure_indexes()
        return cls(root_s, store, settings)

    @property
    def db_path(self) -> Path:
        return self.store.db_path

    def close(self) -> None:
        self.stop_watching()
        with self.store.lock:
            self._ranker.persist_edges()
            self.store.close()

    def __enter__(self) -> "Index":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ state
    @property
    def overlays(self) -> dict[str, str]:
        """Open editor buffers: repository-relative path -> text."""
        return self._state.overlays

    @property
    def recent(self) -> OrderedDict[str, float]:
        """Recently changed paths -> time of the change, oldest first (at most 20)."""
        return self._state.recent

    @property
    def parsed_total(self) -> int:
        """Files parsed from disk since this index was opened (work, for tests and status)."""
        return self._state.parsed_total

    @property
    def generation(self) -> int:
        """Bumps on every change of the index's content (query caches key on it)."""
        return self._state.generation

    @property
    def overlay_version(self) -> int:
        """Bumps when an open buffer changes the text the index serves for its file (opened with unsaved text,
        edited, closed without saving): the files' stamps on disk stay as they were, so a selection kept
        across generations keys on this too. Read under the store's lock: never ahead of the buffer's text."""
        with self.store.lock:
            return self._overlays.version

    def rel(self, path: str | os.PathLike[str]) -> str:
        """Normalise an absolute or relative path to the index's relative POSIX form."""
        return self._state.rel(path)

    # ------------------------------------------------------------------ building and updating
    def build(self, progress: ProgressFn | None = None) -> IndexStats:
        """Bring the index in line with the disk: cold (everything) or warm (only changed files)."""
        return self._builder.build(progress)

    def stats(self) -> IndexStats:
        return self._builder.stats()

    def row_counts(self) -> dict[str, int]:
        """``files`` and ``definitions`` in the index now (a watcher's updates included), in O(1) and without
        waiting for a build or an update at work (their last commit counts): cheap enough to poll."""
        files, definitions = self.store.row_counts()
        return {"files": files, "definitions": definitions}

    def skipped(self) -> dict[str, str]:
        """Files left out of the index and why (path -> reason); gitignored files are not listed."""
        return dict(self._state.skipped)

    def update_paths(self, paths: Iterable[str]) -> list[str]:
        """Re-index these paths from disk (files or directories); handles creation, edits and deletion.

        Returns the relative paths whose index entries changed.
        """
        return self._updater.update_paths(paths)

    def set_overlay(self, path: str, text: str, keep_if: Callable[[], bool] | None = None) -> None:
        """An open editor buffer: its text wins over the disk until ``clear_overlay``. ``keep_if`` (asked under
        the store's lock): is the buffer still open? A thread syncing a buffer the editor closed meanwhile must
        not put it back after its ``clear_overlay``: nothing would ever clear it again."""
        self._overlays.set_overlay(path, text, keep_if)

    def clear_overlay(self, path: str) -> None:
        """Buffer closed: fall back to the file on disk (or drop it if it was never saved)."""
        self._overlays.clear_overlay(path)

    # ------------------------------------------------------------------ watching
    def start_watching(self, on_change: Callable[[list[str]], None] | None = None) -> str:
        """Follow the disk from now on (see indexer/watch.py). Returns the mode: "inotify", "native",
        or "polling" when the OS watch limit was reached (``watch_info()["limit_message"]`` says so).

        Changes made before the watches existed (while the cold index was built, say) raise no event: one
        warm build, once watching has begun, catches up on them (it re-parses only what changed)."""
        with self.store.lock:
            started = self._watcher is None
            if started:
                self._watcher = Watcher(self, on_change)
                self._watcher.start()
            watcher = self._watcher
        if started:
            self._builder.build()
        return watcher.mode

    def watch_info(self) -> dict[str, Any]:
        w = self._watcher
        if w is None:
            return {"mode": ""}
        return {"mode": w.mode, "limit_message": w.limit_message}

    def watched_directories(self) -> list[str]:
        """Repository-relative directories with a watch of their own (inotify); ignored trees have none."""
        w = self._watcher
        return w.watched_directories() if w is not None else []

    def stop_watching(self) -> None:
        w = self._watcher
        self._watcher = None
        if w is not None:
            w.stop()

    # ------------------------------------------------------------------ reads
    def read_text(self, path: str) -> str | None:
        """Current text of a file (overlay first); None for secret, skipped, binary or missing files."""
        return self._queries.read_text(path)

    def files(self) -> list[FileInfo]:
        return self._queries.files()

    def definitions(self, name: str) -> list[Definition]:
        return self._queries.definitions(name)

    def definitions_by_qualified(self, qualified_name: str) -> list[Definition]:
        return self._queries.definitions_by_qualified(qualified_name)

    def outline(self, path: str) -> list[Definition]:
        """Definitions of a file in order, with signatures only (no docs, no bodies)."""
        return self._queries.outline(path)

    def symbol_at(self, path: str, line: int) -> Definition | None:
        """Innermost definition whose line range contains ``line`` (0-based): matched by whole lines."""
        return self._queries.symbol_at(path, line)

    def references_in_range(self, path: str, start_line: int, end_line: int) -> list[Reference]:
        """Identifier uses in [start_line, end_line] (0-based, inclusive), in source order."""
        return self._queries.references_in_range(path, start_line, end_line)

    def definitions_referenced_in(self, path: str, start_line: int, end_line: int,
                                  max_per_name: int = 3) -> list[Definition]:
        """Definitions of the names used in a range: from imported files first, then the same file, then anywhere."""
        return self._queries.definitions_referenced_in(path, start_line, end_line, max_per_name)

    def imports_of(self, path: str) -> list[str]:
        """Repository files that ``path`` imports."""
        return self._queries.imports_of(path)

    def importers_of(self, path: str) -> list[str]:
        """Repository files that import ``path``."""
        return self._queries.importers_of(path)

    def imports(self, path: str) -> list[tuple[str, str, int]]:
        """Raw import statements of a file: (module, comma-separated names, line)."""
        return self._queries.imports(path)

    # ------------------------------------------------------------------ ranking
    def personalization_for(self, current: str | None = None, recent_weight: float = 0.5) -> dict[str, float]:
        """Current file (weight 1) plus recently edited files (decaying) — the usual personalisation."""
        return self._ranker.personalization_for(current, recent_weight)

    def ranked_files(self, personalization: dict[str, float] | None = None) -> list[tuple[str, float]]:
        """All indexed files, most relevant first (PageRank over the reference graph)."""
        return self._ranker.ranked_files(personalization)

    def ranked_definitions(self, personalization: dict[str, float] | None = None,
                           limit: int | None = None) -> list[tuple[Definition, float]]:
        """Definitions ranked by the share of PageRank flowing to them through references."""
        return self._ranker.ranked_definitions(personalization, limit)
