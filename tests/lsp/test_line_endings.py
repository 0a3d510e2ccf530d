"""Line ends in the text the server inserts, over stdio: in a CRLF (Windows) or lone-CR document, code
actions, rewriteSelection and inline completions answered lines joined with ``\\n`` (the model's), so the
file ended up with mixed line ends; the completion prompt carried the document's ``\\r\\n`` to a model that
reads ``\\n`` text. Generate tests writes into another file: in that file's line end, or for a new file in
CRLF when the source file is CRLF, else ``\\n``.

The server talks to a recording OpenAI-compatible peer that answers every chat with a three-line code block
and every completion with two lines; its prompts show what the model was given."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from rawlsp import RawLspProcess
from recording_peer import RecordingPeer, served_through

CHAT_ANSWER = '```python\ndef area(w, h):\n    """The area."""\n    return w * h\n```'
COMPLETION_ANSWER = "    x = w * h\n    return x"  # the model writes the cursor's line whole, indentation included
BREAK = re.compile(r"\r\n|\r|\n")
EOLS = {"crlf": "\r\n", "cr": "\r", "lf": "\n"}


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory):
    peer = RecordingPeer(completion=COMPLETION_ANSWER, chat=CHAT_ANSWER)
    root = tmp_path_factory.mktemp("eol")
    (root / "util.py").write_bytes(b"def helper():\r\n    return 1\r\n")  # a repository file from a Windows checkout
    with served_through(peer, root, root / ".cache",
                        completion={"max_tokens": 32, "latency_target": False}) as server:
        yield server, root, peer


def _source(eol: str) -> str:
    return eol.join(["import os", "", "def area(w, h):", "    return w * h", ""])  # lines 0-3, empty line 4


def _range(start: tuple[int, int], end: tuple[int, int]) -> dict:
    return {"start": {"line": start[0], "character": start[1]}, "end": {"line": end[0], "character": end[1]}}


def _line_ends(text: str) -> set[str]:
    return set(BREAK.findall(text))


def _resolve(server: RawLspProcess, uri: str, kind: str, rng: dict, diagnostics: list | None = None) -> dict:
    listed = server.call("textDocument/codeAction", {"textDocument": {"uri": uri}, "range": rng,
                                                     "context": {"diagnostics": diagnostics or []}})["result"]
    action = next(action for action in listed if action["data"]["kind"] == kind)
    return server.call("codeAction/resolve", action, timeout=60)["result"]


DIAGNOSTIC = {"range": _range((3, 11), (3, 12)), "message": "NameError: name 'w' is not defined", "severity": 1}
ACTIONS = {  # kind: (the range asked about, diagnostics)
    "rewrite": (_range((2, 0), (3, 16)), None),
    "quickfix": (_range((3, 11), (3, 11)), [DIAGNOSTIC]),
    "docstring": (_range((3, 4), (3, 4)), None),
    "body": (_range((3, 4), (3, 4)), None),
}


@pytest.mark.parametrize("eol", ["crlf", "cr"])
@pytest.mark.parametrize("kind", sorted(ACTIONS))
def test_a_code_action_edit_uses_the_documents_line_end(session, kind: str, eol: str) -> None:
    server, root, _peer = session
    uri = server.open_document(root / f"action_{kind}_{eol}.py", _source(EOLS[eol]))
    rng, diagnostics = ACTIONS[kind]
    resolved = _resolve(server, uri, kind, rng, diagnostics)
    (edit,) = resolved["edit"]["changes"][uri]
    assert _line_ends(edit["newText"]) == {EOLS[eol]}, edit  # was {"\n"}: mixed line ends in the file


@pytest.mark.parametrize("eol", ["crlf", "cr"])
def test_rewrite_selection_uses_the_documents_line_end(session, eol: str) -> None:
    server, root, _peer = session
    uri = server.open_document(root / f"command_{eol}.py", _source(EOLS[eol]))
    reply = server.call("workspace/executeCommand", {"command": "coderflash.rewriteSelection",
                                                     "arguments": [uri, _range((2, 0), (3, 16))]}, timeout=60)
    assert "result" in reply, reply
    apply = [m for m in server.incoming if m.get("method") == "workspace/applyEdit"][-1]
    (edit,) = apply["params"]["edit"]["changes"][uri]
    assert _line_ends(edit["newText"]) == {EOLS[eol]}, edit


CRLF_TESTS = b"import x\r\n\r\n\r\ndef test_known():\r\n    assert True\r\n"


@pytest.mark.parametrize("source, existing, expected", [
    ("lf", CRLF_TESTS, "crlf"),  # appended to a CRLF test file: its line end (was \n)
    ("crlf", None, "crlf"),  # a new test file beside a CRLF source: CRLF, as a Windows checkout has it (was \n)
    ("crlf", CRLF_TESTS.replace(b"\r\n", b"\n"), "lf"),  # an LF test file stays LF whatever the source
    ("lf", None, "lf"),
    ("cr", None, "lf"),  # a lone-CR source does not spread that legacy line end to a new file
], ids=["append_crlf", "new_from_crlf", "append_lf_from_crlf", "new_from_lf", "new_from_cr"])
def test_generated_tests_use_the_test_files_line_end(session, source: str, existing: bytes | None,
                                                     expected: str) -> None:
    server, root, _peer = session
    name = f"gen_{source}_{expected}_{'append' if existing else 'new'}"
    if existing is not None:
        (root / f"test_{name}.py").write_bytes(existing)
    uri = server.open_document(root / f"{name}.py", _source(EOLS[source]))
    resolved = _resolve(server, uri, "tests", _range((3, 4), (3, 4)))
    (edit,) = resolved["edit"]["changes"][(root / f"test_{name}.py").as_uri()]
    assert _line_ends(edit["newText"]) == {EOLS[expected]}, edit


@pytest.mark.parametrize("eol", ["crlf", "cr"])
def test_a_multi_line_completion_comes_back_in_the_documents_line_end(session, eol: str) -> None:
    """The model gets the buffer with ``\\n`` line ends (at the same lines and characters) and its answer
    goes back in the document's: inline completion's insertText, and the completion item's edit (served
    from the completion cache the first request filled). A CRLF repository file in the prompt is ``\\n``
    text too."""
    server, root, peer = session
    text = EOLS[eol].join(["def area(w, h):", "    ", ""])
    uri = server.open_document(root / f"complete_{eol}.py", text)
    params = {"textDocument": {"uri": uri}, "position": {"line": 1, "character": 4}, "context": {"triggerKind": 1}}
    expected = f"x = w * h{EOLS[eol]}    return x"
    inline = server.call("textDocument/inlineCompletion", params, timeout=60)["result"]["items"][0]
    assert inline["insertText"] == expected, inline  # was "x = w * h\n    return x"
    prompt = peer.prompts[-1]
    assert "\r" not in prompt, prompt  # was the document's \r\n or \r, and util.py's \r\n
    assert "def area(w, h):\n" in prompt and "def helper():\n    return 1\n" in prompt, prompt
    item = server.call("textDocument/completion", params, timeout=60)["result"]["items"][0]
    assert item["textEdit"]["newText"] == expected, item
    assert item["label"] == "✦ x = w * h…" and item["detail"] == "coderflash (multi-line)", item


def _settled(server: RawLspProcess, timeout: float = 120.0) -> dict:
    """``coderflash/status`` once the document's warm-up has run and nothing is queued or running."""
    started = time.monotonic()
    while True:
        status = server.call("coderflash/status", {})["result"]
        inference = status["workspaces"][0]["inference"]
        scheduler = inference.get("scheduler", {})
        if "last_warm_up" in inference and not scheduler.get("queued") and scheduler.get("running") is None:
            return status
        assert time.monotonic() - started < timeout, status
        time.sleep(0.1)


def test_a_lone_cr_document_is_warmed_for_its_end(sample_repo: Path, tiny_model: Path) -> None:
    """On didOpen the server warms the repository prefix a completion at the end of the document would use.
    It found the end with ``split("\\\\n")``: a lone-CR document was one line, warmed at the end of its first
    line, where the prompt leaves the repository part other room (the budget is small here) than at the
    end; the completion there re-evaluated what the warm-up had prefilled instead of reusing it."""
    server = RawLspProcess()
    try:
        server.initialize(sample_repo.as_uri(), {"model": str(tiny_model), "llama": {"n_ctx": 4096},
                                                 "context": {"budget": 300},
                                                 "completion": {"max_tokens": 4, "latency_target": False}})
        server.wait_for_index(timeout=60)
        main = server.open_document(sample_repo / "main.py", (sample_repo / "main.py").read_text())
        server.call("textDocument/inlineCompletion", {"textDocument": {"uri": main}, "context": {"triggerKind": 1},
                                                      "position": {"line": 15, "character": 12}}, timeout=120)
        lines = ["total = checkout_total(cart)"] + [f"x{i} = {i}" for i in range(60)] + ["c = Cart()", ""]
        uri = server.open_document(sample_repo / "late.py", "\r".join(lines))  # the model is loaded: warmed on open
        status = _settled(server)
        warmed = status["workspaces"][0]["inference"]["last_warm_up"]
        end = {"line": len(lines) - 1, "character": 0}
        reply = server.call("textDocument/inlineCompletion", {"textDocument": {"uri": uri}, "position": end,
                                                              "context": {"triggerKind": 1}}, timeout=120)
        assert "result" in reply, reply
        reused = server.call("coderflash/status", {})["result"]["reused_tokens"] - status["reused_tokens"]
        assert reused >= warmed["prefix_tokens"], (reused, warmed)
    finally:
        if server.proc.poll() is None:
            server.close()
