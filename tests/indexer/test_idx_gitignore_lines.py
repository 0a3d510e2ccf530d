"""Ignore files that git accepts must never break or stall the index.

Git treats a line it cannot use as inert and matches runs of ``*`` in linear
time; pathspec raised for the whole file on the former and backtracked
exponentially on the latter (the index failed, or the server pinned a core).
Expected results below are what ``git status --ignored`` reports for the same tree.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from indexer import Index, IndexSettings

from idx_helpers import write_tree

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_unparsable_gitignore_lines_are_skipped_and_the_rest_still_apply(
        repo: Path, cache_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_tree(repo, {
        ".gitignore": "*.log\n!\n\\\nfoo\\\n",
        "sub/.gitignore": "!\n*.tmp\n",
        "x.log": "dropped\n",
        "main.py": "def main():\n    pass\n",
        "foo": "kept: 'foo\\' matches nothing in git\n",
        "sub/a.tmp": "dropped by the nested .gitignore\n",
        "sub/b.py": "x = 1\n",
        "c.bak": "dropped by settings\n",
    })
    caplog.set_level(logging.WARNING, logger="indexer")
    with Index.open(repo, cache_dir, IndexSettings(extra_ignore=["!", "*.bak"], workers=1)) as idx:
        idx.build()
        assert {f.path for f in idx.files()} == {"main.py", "foo", "sub/b.py"}
    warned = [r.getMessage() for r in caplog.records if "unusable pattern" in r.getMessage()]
    assert any(".gitignore:2" in m and "'!'" in m for m in warned), warned
    assert any(".gitignore:3" in m for m in warned), warned
    assert any(".gitignore:4" in m and "foo" in m for m in warned), warned
    assert any(os.path.join("sub", ".gitignore") + ":1" in m for m in warned), warned
    assert any("extra_ignore:1" in m for m in warned), warned


def test_runs_of_stars_match_like_git_without_stalling(repo: Path, cache_dir: Path) -> None:
    write_tree(repo, {
        ".gitignore": "*" * 40 + "x\n****.tmp\n",
        "sub/.gitignore": "*" * 12 + "y.py\n",
        "shop/payment_providers/international_settlement_0.py": "def settle():\n    pass\n",
        "shop/payment_providers/settlementx": "dropped\n",
        "a.tmp": "dropped\n",
        "b.py": "x = 1\n",
        "sub/keep.py": "x = 1\n",
        "sub/dropy.py": "dropped\n",
        "sub/c.tmp": "dropped\n",
        "notes.bak": "dropped by settings\n",
    })
    # In a child process with a deadline: the old exponential backtracking never returns.
    script = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(REPO_ROOT)!r})\n"
        "from indexer import Index, IndexSettings\n"
        f"s = IndexSettings(extra_ignore=[{'*' * 20 + '.bak'!r}], workers=1)\n"
        f"with Index.open({str(repo)!r}, {str(cache_dir)!r}, s) as idx:\n"
        "    idx.build()\n"
        "    print(json.dumps(sorted(f.path for f in idx.files())))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("building the index with a run of '*' in .gitignore did not finish in 30 s")
    assert proc.returncode == 0, err
    assert json.loads(out.strip().splitlines()[-1]) == [
        "b.py", "shop/payment_providers/international_settlement_0.py", "sub/keep.py"]
