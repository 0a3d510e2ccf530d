"""What an editor's session meets beyond plain editing, each found by probing the real server: odd
``initializationOptions``, a typo in ``.coderflash.toml``, settings changed and folders added while buffers
are open, malformed command arguments, a command asked to show a secret, a client that answers a server
request with null, requests before ``initialize``, ``exit`` without ``shutdown``. Each test failed on the
code before its fix."""

from __future__ import annotations

import queue
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from rawlsp import RawLspProcess

OPTIONS = {"llama": {"n_ctx": 4096}, "completion": {"max_tokens": 4}}


def _options(tiny_model: Path, **extra: Any) -> dict[str, Any]:
    return {"model": str(tiny_model), **OPTIONS, **extra}


@pytest.fixture
def processes():
    started: list[RawLspProcess] = []

    def start(**kwargs: Any) -> RawLspProcess:
        started.append(RawLspProcess(**kwargs))
        return started[-1]

    yield start
    for proc in started:
        if proc.proc.poll() is None:
            proc.proc.kill()


def _complete(server: RawLspProcess, uri: str, line: int, character: int) -> dict[str, Any]:
    return server.call("textDocument/inlineCompletion", {"textDocument": {"uri": uri},
                                                         "position": {"line": line, "character": character},
                                                         "context": {"triggerKind": 1}}, timeout=120)


def _workspaces(server: RawLspProcess) -> list[dict[str, Any]]:
    return server.call("coderflash/status", {})["result"]["workspaces"]


def _wait_until(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.2)
    return value


def _rewrite_answering(server: RawLspProcess, uri: str, answer: Any) -> dict[str, Any]:
    """Run rewriteSelection on lines 1-5 of ``uri``, answering the server's ``workspace/applyEdit`` with
    ``answer`` (as an editor would); the command's response."""
    rid = server.request("workspace/executeCommand", {"command": "coderflash.rewriteSelection", "arguments": [
        uri, {"start": {"line": 1, "character": 0}, "end": {"line": 5, "character": 0}}]})
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            message = server.messages.get(timeout=1)
        except queue.Empty:
            continue
        if message.get("method") == "workspace/applyEdit":
            server.send({"jsonrpc": "2.0", "id": message["id"], "result": answer})
        elif message.get("id") == rid and "method" not in message:
            return message
    pytest.fail(f"rewriteSelection was never answered after the editor answered applyEdit with {answer!r}")


@pytest.mark.parametrize("value", [None, 5, "x", ["model"]])
def test_initialization_options_that_are_no_object_still_give_a_workspace(processes, sample_repo: Path,
                                                                          value: Any) -> None:
    server = processes()
    reply = server.call("initialize", {"processId": None, "rootUri": sample_repo.as_uri(), "capabilities": {},
                                       "initializationOptions": {"coderflash": value}})
    assert "result" in reply, reply
    server.notify("initialized", {})
    assert [w["root"] for w in _workspaces(server)] == [str(sample_repo.resolve())]
    assert server.close() == 0


def test_a_typo_in_the_workspace_file_is_reported_and_completions_go_on(processes, sample_repo: Path,
                                                                      tiny_model: Path) -> None:
    (sample_repo / ".coderflash.toml").write_text('[llama]\nn_ctx = "big"\n')
    server = processes()
    server.initialize(sample_repo.as_uri(), _options(tiny_model))
    uri = server.open_document(sample_repo / "main.py")
    reply = _complete(server, uri, 15, 12)
    assert "result" in reply, reply
    assert reply["result"]["items"], reply
    assert [w["root"] for w in _workspaces(server)] == [str(sample_repo.resolve())]
    shown = [m["params"]["message"] for m in server.incoming if m.get("method") == "window/showMessage"]
    assert any(".coderflash.toml" in message and "n_ctx" in message for message in shown), shown
    assert server.close() == 0


def test_a_settings_change_keeps_the_open_buffers(processes, sample_repo: Path, tiny_model: Path) -> None:
    server = processes()
    server.initialize(sample_repo.as_uri(), _options(tiny_model))
    server.open_document(sample_repo / "main.py", "# unsaved\n" + (sample_repo / "main.py").read_text())
    assert _workspaces(server)[0]["open_documents"] == 1
    server.notify("workspace/didChangeConfiguration",
                  {"settings": {"coderflash": _options(tiny_model, completion={"max_tokens": 6})}})
    assert _workspaces(server)[0]["open_documents"] == 1  # 0 before: the rebuilt engine knew no buffer
    assert server.close() == 0


def test_an_added_folder_is_indexed_and_gets_its_open_buffers(processes, sample_repo: Path, tmp_path: Path,
                                                               tiny_model: Path) -> None:
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "lib.py").write_text("def helper_from_the_added_folder(x):\n    return x * 2\n")
    (extra / "app.py").write_text("from lib import helper_from_the_added_folder\n\nvalue = \n")
    server = processes()
    server.initialize(sample_repo.as_uri(), _options(tiny_model))
    server.wait_for_index(120)
    server.open_document(extra / "app.py")  # served by the first root's engine until the folder is added
    server.notify("workspace/didChangeWorkspaceFolders", {"event": {
        "added": [{"uri": extra.as_uri(), "name": "extra"}], "removed": []}})

    def added() -> dict[str, Any] | None:
        return next((w for w in _workspaces(server) if w["root"] == str(extra.resolve())
                     and w["index"]["state"] == "ready"), None)

    workspace = _wait_until(added, 60, "the added folder was never indexed")
    assert workspace["index"]["files"] == 2
    assert workspace["open_documents"] == 1
    assert server.close() == 0


@pytest.mark.parametrize("arguments", [
    ["URI", {}],
    ["URI", {"start": {"line": 0}, "end": {"line": 1, "character": 0}}],
    ["URI", {"start": {"line": "a", "character": 0}, "end": {"line": 1, "character": 0}}],
    [["URI"], {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 0}}],
    [{"uri": "URI", "range": {"start": None, "end": None}}],
])
def test_malformed_rewrite_arguments_get_invalid_params(processes, sample_repo: Path, tiny_model: Path,
                                                        arguments: list[Any]) -> None:
    server = processes()
    server.initialize(sample_repo.as_uri(), _options(tiny_model))
    uri = server.open_document(sample_repo / "main.py")
    arguments = [uri if a == "URI" else [uri] if a == ["URI"] else a for a in arguments]
    if isinstance(arguments[0], dict):
        arguments[0]["uri"] = uri
    reply = server.call("workspace/executeCommand", {"command": "coderflash.rewriteSelection", "arguments": arguments})
    assert reply.get("error", {}).get("code") == -32602, reply
    assert _complete(server, uri, 15, 12)["result"]["items"]  # the session goes on
    assert server.close() == 0


@pytest.mark.parametrize("spec", [5, {"repo": "x"}, ["x"]])
def test_a_model_name_that_is_no_string_gets_invalid_params(processes, sample_repo: Path, tiny_model: Path,
                                                            spec: Any) -> None:
    server = processes()
    server.initialize(sample_repo.as_uri(), _options(tiny_model))
    reply = server.call("workspace/executeCommand", {"command": "coderflash.pullModel", "arguments": [spec]})
    assert reply.get("error", {}).get("code") == -32602, reply
    assert server.close() == 0


def test_show_explanation_shows_no_file_but_its_own(processes, sample_repo: Path, tmp_path: Path,
                                                   tiny_model: Path) -> None:
    (sample_repo / ".env").write_text("API_TOKEN=planted-token-4f9c2a\n")
    (tmp_path / "notes.md").write_bytes(b"caf\xe9 outside the workspace\n")  # Latin-1: not UTF-8 either
    server = processes()
    server.initialize(sample_repo.as_uri(), _options(tiny_model))
    for target in (sample_repo / ".env", tmp_path / "notes.md", Path("/proc/self/environ"), 7):
        reply = server.call("workspace/executeCommand", {"command": "coderflash.showExplanation",
                                                         "arguments": [str(target) if isinstance(target, Path) else target]})
        assert reply.get("result") == {"shown": False}, (target, reply)
    server.call("coderflash/status", {})
    shown = " ".join(m["params"]["message"] for m in server.incoming if m.get("method") == "window/showMessage")
    assert "planted-token" not in shown and "outside the workspace" not in shown
    assert server.close() == 0


def test_a_null_answer_to_apply_edit_still_answers_the_command(processes, sample_repo: Path,
                                                              tiny_model: Path) -> None:
    server = processes()  # answers nothing by itself: the test answers workspace/applyEdit
    server.call("initialize", {"processId": None, "rootUri": sample_repo.as_uri(), "initializationOptions":
                               _options(tiny_model, completion={"max_tokens": 16}),
                               "capabilities": {"workspace": {"applyEdit": True}}})
    server.notify("initialized", {})
    uri = server.open_document(sample_repo / "main.py")
    assert _rewrite_answering(server, uri, None).get("result") == {"applied": False}
    assert server.close() == 0


def test_requests_before_initialize_get_server_not_initialized(processes, sample_repo: Path,
                                                               tiny_model: Path) -> None:
    server = processes()
    for method, params in (("textDocument/inlineCompletion", {"textDocument": {"uri": (sample_repo / "main.py").as_uri()},
                                                              "position": {"line": 0, "character": 0},
                                                              "context": {"triggerKind": 1}}),
                           ("coderflash/status", {})):
        reply = server.call(method, params)
        assert reply.get("error", {}).get("code") == -32002, (method, reply)
    server.initialize(sample_repo.as_uri(), _options(tiny_model))
    assert "result" in server.call("coderflash/status", {})
    assert server.close() == 0


def test_exit_without_shutdown_exits_with_1(processes, sample_repo: Path, tiny_model: Path) -> None:
    server = processes()
    server.initialize(sample_repo.as_uri(), _options(tiny_model))
    server.notify("exit", None)
    assert server.proc.wait(timeout=20) == 1  # LSP: 1 without a shutdown request first, 0 after


def test_percent_encoded_uris_find_their_open_buffer(processes, sample_repo: Path, tmp_path: Path,
                                                     tiny_model: Path) -> None:
    """VS Code writes ``file:///c%3A/...`` on Windows and ``%20`` for a space; pygls keeps buffers under the
    decoded uri. A code action's resolve and rewriteSelection looked the uri up as written, found no buffer,
    and silently did nothing."""
    repo = Path(shutil.copytree(sample_repo, tmp_path / "my repo"))
    server = processes()
    server.call("initialize", {"processId": None, "rootUri": repo.as_uri(), "initializationOptions":
                               _options(tiny_model, completion={"max_tokens": 16}),
                               "capabilities": {"workspace": {"applyEdit": True}}})
    server.notify("initialized", {})
    uri = server.open_document(repo / "shop" / "pricing.py")
    assert "%20" in uri
    listed = server.call("textDocument/codeAction", {"textDocument": {"uri": uri}, "context": {"diagnostics": []},
                                                     "range": {"start": {"line": 8, "character": 4},
                                                               "end": {"line": 8, "character": 4}}})["result"]
    docstring = next(action for action in listed if action["data"]["kind"] == "docstring")
    resolved = server.call("codeAction/resolve", docstring, timeout=180)["result"]
    assert resolved.get("edit"), resolved  # no edit: the buffer was not found
    assert _rewrite_answering(server, uri, {"applied": True}).get("result") == {"applied": True}
    assert server.close() == 0


def test_cancel_stops_every_running_turn_of_a_conversation(tmp_path: Path, sample_repo: Path, processes) -> None:
    """A second turn on the same conversationId replaced the first one's cancel token: cancel stopped the
    new turn, and the running one went on to the end."""
    from recording_peer import RecordingPeer

    peer = RecordingPeer(chat=" ".join(f"w{n}" for n in range(20)), chat_word_s=0.5)
    try:
        server = processes(env={"CODERFLASH_CACHE_DIR": str(tmp_path / "cache")})
        server.initialize(sample_repo.as_uri(), {"backend": "openai", "remote": {"url": peer.url, "retries": 0}})
        first = server.request("coderflash/chat", {"message": "first", "conversationId": "c1"})
        time.sleep(1.5)
        second = server.request("coderflash/chat", {"message": "second", "conversationId": "c1"})
        time.sleep(0.5)
        assert server.call("coderflash/chat/cancel", {"conversationId": "c1"})["result"]["cancelled"] is True
        started = time.monotonic()
        answers = [server.response(rid, timeout=30)["result"] for rid in (first, second)]
        assert [a["finishReason"] for a in answers] == ["cancelled", "cancelled"], answers
        assert time.monotonic() - started < 5  # not after the 10 s the peer takes to stream the answer
        assert server.close() == 0
    finally:
        peer.shutdown()
