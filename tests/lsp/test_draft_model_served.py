"""Speculative decoding with a draft model (``llama.draft = "model"``) through ``coderflash serve`` over stdio,
as an editor starts it, on a real repository with a cold cache.

Why here and not only in-process (tests/engine/test_draft_model.py): what decides whether an editing session
ever drafts is the serving path — the document's warm-up at didOpen, a keystroke's completion, the idle
warm-up after it. A completion never makes the draft model evaluate more than ``MAX_CATCH_UP`` prompt tokens,
so in a file whose text after the repository prefix is longer than that, only the idle warm-up can catch the
draft model up; before it did, a whole session in such a file decoded without drafts (drafted tokens: 0).
The tiny synthesized model drafts for itself, so nearly every draft is accepted and the output is unchanged.
"""

from __future__ import annotations

import time
from pathlib import Path

from rawlsp import RawLspProcess
from real_repos import COMMAND, copy_stdlib


def test_a_typing_session_is_drafted_by_the_draft_model(tiny_model: Path, tmp_path: Path) -> None:
    repo = copy_stdlib(tmp_path / "stdlib", files=300)
    server = RawLspProcess(argv=[COMMAND, "serve"], env={"CODERFLASH_CACHE_DIR": str(tmp_path / "cache")},
                           answer_requests=True)
    try:
        server.initialize(repo.as_uri(), {"model": str(tiny_model),
                                          "llama": {"draft": "model", "draft_model": str(tiny_model)}})
        assert server.wait_for_index(timeout=180)["state"] == "ready"
        target = repo / "argparse.py"
        lines = target.read_text().split("\n")
        line = next(i for i in range(600, len(lines)) if lines[i].strip().startswith("return "))
        uri = target.as_uri()
        server.notify("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": "python", "version": 1, "text": "\n".join(lines)}})
        model = server.call("coderflash/status", {})["result"]["model"]
        assert model.get("draft") == "model" and model.get("draft_model") == tiny_model.name, model
        assert "draft_model_error" not in model, model

        # Type at the end of a line deep in the file: every keystroke asks for an inline completion, with
        # pauses an editor's user makes, until the counters show drafts (or the time is up).
        version, typed, counters = 1, "", {}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            typed += "x"
            version += 1
            character = len(lines[line]) + len(typed)
            changed = lines[:line] + [lines[line] + typed] + lines[line + 1:]
            server.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": version},
                                                     "contentChanges": [{"text": "\n".join(changed)}]})
            reply = server.call("textDocument/inlineCompletion", {
                "textDocument": {"uri": uri}, "position": {"line": line, "character": character},
                "context": {"triggerKind": 2}}, timeout=120)
            assert "result" in reply, reply
            counters = server.call("coderflash/status", {})["result"]["counters"]
            if counters["draft_tokens"] > 0:
                break
            time.sleep(1.0)  # idle: the warm-up runs
        assert counters["draft_tokens"] > 0, f"no completion in {len(typed)} keystrokes was drafted: {counters}"
        # The model drafting for itself agrees with (nearly) every draft.
        assert counters["accepted_draft_tokens"] >= 0.8 * counters["draft_tokens"], counters
        assert server.close() == 0
    finally:
        server.proc.kill()
