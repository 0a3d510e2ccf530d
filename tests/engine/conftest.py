"""Engine fixtures: backends and engines on the tiny synthesized model (real llama.cpp, < 1 MB)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import LlamaConfig


@pytest.fixture
def backend(tiny_model: Path, tmp_path: Path):
    from engine.model.llama_backend import LlamaBackend

    b = LlamaBackend(tiny_model, LlamaConfig(n_ctx=8192), kv_dir=tmp_path / "kv")
    yield b
    b.close()
