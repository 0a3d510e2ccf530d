"""Two model loads overlap in the server (the model on a loader thread, a vocabulary for the context builder on
the worker): llama-cpp-python's Python-level banner is kept off ``sys.stderr`` while they run, and when both are
done ``sys.stderr`` is the stream it was — before, the second load to finish put back the first one's /dev/null,
already closed, and every later write to ``sys.stderr`` raised ``ValueError``."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from engine.model.llama_loader import open_llama, quiet_stderr


def test_overlapping_quiet_sections_give_back_the_stream_they_found() -> None:
    before = sys.stderr
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, object] = {}

    def first() -> None:  # enters first, leaves first
        with quiet_stderr():
            a_in.set()
            b_in.wait(10)
            seen["a"] = sys.stderr
        a_out.set()

    def second() -> None:  # enters while the first is inside, leaves after it
        a_in.wait(10)
        with quiet_stderr():
            b_in.set()
            a_out.wait(10)
            seen["b"] = sys.stderr
            sys.stderr.write("dropped\n")  # still quiet after the first left

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert seen["a"] is not before and seen["b"] is not before
    assert sys.stderr is before
    sys.stderr.write("")  # usable: not a closed file


def test_two_real_loads_at_once_leave_stderr_usable(tiny_model: Path) -> None:
    before = sys.stderr
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def load() -> None:
        try:
            start.wait(10)
            for _ in range(3):
                open_llama(model_path=str(tiny_model), vocab_only=True).close()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=load) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert sys.stderr is before
    sys.stderr.write("")
