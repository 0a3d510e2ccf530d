"""The ``Index`` facade the context engine and LSP server code against.

Orchestrates discovery -> parsing (a process pool for the cold index,
in-process for small batches and edits) -> store -> import resolution ->
ranking.  All public methods take and return repository-relative POSIX paths
and are safe to call from several threads (one RLock around the store).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from .discovery import IgnoreRules, discover, stat_one
from .languages import is_parseable, language_for_path, load
from .models import Definition, FileInfo, IndexStats, Reference
from .parsed import ParsedFile, decode_refs, from_wire, unpack_positions
from .parser import parse_source
from .reparse import reparse
from .worker import content_hash
from .ranking import RankModel
from .resolve import Resolver
from .settings import IndexSettings, is_secret_path
from .store import DEF_COLS, Store
from .worker import parse_bytes, parser_pool, process_chunk, process_file

ProgressFn = Callable[[int, int], None]

_BATCH_COMMIT = 500  # files per transaction during a build ...
_BATCH_SECONDS = 0.25  # ... or this much time: a killed build loses at most this much work
_POOL_MIN_FILES = 48  # below this the pool's start-up costs more than it saves


def db_path_for(root: str, cache_dir: str | Path) -> Path:
    return Path(cache_dir) / "index" / f"{hashlib.sha1(root.encode()).hexdigest()[:16]}.sqlite"


def _row_to_def(path: str, r: tuple) -> Definition:
    return Definition(path, *r)


class _BuildLock:
    """An exclusive advisory lock on a file (POSIX flock; a no-op where fcntl is missing)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def __enter__(self) -> "_BuildLock":
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return self
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            import fcntl

            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class Index:
    """A persistent, incrementally updated index of one workspace root."""

    def __init__(self, root: str, store: Store, settings: IndexSettings) -> None:
        self.root = root
        self.store = store
        self.settings = settings
        self.overlays: dict[str, str] = {}
        self.recent: OrderedDict[str, float] = OrderedDict()
        self._skipped: dict[str, str] = {}
        self._ignored = 0
        self._last_stats: IndexStats | None = None
        self._rank = RankModel()
        self._gen = 0  # bumps on any index change (query caches key on it)
        self._qcache: OrderedDict[tuple, object] = OrderedDict()
        self._paths: dict[int, str] | None = None
        self._ids: dict[str, int] | None = None
        self._resolver: Resolver | None = None
        self._watcher = None
        self._rules: IgnoreRules | None = None  # cached for incremental updates
        self._trees: dict[str, tuple[bytes, object]] = {}  # recently edited path -> (text, tree), LRU of 8
        self._edges_dirty = False
        self.parsed_total = 0  # files parsed from disk since this index was opened (work, for tests and status)
        if self.store.meta_get("skipped_ignored"):
            self._ignored = int(self.store.meta_get("skipped_ignored") or 0)
        self._skipped = dict(self.store.conn.execute("SELECT path, reason FROM skipped").fetchall())

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
            self._persist_edges()
            self.store.close()

    def __enter__(self) -> "Index":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ helpers
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

    def _changed(self) -> None:
        self._gen += 1
        self._qcache.clear()

    def _id_maps(self) -> tuple[dict[int, str], dict[str, int]]:
        if self._paths is None or self._ids is None:
            rows = self.store.conn.execute("SELECT id, path FROM files").fetchall()
            self._paths = dict(rows)
            self._ids = {p: i for i, p in rows}
        return self._paths, self._ids

    def _files_changed(self) -> None:
        """Files were added or removed: path maps and the resolver are stale."""
        self._paths = self._ids = None
        self._resolver = None

    def _get_resolver(self) -> Resolver:
        if self._resolver is None:
            _, ids = self._id_maps()
            self._resolver = Resolver(self.root, ids.keys())
        return self._resolver

    def _touch_recent(self, rel: str) -> None:
        self.recent[rel] = time.time()
        self.recent.move_to_end(rel)
        while len(self.recent) > 20:
            self.recent.popitem(last=False)

    # ------------------------------------------------------------------ build
    def build(self, progress: ProgressFn | None = None) -> IndexStats:
        """Bring the index in line with the disk: cold (everything) or warm (only changed files).

        Two processes on one repository (two editors, an editor and `coderflash index`) share the SQLite
        file: a lock file serialises their builds, so the second one finds the first's rows and runs warm."""
        with _BuildLock(self.db_path.with_suffix(".lock")):
            return self._build(progress)

    def _build(self, progress: ProgressFn | None) -> IndexStats:
        t0 = time.perf_counter()
        settings = self.settings
        self._rules = None
        disc = discover(self.root, settings)
        with self.store.lock:
            store = self.store
            rows = store.file_rows()
            cold = not rows
            crashed = store.meta_get("build_complete") == "0"
            store.meta_set("build_complete", "0")

            todo: list[tuple[str, int, int, str | None]] = []
            reused = 0
            seen: set[str] = set()
            for c in disc.files:
                seen.add(c.rel)
                if c.rel in self.overlays:
                    continue
                row = rows.get(c.rel)
                if row is not None and row[1] == c.size and row[2] == c.mtime_ns and not row[4]:
                    reused += 1
                    continue
                todo.append((c.rel, c.size, c.mtime_ns, row[3] if row is not None else None))
            gone = [p for p in rows if p not in seen and p not in self.overlays]

            skipped = dict(disc.skipped)
            changed_ids: set[int] = set()
            files_added_or_removed = bool(gone)
            rank_updates: list[tuple[int, ParsedFile | None]] = []

            store.begin()
            for p in gone:
                store.delete_file(rows[p][0])
                rank_updates.append((rows[p][0], None))
            if cold:
                store.drop_indexes()
            store.commit()

            total = len(todo)
            done = 0
            pending = 0
            parsed_count = 0
            last_commit = time.perf_counter()
            store.begin()
            try:
                for res in self._run_parsers(todo):
                    kind, rel = res[0], res[1]
                    row = rows.get(rel)
                    fid = row[0] if row is not None else None
                    if kind == "parsed":
                        _, _, size, mtime, h, lang, parsed = res
                        if isinstance(parsed, bytes):
                            parsed = from_wire(parsed)
                        new_id = store.write_file(fid, rel, size, mtime, h, lang, parsed, fresh=fid is None)
                        changed_ids.add(new_id)
                        if fid is None:
                            files_added_or_removed = True
                        if self._rank.loaded:  # a cold index is never held in memory
                            rank_updates.append((new_id, parsed if len(rank_updates) <= 2000 else None))
                        parsed_count += 1
                        self.parsed_total += 1
                    elif kind == "same":
                        store.touch_file(fid, res[2], res[3])  # type: ignore[arg-type]
                        reused += 1
                    else:
                        skipped[rel] = res[2]
                        if fid is not None:
                            store.delete_file(fid)
                            rank_updates.append((fid, None))
                            files_added_or_removed = True
                    done += 1
                    pending += 1
                    if pending >= _BATCH_COMMIT or (pending and time.perf_counter() - last_commit > _BATCH_SECONDS):
                        store.commit()
                        store.begin()
                        pending = 0
                        last_commit = time.perf_counter()
                    if progress is not None:
                        progress(done, total)
                store.commit()
            except BaseException:
                if store.conn.in_transaction:
                    store.commit()  # keep whole files written so far; the rest is redone next time
                raise

            if cold:
                store.ensure_indexes()
            store.begin()
            store.set_skipped(skipped)
            store.meta_set("skipped_ignored", str(disc.ignored))
            if files_added_or_removed:
                self._files_changed()
            if changed_ids or files_added_or_removed or crashed:
                self._resolve_imports(None if (files_added_or_removed or crashed or cold) else changed_ids)
            store.meta_set("build_complete", "1")
            store.commit()
            self._skipped = skipped
            self._ignored = disc.ignored
            if len(rank_updates) > 2000:
                self._rank = RankModel()  # cheaper to reload lazily than to replay a mass change
            else:
                for fid, parsed in rank_updates:
                    self._rank_update(fid, parsed)
            if rank_updates or files_added_or_removed:
                self._changed()
            stats = self._compute_stats(parsed_count, reused, time.perf_counter() - t0)
            self._last_stats = stats
            return stats

    def _run_parsers(self, todo: list[tuple[str, int, int, str | None]]) -> Iterable[tuple]:
        workers = self.settings.effective_workers()
        mll = self.settings.max_line_length
        if workers <= 1 or len(todo) < _POOL_MIN_FILES:
            for rel, size, mtime, h in todo:
                yield process_file(self.root, rel, size, mtime, h, mll)
            return
        # interleave big and small files so chunks cost about the same
        n_chunks = max(workers * 8, len(todo) // 24)
        chunks: list[list[tuple[str, int, int, str | None]]] = [[] for _ in range(min(n_chunks, len(todo)))]
        for i, item in enumerate(sorted(todo, key=lambda t: -t[1])):
            chunks[i % len(chunks)].append(item)
        # Never fork: the language server has threads (pygls's stdin reader holds the buffer lock of
        # sys.stdin, which a forked child's bootstrap closes, so it hung forever). forkserver forks from a
        # clean single-threaded server process; spawn where that is missing. Workers exit when the
        # process that started them is gone (see worker.parser_pool), even after a SIGKILL.
        with parser_pool(workers) as pool:
            for results in pool.imap_unordered(process_chunk, [(self.root, mll, c) for c in chunks]):
                yield from results

    def _resolve_imports(self, fids: set[int] | None) -> None:
        """Recompute import edges for some files (None = all); caller holds the transaction."""
        paths, _ = self._id_maps()
        _, ids = self._id_maps()
        resolver = self._get_resolver()
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

    def _compute_stats(self, parsed: int, reused: int, elapsed: float) -> IndexStats:
        c = self.store.conn
        skipped: dict[str, int] = {}
        for reason in self._skipped.values():
            skipped[reason] = skipped.get(reason, 0) + 1
        if self._ignored:
            skipped["ignored"] = self._ignored
        langs = {(lang or "unknown"): n for lang, n in
                 c.execute("SELECT language, count(*) FROM files GROUP BY language")}
        return IndexStats(
            root=self.root,
            files=c.execute("SELECT count(*) FROM files").fetchone()[0],
            parsed_files=parsed,
            reused_files=reused,
            skipped=skipped,
            languages=langs,
            definitions=c.execute("SELECT count(*) FROM definitions").fetchone()[0],
            references=c.execute("SELECT coalesce(sum(count),0) FROM refs").fetchone()[0],
            imports=c.execute("SELECT count(*) FROM imports").fetchone()[0],
            elapsed_s=elapsed,
        )

    def stats(self) -> IndexStats:
        with self.store.lock:
            last = self._last_stats
            return self._compute_stats(last.parsed_files if last else 0, last.reused_files if last else 0,
                                       last.elapsed_s if last else 0.0)

    def skipped(self) -> dict[str, str]:
        """Files left out of the index and why (path -> reason); gitignored files are not listed."""
        return dict(self._skipped)

    # ------------------------------------------------------------------ incremental
    def update_paths(self, paths: Iterable[str]) -> list[str]:
        """Re-index these paths from disk (files or directories); handles creation, edits and deletion.

        Returns the relative paths whose index entries changed.
        """
        rels = {self.rel(p) for p in paths}
        rels.discard("")
        # ignore-rule changes can (un)ignore whole subtrees: a warm build re-applies them
        rule_files = {r for r in rels if r.rsplit("/", 1)[-1] in (".gitignore", ".coderflashignore")
                      or r == ".git/info/exclude"}
        if rule_files:
            rels -= rule_files
            self._rules = None
        if not rels and not rule_files:
            return []
        changed: list[str] = []
        if self._rules is None:
            self._rules = IgnoreRules(self.root, self.settings)
        with self.store.lock:
            store = self.store
            rules = self._rules
            _, ids = self._id_maps()
            added_removed = False
            changed_ids: set[int] = set()
            rank_updates: list[tuple[int, ParsedFile | None]] = []
            store.begin()
            try:
                done: set[str] = set()  # a batch may name a new directory and files inside it
                for rel in sorted(rels):
                    if rel in self.overlays or rel in done:
                        continue  # the open buffer wins; clear_overlay re-reads the disk
                    abs_p = os.path.join(self.root, rel)
                    if os.path.isdir(abs_p) and not os.path.islink(abs_p):
                        sub = discover(self.root, self.settings, subdir=rel)
                        found = {c.rel for c in sub.files}
                        for p, fid in list(ids.items()):
                            if p.startswith(rel + "/") and p not in found and p not in self.overlays:
                                store.delete_file(fid)
                                del ids[p]
                                rank_updates.append((fid, None))
                                changed.append(p)
                                added_removed = True
                        for p, reason in sub.skipped.items():
                            self._skipped[p] = reason
                        for c in sub.files:
                            if c.rel in done or c.rel in self.overlays:
                                continue
                            done.add(c.rel)
                            r = self._update_one(c.rel, rules, ids, changed_ids, rank_updates)
                            if r:
                                changed.append(c.rel)
                                added_removed |= r == "added"
                        continue
                    done.add(rel)
                    if not os.path.lexists(abs_p):
                        prefix = rel + "/"
                        for p, fid in list(ids.items()):
                            if (p == rel or p.startswith(prefix)) and p not in self.overlays:
                                store.delete_file(fid)
                                del ids[p]
                                rank_updates.append((fid, None))
                                changed.append(p)
                                added_removed = True
                        self._skipped.pop(rel, None)
                        continue
                    r = self._update_one(rel, rules, ids, changed_ids, rank_updates)
                    if r:
                        changed.append(rel)
                        added_removed |= r in ("added", "removed")
                if added_removed:
                    self._files_changed()
                if changed_ids or added_removed:
                    _, ids2 = self._id_maps()
                    self._resolve_imports(None if added_removed else changed_ids)
                store.commit()
            except BaseException:
                if store.conn.in_transaction:
                    store.conn.execute("ROLLBACK")
                self._files_changed()
                raise
            for fid, parsed in rank_updates:
                self._rank_update(fid, parsed)
            if changed:
                self._changed()
                for p in changed:
                    self._touch_recent(p)
        if rule_files:
            before = {f.path for f in self.files()}
            self.build()
            after = {f.path for f in self.files()}
            changed.extend(sorted(before ^ after))
        return changed

    def _update_one(self, rel: str, rules: IgnoreRules, ids: dict[str, int], changed_ids: set[int],
                    rank_updates: list[tuple[int, ParsedFile | None]]) -> str | None:
        """Re-index one existing path; returns 'added' / 'changed' / 'removed' / None (no change)."""
        store = self.store
        fid = ids.get(rel)
        cand, reason = stat_one(self.root, rel, self.settings, rules)
        res = None
        if cand is not None:
            row = store.conn.execute("SELECT size, mtime_ns, hash, overlay FROM files WHERE id=?",
                                     (fid,)).fetchone() if fid is not None else None
            if row is not None and row[0] == cand.size and row[1] == cand.mtime_ns and not row[3]:
                return None
            res = process_file(self.root, rel, cand.size, cand.mtime_ns, row[2] if row else None,
                               self.settings.max_line_length, self._parse_incremental)
            if res[0] == "skip":
                reason = res[2]
        if res is not None and res[0] == "same":
            store.touch_file(fid, res[2], res[3])  # type: ignore[arg-type]
            return None
        if res is not None and res[0] == "parsed":
            _, _, size, mtime, h, lang, parsed = res
            self.parsed_total += 1
            new_id = store.write_file(fid, rel, size, mtime, h, lang, parsed)
            ids[rel] = new_id
            changed_ids.add(new_id)
            rank_updates.append((new_id, parsed))
            self._skipped.pop(rel, None)
            return "added" if fid is None else "changed"
        # skipped, ignored or gone
        if reason:
            self._skipped[rel] = reason
        else:
            self._skipped.pop(rel, None)
        if fid is not None:
            store.delete_file(fid)
            ids.pop(rel, None)
            rank_updates.append((fid, None))
            return "removed"
        return None

    # ------------------------------------------------------------------ overlays
    def set_overlay(self, path: str, text: str) -> None:
        """An open editor buffer: its text wins over the disk until ``clear_overlay``."""
        rel = self.rel(path)
        if not rel or is_secret_path(rel, self.settings.secret_globs):
            return
        data = text.encode("utf-8", "surrogatepass")
        h = content_hash(data)
        with self.store.lock:
            self.overlays[rel] = text
            row = self.store.conn.execute("SELECT id, hash, overlay FROM files WHERE path=?", (rel,)).fetchone()
            if row is not None and row[1] == h and row[2]:
                return
            lang, parsed = self._parse_incremental(rel, data)
            store = self.store
            store.begin()
            try:
                fid = store.write_file(row[0] if row else None, rel, len(data), -1, h, lang, parsed, overlay=True)
                if row is None:
                    self._files_changed()
                self._resolve_imports(None if row is None else {fid})
                store.commit()
            except BaseException:
                if store.conn.in_transaction:
                    store.conn.execute("ROLLBACK")
                raise
            self._rank_update(fid, parsed)
            self._changed()
            self._touch_recent(rel)

    def _parse_incremental(self, rel: str, data: bytes) -> tuple[str | None, ParsedFile]:
        """Parse an edited file or buffer, incrementally against its previous version when its tree is cached
        (the last few files edited or open keep their trees)."""
        lang = language_for_path(rel)
        if not is_parseable(lang):
            return parse_bytes(rel, data)
        prev = self._trees.pop(rel, None)
        try:
            if prev is not None:
                tree = reparse(lang, prev[0], prev[1], data)  # type: ignore[arg-type]
            else:
                tree = load(lang).parser.parse(data)  # type: ignore[arg-type]
            parsed = parse_source(lang, data, tree=tree)  # type: ignore[arg-type]
        except Exception:
            return parse_bytes(rel, data)
        self._trees[rel] = (data, tree)
        while len(self._trees) > 8:
            self._trees.pop(next(iter(self._trees)))
        return lang, parsed

    def clear_overlay(self, path: str) -> None:
        """Buffer closed: fall back to the file on disk (or drop it if it was never saved)."""
        rel = self.rel(path)
        with self.store.lock:
            self._trees.pop(rel, None)
            if self.overlays.pop(rel, None) is None:
                return
            self.update_paths([rel])

    # ------------------------------------------------------------------ watching
    def start_watching(self, on_change: Callable[[list[str]], None] | None = None) -> str:
        """Follow the disk from now on (see indexer/watch.py). Returns the mode: "inotify", "native",
        or "polling" when the OS watch limit was reached (``watch_info()["limit_message"]`` says so)."""
        from .watch import Watcher

        with self.store.lock:
            if self._watcher is None:
                self._watcher = Watcher(self, on_change)
                self._watcher.start()
            return self._watcher.mode

    def watch_info(self) -> dict[str, Any]:
        w = self._watcher
        if w is None:
            return {"mode": ""}
        return {"mode": w.mode, "limit_message": w.limit_message}

    def watched_directories(self) -> list[str]:
        """Repository-relative directories with a watch of their own (inotify); ignored trees have none."""
        w = self._watcher
        return w.watched_directories() if w is not None else []

    @property
    def generation(self) -> int:
        """Bumps on every change of the index's content (query caches key on it)."""
        return self._gen

    def stop_watching(self) -> None:
        w = self._watcher
        self._watcher = None
        if w is not None:
            w.stop()

    # ------------------------------------------------------------------ reads
    def read_text(self, path: str) -> str | None:
        """Current text of a file (overlay first); None for secret, skipped, binary or missing files."""
        rel = self.rel(path)
        if is_secret_path(rel, self.settings.secret_globs):
            return None
        if rel in self.overlays:
            return self.overlays[rel]
        with self.store.lock:
            _, ids = self._id_maps()
            if rel not in ids:
                return None
        try:
            with open(os.path.join(self.root, rel), "rb") as f:
                data = f.read(self.settings.max_file_size + 1)
        except OSError:
            return None
        if len(data) > self.settings.max_file_size or b"\x00" in data:
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return None

    def files(self) -> list[FileInfo]:
        with self.store.lock:
            return [FileInfo(*r) for r in self.store.conn.execute(
                "SELECT path, language, size, lines FROM files ORDER BY path")]

    def _defs(self, where: str, args: tuple) -> list[Definition]:
        with self.store.lock:
            rows = self.store.conn.execute(
                f"SELECT f.path, {DEF_COLS} FROM definitions d JOIN files f ON f.id=d.file_id WHERE {where}",
                args).fetchall()
        return [Definition(*r) for r in rows]

    def definitions(self, name: str) -> list[Definition]:
        return self._defs("d.name=? ORDER BY f.path, d.start_byte", (name,))

    def definitions_by_qualified(self, qualified_name: str) -> list[Definition]:
        return self._defs("d.qualified_name=? ORDER BY f.path, d.start_byte", (qualified_name,))

    def outline(self, path: str) -> list[Definition]:
        """Definitions of a file in order, with signatures only (no docs, no bodies)."""
        from dataclasses import replace

        defs = self._defs("f.path=? ORDER BY d.start_byte", (self.rel(path),))
        return [replace(d, doc="") for d in defs]

    def symbol_at(self, path: str, line: int, character: int = 0) -> Definition | None:
        """Innermost definition whose line range contains (line, character); 0-based."""
        rel = self.rel(path)
        with self.store.lock:
            _, ids = self._id_maps()
            fid = ids.get(rel)
            if fid is None:
                return None
            rows = self.store.conn.execute(
                f"SELECT {DEF_COLS} FROM definitions d WHERE d.file_id=? AND d.start_line<=? AND d.end_line>=? "
                "ORDER BY (d.end_byte - d.start_byte) ASC LIMIT 1", (fid, line, line)).fetchall()
        return Definition(rel, *rows[0]) if rows else None

    def _refs_rows(self, rel: str) -> list[tuple[str, bytes]]:
        with self.store.lock:
            _, ids = self._id_maps()
            fid = ids.get(rel)
            if fid is None:
                return []
            key = ("refs", self._gen, fid)
            hit = self._qcache.get(key)
            if hit is None:
                row = self.store.conn.execute("SELECT data FROM refs WHERE file_id=?", (fid,)).fetchone()
                hit = list(decode_refs(row[0]).items()) if row else []
                self._cache_put(key, hit)
            return hit  # type: ignore[return-value]

    def references_in_range(self, path: str, start_line: int, end_line: int) -> list[Reference]:
        """Identifier uses in [start_line, end_line] (0-based, inclusive), in source order."""
        rel = self.rel(path)
        out: list[Reference] = []
        for name, blob in self._refs_rows(rel):
            for line, col in unpack_positions(blob):
                if start_line <= line <= end_line:
                    out.append(Reference(rel, name, line, col))
        out.sort(key=lambda r: (r.line, r.character))
        return out

    def definitions_referenced_in(self, path: str, start_line: int, end_line: int,
                                  max_per_name: int = 3) -> list[Definition]:
        """Definitions of the names used in a range: from imported files first, then the same file, then anywhere."""
        with self.store.lock:
            return self._definitions_referenced_in(self.rel(path), start_line, end_line, max_per_name)

    def _definitions_referenced_in(self, rel: str, start_line: int, end_line: int,
                                   max_per_name: int) -> list[Definition]:
        key = ("dri", self._gen, rel, start_line, end_line, max_per_name)
        hit = self._qcache.get(key)
        if hit is not None:
            return list(hit)  # type: ignore[arg-type]
        refs = self.references_in_range(rel, start_line, end_line)
        order: dict[str, int] = {}
        for r in refs:
            order.setdefault(r.name, len(order))
        if not order:
            return []
        imported = set(self.imports_of(rel))
        names = list(order)
        by_name: dict[str, list[Definition]] = {}
        for i in range(0, len(names), 500):
            part = names[i:i + 500]
            for d in self._defs(f"d.name IN ({','.join('?' * len(part))})", tuple(part)):
                by_name.setdefault(d.name, []).append(d)
        out: list[Definition] = []
        for name in names:
            ds = by_name.get(name)
            if not ds:
                continue
            # skip the definition whose own body is the range (a name used inside itself)
            tiers = ([d for d in ds if d.path in imported], [d for d in ds if d.path == rel],
                     [d for d in ds if d.path != rel and d.path not in imported])
            for tier in tiers:
                if tier:
                    out.extend(tier[:max_per_name])
                    break
        self._cache_put(key, out)
        return list(out)

    def _cache_put(self, key: tuple, value: object) -> None:
        self._qcache[key] = value
        while len(self._qcache) > 256:
            self._qcache.popitem(last=False)

    def imports_of(self, path: str) -> list[str]:
        """Repository files that ``path`` imports."""
        return self._import_neighbours(path, "SELECT dst_id FROM import_edges WHERE src_id=?")

    def importers_of(self, path: str) -> list[str]:
        """Repository files that import ``path``."""
        return self._import_neighbours(path, "SELECT src_id FROM import_edges WHERE dst_id=?")

    def _import_neighbours(self, path: str, query: str) -> list[str]:
        rel = self.rel(path)
        with self.store.lock:
            paths, ids = self._id_maps()
            fid = ids.get(rel)
            if fid is None:
                return []
            rows = self.store.conn.execute(query, (fid,)).fetchall()
        return sorted(paths[r[0]] for r in rows if r[0] in paths)

    def imports(self, path: str) -> list[tuple[str, str, int]]:
        """Raw import statements of a file: (module, comma-separated names, line)."""
        with self.store.lock:
            return self.store.conn.execute(
                "SELECT i.module, i.names, i.line FROM imports i JOIN files f ON f.id=i.file_id WHERE f.path=? "
                "ORDER BY i.line", (self.rel(path),)).fetchall()

    # ------------------------------------------------------------------ ranking
    def _rank_update(self, fid: int, parsed: ParsedFile | None) -> None:
        if not self._rank.loaded:
            return
        self._edges_dirty = True
        if parsed is None:
            self._rank.update_file(fid, None, None)
        else:
            self._rank.update_file(fid, {d[0] for d in parsed.defs}, parsed.ref_counts())

    def _ensure_rank(self) -> RankModel:
        if not self._rank.loaded:
            c = self.store.conn
            defs = c.execute("SELECT DISTINCT file_id, name FROM definitions").fetchall()
            defined = {n for _, n in defs}
            refs = [(fid, n, len(b) // 8) for fid, blob in c.execute("SELECT file_id, data FROM refs")
                    for n, b in decode_refs(blob).items() if n in defined]
            self._rank.load(defs, refs)
            self._edges_dirty = True
        return self._rank

    def _persist_edges(self) -> None:
        if not self._edges_dirty or not self._rank.loaded:
            return
        try:
            edges = self._rank.file_edges()
            c = self.store.conn
            c.execute("BEGIN")
            c.execute("DELETE FROM edges")
            c.executemany("INSERT INTO edges VALUES(?,?,?)", edges)
            c.execute("COMMIT")
            self._edges_dirty = False
        except Exception:
            if self.store.conn.in_transaction:
                self.store.conn.execute("ROLLBACK")

    def personalization_for(self, current: str | None = None, recent_weight: float = 0.5) -> dict[str, float]:
        """Current file (weight 1) plus recently edited files (decaying) — the usual personalisation."""
        pers: dict[str, float] = {}
        for i, p in enumerate(reversed(self.recent)):
            pers[p] = recent_weight / (1 + i)
        if current:
            pers[self.rel(current)] = 1.0
        return pers

    def _pers_ids(self, personalization: dict[str, float] | None) -> dict[int, float] | None:
        if not personalization:
            return None
        _, ids = self._id_maps()
        out = {ids[self.rel(p)]: float(w) for p, w in personalization.items() if self.rel(p) in ids}
        return out or None

    def _rank_inputs(self, personalization: dict[str, float] | None) -> tuple[Any, dict[int, str], int, dict[int, float]]:
        """The rank model, file ids, node count and personalisation (uniform when none is given); caller holds the lock."""
        model = self._ensure_rank()
        paths, _ = self._id_maps()
        n = (max(paths) + 1) if paths else 0
        pers = self._pers_ids(personalization)
        if pers is None:
            pers = {i: 1.0 for i in paths}
        return model, paths, n, pers

    def ranked_files(self, personalization: dict[str, float] | None = None) -> list[tuple[str, float]]:
        """All indexed files, most relevant first (PageRank over the reference graph)."""
        with self.store.lock:
            key = ("rf", self._gen, tuple(sorted((personalization or {}).items())))
            hit = self._qcache.get(key)
            if hit is not None:
                return list(hit)  # type: ignore[arg-type]
            model, paths, n, pers = self._rank_inputs(personalization)
            x = model.pagerank(n, pers)
            ids = np.fromiter(paths.keys(), dtype=np.int64, count=len(paths))
            scores = x[ids] if len(x) else np.zeros(len(ids))
            order = np.argsort(-scores, kind="stable")
            out = [(paths[int(ids[i])], float(scores[i])) for i in order]
            self._cache_put(key, out)
            return list(out)

    def ranked_definitions(self, personalization: dict[str, float] | None = None,
                           limit: int | None = None) -> list[tuple[Definition, float]]:
        """Definitions ranked by the share of PageRank flowing to them through references."""
        with self.store.lock:
            key = ("rd", self._gen, tuple(sorted((personalization or {}).items())), limit)
            hit = self._qcache.get(key)
            if hit is not None:
                return list(hit)  # type: ignore[arg-type]
            model, paths, n, pers = self._rank_inputs(personalization)
            pairs = model.ranked_pairs(n, pers, None if limit is None else 2 * limit + 16)
            out: list[tuple[Definition, float]] = []
            c = self.store.conn
            for fid, name, score in pairs:
                path = paths.get(fid)
                if path is None:
                    continue
                for r in c.execute(f"SELECT {DEF_COLS} FROM definitions d WHERE d.file_id=? AND d.name=? "
                                   "ORDER BY d.start_byte", (fid, name)):
                    out.append((Definition(path, *r), score))
                if limit is not None and len(out) >= limit:
                    out = out[:limit]
                    break
            self._cache_put(key, out)
            return list(out)
