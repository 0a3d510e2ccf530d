"""A secret file as the current document: a ``.env`` open in the editor, or named by a chat's textDocument
without being open. Its text never reaches a prompt: no completion inside it (as Copilot), and chat leaves
it out. Found by probing: values redaction does not know (``MYSQL_ROOT=Hunter2Horse``, ``ADMIN_PIN=48213``)
went to the remote backend from both, although the server never reads such a file from the repository.
The peer records every request body ``coderflash serve`` sends."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from recording_peer import RecordingPeer, served_through

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample_repo"
ENV = "MYSQL_ROOT=Hunter2Horse\nADMIN_PIN=48213\nDB_PASSWORD=abc123xyz\n"
VALUES = ("Hunter2Horse", "48213", "abc123xyz")


@pytest.fixture
def session(tmp_path: Path):
    peer = RecordingPeer(completion="print(key)", chat="It holds settings.")
    root = Path(shutil.copytree(SAMPLE, tmp_path / "repo"))
    (root / ".env").write_text(ENV)
    (root / "deploy.env").write_text(ENV)  # a second one, never opened: chat names it by uri
    with served_through(peer, root, tmp_path / "cache") as server:
        yield server, root, peer


def _sent(peer: RecordingPeer) -> str:
    return "\n".join(str(body) for _path, body in peer.bodies)


def test_no_completion_inside_an_open_env_file(session) -> None:
    server, root, peer = session
    uri = (root / ".env").as_uri()
    server.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "dotenv", "version": 1,
                                                            "text": ENV + "API_"}})
    reply = server.call("textDocument/inlineCompletion", {"textDocument": {"uri": uri},
                                                          "position": {"line": 3, "character": 4},
                                                          "context": {"triggerKind": 1}}, timeout=60)
    assert reply["result"]["items"] == [], reply
    main = root / "main.py"  # the session goes on: a completion elsewhere is served by the peer
    server.notify("textDocument/didOpen", {"textDocument": {"uri": main.as_uri(), "languageId": "python",
                                                            "version": 1, "text": main.read_text()}})
    reply = server.call("textDocument/inlineCompletion", {"textDocument": {"uri": main.as_uri()},
                                                          "position": {"line": 15, "character": 12},
                                                          "context": {"triggerKind": 1}}, timeout=60)
    assert reply["result"]["items"], reply
    assert [v for v in VALUES if v in _sent(peer)] == []


@pytest.mark.parametrize("name, opened", [(".env", True), ("deploy.env", False)])
def test_chat_leaves_a_secret_current_document_out(session, name: str, opened: bool) -> None:
    server, root, peer = session
    uri = (root / name).as_uri()
    if opened:
        server.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "dotenv", "version": 1,
                                                                "text": ENV}})
    reply = server.call("coderflash/chat", {"message": "What does this file configure?", "mode": "ask",
                                            "textDocument": {"uri": uri}}, timeout=120)
    assert "result" in reply, reply
    assert any(path.endswith("/chat/completions") for path, _body in peer.bodies)
    assert [v for v in VALUES if v in _sent(peer)] == []
