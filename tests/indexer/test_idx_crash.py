"""SIGKILL in the middle of a cold index or of index updates, then restart: the result equals a from-scratch index."""

from __future__ import annotations

import os
import signal
import sqlite3
import json
import subprocess
import sys
from pathlib import Path

import pytest

from indexer import Index
from indexer.parsed import decode_refs

from idx_helpers import STDLIB, wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]


def _corpus(dst: Path, max_lines: int = 120_000) -> int:
    """Copy real stdlib modules (not tests) until about max_lines lines."""
    total = files = 0
    for src in sorted(STDLIB.rglob("*.py")):
        rel = src.relative_to(STDLIB)
        if rel.parts[0] in ("test", "idlelib", "site-packages", "lib2to3") or "tests" in rel.parts:
            continue
        data = src.read_bytes()
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        (dst / rel).write_bytes(data)
        total += data.count(b"\n")
        files += 1
        if total >= max_lines:
            break
    return files


def _snapshot(db: Path) -> dict[str, object]:
    """Everything the index knows, keyed by path (row ids differ between runs)."""
    con = sqlite3.connect(db)
    try:
        paths = dict(con.execute("SELECT id, path FROM files"))
        files = sorted(con.execute("SELECT path, size, hash, language, lines FROM files"))
        defs = sorted((paths[r[0]],) + r[1:] for r in con.execute(
            "SELECT file_id, name, qualified_name, kind, signature, doc, start_line, end_line, start_byte, end_byte, "
            "parent, name_line FROM definitions"))
        refs = sorted((paths[f], c, sorted(decode_refs(b).items())) for f, c, b in con.execute(
            "SELECT file_id, count, data FROM refs"))
        imports = sorted((paths[f], m, n, l) for f, m, n, l in con.execute("SELECT * FROM imports"))
        edges = sorted((paths[s], paths[d]) for s, d in con.execute("SELECT src_id, dst_id FROM import_edges"))
        return {"files": files, "defs": defs, "refs": refs, "imports": imports, "edges": edges}
    finally:
        con.close()


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX only")
def test_sigkill_during_cold_index_then_restart_equals_from_scratch(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    n_files = _corpus(repo)
    cache_killed = tmp_path / "cache_killed"
    progress = tmp_path / "progress"
    script = (
        "import sys\n"
        f"sys.path.insert(0, {str(REPO_ROOT)!r})\n"
        "from indexer import Index\n"
        f"idx = Index.open({str(repo)!r}, {str(cache_killed)!r})\n"
        "import os\n"
        "def prog(done, total):\n"  # atomic: a kill mid-write must not leave an empty progress file
        f"    open({str(progress) + '.tmp'!r}, 'w').write(f'{{done}} {{total}}')\n"
        f"    os.replace({str(progress) + '.tmp'!r}, {str(progress)!r})\n"
        "idx.build(prog)\n"
        "import time; time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    try:
        def far_enough() -> bool:
            # Progress alone races the batched commits: wait until some files are committed too.
            try:
                done, total = map(int, progress.read_text().split())
                db_file = next((cache_killed / "index").glob("*.sqlite"))
                con = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True, timeout=0.05)
                try:
                    committed = con.execute("SELECT count(*) FROM files").fetchone()[0]
                finally:
                    con.close()
            except (OSError, ValueError, StopIteration, sqlite3.Error):
                return False
            return done >= total * 0.3 and committed > 0
        assert wait_for(far_enough, timeout=60, interval=0.005), "cold index never progressed"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the build and its worker processes
        proc.wait(timeout=10)
    done, total = map(int, progress.read_text().split())
    assert done < total, "the build finished before the kill; the corpus is too small to test a crash"

    db = next((cache_killed / "index").glob("*.sqlite"))
    con = sqlite3.connect(db)
    partial = con.execute("SELECT count(*) FROM files").fetchone()[0]
    con.close()
    assert 0 < partial < n_files  # the kill really left a partial index behind

    with Index.open(repo, cache_killed) as idx:
        stats = idx.build()
        assert stats.reused_files == partial and stats.parsed_files == n_files - partial
    with Index.open(repo, tmp_path / "cache_fresh") as fresh:
        fresh.build()
        fresh_db = fresh.db_path
    assert _snapshot(db) == _snapshot(fresh_db)


def test_two_processes_building_one_index_do_not_collide(tmp_path: Path) -> None:
    """Two editors on one repository share the SQLite index: their cold builds are serialised, the
    second runs warm, and neither fails (it used to raise UNIQUE constraint failed: files.path)."""
    repo = tmp_path / "repo"
    n_files = _corpus(repo, max_lines=30_000)
    cache = tmp_path / "cache"
    script = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(REPO_ROOT)!r})\n"
        "from indexer import Index\n"
        f"idx = Index.open({str(repo)!r}, {str(cache)!r})\n"
        "print(json.dumps(idx.build().to_json()))\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err
    stats = [json.loads(out) for out, _ in outputs]
    assert all(s["files"] == n_files for s in stats)
    assert sorted(s["parsed_files"] for s in stats) == [0, n_files]  # one cold, one warm


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX only")
def test_sigkill_during_index_updates_then_restart_equals_from_scratch(tmp_path: Path) -> None:
    """Files edited on disk and re-indexed one by one (``update_paths``, what the watcher does) until the
    process is killed mid-way; the next start's build agrees with a from-scratch index of the disk."""
    repo = tmp_path / "repo"
    _corpus(repo, max_lines=30_000)
    targets = sorted(str(p.relative_to(repo)) for p in repo.rglob("*.py"))[:400]
    cache = tmp_path / "cache"
    progress = tmp_path / "progress"
    script = (
        "import os, sys\n"
        f"sys.path.insert(0, {str(REPO_ROOT)!r})\n"
        "from indexer import Index\n"
        f"repo = {str(repo)!r}\n"
        f"idx = Index.open(repo, {str(cache)!r})\n"
        "idx.build()\n"
        "n = 0\n"
        "while True:\n"
        f"    for rel in {targets!r}:\n"
        "        n += 1\n"
        "        with open(os.path.join(repo, rel), 'a') as f:\n"
        "            f.write(f'\\ndef edited_{n}():\\n    return {n}\\n')\n"
        "        idx.update_paths([rel])\n"
        f"        open({str(progress) + '.tmp'!r}, 'w').write(str(n))\n"
        f"        os.replace({str(progress) + '.tmp'!r}, {str(progress)!r})\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    try:
        def updating() -> bool:
            try:
                return int(progress.read_text()) >= 50
            except (OSError, ValueError):
                return False
        assert wait_for(updating, timeout=120, interval=0.005), "updates never started"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    db = next((cache / "index").glob("*.sqlite"))
    with Index.open(repo, cache) as idx:
        idx.build()
    with Index.open(repo, tmp_path / "cache_fresh") as fresh:
        fresh.build()
        fresh_db = fresh.db_path
    assert _snapshot(db) == _snapshot(fresh_db)


def _index_with_a_probe(db: Path) -> None:
    from indexer.store import Store

    store = Store(db, "/repo")
    store.meta_set("probe", "kept")
    store.close()


def test_an_index_another_process_is_still_creating_is_waited_for_not_wiped(tmp_path: Path) -> None:
    """Another process holds the open lock with its schema half written (no version row yet): opening waits
    for it instead of taking the file for a foreign one and wiping it (both editors then built cold)."""
    import threading
    import time

    from indexer.file_lock import FileLock
    from indexer.store import SCHEMA_VERSION, Store

    db = tmp_path / "index.sqlite3"
    _index_with_a_probe(db)
    other = sqlite3.connect(db)
    other.execute("DELETE FROM meta WHERE key='schema_version'")
    other.commit()
    opened: list[Store] = []
    with FileLock(db.with_suffix(".open.lock")):
        thread = threading.Thread(target=lambda: opened.append(Store(db, "/repo")))
        thread.start()
        time.sleep(0.5)
        assert thread.is_alive() and not opened, "opened while another process was creating the schema"
        other.execute("INSERT INTO meta VALUES('schema_version', ?)", (str(SCHEMA_VERSION),))
        other.commit()
        other.close()
    thread.join(timeout=30)
    store = opened[0]
    assert not store.rebuilt and store.meta_get("probe") == "kept"
    store.close()

