"""1,000 rapid didChange + inlineCompletion pairs: every request is answered (a result, RequestCancelled, or
ContentModified for one whose document changed before its answer),
nothing is left queued or kept for a finished handler afterwards, and the server's memory stays flat."""

from __future__ import annotations

import time
from pathlib import Path

from rawlsp import RawLspProcess


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_rapid_typing_has_no_backlog_and_flat_memory(sample_repo: Path, tiny_model: Path) -> None:
    server = RawLspProcess()
    try:
        server.initialize(sample_repo.as_uri(), {"model": str(tiny_model), "llama": {"n_ctx": 8192}})
        path = sample_repo / "main.py"
        uri = path.as_uri()
        text = path.read_text()
        lines = text.split("\n")
        line_no = 15
        base = lines[line_no]
        server.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1,
                                                                "text": text}})
        typed = "checkout_total(cart, discount_percent=10.0) + 0.0 * 1 " * 20

        def burst(start: int, count: int) -> list[int]:
            ids = []
            for i in range(start, start + count):
                column = len(base) + (i % len(typed))
                new_line = base + typed[: i % len(typed) + 1]
                server.notify("textDocument/didChange", {
                    "textDocument": {"uri": uri, "version": i + 2},
                    "contentChanges": [{"range": {"start": {"line": line_no, "character": 0},
                                                  "end": {"line": line_no, "character": len(lines[line_no])}},
                                        "text": new_line}]})
                lines[line_no] = new_line
                ids.append(server.request("textDocument/inlineCompletion", {
                    "textDocument": {"uri": uri}, "position": {"line": line_no, "character": column + 1},
                    "context": {"triggerKind": 2}}))
            return ids

        def collect(ids: list[int]) -> tuple[int, int]:
            answered = cancelled = 0
            for rid in ids:
                reply = server.response(rid, timeout=120)
                if "error" in reply:
                    assert reply["error"]["code"] in (-32800, -32801), reply  # RequestCancelled, ContentModified
                    cancelled += 1
                else:
                    answered += 1
            return answered, cancelled

        answered, cancelled = collect(burst(0, 200))
        rss_after_warmup = _rss_kb(server.proc.pid)
        start = time.monotonic()
        more_answered, more_cancelled = collect(burst(200, 800))
        elapsed = time.monotonic() - start
        rss_after = _rss_kb(server.proc.pid)
        assert answered + cancelled + more_answered + more_cancelled == 1000
        # No backlog: once the burst is answered, a fresh request is served promptly.
        rid = server.request("coderflash/status", {})
        status = server.response(rid, timeout=30)["result"]
        inference = status["workspaces"][0].get("inference", {}).get("scheduler", {})
        assert inference.get("queued", 0) == 0, inference
        memory = status["memory"]  # where the memory is: resident, malloc's in use and free, SQLite's
        assert memory["rss_mb"] > 10 and memory["malloc_in_use_mb"] > 1 and memory["sqlite_mb"] > 0, memory
        # Nothing is kept for a handler that finished (pygls 2.1 kept one future per notification).
        for version in range(2000, 2050):  # saves, closes and reopens: notifications with other handlers
            server.notify("textDocument/didSave", {"textDocument": {"uri": uri}})
            server.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
            server.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python",
                                                                    "version": version, "text": text}})
        in_flight = server.call("coderflash/status", {})["result"]["handlers_in_flight"]
        assert in_flight <= 2, in_flight
        # Most stale requests never reached the model: far fewer generations than requests.
        assert status["requests"] < 1000
        assert rss_after - rss_after_warmup < 60_000, (rss_after_warmup, rss_after)
        assert elapsed < 120
        assert server.close() == 0
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
