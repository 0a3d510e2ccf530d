"""Read queries over one index: file text, definitions, references and import neighbours.

Answers that a completion asks for on every keystroke (references of a file, definitions used in a
range) are cached per index generation (``IndexState.cached``).
"""

from __future__ import annotations

import json
import os
from dataclasses import replace

from .models import Definition, FileInfo, Reference
from .parsed import decode_refs, unpack_positions
from .regular_files import read_regular_file
from .settings import is_secret_path
from .state import IndexState
from .store import DEF_COLS

# The names travel as one JSON array, so the statement's text is the same however many there are: an
# ``IN (?, ?, …)`` with one placeholder per name compiled a new statement for every count, and the sqlite3
# module keeps the last 128 compiled statements per connection, each as large as its list, so SQLite's memory
# crept up by megabytes over a long session (``bench/load_bench.py``'s soak) until that cache was full.
_NAMES_IN = "d.name IN (SELECT value FROM json_each(?))"


class Queries:
    """The read side of one index."""

    def __init__(self, state: IndexState) -> None:
        self.state = state

    def read_text(self, path: str) -> str | None:
        state = self.state
        rel = state.rel(path)
        if is_secret_path(rel, state.settings.secret_globs):
            return None
        overlay = state.overlays.get(rel)  # one look-up: the buffer may close on another thread meanwhile
        if overlay is not None:
            return overlay
        with state.store.lock:
            if state.file_id(rel) is None:
                return None
        max_size = state.settings.max_file_size
        try:  # never blocks: an indexed file replaced by a FIFO since the last scan is refused, not opened
            data = read_regular_file(os.path.join(state.root, rel), max_size)
        except OSError:
            return None
        if b"\x00" in data:
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return None

    def files(self) -> list[FileInfo]:
        store = self.state.store
        with store.lock:
            return [FileInfo(*r) for r in store.conn.execute(
                "SELECT path, language, size, lines, hash FROM files ORDER BY path")]

    def _defs(self, where: str, args: tuple) -> list[Definition]:
        store = self.state.store
        with store.lock:
            rows = store.conn.execute(
                f"SELECT f.path, {DEF_COLS} FROM definitions d JOIN files f ON f.id=d.file_id WHERE {where}",
                args).fetchall()
        return [Definition(*r) for r in rows]

    def definitions(self, name: str) -> list[Definition]:
        return self._defs("d.name=? ORDER BY f.path, d.start_byte", (name,))

    def definitions_by_qualified(self, qualified_name: str) -> list[Definition]:
        return self._defs("d.qualified_name=? ORDER BY f.path, d.start_byte", (qualified_name,))

    def outline(self, path: str) -> list[Definition]:
        defs = self._defs("f.path=? ORDER BY d.start_byte", (self.state.rel(path),))
        return [replace(d, doc="") for d in defs]

    def symbol_at(self, path: str, line: int) -> Definition | None:
        state = self.state
        rel = state.rel(path)
        with state.store.lock:
            fid = state.file_id(rel)
            if fid is None:
                return None
            rows = state.store.conn.execute(
                f"SELECT {DEF_COLS} FROM definitions d WHERE d.file_id=? AND d.start_line<=? AND d.end_line>=? "
                "ORDER BY (d.end_byte - d.start_byte) ASC LIMIT 1", (fid, line, line)).fetchall()
        return Definition(rel, *rows[0]) if rows else None

    def _refs_rows(self, rel: str) -> list[tuple[str, bytes]]:
        """(name, packed positions) of every name used in a file."""
        state = self.state
        with state.store.lock:
            fid = state.file_id(rel)
            if fid is None:
                return []
            key = ("refs", state.generation, fid)
            hit = state.cached(key)
            if hit is None:
                row = state.store.conn.execute("SELECT data FROM refs WHERE file_id=?", (fid,)).fetchone()
                hit = list(decode_refs(row[0]).items()) if row else []
                state.cache_put(key, hit)
            return hit  # type: ignore[return-value]

    def references_in_range(self, path: str, start_line: int, end_line: int) -> list[Reference]:
        rel = self.state.rel(path)
        out: list[Reference] = []
        for name, blob in self._refs_rows(rel):
            for line, col in unpack_positions(blob):
                if start_line <= line <= end_line:
                    out.append(Reference(rel, name, line, col))
        out.sort(key=lambda r: (r.line, r.character))
        return out

    def definitions_referenced_in(self, path: str, start_line: int, end_line: int,
                                  max_per_name: int = 3) -> list[Definition]:
        state = self.state
        with state.store.lock:
            return self._definitions_referenced_in(state.rel(path), start_line, end_line, max_per_name)

    def _definitions_referenced_in(self, rel: str, start_line: int, end_line: int,
                                   max_per_name: int) -> list[Definition]:
        key = ("dri", self.state.generation, rel, start_line, end_line, max_per_name)
        hit = self.state.cached(key)
        if hit is not None:
            return list(hit)  # type: ignore[call-overload]
        refs = self.references_in_range(rel, start_line, end_line)
        order: dict[str, int] = {}
        for r in refs:
            order.setdefault(r.name, len(order))
        if not order:
            return []
        imported = set(self.imports_of(rel))
        names = list(order)
        by_name: dict[str, list[Definition]] = {}
        for d in self._defs(_NAMES_IN, (json.dumps(names),)):
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
        self.state.cache_put(key, out)
        return list(out)

    def imports_of(self, path: str) -> list[str]:
        return self._import_neighbours(path, "SELECT dst_id FROM import_edges WHERE src_id=?")

    def importers_of(self, path: str) -> list[str]:
        return self._import_neighbours(path, "SELECT src_id FROM import_edges WHERE dst_id=?")

    def _import_neighbours(self, path: str, query: str) -> list[str]:
        state = self.state
        rel = state.rel(path)
        with state.store.lock:
            fid = state.file_id(rel)
            if fid is None:
                return []
            rows = state.store.conn.execute(query, (fid,)).fetchall()
            paths, _ = state.id_maps()
        return sorted(paths[r[0]] for r in rows if r[0] in paths)

    def imports(self, path: str) -> list[tuple[str, str, int]]:
        store = self.state.store
        with store.lock:
            return store.conn.execute(
                "SELECT i.module, i.names, i.line FROM imports i JOIN files f ON f.id=i.file_id WHERE f.path=? "
                "ORDER BY i.line", (self.state.rel(path),)).fetchall()
