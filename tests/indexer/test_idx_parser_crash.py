"""A parser process that dies in the middle of a cold index (indexer/parse_pool.py): the build finishes, a
worker killed once costs a retry and nothing else, a file that kills its parser every time is skipped with
the reason "parser_crashed" and every other file is indexed. Before, the build waited forever for the lost
chunk. Real builds through ``coderflash index`` on hundreds of standard-library files; the deaths are real
SIGKILLs of the real worker processes (see tests/parser_crash_hook.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from parser_crash_hook import MARK, crash_env, no_worker_env

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lsp"))
from real_repos import COMMAND, copy_stdlib  # noqa: E402

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX only: workers are killed with SIGKILL")

_FIGURES = ("files", "definitions", "references", "imports")


def _index(root: Path, cache: Path, env: dict[str, str] | None = None) -> tuple[dict, str]:
    """``coderflash index --json``: its figures and what it logged."""
    proc = subprocess.run([COMMAND, "index", str(root), "--json"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "CODERFLASH_CACHE_DIR": str(cache), **(env or {})})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout), proc.stderr


def _poisoned(root: Path) -> None:
    (root / "poison.py").write_text(f'"""{MARK}"""\n\ndef poisoned():\n    return 1\n')


def test_a_worker_killed_once_costs_a_retry_and_nothing_else(tmp_path: Path) -> None:
    root = copy_stdlib(tmp_path / "repo", files=300)
    _poisoned(root)
    reference, _ = _index(root, tmp_path / "reference")
    flag = tmp_path / "crashed-once"
    stats, log = _index(root, tmp_path / "cache", crash_env(tmp_path / "hook", once_flag=flag))
    assert flag.exists(), "no parser worker met the mark: the test proved nothing"
    assert "a parser process was lost (attempt 1)" in log and "attempt 2" not in log, log
    assert {k: stats[k] for k in _FIGURES} == {k: reference[k] for k in _FIGURES}
    assert stats["skipped"] == reference["skipped"] == {}


def test_a_file_that_kills_its_parser_every_time_is_skipped_with_a_reason(tmp_path: Path) -> None:
    root = copy_stdlib(tmp_path / "repo", files=300)
    reference, _ = _index(root, tmp_path / "reference")
    _poisoned(root)
    stats, log = _index(root, tmp_path / "cache", crash_env(tmp_path / "hook"))
    assert "poison.py: its parser process died; the file is skipped" in log, log
    assert stats["skipped"] == {"parser_crashed": 1}
    assert {k: stats[k] for k in _FIGURES} == {k: reference[k] for k in _FIGURES}


def test_a_pool_that_cannot_start_a_worker_parses_in_process(tmp_path: Path) -> None:
    root = copy_stdlib(tmp_path / "repo", files=300)
    reference, _ = _index(root, tmp_path / "reference")
    stats, log = _index(root, tmp_path / "cache", no_worker_env(tmp_path / "hook"))
    assert "no parser process could be started (BrokenPipeError" in log, log
    assert {k: stats[k] for k in _FIGURES} == {k: reference[k] for k in _FIGURES}
    assert stats["skipped"] == reference["skipped"] == {}
