"""Bringing a whole index in line with the disk: the cold build (everything) and the warm one (what changed).

Discovery lists the files; those whose size and mtime match their row are reused without being read,
the rest are parsed (a process pool when there are many, see indexer/parse_pool.py) and written in batches
of whole files, so a killed build loses at most a batch and the next one continues where it stopped.
"""

from __future__ import annotations

import time
from typing import Callable, Iterable

from .discovery import DiscoveryResult, discover
from .file_lock import FileLock
from .models import IndexStats
from .parsed import ParsedFile, from_wire
from .ranker import Ranker
from .state import IndexState
from .parse_pool import PARSER_CRASHED, Todo, parse_each_alone, parse_files
from .worker import process_file

ProgressFn = Callable[[int, int], None]

_BATCH_COMMIT = 500  # files per transaction during a build ...
_BATCH_SECONDS = 0.25  # ... or this much time: a killed build loses at most this much work
_POOL_MIN_FILES = 48  # below this the pool's start-up costs more than it saves
_RANK_REPLAY_MAX = 2000  # more changed files than this: the rank model is dropped and reloaded lazily


class Builder:
    """Full (cold or warm) builds of one index, and the statistics of the last one."""

    def __init__(self, state: IndexState, ranker: Ranker) -> None:
        self.state = state
        self.ranker = ranker
        self._last_stats: IndexStats | None = None

    def build(self, progress: ProgressFn | None = None) -> IndexStats:
        """Two processes on one repository (two editors, an editor and `coderflash index`) share the SQLite
        file: a lock file serialises their builds, so the second one finds the first's rows and runs warm."""
        with FileLock(self.state.store.db_path.with_suffix(".lock")):
            return self._build(progress)

    def _plan(self, disc: DiscoveryResult, rows: dict[str, tuple[int, int, int, str, int]]
              ) -> tuple[list[Todo], int, list[str]]:
        """(files to read, number reused as they are, indexed paths gone from the disk); open buffers are left alone."""
        overlays = self.state.overlays
        todo: list[Todo] = []
        reused = 0
        seen: set[str] = set()
        for c in disc.files:
            seen.add(c.rel)
            if c.rel in overlays:
                continue
            row = rows.get(c.rel)
            if row is not None and row[1] == c.size and row[2] == c.mtime_ns and not row[4]:
                reused += 1
                continue
            todo.append((c.rel, c.size, c.mtime_ns, row[3] if row is not None else None))
        gone = [p for p in rows if p not in seen and p not in overlays]
        return todo, reused, gone

    def _build(self, progress: ProgressFn | None) -> IndexStats:
        t0 = time.perf_counter()
        state = self.state
        state.forget_ignore_rules()
        disc = discover(state.root, state.settings)
        with state.store.lock:
            store = state.store
            rows = store.file_rows()
            cold = not rows
            crashed = store.meta_get("build_complete") == "0"
            store.meta_set("build_complete", "0")
            todo, reused, gone = self._plan(disc, rows)

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
                        if self.ranker.loaded:  # a cold index is never held in memory
                            rank_updates.append((new_id, parsed if len(rank_updates) <= _RANK_REPLAY_MAX else None))
                        parsed_count += 1
                        state.parsed_total += 1
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
                state.files_changed()
            if changed_ids or files_added_or_removed or crashed:
                state.resolve_imports(None if (files_added_or_removed or crashed or cold) else changed_ids)
            store.meta_set("build_complete", "1")
            store.commit()
            state.skipped = skipped
            state.ignored = disc.ignored
            if len(rank_updates) > _RANK_REPLAY_MAX:
                self.ranker.reset()
            else:
                for fid, parsed in rank_updates:
                    self.ranker.update(fid, parsed)
            if rank_updates or files_added_or_removed:
                state.changed()
            stats = self._compute_stats(parsed_count, reused, time.perf_counter() - t0)
            self._last_stats = stats
            return stats

    def _run_parsers(self, todo: list[Todo]) -> Iterable[tuple]:
        settings, root = self.state.settings, self.state.root
        workers = settings.effective_workers()
        mll = settings.max_line_length
        # A file that once killed its parser process is parsed again only in a worker of its own: here it could
        # take the server down, and in the pool it would break it twice before being found again.
        # One look at the skip reasons, taken before anything is yielded: both lists come from the same snapshot.
        crashers = {rel for rel, reason in self.state.skipped.items() if reason == PARSER_CRASHED}
        crashed = [t for t in todo if t[0] in crashers]
        if crashed:
            yield from parse_each_alone(root, mll, crashed)
            todo = [t for t in todo if t[0] not in crashers]
        if workers > 1 and len(todo) >= _POOL_MIN_FILES:
            yield from parse_files(root, mll, todo, workers)  # worker processes: see indexer/parse_pool.py
            return
        for rel, _size, mtime, h in todo:
            yield process_file(root, rel, mtime, h, mll)

    def _compute_stats(self, parsed: int, reused: int, elapsed: float) -> IndexStats:
        state = self.state
        c = state.store.conn
        skipped: dict[str, int] = {}
        for reason in state.skipped.values():
            skipped[reason] = skipped.get(reason, 0) + 1
        if state.ignored:
            skipped["ignored"] = state.ignored
        langs = {(lang or "unknown"): n for lang, n in
                 c.execute("SELECT language, count(*) FROM files GROUP BY language")}
        return IndexStats(
            root=state.root,
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
        """The index as it is now, with the last build's work figures (zero before any build)."""
        with self.state.store.lock:
            last = self._last_stats
            return self._compute_stats(last.parsed_files if last else 0, last.reused_files if last else 0,
                                       last.elapsed_s if last else 0.0)
