"""Inside an import/export list the real 0.5B model, left to itself, writes a name the list already holds or
closes the list; coderflash keeps its first name to one the list lacks and the listed module defines
(``engine/model/name_rule.py``, ``first_name.py``).

``examples/export_list_repo/src/index.ts`` re-exports every type of ``types.ts``; each case removes one line
of that list and puts the cursor on the emptied line, as a user adding the export would. The baseline is the
very prompt coderflash builds, decoded greedily without the rule (in process); the product path is
``coderflash serve`` over stdio, ``textDocument/inlineCompletion``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.config import Config
from engine.model.backend import GenerationRequest
from engine.service import Engine
from real_server import close_after_one_model_load, inline_completion, start_on

REPO = Path(__file__).resolve().parents[2] / "examples" / "export_list_repo"
# missing names where greedy decoding without the rule goes wrong (checked below, not assumed)
MISSING = ("JobOptions", "JobHandler")
COMPLETION = {"timeout_ms": 60_000, "latency_target": False}  # see test_real_coder_model's cross-file test


def _cut(text: str, missing: str) -> tuple[str, int, int]:
    """``text`` with the list item ``missing`` emptied, and the cursor after the indentation left there."""
    item = f"  {missing},\n"
    assert text.count(item) == 1
    cut = text.replace(item, "  \n")
    line = cut[:cut.index("  \n")].count("\n")
    return cut, line, 2


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(shutil.copytree(REPO, tmp_path_factory.mktemp("lists") / REPO.name))


def test_without_the_rule_the_model_repeats_a_listed_name_or_closes_the_list(real_coder_model: Path, repo: Path,
                                                                              tmp_path: Path) -> None:
    config = Config(model=str(real_coder_model), cache_dir=str(tmp_path / "cache"))
    config.completion.timeout_ms, config.completion.latency_target = 60_000, False
    engine = Engine(config, repo)
    try:
        engine.reindex()
        path = repo / "src" / "index.ts"
        for missing in MISSING:
            text, line, character = _cut(path.read_text(), missing)
            out = engine.complete(path, text, line, character, use_cache=False)
            rule = out.context.name_rule
            assert rule is not None and rule.required and missing in (rule.allowed or ())
            assert "JobId" in rule.banned and missing not in rule.banned
            fmt = engine.backend.prompt_format
            plain = engine.backend.generate(GenerationRequest(out.context.pieces, max_tokens=24,
                                                              stop_ids=fmt.stop_ids, stop_strings=("\n",)))
            first = plain.text.strip().split(",")[0].split()[0] if plain.text.strip() else ""
            assert first in rule.banned or first == "}", (missing, plain.text)
            assert out.completion.startswith(f"{missing},"), (missing, out.completion)
    finally:
        engine.close()


def test_an_export_list_completion_over_lsp_names_what_the_list_lacks(real_coder_model: Path, repo: Path,
                                                                      tmp_path: Path) -> None:
    server, index = start_on(repo, tmp_path / "cache", {"model": str(real_coder_model), "completion": COMPLETION},
                             60)
    try:
        assert index["files"] == 3, index
        path = repo / "src" / "index.ts"
        got = {}
        for missing in MISSING:
            text, line, character = _cut(path.read_text(), missing)
            got[missing] = inline_completion(server, path, text, line, character)
        close_after_one_model_load(server)
    finally:
        server.proc.kill()
    assert all(got[m].strip().startswith(f"{m},") for m in MISSING), got
