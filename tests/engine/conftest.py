"""Engine fixtures: backends and engines on the tiny synthesized model (real llama.cpp, < 1 MB)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import Config, LlamaConfig

STDLIB_FILE = Path(__import__("json").__file__).parent / "decoder.py"


def tiny_config(model: Path, cache: Path, n_ctx: int = 8192) -> Config:
    cfg = Config(model=str(model), cache_dir=str(cache))
    cfg.llama = LlamaConfig(n_ctx=n_ctx)
    return cfg


@pytest.fixture
def backend(tiny_model: Path, tmp_path: Path):
    from engine.llama_backend import LlamaBackend

    b = LlamaBackend(tiny_model, LlamaConfig(n_ctx=8192), kv_dir=tmp_path / "kv")
    yield b
    b.close()
