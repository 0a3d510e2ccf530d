"""Fixtures for the context engine: small real repositories on disk, a real index, vocab GGUFs."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctx_helpers import FAMILY_TOKENS, family_vocabulary, write_repo

from engine.model.synth import synthesize


@pytest.fixture(scope="session")
def family_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("family_models")
    return {family: synthesize(out / f"{family}.gguf", "tiny", vocab=family_vocabulary(family))
            for family in FAMILY_TOKENS}


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    return write_repo(tmp_path / "repo")


@pytest.fixture()
def index(repo: Path, tmp_path: Path):
    from indexer import Index, IndexSettings

    idx = Index.open(repo, tmp_path / "cache", IndexSettings())
    idx.build()
    yield idx
    idx.close()
