"""SQLite persistence for one workspace root.

Why SQLite: one file per root, crash-safe (WAL), queryable by name without
loading everything into memory.  Each file's rows are written in the same
transaction as its ``files`` row, so a crash (even SIGKILL) leaves only whole
files behind and the next warm build simply continues: anything whose
size/mtime/hash matches is reused, anything else is re-parsed.

References are stored one row per file: ``count`` occurrences and ``data``, a
marshal-packed {name: [line, col, ...]} map.  Ranking needs per-file name
counts and range queries need positions for one file at a time; nothing asks
"all files using X" through SQL, and one row per file makes the cold index's
single writer ~5x cheaper than one row per (file, name).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path
from typing import Iterable, Iterator

from .file_lock import FileLock
from .parsed import ParsedFile

SCHEMA_VERSION = 5  # also bumped when the parser extracts more (5: JS/TS module-level variables), so a
# cached index is rebuilt rather than kept without them

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS files(
    id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, size INTEGER, mtime_ns INTEGER, hash TEXT,
    language TEXT, lines INTEGER, overlay INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS definitions(
    id INTEGER PRIMARY KEY, file_id INTEGER NOT NULL, name TEXT, qualified_name TEXT, kind TEXT,
    signature TEXT, doc TEXT, start_line INTEGER, end_line INTEGER, start_byte INTEGER, end_byte INTEGER,
    parent TEXT, name_line INTEGER);
CREATE TABLE IF NOT EXISTS refs(
    file_id INTEGER PRIMARY KEY, count INTEGER NOT NULL, data BLOB);
CREATE TABLE IF NOT EXISTS imports(
    file_id INTEGER NOT NULL, module TEXT, names TEXT, line INTEGER);
CREATE TABLE IF NOT EXISTS import_edges(
    src_id INTEGER NOT NULL, dst_id INTEGER NOT NULL, PRIMARY KEY(src_id, dst_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS edges(
    src_id INTEGER NOT NULL, dst_id INTEGER NOT NULL, weight REAL, PRIMARY KEY(src_id, dst_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS skipped(path TEXT PRIMARY KEY, reason TEXT) WITHOUT ROWID;
"""

# Secondary indexes: created after a cold bulk load (cheaper than maintaining them row by row).
_INDEXES = """
CREATE INDEX IF NOT EXISTS def_name ON definitions(name);
CREATE INDEX IF NOT EXISTS def_qual ON definitions(qualified_name);
CREATE INDEX IF NOT EXISTS def_file ON definitions(file_id, start_byte);
CREATE INDEX IF NOT EXISTS imp_file ON imports(file_id);
CREATE INDEX IF NOT EXISTS impe_dst ON import_edges(dst_id);
"""

DEF_COLS = "d.name, d.qualified_name, d.kind, d.signature, d.doc, d.start_line, d.end_line, d.start_byte, d.end_byte, d.parent, d.name_line"


class Store:
    """Thin, thread-safe wrapper around one SQLite connection.

    All access goes through ``self.lock`` (an RLock) because the watcher thread
    writes while the LSP thread queries; ``row_counts`` alone does not wait for it.
    """

    def __init__(self, db_path: Path, root: str) -> None:
        self.db_path = db_path
        self.root = root
        self.lock = threading.RLock()
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self.rebuilt = False
        self.closed = False
        # rows as the writers below leave them, and as last committed (``row_counts``): kept, never scanned
        self._files = self._definitions = 0
        self._committed = (0, 0)
        self._data_version = -1
        # One process at a time checks (and may create or wipe) the file: another process opening it
        # meanwhile saw a half-created schema as a foreign file and wiped it (found by two editors' cold
        # builds both parsing everything).
        with FileLock(db_path.with_suffix(".open.lock")):
            try:
                self.conn = self._connect()
                self._check()
            except sqlite3.OperationalError:
                raise  # busy or unreadable, not corrupt: never wipe another process's index for it
            except sqlite3.DatabaseError:
                # corruption or a foreign file: throw it away and rebuild from scratch
                self._wipe()
                self.conn = self._connect()
                self._check()
                self.rebuilt = True

    # ---- lifecycle
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.db_path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA temp_store=MEMORY")
        conn.execute("PRAGMA cache_size=-16000")
        return conn

    def _wipe(self) -> None:
        try:
            self.conn.close()  # type: ignore[has-type]
        except Exception:
            pass
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(str(self.db_path) + suffix)
            except FileNotFoundError:
                pass

    def _check(self) -> None:
        c = self.conn
        c.execute("SELECT name FROM sqlite_master LIMIT 1").fetchall()
        has_meta = c.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
        version = None
        if has_meta:
            row = c.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = row[0] if row else None
            root_row = c.execute("SELECT value FROM meta WHERE key='root'").fetchone()
            if version == str(SCHEMA_VERSION) and root_row and root_row[0] != self.root:
                version = None
        if version != str(SCHEMA_VERSION):
            if has_meta or c.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                self.rebuilt = True
                self.conn.close()
                self._wipe()
                self.conn = c = self._connect()
            c.executescript(_SCHEMA)
            c.executemany("INSERT OR REPLACE INTO meta VALUES(?,?)",
                          [("schema_version", str(SCHEMA_VERSION)), ("root", self.root)])
        else:
            c.executescript(_SCHEMA)
        # integrity of the tables we rely on (a damaged page raises DatabaseError here), and their row counts
        self._recount()

    def close(self) -> None:
        with self.lock:
            self.closed = True
            try:
                self.conn.execute("PRAGMA optimize")
            except sqlite3.Error:
                pass
            self.conn.close()

    def ensure_indexes(self) -> None:
        with self.lock:
            self.conn.executescript(_INDEXES)

    def drop_indexes(self) -> None:
        with self.lock:
            for name in ("def_name", "def_qual", "def_file", "imp_file", "impe_dst"):
                self.conn.execute(f"DROP INDEX IF EXISTS {name}")

    def begin(self) -> None:
        self.conn.execute("BEGIN")

    def commit(self) -> None:
        self.conn.execute("COMMIT")
        self._committed = (self._files, self._definitions)

    def rollback(self) -> None:
        """Undo the open transaction, and the row counts it moved."""
        self.conn.execute("ROLLBACK")
        self._files, self._definitions = self._committed

    # ---- row counts (``coderflash/status``, polled by editors)
    def _recount(self) -> None:
        """The one full count: at open, and after another connection (a second editor's server, `coderflash
        index`) committed to the same file, which the counters kept by this connection's writers cannot see."""
        c = self.conn
        self._data_version = c.execute("PRAGMA data_version").fetchone()[0]
        self._files = c.execute("SELECT count(*) FROM files").fetchone()[0]
        self._definitions = c.execute("SELECT count(*) FROM definitions").fetchone()[0]
        self._committed = (self._files, self._definitions)

    def row_counts(self) -> tuple[int, int]:
        """(files, definitions) as last committed, in O(1): the writers below keep the counts as they go. Never
        waits for the lock (a build holds it for its whole run, and an editor's status poll must not stall):
        with a writer at work the last committed counts are answered."""
        if self.lock.acquire(blocking=False):
            try:
                if not self.closed and not self.conn.in_transaction \
                        and self.conn.execute("PRAGMA data_version").fetchone()[0] != self._data_version:
                    self._recount()
            finally:
                self.lock.release()
        return self._committed

    def meta_get(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def meta_set(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta VALUES(?,?)", (key, value))

    # ---- files
    def file_rows(self) -> dict[str, tuple[int, int, int, str, int]]:
        """path -> (id, size, mtime_ns, hash, overlay)."""
        return {r[0]: r[1:] for r in self.conn.execute("SELECT path, id, size, mtime_ns, hash, overlay FROM files")}

    def touch_file(self, fid: int, size: int, mtime_ns: int) -> None:
        self.conn.execute("UPDATE files SET size=?, mtime_ns=? WHERE id=?", (size, mtime_ns, fid))

    def delete_file_rows(self, fid: int) -> None:
        c = self.conn
        self._definitions -= c.execute("DELETE FROM definitions WHERE file_id=?", (fid,)).rowcount
        c.execute("DELETE FROM refs WHERE file_id=?", (fid,))
        c.execute("DELETE FROM imports WHERE file_id=?", (fid,))
        c.execute("DELETE FROM import_edges WHERE src_id=?", (fid,))

    def delete_file(self, fid: int) -> None:
        self.delete_file_rows(fid)
        self.conn.execute("DELETE FROM import_edges WHERE dst_id=?", (fid,))
        self.conn.execute("DELETE FROM edges WHERE src_id=? OR dst_id=?", (fid, fid))
        self._files -= self.conn.execute("DELETE FROM files WHERE id=?", (fid,)).rowcount

    def write_file(self, fid: int | None, path: str, size: int, mtime_ns: int, hsh: str, language: str | None,
                   parsed: ParsedFile, overlay: bool = False, fresh: bool = False) -> int:
        """Insert or replace one file and all its rows (caller holds the transaction)."""
        c = self.conn
        if fid is None:
            cur = c.execute(
                "INSERT INTO files(path,size,mtime_ns,hash,language,lines,overlay) VALUES(?,?,?,?,?,?,?)",
                (path, size, mtime_ns, hsh, language, parsed.lines, int(overlay)))
            fid = int(cur.lastrowid or 0)
            self._files += 1
        else:
            c.execute("UPDATE files SET size=?, mtime_ns=?, hash=?, language=?, lines=?, overlay=? WHERE id=?",
                      (size, mtime_ns, hsh, language, parsed.lines, int(overlay), fid))
            if not fresh:
                self.delete_file_rows(fid)
        if parsed.defs:
            self._definitions += len(parsed.defs)
            c.executemany(
                "INSERT INTO definitions(file_id,name,qualified_name,kind,signature,doc,start_line,end_line,"
                "start_byte,end_byte,parent,name_line) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)",
                [(fid, *d) for d in parsed.defs])
        if parsed.refs_blob:
            c.execute("INSERT INTO refs VALUES(?,?,?)", (fid, parsed.ref_count, parsed.refs_blob))
        if parsed.imports:
            c.executemany("INSERT INTO imports VALUES(?,?,?,?)", [(fid, *i) for i in parsed.imports])
        return fid

    def set_skipped(self, skipped: dict[str, str]) -> None:
        c = self.conn
        c.execute("DELETE FROM skipped")
        c.executemany("INSERT OR REPLACE INTO skipped VALUES(?,?)", list(skipped.items()))

    # ---- reads
    def iter_imports(self, fids: Iterable[int] | None = None) -> Iterator[tuple[int, str, str, str]]:
        """(file_id, file_path, module, names) for all or some files."""
        q = "SELECT i.file_id, f.path, i.module, i.names FROM imports i JOIN files f ON f.id=i.file_id"
        if fids is None:
            yield from self.conn.execute(q)
        else:
            for fid in fids:
                yield from self.conn.execute(q + " WHERE i.file_id=?", (fid,))

    def replace_import_edges(self, edges: dict[int, set[int]], all_files: bool) -> None:
        c = self.conn
        if all_files:
            c.execute("DELETE FROM import_edges")
        else:
            c.executemany("DELETE FROM import_edges WHERE src_id=?", [(s,) for s in edges])
        c.executemany("INSERT OR IGNORE INTO import_edges VALUES(?,?)",
                      [(s, d) for s, ds in edges.items() for d in ds if s != d])
