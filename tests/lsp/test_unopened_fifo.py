"""A document the editor has not opened is read from disk; a named pipe (FIFO) there must not hang the server.

``open()`` on a FIFO waits for a writer. The server used to read an unopened document with a plain open on its
event loop, so one inline completion for a FIFO stopped every answer, ``coderflash/status`` included. Now
each request for such a document is answered at once (an error that says why, or no code actions) and the
server goes on. Over stdio against the real server with the tiny model.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from chat_grammars import gbnf_literal
from rawlsp import RawLspProcess

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample_repo"
ANSWER_S = 10.0  # an answer comes at once; the old code never answered

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo: named pipes (FIFOs) exist "
                                "only on POSIX systems, so there is no FIFO to hang on here")


@pytest.fixture(scope="module")
def session(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory):
    repo = Path(shutil.copytree(SAMPLE, tmp_path_factory.mktemp("fifo") / "repo"))
    fifo = repo / "pipe.py"
    os.mkfifo(fifo)
    server = RawLspProcess(answer_requests=True)
    server.initialize(repo.as_uri(), {"model": str(tiny_model), "llama": {"n_ctx": 8192},
                                      "context": {"chat_reserve": 5000}, "completion": {"max_tokens": 4}})
    yield server, repo, fifo
    if server.proc.poll() is None:
        server.proc.kill()


def _still_serving(server: RawLspProcess) -> None:
    assert "result" in server.call("coderflash/status", {}, timeout=ANSWER_S), "coderflash/status did not answer"


def test_inline_completion_for_an_unopened_fifo_is_an_error_not_a_hang(session) -> None:
    server, _, fifo = session
    reply = server.call("textDocument/inlineCompletion", {
        "textDocument": {"uri": fifo.as_uri()}, "position": {"line": 0, "character": 0},
        "context": {"triggerKind": 1}}, timeout=ANSWER_S)
    assert reply["error"]["code"] == -32602 and "named pipe (FIFO)" in reply["error"]["message"], reply
    _still_serving(server)


def test_completion_fallback_for_an_unopened_fifo_is_an_error_not_a_hang(session) -> None:
    server, _, fifo = session
    reply = server.call("textDocument/completion", {"textDocument": {"uri": fifo.as_uri()},
                                                    "position": {"line": 0, "character": 0}}, timeout=ANSWER_S)
    assert reply["error"]["code"] == -32602 and "not a regular file" in reply["error"]["message"], reply
    _still_serving(server)


def test_an_unopened_file_over_the_size_limit_is_refused(session) -> None:
    """``index.max_file_size`` (1 MiB by default) bounds what an unopened document may cost to read."""
    server, repo, _ = session
    big = repo / "big_generated.py"
    big.write_text("x = 1\n" * 400_000)  # 2.4 MB
    reply = server.call("textDocument/inlineCompletion", {
        "textDocument": {"uri": big.as_uri()}, "position": {"line": 0, "character": 0},
        "context": {"triggerKind": 1}}, timeout=ANSWER_S)
    assert reply["error"]["code"] == -32602 and "index.max_file_size" in reply["error"]["message"], reply


def test_code_actions_for_an_unopened_fifo_are_none(session) -> None:
    server, _, fifo = session
    zero = {"line": 0, "character": 0}
    reply = server.call("textDocument/codeAction", {"textDocument": {"uri": fifo.as_uri()},
                                                    "range": {"start": zero, "end": zero},
                                                    "context": {"diagnostics": []}}, timeout=ANSWER_S)
    assert reply.get("result") in ([], None), reply
    _still_serving(server)


def test_a_change_to_an_unopened_fifo_is_ignored(session) -> None:
    server, _, fifo = session
    server.notify("textDocument/didChange", {"textDocument": {"uri": fifo.as_uri(), "version": 2},
                                             "contentChanges": []})
    _still_serving(server)


def test_chat_about_an_unopened_fifo(session) -> None:
    """With a selection the range is converted on the event loop: an error that says why. Without one the turn
    reads the file on its own thread: the FIFO is left out and the chat is answered."""
    server, _, fifo = session
    zero = {"line": 0, "character": 0}
    reply = server.call("coderflash/chat", {"message": "explain", "textDocument": {"uri": fifo.as_uri()},
                                            "range": {"start": zero, "end": zero}}, timeout=ANSWER_S)
    assert reply["error"]["code"] == -32602 and "named pipe (FIFO)" in reply["error"]["message"], reply
    _still_serving(server)
    reply = server.call("coderflash/chat", {"message": "explain", "textDocument": {"uri": fifo.as_uri()},
                                            "grammars": [gbnf_literal("It is a pipe.")]}, timeout=60)
    assert reply["result"]["text"] == "It is a pipe.", reply
    _still_serving(server)
