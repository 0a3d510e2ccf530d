"""A request that arrives after the editor closed its document (a chat about it, a code action, a completion
that moves to another file) must not put the closed buffer back into the index: nothing would clear it again,
and the index would keep the stale buffer over the disk (later edits and deletions on disk ignored)."""

from __future__ import annotations

import time
from pathlib import Path

from engine.service import Engine

from engine_helpers import tiny_config


def _until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "index job never ran"
        time.sleep(0.01)


def test_a_chat_about_a_document_closed_meanwhile_leaves_the_index_on_the_disk(sample_repo: Path, tiny_model: Path,
                                                                              tmp_path: Path) -> None:
    engine = Engine(tiny_config(tiny_model, tmp_path / "cache"), sample_repo, background_index=True)
    try:
        engine.reindex()
        index = engine.repo_index()
        main = sample_repo / "main.py"
        on_disk = main.read_text()
        edited = on_disk + "\ndef unsaved_helper():\n    return 1\n"
        engine.document_opened(main, edited)
        _until(lambda: "main.py" in index.overlays)
        engine.document_closed(main)
        _until(lambda: "main.py" not in index.overlays)
        engine.chat_context(4000, main, edited, 3)  # the chat request carried the buffer as it was
        assert "main.py" not in index.overlays
        assert index.read_text("main.py") == on_disk
        assert not index.definitions("unsaved_helper")
        engine.document_opened(main, edited)  # open again: synced as before
        _until(lambda: "main.py" in index.overlays)
        assert index.definitions("unsaved_helper")
    finally:
        engine.close()
