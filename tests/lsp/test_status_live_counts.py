"""``coderflash/status`` ``workspaces[].index.files`` / ``definitions`` follow the index as the file watcher
changes it, over stdio with the real server on a copy of real code (the standard library). They were a
snapshot of the last build: after files were added and deleted on disk (or the whole root was deleted) the
status went on reporting the old figures (301 files for a root that no longer existed)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from rawlsp import RawLspProcess
from real_repos import copy_stdlib

WATCH_TIMEOUT_S = 120  # generous: the watcher applies a batch a fraction of a second after the last event

ADDED_MODULE = '''"""A module written while the server runs."""


class LedgerEntry:
    def __init__(self, amount):
        self.amount = amount

    def doubled(self):
        return self.amount * 2


def total_of(entries):
    return sum(e.amount for e in entries)


def largest(entries):
    return max(entries, key=lambda e: e.amount)
'''


@pytest.fixture
def server(tmp_path: Path):
    process = RawLspProcess(env={"CODERFLASH_CACHE_DIR": str(tmp_path / "server-cache")})
    yield process
    if process.proc.poll() is None:
        process.proc.kill()


def _index(server: RawLspProcess) -> dict[str, Any]:
    return server.call("coderflash/status", {}, timeout=60)["result"]["workspaces"][0]["index"]


def _start(server: RawLspProcess, repo: Path, tiny_model: Path) -> dict[str, Any]:
    server.initialize(repo.as_uri(), {"model": str(tiny_model), "llama": {"n_ctx": 4096}})
    index = server.wait_for_index(timeout=180)
    assert index["state"] == "ready", index
    deadline = time.monotonic() + WATCH_TIMEOUT_S
    while not (index := _index(server))["watch"]:  # changes are followed once the watches exist
        assert time.monotonic() < deadline, f"the server never started watching: {index}"
        time.sleep(0.2)
    return index


def _disk_figures(repo: Path, cache: Path) -> dict[str, int]:
    """What an index built from scratch of the repository as it is on disk now holds."""
    from indexer import Index

    with Index.open(repo, cache) as fresh:
        stats = fresh.build()
    return {"files": stats.files, "definitions": stats.definitions}


def _wait_for_figures(server: RawLspProcess, expected: dict[str, int]) -> dict[str, Any]:
    """Polls the status until its figures are ``expected``; fails, with the last ones, after the timeout."""
    deadline = time.monotonic() + WATCH_TIMEOUT_S
    while True:
        index = _index(server)
        if {k: index.get(k) for k in expected} == expected:
            return index
        assert time.monotonic() < deadline, f"status still reports {index}, the disk holds {expected}"
        time.sleep(0.25)


def test_status_figures_follow_files_added_and_deleted_on_disk(server: RawLspProcess, tiny_model: Path,
                                                               tmp_path: Path) -> None:
    repo = copy_stdlib(tmp_path / "stdlib", files=40)
    before = _start(server, repo, tiny_model)
    assert (before["files"], before["definitions"]) == tuple(_disk_figures(repo, tmp_path / "before").values())

    (repo / "ledger_entries.py").write_text(ADDED_MODULE)
    deleted = sorted(repo.rglob("*.py"))[:2]
    for path in deleted:
        path.unlink()
    expected = _disk_figures(repo, tmp_path / "after")
    assert expected["files"] == before["files"] - 1 == len(list(repo.rglob("*.py"))), expected
    assert expected["definitions"] != before["definitions"], expected

    index = _wait_for_figures(server, expected)
    assert index["state"] == "ready" and index["watch"], index
    assert {"state", "done", "total", "files", "definitions", "elapsed_s", "watch"} <= index.keys(), index
    assert server.close() == 0


def test_status_figures_empty_when_the_root_is_deleted(server: RawLspProcess, tiny_model: Path,
                                                      tmp_path: Path) -> None:
    repo = copy_stdlib(tmp_path / "stdlib", files=30)
    before = _start(server, repo, tiny_model)
    assert before["files"] == 30 and before["definitions"] > 0, before

    shutil.rmtree(repo)

    _wait_for_figures(server, {"files": 0, "definitions": 0})
    assert server.close() == 0
