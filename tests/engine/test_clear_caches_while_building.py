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
    cleared = [0]
    start = time.monotonic()

    def raced_enough() -> bool:
        """Both sides counted, not a wall-clock window: the builder holds the lock for most of each turn, so
        on a busy machine four seconds once gave the clearer only 20 turns (the bound below is 21)."""
        elapsed = time.monotonic() - start
        return elapsed > 60.0 or (elapsed > 4.0 and built[0] > 20 and cleared[0] > 20)

    def build_loop() -> None:
        try:
            while not raced_enough():
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
        while builder.is_alive():
            cleared[0] += engine.clear_caches()
        builder.join()
    finally:
        sys.setswitchinterval(interval)
        engine.close()
    assert errors == []
    assert built[0] > 20 and cleared[0] > 20, (built, cleared)
