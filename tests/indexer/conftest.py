"""Fixtures for the indexer tests: real files in tmp dirs, real grammars, real SQLite."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# tests/ is on sys.path (rootdir conftest), so this very directory would make ``indexer`` a
# namespace package shadowing the real one; put the repository root first and drop the stale entry.
_REPO = str(Path(__file__).resolve().parents[2])
if sys.path[:1] != [_REPO]:
    sys.path.insert(0, _REPO)
_mod = sys.modules.get("indexer")
if _mod is not None and getattr(_mod, "__file__", None) is None:
    for _name in [n for n in sys.modules if n == "indexer" or n.startswith("indexer.")]:
        del sys.modules[_name]


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
