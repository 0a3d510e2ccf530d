"""Fixtures for the indexer tests: real files in tmp dirs, real grammars, real SQLite."""

from __future__ import annotations

import sysconfig
import time
from pathlib import Path
from typing import Callable

import pytest

SAMPLES = Path(__file__).resolve().parent / "samples"
STDLIB = Path(sysconfig.get_paths()["stdlib"])


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)
    return root


def wait_for(pred: Callable[[], bool], timeout: float = 1.0, interval: float = 0.01) -> bool:
    """Poll until pred() is true; returns False on timeout (never sleeps blindly)."""
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    d = tmp_path / "cache"
    d.mkdir()
    return d


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    d = tmp_path / "repo"
    d.mkdir()
    return d
