"""One inference worker for one model: priorities, supersession, pre-emption and a bounded queue.

Why one worker: the model has a single KV sequence that every request reuses through its common prefix;
two requests interleaving on it would evict each other's prefix. So all model work (inline completion,
code actions, chat, warm-up) runs on one thread, most important first:

- a newer job with the same ``key`` (a document's inline completion) supersedes the queued one (dropped)
  and cancels the running one, which stops within one decode step;
- a more important job pre-empts a running *resumable* job (chat, warm-up): its cancel token fires with
  reason ``"preempted"`` and the job goes back into the queue with a fresh token; its function is called
  again afterwards and continues from the state it kept (chat resumes, warm-up reuses the evaluated prefix);
- a job whose deadline has passed before it starts is dropped as stale; the queue is bounded and sheds
  the least important, oldest job first, so fast typing never builds a backlog.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Callable, Generic, TypeVar

from engine.model.backend import Cancelled, CancelToken

T = TypeVar("T")


def _fail(future: Future, exc: BaseException) -> None:
    """Deliver an exception unless the caller already cancelled the future (e.g. $/cancelRequest, which
    cancels it through ``asyncio.wrap_future``): setting a cancelled future raises InvalidStateError,
    which must never kill the worker."""
    if not future.done():
        try:
            future.set_exception(exc)
        except InvalidStateError:
            pass


def _succeed(future: Future, result: Any) -> None:
    if not future.done():
        try:
            future.set_result(result)
        except InvalidStateError:
            pass


def wait_for(event: threading.Event, token: CancelToken, limit_s: float = 1.0) -> bool:
    """In a job: wait up to ``limit_s`` for ``event`` (another thread's work this job builds on), raising
    Cancelled as soon as the job is pre-empted. True when the event came."""
    deadline = time.monotonic() + limit_s
    while not event.wait(min(0.02, max(0.0, deadline - time.monotonic()))):
        token.check()
        if time.monotonic() >= deadline:
            return False
    return True


class Priority(IntEnum):
    """Lower runs first."""

    INLINE = 0  # inline completion (a user is waiting at the cursor)
    ACTION = 1  # code action / explicit command
    CHAT = 2
    WARMUP = 3  # background prefix warm-up / snapshot


SHED = "shed"  # the reason a queued job dropped for more important work is cancelled with (callers may retry)


class QueueFull(RuntimeError):
    """The queue is full of more important work; this job was not accepted."""


@dataclass(order=True)
class Job(Generic[T]):
    priority: int
    seq: int
    fn: Callable[[CancelToken], T] = field(compare=False)
    key: str | None = field(compare=False, default=None)
    deadline: float | None = field(compare=False, default=None)  # time.monotonic()
    resumable: bool = field(compare=False, default=False)
    cancel: CancelToken = field(compare=False, default_factory=CancelToken)
    future: Future = field(compare=False, default_factory=Future)
    runs: int = field(compare=False, default=0)


class Scheduler:
    """A priority queue drained by one daemon thread."""

    def __init__(self, max_queue: int = 16, name: str = "coderflash-inference") -> None:
        self.max_queue = max_queue
        self._heap: list[Job[Any]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._running: Job[Any] | None = None
        self._closed = False
        self.stats = {"submitted": 0, "completed": 0, "superseded": 0, "preempted": 0, "resumed": 0,
                      "stale": 0, "shed": 0, "failed": 0}
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    # -- submission ---------------------------------------------------------------------------------
    def submit(self, fn: Callable[[CancelToken], T], priority: Priority | int, *, key: str | None = None,
               deadline: float | None = None, resumable: bool = False,
               cancel: CancelToken | None = None) -> "Future[T]":
        """Queue ``fn(cancel_token)``; the future carries its result, or Cancelled when dropped/cancelled."""
        job: Job[T] = Job(int(priority), next(self._seq), fn, key, deadline, resumable, cancel or CancelToken())
        # A caller that cancels the future (e.g. LSP $/cancelRequest via asyncio.wrap_future) stops the job too.
        job.future.add_done_callback(lambda f: f.cancelled() and job.cancel.cancel("cancelled by caller"))
        with self._cond:
            if self._closed:
                raise RuntimeError("scheduler is closed")
            self.stats["submitted"] += 1
            if key is not None:
                self._supersede(key)
            running = self._running
            if running is not None and running.resumable and running.priority > job.priority:
                running.cancel.cancel("preempted")
            if len(self._heap) >= self.max_queue and not self._shed(job):
                self.stats["shed"] += 1
                _fail(job.future, QueueFull("inference queue is full"))
                return job.future
            heapq.heappush(self._heap, job)
            self._cond.notify()
        return job.future

    def _supersede(self, key: str) -> None:
        kept = []
        for queued in self._heap:
            if queued.key == key:
                self.stats["superseded"] += 1
                queued.cancel.cancel("superseded")
                _fail(queued.future, Cancelled("superseded"))
            else:
                kept.append(queued)
        if len(kept) != len(self._heap):
            self._heap = kept
            heapq.heapify(self._heap)
        if self._running is not None and self._running.key == key and not self._running.cancel.cancelled:
            self.stats["superseded"] += 1
            self._running.cancel.cancel("superseded")

    def _shed(self, incoming: Job[Any]) -> bool:
        """Drop the least important, oldest queued job if it matters less than ``incoming``."""
        victim = max(self._heap, key=lambda j: (j.priority, -j.seq))
        if victim.priority <= incoming.priority:
            return False
        self._heap.remove(victim)
        heapq.heapify(self._heap)
        self.stats["shed"] += 1
        victim.cancel.cancel(SHED)
        _fail(victim.future, Cancelled(SHED))
        return True

    def cancel(self, key: str) -> None:
        """Cancel queued and running jobs with ``key`` (e.g. the editor closed the document)."""
        with self._cond:
            self._supersede(key)

    # -- the worker ----------------------------------------------------------------------------------
    def _next(self) -> Job[Any] | None:
        with self._cond:
            while not self._heap and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            job = heapq.heappop(self._heap)
            self._running = job
            return job

    def _loop(self) -> None:
        while True:
            job = self._next()
            if job is None:
                return
            self._run(job)
            with self._cond:
                self._running = None
                self._cond.notify_all()

    def _run(self, job: Job[Any]) -> None:
        if job.future.done():
            return
        if job.cancel.cancelled:
            _fail(job.future, Cancelled(job.cancel.reason))
            return
        if job.deadline is not None and time.monotonic() > job.deadline:
            self.stats["stale"] += 1
            _fail(job.future, Cancelled("stale"))
            return
        if job.runs:
            self.stats["resumed"] += 1
        job.runs += 1
        try:
            result = job.fn(job.cancel)
        except Cancelled as exc:
            if not self._requeue_if_preempted(job):
                _fail(job.future, exc)
            return
        except BaseException as exc:  # noqa: BLE001 - delivered to the caller through the future
            self.stats["failed"] += 1
            _fail(job.future, exc)
            return
        if self._requeue_if_preempted(job):
            return
        self.stats["completed"] += 1
        _succeed(job.future, result)

    def _requeue_if_preempted(self, job: Job[Any]) -> bool:
        if not (job.resumable and job.cancel.reason == "preempted"):
            return False
        with self._cond:
            if self._closed:  # closed since the job stopped: nothing would ever run it again
                _fail(job.future, Cancelled("shutdown"))
                return True
            self.stats["preempted"] += 1
            job.cancel = CancelToken()
            heapq.heappush(self._heap, job)  # same seq: it keeps its place among equals
        return True

    # -- introspection -------------------------------------------------------------------------------
    def wait_idle(self, timeout: float | None = None) -> bool:
        end = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._running is not None or self._heap:
                remaining = None if end is None else end - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def status(self) -> dict[str, Any]:
        with self._cond:
            running = self._running
            return {"queued": len(self._heap), "running": None if running is None else
                    {"priority": Priority(running.priority).name.lower(), "key": running.key},
                    **self.stats}

    def close(self) -> None:
        with self._cond:
            self._closed = True
            if self._running is not None:
                self._running.cancel.cancel("shutdown")
            for job in self._heap:
                _fail(job.future, Cancelled("shutdown"))
            self._heap.clear()
            self._cond.notify_all()
        self._thread.join(timeout=5)
