"""Helpers shared by the engine tests (a plain module: tests/ directories are not packages, so that
`engine` and `indexer` always import the real packages)."""

from __future__ import annotations

from pathlib import Path

from engine.config import Config, LlamaConfig

STDLIB_FILE = Path(__import__("json").__file__).parent / "decoder.py"


def tiny_config(model: Path, cache: Path, n_ctx: int = 8192) -> Config:
    cfg = Config(model=str(model), cache_dir=str(cache))
    cfg.llama = LlamaConfig(n_ctx=n_ctx)
    return cfg
