"""Warm-up sizes its prompt as a completion does, over stdio with the tiny model through llama.cpp.

A completion's budget is ``context.budget`` capped to the model's window less the answer
(``n_ctx - max_tokens - 1``); warm-up built its prompt from the bare ``context.budget``. With a window smaller
than the budget (the default 8192 against a 1024-token window here) it prefilled another repository prefix
than the completion at that place uses, or, as here, one the window refused: the warm-up failed and the
completion evaluated the whole prompt itself."""

from __future__ import annotations

import time
from pathlib import Path

from rawlsp import RawLspProcess


def _idle(server: RawLspProcess, timeout: float = 120.0) -> dict:
    """``coderflash/status`` once nothing is queued or running (the warm-up didOpen queued has run, or
    failed: a failed one leaves no ``last_warm_up``)."""
    started = time.monotonic()
    while True:
        status = server.call("coderflash/status", {})["result"]
        scheduler = status["workspaces"][0]["inference"].get("scheduler", {})
        if not scheduler.get("queued") and scheduler.get("running") is None:
            return status
        assert time.monotonic() - started < timeout, status
        time.sleep(0.1)


def test_warm_up_prefills_the_prefix_a_completion_in_a_small_window_uses(sample_repo: Path,
                                                                          tiny_model: Path) -> None:
    server = RawLspProcess()
    try:
        server.initialize(sample_repo.as_uri(), {"model": str(tiny_model), "llama": {"n_ctx": 1024},
                                                 "completion": {"max_tokens": 4, "latency_target": False}})
        server.wait_for_index(timeout=60)
        main = server.open_document(sample_repo / "main.py", (sample_repo / "main.py").read_text())
        reply = server.call("textDocument/inlineCompletion", {"textDocument": {"uri": main},
                                                              "context": {"triggerKind": 1},
                                                              "position": {"line": 15, "character": 12}},
                            timeout=120)  # loads the model
        assert "result" in reply, reply
        _idle(server)
        lines = ["from shop.pricing import checkout_total", "", "def total(cart):", "    return ", ""]
        uri = server.open_document(sample_repo / "late.py", "\n".join(lines))  # the model is loaded: warmed on open
        status = _idle(server)
        warmed = status["workspaces"][0]["inference"].get("last_warm_up")
        assert warmed and warmed.get("prefix_tokens"), status  # was absent: the prefix did not fit the window
        end = {"line": len(lines) - 1, "character": 0}
        reply = server.call("textDocument/inlineCompletion", {"textDocument": {"uri": uri}, "position": end,
                                                              "context": {"triggerKind": 1}}, timeout=120)
        assert "result" in reply, reply
        after = server.call("coderflash/status", {})["result"]
        assert after["reused_tokens"] - status["reused_tokens"] >= warmed["prefix_tokens"], (after, warmed)
    finally:
        if server.proc.poll() is None:
            server.close()
