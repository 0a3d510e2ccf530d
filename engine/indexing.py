"""The engine's door to the indexer: open the per-workspace index with settings from the config."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from engine.config import Config


def index_settings(config: Config):
    from indexer import IndexSettings

    settings = IndexSettings(max_file_size=config.index.max_file_size)
    if config.index.secret_globs:
        settings.secret_globs = list(settings.secret_globs) + list(config.index.secret_globs)
    if config.index.extra_ignore:
        settings.extra_ignore = list(config.index.extra_ignore)
    if config.index.watch_limit > 0:
        settings.watch_limit = config.index.watch_limit
    return settings


def open_index(root: Path, config: Config):
    from indexer import Index

    return Index.open(root, config.cache_path, index_settings(config))


def run_index(root: Path, config: Config, progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Index ``root`` (cold or warm) and return the ``coderflash index --json`` object."""
    index = open_index(root, config)
    try:
        return index.build(progress=progress).to_json()
    finally:
        index.close()
