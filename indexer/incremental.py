"""Re-indexing named paths after they changed on disk (created, edited, deleted, whole directories).

The watcher (indexer/watch.py) and the editor's save notifications name paths; only those are looked
at, and a file is re-parsed only when its size or mtime moved and its content hash changed.  A change
to an ignore file can (un)ignore whole subtrees, so it triggers a warm build instead.
"""

from __future__ import annotations

import os
from typing import Iterable

from .build import Builder
from .discovery import IgnoreRules, discover, is_rule_file, stat_one
from .parse_pool import PARSER_CRASHED, parse_in_worker
from .parsed import ParsedFile
from .ranker import Ranker
from .reparse import EditParser
from .state import IndexState
from .worker import process_file


class Updater:
    """Applies changes of named paths to one index."""

    def __init__(self, state: IndexState, ranker: Ranker, edit_parser: EditParser, builder: Builder) -> None:
        self.state = state
        self.ranker = ranker
        self.edit_parser = edit_parser
        self.builder = builder

    def _indexed_paths(self) -> set[str]:
        with self.state.store.lock:
            return {p for (p,) in self.state.store.conn.execute("SELECT path FROM files")}

    def update_paths(self, paths: Iterable[str]) -> list[str]:
        """Returns the relative paths whose index entries changed."""
        state = self.state
        rels = {state.rel(p) for p in paths}
        rels.discard("")
        # ignore-rule changes can (un)ignore whole subtrees: a warm build re-applies them
        rule_files = {r for r in rels if is_rule_file(r)}
        if rule_files:
            rels -= rule_files
            state.forget_ignore_rules()
        if not rels and not rule_files:
            return []
        changed: list[str] = []
        rules = state.ignore_rules()
        with state.store.lock:
            store = state.store
            _, ids = state.id_maps()
            added_removed = False
            changed_ids: set[int] = set()
            rank_updates: list[tuple[int, ParsedFile | None]] = []
            store.begin()
            try:
                done: set[str] = set()  # a batch may name a new directory and files inside it
                for rel in sorted(rels):
                    if rel in state.overlays or rel in done:
                        continue  # the open buffer wins; clear_overlay re-reads the disk
                    abs_p = os.path.join(state.root, rel)
                    if os.path.isdir(abs_p) and not os.path.islink(abs_p):
                        sub = discover(state.root, state.settings, subdir=rel)
                        found = {c.rel for c in sub.files}
                        # what is gone below it, and a file of this name that the directory replaced
                        added_removed |= self._drop(rel, True, found, ids, rank_updates, changed)
                        for p, reason in sub.skipped.items():
                            state.skipped[p] = reason
                        for c in sub.files:
                            if c.rel in done or c.rel in state.overlays:
                                continue
                            done.add(c.rel)
                            r = self._update_one(c.rel, rules, ids, changed_ids, rank_updates)
                            if r:
                                changed.append(c.rel)
                                added_removed |= r == "added"
                        continue
                    done.add(rel)
                    if not os.path.lexists(abs_p):
                        added_removed |= self._drop(rel, True, set(), ids, rank_updates, changed)
                        state.skipped.pop(rel, None)
                        continue
                    if not os.path.isdir(abs_p):  # a file now: what a directory of this name held is gone
                        added_removed |= self._drop(rel, False, set(), ids, rank_updates, changed)
                    r = self._update_one(rel, rules, ids, changed_ids, rank_updates)
                    if r:
                        changed.append(rel)
                        added_removed |= r in ("added", "removed")
                if added_removed:
                    state.files_changed()
                if changed_ids or added_removed:
                    state.resolve_imports(None if added_removed else changed_ids)
                store.commit()
            except BaseException:
                if store.conn.in_transaction:
                    store.rollback()
                state.files_changed()
                raise
            for fid, parsed in rank_updates:
                self.ranker.update(fid, parsed)
            if changed:
                state.changed()
                for p in changed:
                    state.touch_recent(p)
        if rule_files:
            before = self._indexed_paths()
            self.builder.build()
            after = self._indexed_paths()
            changed.extend(sorted(before ^ after))
        return changed

    def _drop(self, rel: str, itself: bool, keep: set[str], ids: dict[str, int],
              rank_updates: list[tuple[int, ParsedFile | None]], changed: list[str]) -> bool:
        """Remove the indexed files below ``rel`` (and ``rel`` itself when ``itself``) except ``keep`` and open
        buffers: a path's kind may have changed (file <-> directory) since it was indexed. True if any went."""
        prefix = rel + "/"
        gone = [p for p in ids if (p.startswith(prefix) or (itself and p == rel))
                and p not in keep and p not in self.state.overlays]
        for p in gone:
            fid = ids.pop(p)
            self.state.store.delete_file(fid)
            rank_updates.append((fid, None))
            changed.append(p)
        return bool(gone)

    def _update_one(self, rel: str, rules: IgnoreRules, ids: dict[str, int], changed_ids: set[int],
                    rank_updates: list[tuple[int, ParsedFile | None]]) -> str | None:
        """Re-index one existing path; returns 'added' / 'changed' / 'removed' / None (no change)."""
        state = self.state
        store = state.store
        fid = ids.get(rel)
        cand, reason = stat_one(state.root, rel, state.settings, rules)
        res = None
        if cand is not None:
            row = store.conn.execute("SELECT size, mtime_ns, hash, overlay FROM files WHERE id=?",
                                     (fid,)).fetchone() if fid is not None else None
            if row is not None and row[0] == cand.size and row[1] == cand.mtime_ns and not row[3]:
                return None
            if state.skipped.get(rel) == PARSER_CRASHED:  # it killed a parser process: never parse it here
                res = parse_in_worker(state.root, rel, cand.mtime_ns, row[2] if row else None,
                                      state.settings.max_line_length)
            else:
                res = process_file(state.root, rel, cand.mtime_ns, row[2] if row else None,
                                   state.settings.max_line_length, self.edit_parser.parse)
            if res[0] == "skip":
                reason = res[2]
        if res is not None and res[0] == "same":
            store.touch_file(fid, res[2], res[3])  # type: ignore[arg-type]
            return None
        if res is not None and res[0] == "parsed":
            _, _, size, mtime, h, lang, parsed = res
            state.parsed_total += 1
            new_id = store.write_file(fid, rel, size, mtime, h, lang, parsed)
            ids[rel] = new_id
            changed_ids.add(new_id)
            rank_updates.append((new_id, parsed))
            state.skipped.pop(rel, None)
            return "added" if fid is None else "changed"
        # skipped, ignored or gone
        if reason:
            state.skipped[rel] = reason
        else:
            state.skipped.pop(rel, None)
        if fid is not None:
            store.delete_file(fid)
            ids.pop(rel, None)
            rank_updates.append((fid, None))
            return "removed"
        return None
