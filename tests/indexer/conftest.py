"""Fixtures for the indexer tests: real files in tmp dirs, real grammars, real SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

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
