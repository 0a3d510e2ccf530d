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


def _default_model_or_skip() -> Path:
    from engine.model.pypi_models import DEFAULT_PYPI_MODEL, PYPI_MODELS, pulled_path

    pulled = pulled_path(PYPI_MODELS[DEFAULT_PYPI_MODEL])
    if pulled is None:
        pytest.skip(f"the default model is not pulled: run `coderflash model pull {DEFAULT_PYPI_MODEL}` "
                    f"(scripts/install.sh does)")
    return pulled


def test_readme_first_command_completes_with_the_default_code_model(sample_repo: Path) -> None:
    """README's first command: the real Qwen2.5-Coder-0.5B completes `total = ` in main() from pricing.py."""
    _default_model_or_skip()
    out = run("complete", str(sample_repo / "main.py"), "--line", "15", "--character", "12", "--show-context")
    assert out.returncode == 0, out.stderr
    completion = out.stdout.split("--- completion ---\n", 1)[1].split("\n--- ", 1)[0]
    assert completion.startswith("checkout_total(cart)"), completion
    assert "model=Qwen2.5 Coder 0.5B" in out.stdout
    # Told clearly which model is in use and how to get Qwen3-Coder.
    assert "qwen2.5-coder-0.5b" in out.stderr and "coderflash model pull" in out.stderr
    assert "Qwen3-Coder" in out.stderr


def test_complete_command_is_not_cut_by_the_keystroke_deadline(sample_repo: Path, tiny_model: Path) -> None:
    # completion.timeout_ms is the editor's per-keystroke deadline; a user at a terminal waits for the answer.
    out = run("complete", str(sample_repo / "main.py"), "--line", "15", "--character", "12", "--json",
              "--model", str(tiny_model), env={"CODERFLASH_COMPLETION__TIMEOUT_MS": "1"})
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["finish_reason"] != "deadline" and data["generated_tokens"] > 0


def test_model_pull_of_an_unknown_short_name_is_one_clear_line() -> None:
    out = run("model", "pull", "qwen9-coder")
    assert out.returncode == 1
    assert out.stderr.startswith("coderflash: error: unknown model name 'qwen9-coder'")
    assert out.stderr.strip().count("\n") == 0
    assert "qwen2.5-coder-0.5b" in out.stderr and "qwen2.5-coder-1.5b" in out.stderr


def test_model_pull_and_list_name_the_pypi_models(tmp_path: Path) -> None:
    """`model pull NAME` is idempotent on a verified file (no network) and `model list` shows it."""
    pulled = _default_model_or_skip()
    models = tmp_path / "models"
    models.mkdir()
    for name in (pulled.name, pulled.name + ".sha256"):
        source = pulled.parent / name
        if not source.exists():
            pytest.skip(f"{source} is missing: pull the default model with `coderflash model pull`")
        (models / name).symlink_to(source)
    env = {"CODERFLASH_MODELS_DIR": str(models)}
    out = run("model", "pull", "qwen2.5-coder-0.5b", env=env)
    assert out.returncode == 0, out.stderr
    assert "already pulled" in out.stderr and f"pulled {models / pulled.name}" in out.stdout
    out = run("model", "list", env=env)
    assert out.returncode == 0, out.stderr
    line = next(line for line in out.stdout.splitlines() if line.startswith("qwen2.5-coder-0.5b"))
    assert "pypi" in line and str(models / pulled.name) in line


def test_doctor_names_the_default_model_and_how_to_get_qwen3_coder(sample_repo: Path) -> None:
    pulled = _default_model_or_skip()
    out = run("doctor", "--root", str(sample_repo), "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    data = json.loads(out.stdout)
    assert data["model"] | {"configured": ""} == {"configured": "", "name": "qwen2.5-coder-0.5b", "source": "pypi",
                                                   "path": str(pulled), "small_default": True}
    assert "coderflash model pull" in data["note"] and "Qwen3-Coder" in data["note"]


def test_doctor_reports(sample_repo: Path, tiny_model: Path) -> None:
    out = run("doctor", "--root", str(sample_repo), "--json", env={"CODERFLASH_MODEL": str(tiny_model)})
    assert out.returncode == 0, out.stdout + out.stderr
    data = json.loads(out.stdout)
    assert data["model"]["source"] == "path" and data["problems"] == []
    assert data["model"]["name"] == tiny_model.name and "Qwen3-Coder" in data["note"]
    assert "gpu_offload" in data
    out = run("doctor", "--root", str(sample_repo), "--json", env={"CODERFLASH_MODEL": "/missing.gguf"})
    assert out.returncode == 1
    assert any("model file not found" in p for p in json.loads(out.stdout)["problems"])


def test_unknown_repo_is_not_downloaded_implicitly(sample_repo: Path) -> None:
    out = run("complete", str(sample_repo / "main.py"), "--line", "0", "--character", "0",
              "--model", "someone/Some-Model-GGUF:Q4_K_M")
    assert out.returncode != 0
    assert "coderflash model pull someone/Some-Model-GGUF:Q4_K_M" in out.stderr


@pytest.mark.parametrize("command", ["context", "complete", "chat"])
def test_a_root_that_is_no_directory_is_one_clear_line(command: str, sample_repo: Path, tmp_path: Path,
                                                      tiny_model: Path) -> None:
    """``index`` refused such a root; ``context``, ``complete`` and ``chat`` ran on it and exited 0 (no
    repository context, the file named ``../main.py``, an index written to the cache)."""
    for root in (sample_repo / "main.py", tmp_path / "missing"):
        args = {"context": ["context", str(sample_repo / "main.py"), "--line", "15", "--character", "12"],
                "complete": ["complete", str(sample_repo / "main.py"), "--line", "15", "--character", "12"],
                "chat": ["chat", "what does main do?"]}[command]
        out = run(*args, "--root", str(root), "--model", str(tiny_model))
        assert out.returncode == 1, (root, out.stdout[-300:], out.stderr[-300:])
        assert out.stderr.strip().splitlines() == [f"coderflash: error: not a directory: {root.resolve()}"]


def test_a_batch_line_that_does_not_parse_gets_no_earlier_id(sample_repo: Path, tiny_model: Path,
                                                             tmp_path: Path) -> None:
    batch = tmp_path / "requests.jsonl"
    batch.write_text(json.dumps({"id": 1, "file": "main.py", "line": 15, "character": 12}) + "\nnot json\n")
    out = run("context", "--root", str(sample_repo), "--batch", str(batch), "--model", str(tiny_model))
    assert out.returncode == 0, out.stderr
    answers = [json.loads(line) for line in out.stdout.splitlines()]
    assert [a.get("id") for a in answers] == [1, None], answers
    assert "prompt" in answers[0] and answers[1]["error"].startswith("line 2:")
