"""Scheduler policies with plain Python jobs (no model): order, supersession, pre-emption, shedding."""

from __future__ import annotations

import threading
import time

import pytest

from engine.model.backend import Cancelled, CancelToken
from engine.inference.scheduler import Priority, QueueFull, Scheduler


def _blocker(started: threading.Event, release: threading.Event):
    def job(token: CancelToken) -> str:
        started.set()
        while not release.is_set():
            if token.cancelled:
                return "cancelled:" + token.reason
            time.sleep(0.001)
        return "done"
    return job


def test_priority_order_after_running_job():
    sched = Scheduler()
    started, release = threading.Event(), threading.Event()
    order: list[str] = []
    first = sched.submit(_blocker(started, release), Priority.ACTION)
    started.wait(2)
    futures = [sched.submit(lambda t, n=name: order.append(n), prio)
               for name, prio in (("warm", Priority.WARMUP), ("chat", Priority.CHAT), ("inline", Priority.INLINE))]
    release.set()
    for f in [first, *futures]:
        f.result(2)
    assert order == ["inline", "chat", "warm"]
    sched.close()


def test_newer_request_for_same_key_cancels_running_and_drops_queued():
    sched = Scheduler()
    started, release = threading.Event(), threading.Event()
    running = sched.submit(_blocker(started, release), Priority.INLINE, key="doc")
    started.wait(2)
    t0 = time.perf_counter()
    newest = sched.submit(lambda t: "newest", Priority.INLINE, key="doc")
    assert running.result(2) == "cancelled:superseded"
    assert time.perf_counter() - t0 < 0.05
    assert newest.result(2) == "newest"
    # queued ones are dropped
    started2, release2 = threading.Event(), threading.Event()
    blocker = sched.submit(_blocker(started2, release2), Priority.INLINE, key="other")
    started2.wait(2)
    queued = sched.submit(lambda t: "old", Priority.INLINE, key="doc")
    latest = sched.submit(lambda t: "new", Priority.INLINE, key="doc")
    release2.set()
    with pytest.raises(Cancelled):
        queued.result(2)
    assert latest.result(2) == "new" and blocker.result(2) == "done"
    assert sched.stats["superseded"] >= 2
    sched.close()


def test_resumable_job_is_preempted_and_resumed():
    sched = Scheduler()
    runs: list[str] = []
    started = threading.Event()

    def chat(token: CancelToken) -> str:
        runs.append("run")
        started.set()
        for _ in range(2000):
            if token.cancelled:
                return "partial"
            time.sleep(0.001)
            if len(runs) > 1:
                return "finished"
        return "timeout"

    chat_future = sched.submit(chat, Priority.CHAT, resumable=True)
    started.wait(2)
    inline = sched.submit(lambda t: "inline", Priority.INLINE)
    assert inline.result(2) == "inline"
    assert chat_future.result(5) == "finished"
    assert runs == ["run", "run"] and sched.stats["preempted"] == 1 and sched.stats["resumed"] == 1
    sched.close()


def test_stale_and_bounded_queue():
    sched = Scheduler(max_queue=2)
    started, release = threading.Event(), threading.Event()
    sched.submit(_blocker(started, release), Priority.ACTION)
    started.wait(2)
    stale = sched.submit(lambda t: "x", Priority.INLINE, deadline=time.monotonic() - 1)
    warm = sched.submit(lambda t: "warm", Priority.WARMUP)
    inline = sched.submit(lambda t: "inline", Priority.INLINE)  # sheds the warm-up
    with pytest.raises(QueueFull):
        sched.submit(lambda t: "w2", Priority.WARMUP).result(1)
    release.set()
    with pytest.raises(Cancelled, match="shed"):
        warm.result(2)
    with pytest.raises(Cancelled, match="stale"):
        stale.result(2)
    assert inline.result(2) == "inline"
    sched.close()


def test_a_superseded_job_is_not_requeued_when_a_preemption_follows() -> None:
    """A resumable job (a warm-up, a chat step) superseded by a newer one of its key and then pre-empted by a
    keystroke before it noticed: the pre-emption once overwrote "superseded", and the dropped job was requeued
    and ran again."""
    sched = Scheduler()
    running, both_sent = threading.Event(), threading.Event()
    runs: list[int] = []

    def warm_up(cancel: CancelToken) -> str:
        runs.append(1)
        if len(runs) > 1:
            return "ran again"
        running.set()
        both_sent.wait(10)
        cancel.check()
        return "not cancelled"

    try:
        job = sched.submit(warm_up, Priority.WARMUP, key="warm-up", resumable=True)
        assert running.wait(10)
        sched.cancel("warm-up")  # superseded
        keystroke = sched.submit(lambda cancel: "completion", Priority.INLINE)  # pre-empts the running job
        both_sent.set()
        assert keystroke.result(10) == "completion"
        with pytest.raises(Cancelled):
            job.result(10)
        assert sched.wait_idle(10) and len(runs) == 1
    finally:
        sched.close()


def test_a_preemption_gives_way_to_a_final_reason_not_the_other_way() -> None:
    token = CancelToken()
    token.cancel("preempted")
    token.cancel("shutdown")
    assert token.reason == "shutdown"
    token = CancelToken()
    token.cancel("superseded")
    token.cancel("preempted")
    assert token.reason == "superseded"
