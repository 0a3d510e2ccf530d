"""``Index.row_counts``: the files and definitions the index holds now, kept by its writers so that a status an
editor polls costs no scan. Checked against ``Index.stats()`` (which counts the rows with SQL) after every
kind of change: builds, updates of named paths, editor buffers, and another connection writing the file."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from indexer import Index, IndexSettings

from idx_helpers import write_tree

BASE = {
    "pkg/__init__.py": "",
    "pkg/a.py": "from .b import helper\n\ndef alpha():\n    return helper()\n\nclass Alpha:\n    def run(self):\n"
                "        return 1\n",
    "pkg/b.py": "def helper():\n    return 1\n",
    "lib/util.py": "def one():\n    return 1\n\ndef two():\n    return 2\n",
    "README.md": "# readme\n",
}


@pytest.fixture
def idx(repo: Path, cache_dir: Path):
    write_tree(repo, BASE)
    index = Index.open(repo, cache_dir, IndexSettings(workers=1))
    index.build()
    yield index
    index.close()


def _counted(idx: Index) -> dict[str, int]:
    stats = idx.stats()
    return {"files": stats.files, "definitions": stats.definitions}


def test_counts_follow_builds_and_updates(idx: Index, repo: Path) -> None:
    assert idx.row_counts() == _counted(idx) == {"files": 5, "definitions": 6}

    (repo / "pkg/b.py").write_text("def helper():\n    return 1\n\ndef helper2():\n    return 2\n")
    (repo / "pkg/c.py").write_text("class Gamma:\n    def g(self):\n        pass\n")
    (repo / "README.md").unlink()
    idx.update_paths(["pkg/b.py", "pkg/c.py", "README.md"])
    assert idx.row_counts() == _counted(idx) == {"files": 5, "definitions": 9}

    shutil.rmtree(repo / "lib")
    idx.update_paths(["lib"])
    assert idx.row_counts() == _counted(idx) == {"files": 4, "definitions": 7}

    (repo / "pkg/a.py").write_text("def alpha():\n    return 0\n")
    (repo / "new.py").write_text("def fresh():\n    pass\n")
    idx.build()  # a warm build: one changed, one new
    assert idx.row_counts() == _counted(idx) == {"files": 5, "definitions": 6}


def test_counts_follow_editor_buffers(idx: Index, repo: Path) -> None:
    idx.set_overlay("pkg/unsaved.py", "def draft():\n    pass\n\ndef draft2():\n    pass\n")
    idx.set_overlay("pkg/b.py", "def helper():\n    return 1\n\ndef extra():\n    return 3\n")
    assert idx.row_counts() == _counted(idx) == {"files": 6, "definitions": 9}
    idx.clear_overlay("pkg/unsaved.py")  # never saved: it goes
    idx.clear_overlay("pkg/b.py")  # back to the disk's text
    assert idx.row_counts() == _counted(idx) == {"files": 5, "definitions": 6}


def test_counts_follow_another_connection(idx: Index, repo: Path, cache_dir: Path) -> None:
    """A second server (another editor) or `coderflash index` on the same database: its commits are counted."""
    (repo / "pkg/c.py").write_text("def gamma():\n    pass\n\ndef delta():\n    pass\n")
    (repo / "README.md").unlink()
    (repo / "pkg/d.py").write_text("def epsilon():\n    pass\n")
    with Index.open(repo, cache_dir, IndexSettings(workers=1)) as other:
        other.update_paths(["pkg/c.py", "README.md", "pkg/d.py"])
        assert other.row_counts() == _counted(other) == {"files": 6, "definitions": 9}
    assert idx.row_counts() == _counted(idx) == {"files": 6, "definitions": 9}


def test_counts_do_not_wait_for_a_writer(idx: Index) -> None:
    """A build holds the store's lock for its whole run: a status poll answers the last committed counts."""
    held, release = threading.Event(), threading.Event()

    def writer() -> None:
        with idx.store.lock:
            held.set()
            release.wait(60)

    holder = threading.Thread(target=writer)
    holder.start()
    assert held.wait(60)
    answers: list[dict[str, int]] = []
    reader = threading.Thread(target=lambda: answers.append(idx.row_counts()))
    reader.start()
    reader.join(60)
    release.set()
    holder.join(60)
    assert answers == [{"files": 5, "definitions": 6}], "row_counts waited for the lock"
