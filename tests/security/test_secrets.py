"""Secrets never reach a prompt, a chat context or a tool result: credentials planted in every common config
and source format (tests/security/planted.py), detect-secrets as the independent oracle.

Two checks on everything the model could read: detect-secrets flags no line of it (scanned with the rules
of the file it comes from), and no planted value appears in it at all (stricter: detect-secrets itself
misses some planted kinds, e.g. a Dockerfile ``ENV`` or a Rust ``const``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from oracle import chat_blocks, flagged, flagged_in_prompt
from planted import plant

from engine.chat.tool_calls import ToolCall
from engine.chat.tool_runner import run_tool
from engine.chat.tools import ToolEnv
from engine.config import Config, ConfigError, load_config
from engine.context import redact as redaction
from engine.context.builder import ContextCache, Workspace, chat_context
from engine.context.redact import kind_for, redact, redact_reference
from engine.indexing import open_index
from engine.model.prompt_format import text_format
from engine.model.tokens import TokenCounter

CLI = [str(Path(sys.executable).parent / "coderflash")]
APP = '''"""The shop's entry point."""
from shop.clients import api_key, API_KEY


def main() -> None:
    key = api_key()
    print(len(key), len(API_KEY))
'''


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("planted") / "shop"
    values = plant(root)
    (root / "src/shop/app.py").write_text(APP)
    return root, values


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _leaks(text: str, values: list[str]) -> list[str]:
    return [v for v in values if v in text]


def test_the_oracle_sees_the_planted_corpus(planted):
    """The test can fail: detect-secrets finds the planted credentials in the raw files."""
    root, _ = planted
    found = {rel: flagged(rel, (root / rel).read_text()) for rel in _files(root)}
    assert sum(len(f) for f in found.values()) >= 35, found
    unseen = {rel for rel, f in found.items() if not f}
    assert unseen <= {"Dockerfile", "src/lib.rs", "src/shop/app.py"}, unseen


@pytest.mark.parametrize("rel", [
    "deploy/values.yaml", "config/settings.json", "config/app.toml", "config/db.ini", "deploy/.pypirc",
    "web/.npmrc", "src/main/resources/application.properties", ".env.production", "Dockerfile",
    "deploy/k8s/database.yaml", "scripts/deploy.sh", "src/shop/clients.py", "web/src/client.js", "cmd/server/main.go",
    "src/lib.rs", "config/connections.py", "keys/deploy_key.pem"])
def test_every_planted_file_redacted(planted, rel):
    root, values = planted
    text = (root / rel).read_text()
    out = redact(text, kind_for(rel))
    assert flagged(rel, out) == []
    assert _leaks(out, values) == []
    assert out == redact_reference(text, kind_for(rel))  # the fast path agrees with every rule applied everywhere


def test_a_256k_prompt_passes_the_oracle(planted, tmp_path):
    """The whole repository fits a 256K-token prompt: every file the index may show is in it, redacted."""
    root, values = planted
    app = root / "src/shop/app.py"
    proc = subprocess.run(
        CLI + ["context", str(app), "--line", "5", "--character", "4", "--root", str(root), "--budget", "262144",
               "--json"], capture_output=True, text=True, timeout=120,
        env=dict(os.environ, CODERFLASH_MODEL=str(tmp_path / "none.gguf"), CODERFLASH_CACHE_DIR=str(tmp_path)))
    assert proc.returncode == 0, proc.stderr
    prompt = json.loads(proc.stdout)["prompt"]
    for shown in ("deploy/values.yaml", "config/app.toml", "config/db.ini", "deploy/k8s/database.yaml", "Dockerfile",
                  "scripts/deploy.sh", "src/shop/clients.py", "config/connections.py", "src/lib.rs",
                  "src/main/resources/application.properties", "cmd/server/main.go", "web/src/client.js"):
        assert f"<|file_sep|>{shown}\n" in prompt, shown  # the test sees the files it means to check
    assert _leaks(prompt, values) == []
    assert flagged_in_prompt(prompt) == []


def test_chat_context_and_tool_results_pass_the_oracle(planted, tmp_path):
    root, values = planted
    config = Config(cache_dir=str(tmp_path / "cache"))
    index = open_index(root, config)
    index.build()
    try:
        ws = Workspace(text_format("qwen"), TokenCounter(None), lambda: index, repo_name="shop", root=str(root))
        chat = chat_context(ws, ContextCache(TokenCounter(None)), 200_000, str(root / "src/shop/app.py"), APP, 5)
        assert "File: deploy/values.yaml" in chat
        assert _leaks(chat, values) == []
        assert [(p, x) for p, code in chat_blocks(chat) for x in flagged(p, code)] == []
        env = ToolEnv(roots=[root], config=config, index=lambda: index)
        results = []
        for rel in _files(root):
            out = run_tool(env, ToolCall("read_file", {"path": rel}))
            if out.ok:  # secret files (keys/, .pypirc, .npmrc) are refused outright
                body = "".join(line[7:] + "\n" for line in out.text.splitlines()[1:])  # without line numbers
                results.append((rel, body))
        assert {"deploy/values.yaml", "scripts/deploy.sh", "src/shop/clients.py"} <= {r for r, _ in results}
        for pattern in ("password|passwd|pwd", "key|token|secret", "://", "BEGIN|PRIVATE", "[A-Za-z0-9]{20}"):
            out = run_tool(env, ToolCall("grep", {"pattern": pattern}))
            results.append(("grep.txt", out.text))
        for name in ("API_KEY", "api_key"):
            for tool in ("search_symbols", "find_references"):
                out = run_tool(env, ToolCall(tool, {"query" if tool == "search_symbols" else "symbol": name}))
                results.append((f"{tool}.txt", out.text))
        for rel, text in results:
            assert _leaks(text, values) == [], rel
            assert flagged(rel, text) == [], rel
    finally:
        index.close()


def test_the_redaction_list_is_configurable(tmp_path):
    text = 'acme_blob = "plainword"\nlicense = "ACME-1F2E3D4C5B6A"\n'
    assert redact(text) == text  # neither is a secret by the built-in rules
    try:
        redaction.configure(names=["acme_blob"], patterns=[r"ACME-[0-9A-F]{12}"])
        assert redact(text) == 'acme_blob = "<redacted>"\nlicense = "<redacted>"\n'
    finally:
        redaction.configure()
    assert redact(text) == text
    (tmp_path / ".coderflash.toml").write_text('[redaction]\nnames = ["acme_blob"]\npatterns = ["ACME-[0-9A-F"]\n')
    with pytest.raises(ConfigError, match="redaction.patterns"):
        load_config(tmp_path)


def test_ordinary_code_keeps_its_shape():
    """What redaction leaves alone: code on the right of a secret name, placeholders, numbers, words."""
    for line in ('password = os.environ["PW"]', "token: str", "max_tokens = 256", "self.api_key = api_key",
                 'if secret_name == "":', "db_password = get_password(user)", "password: ${DB_PASSWORD}",
                 "TOKEN_URL = BASE + '/token'", 'version = "3.12.1"', "checksum_algorithm = 'sha256'"):
        assert redact(line) == line, line
