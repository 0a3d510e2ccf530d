"""Configuration layers and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import ConfigError, load_config, merged


def test_defaults_without_any_files(tmp_path: Path) -> None:
    cfg = load_config(tmp_path, environ={})
    assert cfg.model == ""
    assert cfg.backend == "llama"
    assert cfg.llama.flash_attn is True
    assert cfg.context.budget == 8192


def test_layers_override_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = tmp_path / "user.toml"
    user.write_text('model = "user.gguf"\n[llama]\nn_ctx = 4096\nthreads = 2\n')
    monkeypatch.setenv("CODERFLASH_CONFIG", str(user))
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / ".coderflash.toml").write_text('model = "workspace.gguf"\n[llama]\nn_ctx = 8192\n')
    cfg = load_config(ws, environ={})
    assert (cfg.model, cfg.llama.n_ctx, cfg.llama.threads) == ("workspace.gguf", 8192, 2)
    cfg = load_config(ws, environ={"CODERFLASH_MODEL": "env.gguf", "CODERFLASH_LLAMA__N_CTX": "16384"})
    assert (cfg.model, cfg.llama.n_ctx) == ("env.gguf", 16384)
    cfg = load_config(ws, environ={"CODERFLASH_MODEL": "env.gguf"}, overrides={"model": "init.gguf"})
    assert cfg.model == "init.gguf"
    assert merged(cfg, {"model": "changed.gguf"}, "didChangeConfiguration").model == "changed.gguf"


def test_model_spellings_are_the_contract(tmp_path: Path) -> None:
    (tmp_path / ".coderflash.toml").write_text('model = "Qwen/Repo-GGUF:Q8_0"\n')
    assert load_config(tmp_path, environ={}).model == "Qwen/Repo-GGUF:Q8_0"
    assert load_config(None, environ={"CODERFLASH_MODEL": "a.gguf"}).model == "a.gguf"
    assert load_config(None, environ={}, overrides={"model": "b.gguf"}).model == "b.gguf"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[llama]\nn_ctx = \"big\"\n", "llama.n_ctx"),
        ("[llama]\nkv_cache_type = \"q3\"\n", "llama.kv_cache_type"),
        ("[context]\nbudget = 10\n", "context.budget"),
        ("modle = \"x\"\n", "modle"),
        ("backend = \"cloud\"\n", "backend"),
        ("[llama]\nflash_attn = 3\n", "llama.flash_attn"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, text: str, needle: str) -> None:
    (tmp_path / ".coderflash.toml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, environ={})
    message = str(info.value)
    assert needle in message and "\n" not in message


def test_bad_environment_value_names_variable_source(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"llama.n_ctx \(from environment\)"):
        load_config(tmp_path, environ={"CODERFLASH_LLAMA__N_CTX": "lots"})


def test_malformed_toml_is_reported(tmp_path: Path) -> None:
    (tmp_path / ".coderflash.toml").write_text("model = \n")
    with pytest.raises(ConfigError, match="cannot parse"):
        load_config(tmp_path, environ={})


def test_cache_dir_defaults_to_platform_dir(tmp_path: Path) -> None:
    cfg = load_config(tmp_path, environ={})
    assert "coderflash" in str(cfg.cache_path)
    cfg = load_config(tmp_path, environ={"CODERFLASH_CACHE_DIR": str(tmp_path / "c")})
    assert cfg.cache_path == tmp_path / "c"


def test_unrelated_environment_variables_are_ignored(tmp_path: Path) -> None:
    cfg = load_config(tmp_path, environ={"CODERFLASH_SOMETHING_ELSE": "1", "CODERFLASH_MODEL": "m.gguf"})
    assert cfg.model == "m.gguf"
