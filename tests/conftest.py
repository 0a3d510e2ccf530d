"""Shared fixtures: the tiny synthesized GGUF (built once per session), the real Qwen2.5-Coder-0.5B GGUF
(when present), a sample repository, an isolated config/cache so tests never read the developer's own
settings."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Mapping

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLE_REPO = REPO / "examples" / "sample_repo"

# The environment as the developer started pytest, read before ``isolated_environment`` removes every
# ``CODERFLASH_*`` variable: where the real coder model is comes from the developer's machine.
STARTING_ENVIRON = dict(os.environ)
REAL_CODER_MODEL_PULL = "coderflash model pull qwen2.5-coder-0.5b"


def find_real_coder_model(environ: Mapping[str, str] = STARTING_ENVIRON) -> Path | None:
    """The real Qwen2.5-Coder-0.5B-Instruct GGUF for the real-model tests, or None.

    ``CODERFLASH_TEST_CODER_MODEL`` names a file; else the model ``coderflash model pull qwen2.5-coder-0.5b``
    put into the models directory (``scripts/install.sh`` pulls it, so README's test command has it).
    """
    from engine.model.pypi_models import lookup, pulled_path

    named = environ.get("CODERFLASH_TEST_CODER_MODEL")
    if named:
        return Path(named) if Path(named).is_file() else None
    return pulled_path(lookup("qwen2.5-coder-0.5b"))


@pytest.fixture(scope="session")
def real_coder_model() -> Path:
    """The real Qwen2.5-Coder-0.5B-Instruct GGUF (a real code model with FIM tokens), or a skip that says
    how to get it."""
    path = find_real_coder_model()
    if path is None:
        named = STARTING_ENVIRON.get("CODERFLASH_TEST_CODER_MODEL")
        where = f"CODERFLASH_TEST_CODER_MODEL={named} is not a file" if named else "no real coder model found"
        pytest.skip(f"{where}: run `{REAL_CODER_MODEL_PULL}` (or set CODERFLASH_TEST_CODER_MODEL to its GGUF)")
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny qwen3moe GGUF synthesized with the same code as `coderflash model synth`."""
    from engine.model.synth import synthesize

    return synthesize(tmp_path_factory.mktemp("models") / "tiny.gguf", "tiny", seed=0)


@pytest.fixture(scope="session", autouse=True)
def isolated_environment(tmp_path_factory: pytest.TempPathFactory):
    """No user config, a private cache dir, no network for Hugging Face (pulled models stay where they are)."""
    home = tmp_path_factory.mktemp("home")
    saved = dict(os.environ)
    for key in list(os.environ):
        if key.startswith("CODERFLASH_") and key != "CODERFLASH_MODELS_DIR":  # pulled models stay findable
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
