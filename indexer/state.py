"""What every part of one open index shares: the store, path <-> id maps, the generation and its query cache.

The builder, the incremental updater, the overlays, the read queries and the ranking (one module each)
all work on one ``IndexState``; ``indexer.api.Index`` puts them together.  Callers hold
``store.lock`` (an RLock) around anything that reads or writes the store or these maps.
"""

from __future__ import annotations

import os
import posixpath
import time
from collections import OrderedDict

from .discovery import IgnoreRules
from .languages import language_for_path
from .resolve import Resolver
from .settings import IndexSettings
from .store import Store

_QUERY_CACHE_SIZE = 256
_RECENT_FILES = 20


class IndexState:
    """The shared, in-memory side of one index of one workspace root."""

    def __init__(self, root: str, store: Store, settings: IndexSettings) -> None:
        self.root = root
        self.store = store
        self.settings = settings
        self.overlays: dict[str, str] = {}  # open editor buffers: path -> text (wins over the disk)
        self.recent: OrderedDict[str, float] = OrderedDict()  # recently changed paths -> time, oldest first
        self.skipped: dict[str, str] = dict(store.conn.execute("SELECT path, reason FROM skipped").fetchall())
        self.ignored = int(store.meta_get("skipped_ignored") or 0)
        self.generation = 0  # bumps on any index change (query caches key on it)
        self.parsed_total = 0  # files parsed from disk since this index was opened (work, for tests and status)
        self._cache: OrderedDict[tuple, object] = OrderedDict()
        self._paths: dict[int, str] | None = None
        self._ids: dict[str, int] | None = None
        self._resolver: Resolver | None = None
        self._rules: IgnoreRules | None = None  # kept between incremental updates

    def rel(self, path: str | os.PathLike[str]) -> str:
        """Normalise an absolute or relative path to the index's relative POSIX form."""
        p = os.fspath(path)
        if p.startswith("file://"):
            p = p[7:]
        if os.path.isabs(p):
            try:
                p = os.path.relpath(p, self.root)
            except ValueError:
                pass
            if p.startswith(".."):
                rp = os.path.realpath(os.fspath(path))
                p = os.path.relpath(rp, self.root)
        p = posixpath.normpath(p.replace(os.sep, "/"))
        while p.startswith("./"):
            p = p[2:]
        return "" if p in (".", "/") else p.lstrip("/")

    # ---- generation and query cache
    def changed(self) -> None:
        """The index's content changed: a new generation, cached answers are stale."""
        self.generation += 1
        self._cache.clear()

    def cached(self, key: tuple) -> object | None:
        return self._cache.get(key)

    def cache_put(self, key: tuple, value: object) -> None:
        self._cache[key] = value
        while len(self._cache) > _QUERY_CACHE_SIZE:
            self._cache.popitem(last=False)

    def touch_recent(self, rel: str) -> None:
        self.recent[rel] = time.time()
        self.recent.move_to_end(rel)
        while len(self.recent) > _RECENT_FILES:
            self.recent.popitem(last=False)

    # ---- files, ids and import edges
    def id_maps(self) -> tuple[dict[int, str], dict[str, int]]:
        """(id -> path, path -> id) of the indexed files, loaded once and kept until files come or go."""
        if self._paths is None or self._ids is None:
            rows = self.store.conn.execute("SELECT id, path FROM files").fetchall()
            self._paths = dict(rows)
            self._ids = {p: i for i, p in rows}
        return self._paths, self._ids

    def file_id(self, rel: str) -> int | None:
        """The id of an indexed file (None when it is not indexed)."""
        return self.id_maps()[1].get(rel)

    def files_changed(self) -> None:
        """Files were added or removed: path maps and the resolver are stale."""
        self._paths = self._ids = None
        self._resolver = None

    def resolve_imports(self, fids: set[int] | None) -> None:
        """Recompute import edges for some files (None = all); caller holds the transaction."""
        _, ids = self.id_maps()
        if self._resolver is None:
            self._resolver = Resolver(self.root, ids.keys())
        resolver = self._resolver
        edges: dict[int, set[int]] = {}
        if fids is not None:
            for f in fids:
                edges[f] = set()
        lang_cache: dict[str, str | None] = {}
        for fid, fpath, module, names in self.store.iter_imports(fids):
            lang = lang_cache.get(fpath)
            if lang is None:
                lang = lang_cache[fpath] = language_for_path(fpath)
            targets = edges.setdefault(fid, set())
            for t in resolver.resolve(lang, fpath, module, names or ""):
                tid = ids.get(t)
                if tid is not None and tid != fid:
                    targets.add(tid)
        self.store.replace_import_edges(edges, all_files=fids is None)

    # ---- ignore rules
    def ignore_rules(self) -> IgnoreRules:
        """The ignore rules, read once and kept until an ignore file changes or a build starts."""
        if self._rules is None:
            self._rules = IgnoreRules(self.root, self.settings)
        return self._rules

    def forget_ignore_rules(self) -> None:
        self._rules = None
