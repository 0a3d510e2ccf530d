"""Settings change (the server closes its engines and the model host) while the model is still loading, or while
an index rebuild is queued: nothing may outlive the close. Before, a load that finished after the close set its
model on the closed host (a second model in memory beside the new host's: for a 30B model, out of memory), a
late request started a new inference worker nobody stopped, and a queued rebuild reopened the closed engine's
index and started a file watcher that ran forever."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

import engine.model_host as model_host
from engine.model_host import HostClosed, ModelHost
from engine.service import Engine, EngineClosed

from engine_helpers import tiny_config
from real_repos import copy_stdlib


def test_a_model_that_finishes_loading_after_the_host_closed_is_closed_too(tiny_model: Path, tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    host_closed = threading.Event()
    loaded: list = []
    closed: list[int] = []
    real_create = model_host.create_backend

    def load_after_close(config, resolved):  # the real load, held until the host is closed (timing only)
        host_closed.wait(30)
        backend = real_create(config, resolved)
        real_close = backend.close
        backend.close = lambda: (closed.append(1), real_close())  # counts the close of the real model
        loaded.append(backend)
        return backend

    monkeypatch.setattr(model_host, "create_backend", load_after_close)
    host = ModelHost(tiny_config(tiny_model, tmp_path / "cache"))
    outcome: list[BaseException | None] = []

    def load() -> None:
        try:
            host.backend  # noqa: B018 - loads
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - checked below
            outcome.append(exc)

    loader = threading.Thread(target=load)
    loader.start()
    host.close()
    host_closed.set()
    loader.join(60)
    assert len(loaded) == 1 and closed == [1]  # the model was really loaded, and closed once
    assert isinstance(outcome[0], HostClosed)
    assert host.current_backend is None
    with pytest.raises(HostClosed):
        host.backend  # noqa: B018 - no second load on a closed host
    workers = [t for t in threading.enumerate() if t.name.startswith("coderflash-inference")]
    with pytest.raises(HostClosed):
        host.scheduler  # noqa: B018 - no new worker for a late request
    assert [t for t in threading.enumerate() if t.name.startswith("coderflash-inference")] == workers


def test_a_rebuild_queued_before_the_engine_closed_does_not_reopen_its_index(sample_repo: Path, tiny_model: Path,
                                                                             tmp_path: Path) -> None:
    engine = Engine(tiny_config(tiny_model, tmp_path / "cache"), sample_repo, background_index=True)
    engine.reindex()
    engine.close()
    watchers = [t for t in threading.enumerate() if "watch" in t.name]
    with pytest.raises(EngineClosed):
        engine.reindex()
    assert engine.start_watching() == ""
    assert [t for t in threading.enumerate() if "watch" in t.name] == watchers
    assert engine.repo_index() is None


def test_closing_during_a_cold_index_stops_the_build_and_the_next_engine_finishes_it(
        sample_repo: Path, tiny_model: Path, tmp_path: Path) -> None:
    """The server closes engines on its event loop (settings changed): close() waits for the index lock, which a
    cold build holds for minutes on a large repository — the server answered nothing meanwhile. The build now
    stops at the next file; what it wrote is kept and the next engine's warm build completes the index."""
    copy_stdlib(sample_repo / "lib", files=300)
    engine = Engine(tiny_config(tiny_model, tmp_path / "cache"), sample_repo, background_index=True)
    outcome: list = []

    def build() -> None:
        try:
            outcome.append(engine.reindex())
        except BaseException as exc:  # noqa: BLE001 - checked below
            outcome.append(exc)

    builder = threading.Thread(target=build)
    builder.start()
    deadline = time.monotonic() + 120
    while engine.index_progress.get("done", 0) < 1 and builder.is_alive():
        assert time.monotonic() < deadline, "the cold build never reported progress"
        time.sleep(0.002)
    engine.close()
    builder.join(120)
    assert len(outcome) == 1 and isinstance(outcome[0], EngineClosed), outcome
    again = Engine(tiny_config(tiny_model, tmp_path / "cache"), sample_repo, background_index=True)
    try:
        stats = again.reindex()
        assert stats["parsed_files"] > 0  # the files the stopped build never reached
        assert stats["files"] >= 300
    finally:
        again.close()
