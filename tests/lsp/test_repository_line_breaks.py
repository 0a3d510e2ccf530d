"""Line breaks in what the server reads for context, over stdio, as an editor meets them.

Repository files: the index numbers lines by tree-sitter rows (a line ends at ``\\n``), but the prompt's
snippets were cut from ``str.splitlines``, which also breaks at a form feed (a page break on its own line, in
several CPython stdlib modules and many C sources): every definition after one was shown from the wrong
lines. Chat: the chat context read the buffer split at ``\\n`` only, so in a lone-CR document the cursor's
line was clamped to line 0 and every name in the file counted as "near the cursor"; the user message carried
the document's own line ends to the model.

The server talks to a recording OpenAI-compatible peer: its requests show what the model was given."""

from __future__ import annotations


import pytest

from rawlsp import RawLspProcess
from recording_peer import RecordingPeer, served_through

FIM_PREFIX = "<|fim_prefix|>"


def _pages() -> str:
    """A module in pages separated by form feeds, as CPython's stdlib has them; ``target_fn`` last."""
    parts = ['"""Pages separated by form feeds."""\n', "\x0c\n"]
    for i in range(40):
        parts.append(f'def filler_{i}(value):\n    """Filler number {i}."""\n    return value * {i} + {i}\n\n')
        if i % 5 == 0:
            parts.append("\x0c\n")
    parts.append("def target_fn(left, right):\n    return left - right\n")
    return "".join(parts)


CHAT_DOC = ["from mod_a import alpha_fn", "from mod_b import beta_fn", "x = alpha_fn(1)"] \
    + [f"v{i} = {i}" for i in range(50)] + ["y = beta_fn(2)", ""]  # the cursor on beta_fn's line


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory):
    peer = RecordingPeer(completion="value", chat="Noted.")
    root = tmp_path_factory.mktemp("repo_breaks")
    (root / "pages.py").write_text(_pages())
    (root / "mod_a.py").write_text("def alpha_fn(value):\n    return value + 1  # alpha body\n")
    (root / "mod_b.py").write_text("def beta_fn(value):\n    return value + 2  # beta body\n")
    (root / "doc.py").write_text("\n".join(CHAT_DOC))
    with served_through(peer, root, root / ".cache", context={"budget": 400, "chat_reserve": 1400},
                        llama={"n_ctx": 2200},  # a remote server's window is not known
                        completion={"max_tokens": 8, "latency_target": False}) as server:
        yield server, root, peer


def test_snippets_after_a_form_feed_are_the_definitions_lines(session) -> None:
    """The per-file context of a file that imports ``target_fn`` shows the headers of pages.py's definitions
    (the budget leaves room for headers only): each snippet must be the line the index says the definition
    starts on. Cut from ``splitlines``' lines, they were docstrings, ``return`` lines and blank lines, and
    ``target_fn``'s header was empty."""
    server, root, peer = session
    uri = server.open_document(root / "main.py", "from pages import target_fn\n\nresult = target_fn(\n")
    reply = server.call("textDocument/inlineCompletion", {"textDocument": {"uri": uri}, "context": {"triggerKind": 1},
                                                          "position": {"line": 2, "character": 18}}, timeout=60)
    assert "result" in reply, reply
    repository = peer.prompts[-1].split("<|file_sep|>main.py", 1)[0]
    assert "def target_fn(left, right):" in repository, repository
    shown = [line for line in repository.split("\n")[2:] if line and not line.startswith(("<|", "# ..."))]
    assert shown and all(line.startswith("def ") for line in shown), repository


def _chat_turn(server: RawLspProcess, peer: RecordingPeer, uri: str, line: int) -> list[dict]:
    """The messages the model got for a chat about ``uri`` with the cursor at the start of ``line``."""
    before = len(peer.bodies)
    reply = server.call("coderflash/chat", {"message": "What does this do?", "mode": "ask",
                                            "textDocument": {"uri": uri},
                                            "range": {"start": {"line": line, "character": 0},
                                                      "end": {"line": line, "character": 0}}}, timeout=60)
    assert "result" in reply, reply
    (body,) = [body for _path, body in peer.bodies[before:] if "messages" in body]
    return body["messages"]


@pytest.mark.parametrize("eol", ["\r", "\r\n"], ids=["lone_cr", "crlf"])
def test_chat_reads_a_document_in_any_line_end_as_its_lf_twin(session, eol: str) -> None:
    """A chat about a document in CRLF or lone-CR line ends picks the repository context around the cursor's
    line as for the same document in ``\\n`` (here the body of ``beta_fn``, used on that line, not of
    ``alpha_fn``, used 51 lines above), and shows the current file in ``\\n`` text. A CRLF document's request
    is the LF one's exactly; a lone-CR one's ranked rest may differ, because the index parses the buffer as
    the editor sent it and tree-sitter counts rows at ``\\n`` only (the indexer's business, not chat's)."""
    server, root, peer = session
    line = len(CHAT_DOC) - 2
    uri = server.open_document(root / "doc.py", "\n".join(CHAT_DOC))
    lf = _chat_turn(server, peer, uri, line)
    assert "beta body" in lf[0]["content"] and "alpha body" not in lf[0]["content"], lf  # only what is near fits
    server.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2},
                                             "contentChanges": [{"text": eol.join(CHAT_DOC)}]})
    other = _chat_turn(server, peer, uri, line)
    server.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 3},
                                             "contentChanges": [{"text": "\n".join(CHAT_DOC)}]})
    assert other[-1] == lf[-1]  # the user's message with the current file: it carried the document's line ends
    context = other[0]["content"]
    assert "beta body" in context and "alpha body" not in context, context  # lone CR: every name was on line 0
    assert "\r" not in context
    if eol == "\r\n":
        assert other == lf
