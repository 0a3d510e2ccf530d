"""A repository prefix's snapshot job that is dropped before it saves (the next completion's warm-up supersedes
it, the queue sheds it, a shutdown) must not count as saved: it once did, and no completion at that place ever
queued its snapshot again in the session."""

from __future__ import annotations

from pathlib import Path

from engine.service import Engine

from engine_helpers import tiny_config


def test_a_snapshot_dropped_before_it_saved_is_queued_again(sample_repo: Path, tiny_model: Path,
                                                            tmp_path: Path) -> None:
    engine = Engine(tiny_config(tiny_model, tmp_path / "cache"), sample_repo)
    try:
        main = sample_repo / "main.py"
        text = main.read_text()
        engine.complete(main, text, 15, 12, use_cache=False)
        queued = set(engine.host.saved_prefixes)
        assert len(queued) == 1  # the snapshot job waits for a quiet second before it starts
        engine.runtime.cancel("warm-up")  # dropped before it ran (as a newer warm-up supersedes it)
        assert engine.runtime.scheduler.wait_idle(30)
        assert engine.host.saved_prefixes == set()
        engine.complete(main, text, 15, 13, use_cache=False)  # the same place again: queued again
        assert engine.host.saved_prefixes == queued
        assert engine.runtime.scheduler.wait_idle(60)
        assert engine.host.saved_prefixes == queued  # this time it ran and saved
    finally:
        engine.close()
