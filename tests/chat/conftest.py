"""Fixtures shared by the chat tool tests: ``env`` is the tools' environment over an index built from the
test module's own ``repo`` fixture (each module plants what it needs in its copy of the sample)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.chat.tools import ToolEnv
from engine.config import Config
from engine.indexing import open_index


@pytest.fixture
def env(repo: Path, tmp_path: Path):
    config = Config(cache_dir=str(tmp_path / "cache"))
    index = open_index(repo, config)
    index.build()
    yield ToolEnv(roots=[repo], config=config, index=lambda: index)
    index.close()
