"""The `coderflash context` contract, through the real command in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CLI = [sys.executable, "-m", "lsp_server.cli"] if False else [str(Path(sys.executable).parent / "coderflash")]
FIELDS = {"prompt", "prompt_tokens", "budget", "tokenizer", "shared_prefix_tokens", "sections", "elapsed_ms"}


def _run(args, env_extra=None, stdin=None):
    env = dict(os.environ)
    env.update(env_extra or {})
    proc = subprocess.run(CLI + args, input=stdin, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_stdin_buffer_replaces_the_saved_file_everywhere(repo, tmp_path):
    (repo / "app/report.py").write_text((repo / "app/report.py").read_text() + "\nSAVED_ONLY_MARKER = 1\n")
    buffer = "from app.models import Ledger\n\n\ndef unsaved_function():\n    ledger = Ledger()\n    ledger.\n"
    out = _run(["context", str(repo / "app/report.py"), "--line", "5", "--character", "11", "--root", str(repo),
                "--budget", "262144", "--stdin", "--json"],
               {"CODERFLASH_MODEL": str(tmp_path / "missing.gguf")}, stdin=buffer)
    data = json.loads(out)
    assert set(data) >= FIELDS
    assert data["tokenizer"] == "estimate" and data["prompt_tokens"] <= data["budget"] == 262144
    assert "SAVED_ONLY_MARKER" not in data["prompt"]  # not in the current part, nor as a repository file
    assert "def unsaved_function():" in data["prompt"]
    assert "<|fim_prefix|>" in data["prompt"] and data["prompt"].endswith("<|fim_middle|>")
    assert "def add_invoice(self, invoice: Invoice) -> None:" in data["prompt"]
    assert all(set(s) == {"kind", "path", "symbol", "tokens"} for s in data["sections"])
    assert sum(s["tokens"] for s in data["sections"]) == data["prompt_tokens"]


def test_batch_reuses_one_index_and_answers_every_line(repo, tmp_path, tiny_model):
    requests = [
        {"id": "a", "file": "app/report.py", "line": 10, "character": 4, "budget": 500},
        {"id": "b", "file": "app/report.py", "line": 1, "character": 0, "budget": 2000,
         "text": "from app.models import Ledger\nLedger().\n"},
        {"id": 3, "file": "app/models.py", "line": 0, "character": 0},
        {"id": "bad", "file": "app/report.py"},
    ]
    batch = tmp_path / "req.jsonl"
    batch.write_text("\n".join(json.dumps(r) for r in requests) + "\n")
    out = _run(["context", "--root", str(repo), "--batch", str(batch), "--json"], {"CODERFLASH_MODEL": str(tiny_model)})
    lines = [json.loads(x) for x in out.splitlines()]
    assert [x["id"] for x in lines] == ["a", "b", 3, "bad"]
    for x in lines[:3]:
        assert set(x) >= FIELDS | {"id"}
        assert x["prompt_tokens"] <= x["budget"]
        assert x["tokenizer"] != "estimate"  # the model's vocabulary counts tokens exactly
    assert lines[0]["budget"] == 500 and lines[1]["budget"] == 2000
    assert "Ledger()." in lines[1]["prompt"] and "def balance_cents(self) -> int:" in lines[1]["prompt"]
    assert "error" in lines[3]
