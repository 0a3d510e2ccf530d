"""Line breaks over stdio, as an editor meets them: the server counts lines where LSP does (``\\r\\n``, ``\\r``,
``\\n``) and nowhere else, for request positions, the ranges it answers with and incremental edits.

Python's ``str.splitlines`` also breaks at a form feed (on its own line in many stdlib modules), U+2028 (in
JavaScript strings), ``\\x85`` and others; the server used it for incoming positions and edits, so a
completion after such a character was read on the wrong line, answered with a range mid-word, and an edit
was applied to the wrong line. A document with lone-CR line ends failed with an internal error.

The server talks to a recording OpenAI-compatible peer: its prompts show where the server put the cursor
and what it holds as the buffer (the text after a cursor at 0:0 is the whole buffer, its LSP line ends
written ``\\n`` as the model reads them: tests/lsp/test_line_endings.py)."""

from __future__ import annotations


import pytest

from rawlsp import RawLspProcess
from recording_peer import RecordingPeer, served_through

FIM_SUFFIX, FIM_MIDDLE = "<|fim_suffix|>", "<|fim_middle|>"
ANSWER = "value"


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory):
    peer = RecordingPeer(completion=ANSWER)
    root = tmp_path_factory.mktemp("breaks")
    (root / "util.py").write_text("def helper():\n    return 1\n")
    with served_through(peer, root, root / ".cache",
                        completion={"max_tokens": 8, "latency_target": False}) as server:
        yield server, root, peer


def _cursor(peer: RecordingPeer) -> tuple[str, str]:
    """The text before and after the cursor in the last prompt."""
    prompt = peer.prompts[-1]
    suffix_at = prompt.rindex(FIM_SUFFIX)
    return prompt[:suffix_at], prompt[suffix_at + len(FIM_SUFFIX):prompt.rindex(FIM_MIDDLE)]


def _position(line: int, character: int) -> dict[str, int]:
    return {"line": line, "character": character}


def test_a_lone_cr_document_is_completed_where_asked(session) -> None:
    server, root, peer = session
    uri = server.open_document(root / "mac.py", "import os\r\rvalue = \rprint(value)\r")
    for method in ("textDocument/inlineCompletion", "textDocument/completion"):
        reply = server.call(method, {"textDocument": {"uri": uri}, "position": _position(2, 8),
                                     "context": {"triggerKind": 1}}, timeout=60)
        assert "result" in reply, reply  # was InternalError: "line 2 is past the end of the buffer (1 lines)"
        item = reply["result"]["items"][0]
        edit_range = item["range"] if method == "textDocument/inlineCompletion" else item["textEdit"]["range"]
        assert edit_range == {"start": _position(2, 8), "end": _position(2, 8)}, item
        before, after = _cursor(peer)
        assert before.endswith("import os\n\nvalue = ") and after.startswith("\nprint(value)"), (before, after)


@pytest.mark.parametrize("name, text, line, character, before, after", [
    # a page break on its own line, as in many Python and C sources; the editor's line 3 is "    return "
    ("formfeed", "import os\n\x0c\ndef f():\n    return \n", 3, 11, "def f():\n    return ", "\n"),
    # U+2028 inside a string literal; the editor's line 1 is "value = "
    ("u2028", "s = 'a\u2028b'\nvalue = \nprint(value)\n", 1, 8, "b'\nvalue = ", "\nprint(value)"),
    ("nel", "s = 'a\x85b'\nvalue = \n", 1, 8, "b'\nvalue = ", "\n"),
    ("vt_fs", "a = '\x0b\x1c'\nvalue = \n", 1, 8, "'\nvalue = ", "\n"),
], ids=["formfeed", "u2028", "nel", "vt_fs"])
def test_a_position_after_a_non_lsp_break_is_read_on_the_editors_line(session, name: str, text: str, line: int,
                                                                       character: int, before: str,
                                                                       after: str) -> None:
    server, root, peer = session
    uri = server.open_document(root / f"{name}.py", text)
    reply = server.call("textDocument/inlineCompletion", {
        "textDocument": {"uri": uri}, "position": _position(line, character), "context": {"triggerKind": 1}},
        timeout=60)
    item = reply["result"]["items"][0]
    assert item["range"]["start"] == _position(line, character), item  # the editor inserts it where asked
    prompt_before, prompt_after = _cursor(peer)
    assert prompt_before.endswith(before) and prompt_after.startswith(after), (prompt_before, prompt_after)


@pytest.mark.parametrize("name, text, changes, expected", [
    ("edit_formfeed", "import os\n\x0c\ndef f():\n    return \n",
     [((3, 11), (3, 11), "os.getcwd()")], "import os\n\x0c\ndef f():\n    return os.getcwd()\n"),
    ("edit_u2028", "s = 'a\u2028b'\nvalue = \nprint(value)\n",
     [((1, 8), (1, 8), "1"), ((2, 6), (2, 11), "s")], "s = 'a\u2028b'\nvalue = 1\nprint(s)\n"),
    ("edit_cr", "import os\r\rvalue = \rprint(value)\r",
     [((2, 8), (2, 8), "2"), ((3, 0), (4, 0), "")], "import os\n\nvalue = 2\n"),  # its lines, as the model reads them
], ids=["formfeed", "u2028", "lone_cr"])
def test_incremental_edits_keep_the_servers_buffer_equal_to_the_editors(session, name: str, text: str,
                                                                        changes, expected: str) -> None:
    server, root, peer = session
    uri = server.open_document(root / f"{name}.py", text)
    for version, (start, end, new_text) in enumerate(changes, start=2):
        server.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": version}, "contentChanges": [
            {"range": {"start": _position(*start), "end": _position(*end)}, "text": new_text}]})
    reply = server.call("textDocument/inlineCompletion", {
        "textDocument": {"uri": uri}, "position": _position(0, 0), "context": {"triggerKind": 1}}, timeout=60)
    assert "result" in reply, reply
    assert _cursor(peer)[1] == expected


def test_code_actions_in_a_lone_cr_document_see_the_definition_above(session) -> None:
    """The actions offered inside a definition (docstring, body, tests) looked for its header on lines split
    at ``\\n`` only: a lone-CR file was one line, and the cursor in a function body got none of them."""
    server, root, _peer = session
    uri = server.open_document(root / "mac_actions.py", "import os\r\rdef area(w, h):\r    return w * h\r")
    reply = server.call("textDocument/codeAction", {"textDocument": {"uri": uri},
                                                    "range": {"start": _position(3, 4), "end": _position(3, 4)},
                                                    "context": {"diagnostics": []}})
    titles = [action["title"] for action in reply["result"]]
    assert any("docstring" in title.lower() for title in titles), titles


MAC_SOURCE = "import os\r\rdef area(w, h):\r    return w * h\r"  # lines 0-3, and the empty line 4 after the last \r
AREA = "def area(w, h):\n    return w * h"  # lines 2-3 as the model gets them


def _action_prompt(peer: RecordingPeer) -> str:
    """The user turn of the chat request the action made (``_resolve`` forgets earlier ones): its instruction
    and the block it is about."""
    chats = [body["messages"] for path, body in peer.bodies if "messages" in body]
    assert len(chats) == 1, f"the action made {len(chats)} chat requests"
    return chats[0][-1]["content"]


def _resolve(server: RawLspProcess, peer: RecordingPeer, uri: str, kind: str, rng: dict,
             diagnostics: list | None = None) -> dict:
    peer.bodies.clear()
    listed = server.call("textDocument/codeAction", {"textDocument": {"uri": uri}, "range": rng,
                                                     "context": {"diagnostics": diagnostics or []}})["result"]
    action = next(action for action in listed if action["data"]["kind"] == kind)
    return server.call("codeAction/resolve", action, timeout=60)["result"]


def _range(start: tuple[int, int], end: tuple[int, int]) -> dict:
    return {"start": _position(*start), "end": _position(*end)}


def test_a_rewrite_in_a_lone_cr_document_gets_the_selected_lines(session) -> None:
    """The action's lines were split at ``\\n`` only: a lone-CR document was one line, so the model was sent
    an empty block for lines 2-3 and answered an edit ending (on line 0) before it started (on line 2)."""
    server, root, peer = session
    uri = server.open_document(root / "mac_rewrite.py", MAC_SOURCE)
    resolved = _resolve(server, peer, uri, "rewrite", _range((2, 0), (3, 16)))
    assert f"```python\n{AREA}\n```" in _action_prompt(peer), _action_prompt(peer)
    (edit,) = resolved["edit"]["changes"][uri]
    assert edit["range"] == _range((2, 0), (3, 16)), edit


def test_rewrite_selection_in_a_lone_cr_document_gets_the_selected_lines(session) -> None:
    server, root, peer = session
    uri = server.open_document(root / "mac_command.py", MAC_SOURCE)
    peer.bodies.clear()
    reply = server.call("workspace/executeCommand", {"command": "coderflash.rewriteSelection",
                                                     "arguments": [uri, _range((2, 0), (3, 16))]}, timeout=60)
    assert reply["result"] == {"applied": False}, reply  # this editor answers every request with null
    assert f"```python\n{AREA}\n```" in _action_prompt(peer), _action_prompt(peer)
    apply = [m for m in server.incoming if m.get("method") == "workspace/applyEdit"][-1]
    (edit,) = apply["params"]["edit"]["changes"][uri]
    assert edit["range"] == _range((2, 0), (3, 16)), edit


def test_a_fix_in_a_lone_cr_document_gets_the_lines_around_the_diagnostic(session) -> None:
    server, root, peer = session
    uri = server.open_document(root / "mac_fix.py", MAC_SOURCE)
    diagnostic = {"range": _range((3, 11), (3, 12)), "message": "NameError: name 'w' is not defined", "severity": 1}
    resolved = _resolve(server, peer, uri, "quickfix", _range((3, 11), (3, 11)), [diagnostic])
    prompt = _action_prompt(peer)
    assert "reported at line 4" in prompt and f"```python\nimport os\n\n{AREA}\n\n```" in prompt, prompt
    (edit,) = resolved["edit"]["changes"][uri]
    assert edit["range"] == _range((0, 0), (4, 0)), edit


def test_generated_tests_go_after_the_last_line_of_a_lone_cr_test_file(session) -> None:
    """An existing test file with lone-CR line ends was one line to the action: the tests were inserted at
    the end of its first line, inside the file, not after its last."""
    server, root, peer = session
    (root / "test_mac_tests.py").write_bytes(b"import mac_tests\rdef test_known():\r    assert True\r")
    uri = server.open_document(root / "mac_tests.py", MAC_SOURCE.replace("\r", "\n"))  # only the test file is lone-CR
    resolved = _resolve(server, peer, uri, "tests", _range((3, 4), (3, 4)))
    (edit,) = resolved["edit"]["changes"][(root / "test_mac_tests.py").as_uri()]
    assert edit["range"] == _range((3, 0), (3, 0)), edit
