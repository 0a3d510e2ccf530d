"""The watcher keeps following the disk when the tree itself changes shape: directories renamed or swapped,
directories an ignore file stops ignoring, a directory that becomes readable, the root deleted or renamed
away and back, and changes made before the watches existed. (Found by probing `coderflash serve`.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from indexer import Index, IndexSettings

from idx_helpers import unprivileged_ids, wait_for, write_tree

BASE = {
    "pkg/__init__.py": "",
    "pkg/a.py": "def alpha():\n    return 1\n",
    "lib/util.py": "def util():\n    return 2\n",
}
SETTLE_S = 10.0  # generous: each step is applied within a second; a step never applied fails after this


def _paths(idx: Index) -> set[str]:
    return {f.path for f in idx.files()}


def _defined(idx: Index, name: str, path: str) -> bool:
    return [d.path for d in idx.definitions(name)] == [path]


@pytest.fixture
def watched(repo: Path, cache_dir: Path):
    write_tree(repo, BASE)
    index = Index.open(repo, cache_dir, IndexSettings(workers=1, debounce_s=0.02))
    index.build()
    yield index
    index.close()


def test_changes_made_before_watching_began_are_indexed(watched: Index, repo: Path) -> None:
    """The server starts watching after its cold build: what changed meanwhile raised no event for anyone."""
    (repo / "pkg/during_build.py").write_text("def during_build():\n    pass\n")
    (repo / "lib/util.py").write_text("def util_edited():\n    return 3\n")
    watched.start_watching()
    assert wait_for(lambda: _defined(watched, "during_build", "pkg/during_build.py"), timeout=SETTLE_S)
    assert wait_for(lambda: _defined(watched, "util_edited", "lib/util.py"), timeout=SETTLE_S)


def test_a_directory_renamed_or_moved_away_leaves_its_name_to_the_next_one(watched: Index, repo: Path) -> None:
    """inotify watches inodes: the watch of a renamed directory stayed booked under the old name, so a new
    directory of that name was taken as watched already and files written into it later were never seen."""
    watched.start_watching()
    os.rename(repo / "pkg", repo / "pkg_old")
    (repo / "pkg").mkdir()
    moved = {"pkg_old/__init__.py", "pkg_old/a.py", "lib/util.py"}
    assert wait_for(lambda: _paths(watched) == moved, timeout=SETTLE_S)
    (repo / "pkg/new.py").write_text("def in_new_pkg():\n    pass\n")
    assert wait_for(lambda: _defined(watched, "in_new_pkg", "pkg/new.py"), timeout=SETTLE_S)
    (repo / "pkg_old/later.py").write_text("def in_old_pkg():\n    pass\n")
    assert wait_for(lambda: _defined(watched, "in_old_pkg", "pkg_old/later.py"), timeout=SETTLE_S)

    os.rename(repo / "lib", repo.parent / "lib_away")  # out of the workspace; another directory moved in
    other = write_tree(repo.parent / "lib_new", {"first.py": "def first():\n    pass\n"})
    os.rename(other, repo / "lib")
    assert wait_for(lambda: _defined(watched, "first", "lib/first.py") and not watched.definitions("util"),
                    timeout=SETTLE_S)
    (repo / "lib/second.py").write_text("def second():\n    pass\n")
    assert wait_for(lambda: _defined(watched, "second", "lib/second.py"), timeout=SETTLE_S)


def test_a_directory_no_longer_ignored_is_watched(repo: Path, cache_dir: Path) -> None:
    write_tree(repo, {**BASE, ".gitignore": "pkg/\n"})
    with Index.open(repo, cache_dir, IndexSettings(workers=1, debounce_s=0.02)) as idx:
        idx.build()
        idx.start_watching()
        assert "pkg" not in idx.watched_directories()
        (repo / ".gitignore").write_text("")
        assert wait_for(lambda: _defined(idx, "alpha", "pkg/a.py"), timeout=SETTLE_S)
        (repo / "pkg/after.py").write_text("def after_unignore():\n    pass\n")
        assert wait_for(lambda: _defined(idx, "after_unignore", "pkg/after.py"), timeout=SETTLE_S)


def test_git_info_exclude_changes_are_followed(repo: Path, cache_dir: Path) -> None:
    """``.git/info/exclude`` is an ignore file like ``.gitignore`` (discovery reads it), but the watcher left
    everything under ``.git`` out: excluding or un-excluding a directory there took effect only at restart."""
    write_tree(repo, {**BASE, ".git/info/exclude": "lib/\n", ".git/HEAD": "ref: refs/heads/main\n"})
    with Index.open(repo, cache_dir, IndexSettings(workers=1, debounce_s=0.02)) as idx:
        idx.build()
        idx.start_watching()
        assert "lib/util.py" not in _paths(idx)
        (repo / ".git/info/exclude").write_text("pkg/\n")
        assert wait_for(lambda: _defined(idx, "util", "lib/util.py") and "pkg/a.py" not in _paths(idx),
                        timeout=SETTLE_S), sorted(_paths(idx))
        (repo / "lib/later.py").write_text("def after_exclude():\n    pass\n")  # the un-excluded tree is watched
        assert wait_for(lambda: _defined(idx, "after_exclude", "lib/later.py"), timeout=SETTLE_S)
        (repo / ".git/HEAD").write_text("ref: refs/heads/other\n")  # the rest of .git still is not indexed
        assert not wait_for(lambda: any(p.startswith(".git") for p in _paths(idx)), timeout=0.5)


def test_the_root_deleted_and_recreated_is_followed(watched: Index, repo: Path) -> None:
    watched.start_watching()
    shutil.rmtree(repo)
    assert wait_for(lambda: not _paths(watched), timeout=SETTLE_S)
    write_tree(repo, {"fresh/start.py": "def fresh_start():\n    pass\n"})
    assert wait_for(lambda: _defined(watched, "fresh_start", "fresh/start.py"), timeout=SETTLE_S)
    (repo / "fresh/more.py").write_text("def more():\n    pass\n")
    assert wait_for(lambda: _defined(watched, "more", "fresh/more.py"), timeout=SETTLE_S)


def test_the_root_renamed_away_and_back_is_followed(watched: Index, repo: Path) -> None:
    """Renamed away, the root holds nothing (the index empties: its files are not at the root any more);
    what changed while it was away is there once it is back."""
    watched.start_watching()
    away = repo.parent / "renamed_away"
    os.rename(repo, away)
    assert wait_for(lambda: not _paths(watched), timeout=SETTLE_S)
    (away / "pkg/while_away.py").write_text("def while_away():\n    pass\n")
    os.rename(away, repo)
    assert wait_for(lambda: _defined(watched, "while_away", "pkg/while_away.py"), timeout=SETTLE_S)
    assert _defined(watched, "alpha", "pkg/a.py")
    (repo / "lib/back.py").write_text("def back():\n    pass\n")
    assert wait_for(lambda: _defined(watched, "back", "lib/back.py"), timeout=SETTLE_S)


# Runs as 'nobody' when the tests run as root (chmod 000 does not stop root): it builds a repository whose
# pkg/ is unreadable, watches it, makes pkg/ readable, then writes a file there and waits for it.
_UNREADABLE_THEN_READABLE = """
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
from indexer import Index, IndexSettings
from indexer.languages import load
import inotify_simple  # noqa: F401 - imported while the interpreter's files are readable (see below)
load("python")
if os.getuid() == 0:  # the interpreter under /root is unreadable from here on: everything is imported above
    os.setgroups([]); os.setgid(int(sys.argv[4])); os.setuid(int(sys.argv[3]))
base = sys.argv[2]
repo = os.path.join(base, "repo")
os.makedirs(os.path.join(repo, "pkg"))
with open(os.path.join(repo, "pkg", "a.py"), "w") as f:
    f.write("def alpha():\\n    return 1\\n")
os.chmod(os.path.join(repo, "pkg"), 0)
idx = Index.open(repo, os.path.join(base, "cache"), IndexSettings(workers=1, debounce_s=0.02))
idx.build()
idx.start_watching()
before = sorted(f.path for f in idx.files())
os.chmod(os.path.join(repo, "pkg"), 0o755)
deadline = time.monotonic() + float(sys.argv[5])
while not idx.definitions("alpha") and time.monotonic() < deadline:
    time.sleep(0.02)
with open(os.path.join(repo, "pkg", "later.py"), "w") as f:
    f.write("def later():\\n    pass\\n")
while not idx.definitions("later") and time.monotonic() < deadline:
    time.sleep(0.02)
print(json.dumps({"before": before, "after": sorted(f.path for f in idx.files())}))
idx.close()
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="POSIX permissions; inotify")
def test_a_directory_readable_again_is_watched(tmp_path: Path) -> None:
    """A directory unreadable when the watches were set up (inotify refuses to watch it) and readable later:
    its files were re-indexed, but it never got a watch, so every later change inside it was missed."""
    uid, gid = unprivileged_ids()
    base = Path(tempfile.mkdtemp(prefix="cf-watch-perm-"))
    try:
        base.chmod(0o777)
        argv = [sys.executable, "-c", _UNREADABLE_THEN_READABLE, str(Path(__file__).resolve().parents[2]), str(base),
                str(uid), str(gid), str(SETTLE_S)]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        result = json.loads(out.stdout.strip().splitlines()[-1])
        assert result["before"] == []  # nothing readable to index at first
        assert result["after"] == ["pkg/a.py", "pkg/later.py"], result
    finally:
        subprocess.run(["chmod", "-R", "u+rwx", str(base)], check=False)
        shutil.rmtree(base, ignore_errors=True)
