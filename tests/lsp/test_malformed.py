"""Bad input over the wire gets an error response and the session goes on; shutdown/exit is clean."""

from __future__ import annotations

from pathlib import Path

import pytest

from rawlsp import RawLspProcess


@pytest.fixture
def server(sample_repo: Path, tiny_model: Path):
    proc = RawLspProcess()
    proc.initialize(sample_repo.as_uri(), {"model": str(tiny_model), "llama": {"n_ctx": 4096}})
    yield proc
    if proc.proc.poll() is None:
        proc.proc.kill()


def test_invalid_params_get_invalid_params_error(server: RawLspProcess, sample_repo: Path) -> None:
    uri = server.open_document(sample_repo / "main.py")
    rid = server.request("textDocument/inlineCompletion", {"textDocument": {"uri": uri},
                                                           "position": {"line": 0, "character": -5},
                                                           "context": {"triggerKind": 1}})
    reply = server.response(rid)
    assert reply["error"]["code"] == -32602
    rid = server.request("textDocument/inlineCompletion", {"textDocument": {"uri": uri}, "context": {"triggerKind": 1}})
    assert server.response(rid)["error"]["code"] == -32602
    # The session goes on.
    rid = server.request("textDocument/inlineCompletion", {"textDocument": {"uri": uri},
                                                           "position": {"line": 15, "character": 12},
                                                           "context": {"triggerKind": 1}})
    reply = server.response(rid)
    assert reply["result"]["items"][0]["insertText"].strip()
    assert server.close() == 0


def test_body_that_is_not_json_gets_parse_error(server: RawLspProcess) -> None:
    server.send_bytes(b"{this is not json")
    reply = server.response(None)
    assert reply["error"]["code"] == -32700
    rid = server.request("coderflash/status", {})
    assert "result" in server.response(rid)
    assert server.close() == 0


def test_unknown_method_gets_method_not_found(server: RawLspProcess) -> None:
    rid = server.request("coderflash/doesNotExist", {"x": 1})
    assert server.response(rid)["error"]["code"] == -32601
    rid = server.request("coderflash/status", {})
    assert "result" in server.response(rid)
    assert server.close() == 0


def test_document_outside_any_open_state_is_answered(server: RawLspProcess, sample_repo: Path) -> None:
    rid = server.request("textDocument/inlineCompletion", {"textDocument": {"uri": (sample_repo / "never_opened.py").as_uri()},
                                                           "position": {"line": 0, "character": 0},
                                                           "context": {"triggerKind": 1}})
    reply = server.response(rid)
    assert "result" in reply or "error" in reply
    assert server.close() == 0


def test_a_completion_whose_document_changed_gets_content_modified(server: RawLspProcess, sample_repo: Path) -> None:
    """The answer would be for text the editor no longer has: ContentModified (-32801), not a stale item."""
    uri = server.open_document(sample_repo / "main.py")
    codes = set()
    for version in range(2, 12):  # the change races the completion: at least one lands while it runs
        rid = server.request("textDocument/inlineCompletion", {"textDocument": {"uri": uri},
                                                               "position": {"line": 15, "character": 12},
                                                               "context": {"triggerKind": 1}})
        server.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": version},
                                                 "contentChanges": [{"text": (sample_repo / "main.py").read_text()
                                                                     + f"# edit {version}\n"}]})
        reply = server.response(rid, timeout=120)
        codes.add(reply["error"]["code"] if "error" in reply else "result")
    assert -32801 in codes and codes <= {-32801, "result"}, codes


def test_requests_after_shutdown_get_invalid_request(server: RawLspProcess) -> None:
    assert "result" in server.call("shutdown", None)
    reply = server.call("coderflash/status", {})
    assert reply["error"]["code"] == -32600  # InvalidRequest, as LSP says for requests after shutdown
    server.notify("exit", None)
    assert server.proc.wait(timeout=20) == 0


def test_json_nested_past_the_parsers_limit_gets_parse_error(server: RawLspProcess) -> None:
    server.send_bytes(b'{"jsonrpc": "2.0", "id": 1, "method": "x", "params": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    assert server.response(None)["error"]["code"] == -32700
    assert "result" in server.call("coderflash/status", {})
