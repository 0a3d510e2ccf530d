"""``coderflash serve`` over stdio with the real model, as an editor starts it: the steps the real-model
end-to-end tests share (start on a repository, wait for its index, ask for an inline completion)."""

from __future__ import annotations

import os
from pathlib import Path

from rawlsp import RawLspProcess
from real_repos import COMMAND


def status(server: RawLspProcess) -> dict:
    reply = server.call("coderflash/status", {}, timeout=60)
    assert "result" in reply, reply
    return reply["result"]


def start_on(repo: Path, cache: Path, options: dict, index_timeout: float) -> tuple[RawLspProcess, dict]:
    """A server on ``repo`` (``options``: the initializationOptions) whose index is ready, and that index's
    status. Completions made before the index is ready see the current file only: the tests wait for it,
    as a user who opens a repository and types a moment later does. The caller kills the process."""
    server = RawLspProcess(argv=[COMMAND, "serve"], env={"CODERFLASH_CACHE_DIR": str(cache)}, answer_requests=True)
    reply = server.call("initialize", {
        "processId": os.getpid(), "rootUri": repo.as_uri(), "capabilities": {},
        "workspaceFolders": [{"uri": repo.as_uri(), "name": repo.name}], "initializationOptions": options},
        timeout=60)
    assert "result" in reply, reply
    server.notify("initialized", {})
    index = server.wait_for_index(timeout=index_timeout)
    assert index["state"] == "ready", index
    return server, index


def inline_completion(server: RawLspProcess, path: Path, text: str, line: int, character: int) -> str:
    """Open ``path`` with ``text`` as the editor's buffer and ask for an inline completion at the cursor:
    the first item's text ("" for none)."""
    server.notify("textDocument/didOpen", {"textDocument": {
        "uri": path.as_uri(), "languageId": "python", "version": 1, "text": text}})
    reply = server.call("textDocument/inlineCompletion", {
        "textDocument": {"uri": path.as_uri()}, "position": {"line": line, "character": character},
        "context": {"triggerKind": 1}}, timeout=300)
    assert "result" in reply, reply
    items = reply["result"]["items"]
    return items[0]["insertText"] if items else ""


def close_after_one_model_load(server: RawLspProcess) -> None:
    """The server ran the real model in the Qwen FIM format, loaded it once, and shuts down cleanly."""
    state = status(server)
    assert state["model"].get("prompt_format") == "qwen", state["model"]
    assert state["counters"]["model_loads"] == 1, state["counters"]
    assert server.close() == 0
