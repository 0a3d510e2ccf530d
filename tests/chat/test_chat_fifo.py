"""A named pipe (FIFO) in the repository: the agent's tools refuse it at once instead of blocking for good.

``open()`` on a FIFO waits for a writer. ``read_file`` used to open the path it was given, so the chat's
thread waited forever: the turn was never answered, cancel could not stop it, four such turns used up the
chat pool and the process did not exit. Each tool call here runs on a helper thread so that the old,
blocking behaviour fails the test (after ``ANSWER_S``) instead of hanging it; a writer opened afterwards
releases a thread left blocked in the FIFO.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest

from chat_grammars import call_text, gbnf_literal
from engine.chat.tool_calls import ToolCall
from engine.chat.tool_runner import run_tool
from engine.chat.tools import ToolEnv, ToolResult
from rawlsp import RawLspProcess

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample_repo"
ANSWER_S = 10.0

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo: named pipes (FIFOs) exist "
                                "only on POSIX systems, so there is no FIFO to block on here")


def _release(fifo: Path) -> None:
    """Open the FIFO for writing and close it: a reader blocked in ``open()`` gets end-of-file and returns."""
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:  # no reader is waiting (ENXIO), or the FIFO is gone: nothing to release
        pass


def _call_quickly(env: ToolEnv, fifo: Path, name: str, **args: str) -> ToolResult:
    results: list[ToolResult] = []
    worker = threading.Thread(target=lambda: results.append(run_tool(env, ToolCall(name, args))), daemon=True)
    worker.start()
    worker.join(ANSWER_S)
    if worker.is_alive():
        _release(fifo)
        worker.join(ANSWER_S)
        pytest.fail(f"{name}({args}) blocked on the FIFO for {ANSWER_S:.0f} s")
    return results[0]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(SAMPLE, root)
    (root / "swapped.py").write_text("from shop.pricing import checkout_total\nSWAPPED_TOKEN = checkout_total([])\n")
    return root


@pytest.mark.parametrize("name,args", [
    ("read_file", {"path": "pipe.py"}),
    ("read_file", {"path": "pipe.py", "start_line": "1", "end_line": "3"}),
    ("propose_edit", {"path": "pipe.py", "old_text": "x", "new_text": "y"}),
])
def test_tools_refuse_a_fifo_with_a_tool_error(env: ToolEnv, repo: Path, name: str, args: dict[str, str]) -> None:
    fifo = repo / "pipe.py"
    os.mkfifo(fifo)
    result = _call_quickly(env, fifo, name, **args)
    assert result.ok is False and "named pipe (FIFO), not a regular file" in result.text, result


def test_grep_skips_an_indexed_file_replaced_by_a_fifo(env: ToolEnv, repo: Path) -> None:
    """The index still lists the file (no rescan since): its text is read by path, and the FIFO is skipped."""
    swapped = repo / "swapped.py"
    swapped.unlink()
    os.mkfifo(swapped)
    result = _call_quickly(env, swapped, "grep", pattern="SWAPPED_TOKEN")
    assert result.ok is True and "swapped.py" not in result.text, result
    result = _call_quickly(env, swapped, "grep", pattern="def checkout_total")
    assert "shop/pricing.py" in result.text, result  # the other files are still searched
    result = _call_quickly(env, swapped, "find_references", symbol="checkout_total")  # reads each file's lines
    assert result.ok is True and "main.py" in result.text, result


def test_agent_turn_reading_a_fifo_is_answered_over_lsp(tiny_model: Path, repo: Path) -> None:
    """End to end: the scripted model asks for the FIFO; the turn ends with the refusal as the tool's result,
    more turns than the chat pool has threads all answer, and the server exits on shutdown + exit."""
    fifo = repo / "pipe.py"
    os.mkfifo(fifo)
    server = RawLspProcess(answer_requests=True)
    try:
        server.initialize(repo.as_uri(), {"model": str(tiny_model), "llama": {"n_ctx": 8192},
                                          "context": {"chat_reserve": 5000}, "chat": {"max_tokens": 300}})
        grammars = [gbnf_literal(call_text("read_file", path="pipe.py")), gbnf_literal("It is a pipe.")]
        for _ in range(5):  # the chat pool has 4 threads: a fifth turn is answered only if none is stuck
            reply = server.call("coderflash/chat", {"message": "what is in pipe.py?", "mode": "agent",
                                                    "grammars": grammars}, timeout=60)
            result = reply["result"]
            (call,) = result["toolCalls"]
            assert call["ok"] is False and "named pipe (FIFO)" in call["result"], call
            assert result["text"] == "It is a pipe."
        assert server.close() == 0
    finally:
        if server.proc.poll() is None:
            _release(fifo)
            server.proc.kill()
