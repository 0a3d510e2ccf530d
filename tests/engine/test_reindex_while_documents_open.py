"""A rebuild of the index hands it every open buffer at its end, while the editor keeps opening and closing
documents on the server's event loop: that hand-over once iterated the live dictionary of open documents
and the rebuild failed with "dictionary changed size during iteration" (the index state: error)."""

from __future__ import annotations

import sys
import threading
import traceback
from pathlib import Path

from engine.service import Engine

from engine_helpers import tiny_config
from real_repos import copy_stdlib


def test_a_rebuild_survives_documents_opened_and_closed_meanwhile(sample_repo: Path, tiny_model: Path,
                                                                   tmp_path: Path) -> None:
    copy_stdlib(sample_repo / "lib", files=60)
    files = sorted((sample_repo / "lib").rglob("*.py"))
    engine = Engine(tiny_config(tiny_model, tmp_path / "cache"), sample_repo, background_index=True)
    engine.reindex()
    texts = {path: path.read_text() for path in files}
    for path in files[:40]:
        engine.document_opened(path, texts[path])
    errors: list[BaseException] = []
    rebuilds = [0]
    done = threading.Event()

    def rebuild_loop() -> None:
        try:
            for _ in range(15):
                engine.reindex()
                rebuilds[0] += 1
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            done.set()

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        rebuilder = threading.Thread(target=rebuild_loop)
        rebuilder.start()
        toggles = 0
        while not done.is_set():  # the editor: open and close documents as fast as it can
            path = files[40 + toggles % (len(files) - 40)]
            engine.document_opened(path, texts[path])
            engine.document_closed(path)
            toggles += 1
        rebuilder.join()
    finally:
        sys.setswitchinterval(interval)
        engine.close()
    assert errors == [], "".join(traceback.format_exception(errors[0]))
    assert rebuilds[0] == 15 and toggles > 15, (rebuilds, toggles)
    assert engine.index_progress["state"] == "ready"
