"""Chat and completions at once on the same documents: one lock guards the context builder and its caches,
so every prompt is what the same request gives when run alone."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

from engine.service import Engine

from engine_helpers import tiny_config
from real_repos import copy_stdlib

DURATION_S = float(os.environ.get("CODERFLASH_CONCURRENCY_S", "60"))


def test_chat_and_completions_concurrently_give_the_serial_prompts(sample_repo: Path, tiny_model: Path,
                                                                   tmp_path: Path) -> None:
    copy_stdlib(sample_repo / "lib", files=80)
    shutil.copy(sample_repo / "lib" / "_collections_abc.py", sample_repo / "abc_copy.py")
    config = tiny_config(tiny_model, tmp_path / "cache", n_ctx=8192)
    # the first-token target sizes prompts to the measured speed, which a loaded machine changes between the
    # serial and the concurrent rounds: what is compared here is the lock, so prompts are sized by budget alone
    config.completion.latency_target = False
    engine = Engine(config, sample_repo, background_index=True)
    engine.reindex()
    main = sample_repo / "main.py"
    other = sample_repo / "abc_copy.py"
    texts = {main: main.read_text(), other: other.read_text()}
    # consecutive requests differ in line or budget, so no request inherits the previous one's selection
    completions = [(main, 15, 12, 2048), (main, 15, 12, 4096), (other, 40, 0, 2048), (other, 40, 0, 4096)]
    chats = [(main, 1500), (other, 3000), (None, 2000)]

    def complete(path: Path, line: int, character: int, budget: int) -> str:
        out = engine.complete(path, texts[path], line, character, budget=budget, use_cache=False)
        return out.context.prompt

    def chat_context(path: Path | None, budget: int) -> str:
        if path is None:
            return engine.chat_context(budget)
        return engine.chat_context(budget, path, texts[path], 10)

    try:
        for _ in range(2):  # the second round is the steady state (caches warm)
            serial_completions = [complete(*c) for c in completions]
            serial_chats = [chat_context(*c) for c in chats]
        errors: list[BaseException] = []
        mismatches: list[str] = []
        counts = {"completions": 0, "chats": 0}
        stop = time.monotonic() + DURATION_S

        def completion_loop() -> None:
            try:
                while time.monotonic() < stop:
                    for request, expected in zip(completions, serial_completions):
                        if complete(*request) != expected:
                            mismatches.append(f"completion {request}")
                        counts["completions"] += 1
                        time.sleep(0.05)  # keystrokes come with gaps: the chat turn runs in them
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        def chat_loop() -> None:
            try:
                while time.monotonic() < stop:
                    for request, expected in zip(chats, serial_chats):
                        if chat_context(*request) != expected:
                            mismatches.append(f"chat {request}")
                        counts["chats"] += 1
                    # a chat turn on the same model: queued behind (and pre-empted by) completions
                    engine.chat([{"role": "user", "content": "what does main.py do?"}], max_tokens=8).result(DURATION_S + 60)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=completion_loop), threading.Thread(target=chat_loop)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(DURATION_S + 120)
        assert not errors, errors
        assert not mismatches, mismatches[:5]
        assert counts["completions"] >= 2 * len(completions) and counts["chats"] >= len(chats), counts
    finally:
        engine.close()
