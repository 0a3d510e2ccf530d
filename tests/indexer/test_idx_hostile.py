"""Hostile files beside ordinary ones: nesting 10,000 deep in every parsed language, a 50 MB single line, and
files deleted or replaced while a cold build reads them. Each is indexed or skipped with a reason; nothing
else is affected, and an update afterwards agrees with the disk.

(Binary, invalid UTF-8, minified, 50 MB sparse files, symlink loops and escapes, permission denied:
test_idx_discovery.py.)"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from indexer import Index, IndexSettings

from idx_helpers import STDLIB, write_tree

DEPTH = 10_000


def _nested_files() -> dict[str, str]:
    """One bracket per line (on one line the index would skip them as minified), 10,000 deep."""
    def deep(open_: str, close: str) -> str:
        return (open_ + "\n") * DEPTH + (close + "\n") * DEPTH

    return {
        "deep/nest.py": "x = " + deep("(", ")").replace("(\n)", "(1)", 1) + "\ndef after_py():\n    pass\n",
        "deep/nest.js": "let a = " + deep("[", "]") + ";\nfunction afterJs() {}\n",
        "deep/nest.ts": "type T = " + deep("Array<", ">").replace("Array<\n>", "Array<number>", 1) + ";\n"
                        "function afterTs() {}\n",
        "deep/nest.rs": "fn f() " + deep("{", "}") + "\nm! " + deep("{", "}") + "\nfn after_rs() {}\n",
        "deep/nest.go": "package p\nfunc f() " + deep("{", "}") + "\nfunc afterGo() {}\n",
        "deep/nest.c": "int f() " + deep("{", "}") + "\nint after_c(void) { return 0; }\n",
        "deep/nest.java": "class A { void f() " + deep("{", "}") + " void afterJava() {} }\n",
        "deep/nest.json": deep("[", "]"),
    }


def test_deep_nesting_and_a_50_mb_line(tmp_path: Path) -> None:
    repo = write_tree(tmp_path / "repo", {"good.py": "def good():\n    return 1\n", **_nested_files()})
    with open(repo / "one_line.js", "w") as f:  # 50 MB of text on one line
        f.write("var x = '" + "a" * (50 * 1024 * 1024) + "';\n")
    with Index.open(repo, tmp_path / "cache", IndexSettings()) as idx:
        stats = idx.build()
        skipped = idx.skipped()
        assert skipped.get("one_line.js") == "too_large"
        assert idx.definitions("good")
        indexed = {f.path for f in idx.files()}
        for rel in _nested_files():
            assert rel in indexed and rel not in skipped, (rel, skipped.get(rel))  # indexed, parsed
        for name in ("after_py", "afterJs", "afterTs", "after_rs", "afterGo", "after_c", "afterJava"):
            assert idx.definitions(name), name  # the definition after the nesting is still found
        assert stats.files >= 8


def test_files_deleted_or_replaced_while_a_cold_build_reads_them(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    sources = sorted(p for p in (STDLIB / "email").rglob("*.py")) + sorted((STDLIB / "asyncio").rglob("*.py"))
    for i, src in enumerate(sources):
        write_tree(repo, {f"pkg{i % 7}/{src.parent.name}_{src.name}": src.read_text()})
    files = sorted(repo.rglob("*.py"))
    victims = files[::3]
    stop = threading.Event()

    def churn() -> None:  # delete, recreate with new content, replace atomically, over and over
        n = 0
        while not stop.is_set():
            for path in victims:
                n += 1
                if n % 3 == 0:
                    path.unlink(missing_ok=True)
                elif n % 3 == 1:
                    path.write_text(f"def churned_{n}():\n    pass\n")
                else:
                    tmp = path.with_suffix(".tmp")
                    tmp.write_text(f"def replaced_{n}():\n    pass\n")
                    tmp.replace(path)
            time.sleep(0.001)

    worker = threading.Thread(target=churn)
    worker.start()
    try:
        with Index.open(repo, tmp_path / "cache", IndexSettings()) as idx:
            idx.build()
            stop.set()
            worker.join()
            for path in victims:  # settle: every victim ends as a small file that exists
                path.write_text(f"def final_{path.stem}():\n    pass\n")
            idx.update_paths([str(p.relative_to(repo)) for p in victims])
            indexed = {f.path for f in idx.files()}
            for path in files:
                rel = str(path.relative_to(repo))
                assert rel in indexed, rel  # every file that exists is in the index
                assert idx.read_text(rel) == path.read_text()
            for path in victims:
                assert [d.path for d in idx.definitions(f"final_{path.stem}")] == [str(path.relative_to(repo))]
            survivor = next(p for p in files if p not in victims)
            assert {d.name for d in idx.outline(str(survivor.relative_to(repo)))}  # untouched files are whole
    finally:
        stop.set()
        worker.join()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_file_replaced_by_a_fifo_while_a_cold_build_reads_is_skipped(tmp_path: Path) -> None:
    """Discovery saw a regular file; by the time the build reads it, it is a named pipe. open() of a FIFO
    waits for a writer: the build hung forever (the server never became ready, and never exited)."""
    repo = write_tree(tmp_path / "repo", {f"m{i}.py": f"def func_{i}():\n    return {i}\n" for i in range(5)})
    victim = repo / "m4.py"  # read last (files are read in name order with one worker)

    def swap(done: int, total: int) -> None:
        if done == 1:
            victim.unlink()
            os.mkfifo(victim)

    with Index.open(repo, tmp_path / "cache", IndexSettings(workers=1)) as idx:
        builder = threading.Thread(target=idx.build, kwargs={"progress": swap}, daemon=True)
        builder.start()
        builder.join(60)
        hung = builder.is_alive()
        if hung:  # release the old code's blocked open() so the index can close
            os.close(os.open(victim, os.O_WRONLY | os.O_NONBLOCK))
            builder.join(10)
        assert not hung, "the build blocked opening a FIFO"
        assert {f.path for f in idx.files()} == {f"m{i}.py" for i in range(4)}
        assert idx.skipped()["m4.py"] == "not_regular_file"
