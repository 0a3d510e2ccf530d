"""Shared fixtures: the tiny synthesized GGUF (built once per session), a sample repository, an isolated
config/cache so tests never read the developer's own settings."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLE_REPO = REPO / "examples" / "sample_repo"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny qwen3moe GGUF synthesized with the same code as `coderflash model synth`."""
    from engine.model.synth import synthesize

    return synthesize(tmp_path_factory.mktemp("models") / "tiny.gguf", "tiny", seed=0)


@pytest.fixture(scope="session", autouse=True)
def isolated_environment(tmp_path_factory: pytest.TempPathFactory):
    """No user config, a private cache dir, no network for Hugging Face."""
    home = tmp_path_factory.mktemp("home")
    saved = dict(os.environ)
    for key in list(os.environ):
        if key.startswith("CODERFLASH_"):
            del os.environ[key]
    os.environ["CODERFLASH_CONFIG"] = str(home / "config.toml")
    os.environ["CODERFLASH_CACHE_DIR"] = str(home / "cache")
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_HOME"] = str(home / "hf")
    os.environ["XDG_STATE_HOME"] = str(home / "state")
    yield home
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def sample_repo(tmp_path: Path) -> Path:
    """A writable copy of the sample repository."""
    target = tmp_path / "sample_repo"
    shutil.copytree(SAMPLE_REPO, target)
    return target
