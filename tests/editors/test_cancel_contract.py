"""What every editor does constantly: edit, ask for an inline completion, and cancel it ($/cancelRequest)
when the next keystroke makes it stale. The server must keep answering afterwards (VS Code's client
cancels on every keystroke; the Neovim plugin cancels stale requests)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from rawlsp import RawLspProcess

SAMPLE_REPO = Path(__file__).resolve().parents[2] / "examples" / "sample_repo"


def test_completions_still_answered_after_cancelled_ones(tiny_model: Path, tmp_path: Path):
    repo = tmp_path / "sample_repo"
    shutil.copytree(SAMPLE_REPO, repo)
    client = RawLspProcess(cwd=str(repo), answer_requests=True)
    try:
        client.call("initialize", {"processId": os.getpid(), "rootUri": repo.as_uri(), "capabilities": {},
                                   "initializationOptions": {"model": str(tiny_model)}})
        client.notify("initialized", {})
        uri = (repo / "main.py").as_uri()
        client.notify("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": "python", "version": 1, "text": (repo / "main.py").read_text()}})
        position = {"line": 15, "character": 12}
        first = client.call("textDocument/inlineCompletion", {
            "textDocument": {"uri": uri}, "position": position, "context": {"triggerKind": 2}}, timeout=60)
        assert "result" in first
        for version, delay in enumerate([0.0, 0.002, 0.005, 0.01, 0.02, 0.0, 0.003, 0.008], start=2):
            client.notify("textDocument/didChange", {
                "textDocument": {"uri": uri, "version": version},
                "contentChanges": [{"range": {"start": position, "end": position}, "text": "a"}]})
            position = {"line": 15, "character": position["character"] + 1}
            stale = client.request("textDocument/inlineCompletion", {
                "textDocument": {"uri": uri}, "position": position, "context": {"triggerKind": 2}})
            time.sleep(delay)
            client.notify("$/cancelRequest", {"id": stale})
        reply = client.call("textDocument/inlineCompletion", {
            "textDocument": {"uri": uri}, "position": position, "context": {"triggerKind": 1}}, timeout=20)
        assert "result" in reply, reply
    except Exception:
        stderr = b"".join(client.stderr).decode(errors="replace")
        raise AssertionError(f"no answer after cancelled requests; server stderr:\n{stderr[-3000:]}")
    finally:
        client.close()
