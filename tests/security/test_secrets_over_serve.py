"""What leaves the machine holds no secret: the planted credentials (tests/security/planted.py) inside a real
repository of hundreds of files (standard-library copies), ``coderflash serve`` over stdio with a cold cache
as an editor starts it, a remote backend configured with a 200K-token context budget. The peer records
every request body the server sends (an inline completion's FIM prompt, an ask-mode chat's messages) and
answers with a one-line stream; detect-secrets (the oracle) flags no line of them and no planted value
appears in them. The test can fail: it checks that the bodies carry planted files' (redacted) contents."""

from __future__ import annotations

from pathlib import Path

import pytest

from oracle import chat_blocks, flagged, flagged_in_prompt
from planted import plant
from rawlsp import RawLspProcess
from recording_peer import RecordingPeer
from real_repos import copy_stdlib

APP = '''"""The shop's entry point."""
from shop.clients import api_key, API_KEY


def main() -> None:
    key = api_key()
    print(len(key), len(API_KEY))
'''


def _leaks(text: str, values: list[str]) -> list[str]:
    return [v for v in values if v in text]


@pytest.fixture
def peer():
    server = RecordingPeer(completion="print(key)", chat="It reads the key.")
    yield server
    server.shutdown()


def test_nothing_sent_to_a_remote_backend_holds_a_secret(tmp_path: Path, peer: RecordingPeer) -> None:
    root = copy_stdlib(tmp_path / "shop", files=300)
    values = plant(root)
    app = root / "src/shop/app.py"
    app.write_text(APP)
    server = RawLspProcess(env={"CODERFLASH_CACHE_DIR": str(tmp_path / "cache")}, answer_requests=True)
    try:
        server.initialize(root.as_uri(), {"backend": "openai", "remote": {"url": peer.url, "timeout_s": 30},
                                          "context": {"budget": 200_000}})
        assert server.wait_for_index(timeout=300)["state"] == "ready"
        server.notify("textDocument/didOpen", {"textDocument": {"uri": app.as_uri(), "languageId": "python",
                                                                "version": 1, "text": APP}})
        reply = server.call("textDocument/inlineCompletion", {
            "textDocument": {"uri": app.as_uri()}, "position": {"line": 5, "character": 4},
            "context": {"triggerKind": 1}}, timeout=120)
        assert reply["result"]["items"][0]["insertText"] == "print(key)", reply
        reply = server.call("coderflash/chat", {"message": "Where does the API key come from?", "mode": "ask",
                                                "textDocument": {"uri": app.as_uri()}}, timeout=120)
        assert "result" in reply, reply
        assert server.close() == 0
    finally:
        if server.proc.poll() is None:
            server.proc.kill()

    prompts = [body["prompt"] for path, body in peer.bodies if path.endswith("/v1/completions")]
    chats = ["\n".join(m["content"] for m in body["messages"]) for path, body in peer.bodies
             if path.endswith("/chat/completions")]
    assert prompts and chats, [path for path, _ in peer.bodies]
    prompt = max(prompts, key=len)
    assert len(prompt) > 200_000, len(prompt)  # the budget is used: hundreds of files' context went out
    # The bodies carry the planted files: the module the buffer imports, with its credentials redacted.
    assert "<|file_sep|>src/shop/clients.py\n" in prompt
    assert "File: src/shop/clients.py" in chats[-1]
    for text in prompts:
        assert _leaks(text, values) == []
        assert flagged_in_prompt(text) == []
    for text in chats:
        assert _leaks(text, values) == []
        assert [(path, hit) for path, code in chat_blocks(text) for hit in flagged(path, code)] == []
