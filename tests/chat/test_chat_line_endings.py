"""Chat's ``propose_edit`` in CRLF and lone-CR files, over stdio with the tiny model through llama.cpp (a
grammar makes it write the tool call).

The model reads and quotes code with ``\\n`` line ends (``read_file`` shows a CRLF file's lines without their
``\\r``): the tool looked for that quote in the file as it is, found nothing ("old_text does not occur") and,
where it did match, inserted ``new_text`` with ``\\n`` line ends into a CRLF file. The quote now matches
whatever line ends the file has, and the replacement is written in the file's line end."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chat_grammars import call_text, gbnf_literal
from rawlsp import RawLspProcess

SOURCE = ["import os", "", "def area(w, h):", "    return w * h", ""]
OLD = "def area(w, h):\n    return w * h"  # lines 2-3, quoted as the model writes them
NEW = 'def area(w, h):\n    """The area."""\n    return w * h'


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path):
    root = tmp_path_factory.mktemp("chat_eol")
    (root / "windows.py").write_bytes("\r\n".join(SOURCE).encode())  # on disk only: read from the disk
    (root / "mac.py").write_text("\n".join(SOURCE))  # open in the editor with lone-CR line ends
    server = RawLspProcess(env={"CODERFLASH_CACHE_DIR": str(root / ".cache")}, answer_requests=True)
    server.call("initialize", {"processId": None, "rootUri": root.as_uri(),
                               "capabilities": {"workspace": {"applyEdit": True}},
                               "initializationOptions": {"model": str(tiny_model), "llama": {"n_ctx": 8192},
                                                         "context": {"chat_reserve": 5000},
                                                         "chat": {"max_tokens": 300}}})
    server.notify("initialized", {})
    server.wait_for_index(timeout=60)
    yield server, root
    if server.proc.poll() is None:
        server.close()


@pytest.mark.parametrize("name, eol, open_in_editor", [("windows.py", "\r\n", False), ("mac.py", "\r", True)],
                         ids=["crlf_on_disk", "lone_cr_buffer"])
def test_propose_edit_matches_a_quote_across_line_ends_and_writes_the_files(session, name: str, eol: str,
                                                                             open_in_editor: bool) -> None:
    server, root = session
    uri = (root / name).as_uri()
    if open_in_editor:
        server.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1,
                                                                "text": eol.join(SOURCE)}})
    before = len(server.incoming)
    grammars = [gbnf_literal(call_text("propose_edit", path=name, old_text=OLD, new_text=NEW)),
                gbnf_literal("Done.")]
    reply = server.call("coderflash/chat", {"message": "document area", "mode": "agent", "grammars": grammars},
                        timeout=120)
    (call,) = reply["result"]["toolCalls"]
    assert "does not occur" not in call["result"], call  # was: the \n quote is not in a CRLF or lone-CR file
    (request,) = [m for m in server.incoming[before:] if m.get("method") == "workspace/applyEdit"]
    (edit,) = request["params"]["edit"]["changes"][uri]
    assert edit["range"] == {"start": {"line": 2, "character": 0}, "end": {"line": 3, "character": 16}}, edit
    assert edit["newText"] == NEW.replace("\n", eol)
    assert set(re.findall(r"\r\n|\r|\n", edit["newText"])) == {eol}  # no \n lines among the file's own
