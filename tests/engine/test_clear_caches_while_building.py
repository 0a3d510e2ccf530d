"""``coderflash.clearCache`` while a prompt is being built: the token counter's cache is not thread-safe, so
clearing it must wait for the context lock the builder holds (it once cleared it mid-build, and the build
failed with a ``KeyError`` when it moved a hit it had just looked up to the end of an emptied cache)."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from engine.service import Engine

from engine_helpers import tiny_config
from real_repos import copy_stdlib


def test_clearing_the_caches_while_prompts_are_built_never_fails_a_build(sample_repo: Path, tiny_model: Path,
                                                                          tmp_path: Path) -> None:
    copy_stdlib(sample_repo / "lib", files=40)
    engine = Engine(tiny_config(tiny_model, tmp_path / "cache"), sample_repo, background_index=True)
    engine.reindex()
    main = sample_repo / "main.py"
    text = main.read_text()
    lines = text.count("\n")
    errors: list[BaseException] = []
    built = [0]
    stop = time.monotonic() + 4.0

    def build_loop() -> None:
        try:
            while time.monotonic() < stop:
                for line in range(lines):
                    engine.build_context(main, text, line, 0, budget=2048)
                    built[0] += 1
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: a race shows within seconds
    try:
        builder = threading.Thread(target=build_loop)
        builder.start()
        cleared = 0
        while builder.is_alive():
            cleared += engine.clear_caches()
        builder.join()
    finally:
        sys.setswitchinterval(interval)
        engine.close()
    assert errors == []
    assert built[0] > 20 and cleared > 20, (built, cleared)
