"""Helpers shared by the engine tests (a plain module: tests/ directories are not packages, so that
`engine` and `indexer` always import the real packages)."""

from __future__ import annotations

from pathlib import Path

from engine.config import Config, LlamaConfig
from engine.model.backend import GenerationRequest
from engine.model.name_rule import NameRule

STDLIB_FILE = Path(__import__("json").__file__).parent / "decoder.py"


def tiny_config(model: Path, cache: Path, n_ctx: int = 8192) -> Config:
    cfg = Config(model=str(model), cache_dir=str(cache))
    cfg.llama = LlamaConfig(n_ctx=n_ctx)
    return cfg


def generate_infill(backend, path: str, prefix: str, suffix: str, rule: NameRule | None, max_tokens: int) -> str:
    """Greedy text for a one-file FIM prompt of ``path`` under ``rule`` (the decoder's first-name search)."""
    fmt = backend.prompt_format
    pieces = [*fmt.repo_header("repo"), *fmt.current_file_header(path), *fmt.infill(prefix, suffix)]
    return backend.generate(GenerationRequest(pieces, max_tokens=max_tokens, stop_ids=fmt.stop_ids,
                                              name_rule=rule)).text
