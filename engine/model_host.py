"""The process's one model: its backend, its single inference worker and the counters that describe it.

Why a host apart from ``Engine``: an editor may open several workspace roots and files outside all of
them. Each root has its own index and context (``Engine``), but a 17 GB model must be loaded once and
driven by one worker, so that a keystroke in any root pre-empts a chat in any other and the KV cache
is not fought over by two threads. Every ``Engine`` of a process holds the same ``ModelHost``.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

from engine.model.backend import Backend, GenerationResult
from engine.config import Config
from engine.model.resolution import ModelError, ResolvedModel, resolve_model
from engine.inference.latency import SpeedMeter
from engine.inference.scheduler import Scheduler


class HostClosed(ModelError):
    """The host was closed (the settings changed, or shutdown) while a load or a request was on its way: not
    the model's fault, nothing to tell the user."""


@dataclass
class Counters:
    """Engine counters reported by ``coderflash/status`` (a stable contract) and ``--json`` outputs."""

    requests: int = 0
    prompt_tokens: int = 0
    reused_tokens: int = 0
    evaluated_tokens: int = 0
    generated_tokens: int = 0
    draft_tokens: int = 0  # tokens drafted (prompt lookup or the draft model) and verified by the model
    accepted_draft_tokens: int = 0  # of those, the ones the model's own choice agreed with
    cancelled: int = 0
    errors: int = 0
    cache_hits: int = 0
    model_loads: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def cache_hit(self) -> None:
        with self.lock:
            self.cache_hits += 1

    def cancelled_before_start(self) -> None:
        with self.lock:
            self.cancelled += 1

    def model_loaded(self) -> None:
        with self.lock:
            self.model_loads += 1

    def add(self, result: GenerationResult) -> None:
        with self.lock:
            self.requests += 1
            self.prompt_tokens += result.prompt_tokens
            self.reused_tokens += result.reused_tokens
            self.evaluated_tokens += result.evaluated_tokens
            self.generated_tokens += result.generated_tokens
            self.draft_tokens += result.draft_tokens
            self.accepted_draft_tokens += result.accepted_draft_tokens
            if result.finish_reason == "cancelled":
                self.cancelled += 1

    def to_json(self) -> dict[str, int]:
        with self.lock:
            return {k: getattr(self, k) for k in ("requests", "prompt_tokens", "reused_tokens",
                                                  "evaluated_tokens", "generated_tokens", "draft_tokens",
                                                  "accepted_draft_tokens", "cancelled", "errors", "cache_hits",
                                                  "model_loads")}


def create_backend(config: Config, resolved: ResolvedModel | None) -> Backend:
    """The configured backend: in-process llama.cpp on a resolved GGUF, or an OpenAI-compatible server."""
    if config.backend == "openai":
        from engine.model.remote_backend import RemoteBackend

        return RemoteBackend(config.remote)
    assert resolved is not None
    from engine.model.llama_backend import LlamaBackend

    return LlamaBackend(resolved.path, config.llama, kv_dir=config.cache_path / "kv")


class ModelHost:
    """One backend, loaded on first use, and the one worker that runs it (completion > action > chat >
    warm-up). ``config`` supplies the model settings (``model``, ``backend``, ``llama``, ``remote``)."""

    def __init__(self, config: Config, log: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.log = log or (lambda message: None)
        self.counters = Counters()
        self.load_error: str | None = None
        self._backend: Backend | None = None
        self._resolved: ResolvedModel | None = None
        self._load_lock = threading.Lock()  # held while loading (seconds): only for the backend
        self._lock = threading.Lock()
        self._closed = False  # set by close(): no model is loaded and no worker started after it
        self._scheduler: Scheduler | None = None
        self._remote_pool: ThreadPoolExecutor | None = None
        # Repository prefixes already snapshotted (by hash), and the last prefix a completion used: it is
        # snapshotted again at shutdown so a restart at the same place evaluates almost nothing.
        self.saved_prefixes: set[str] = set()
        self.last_prefix: list[int] = []
        self.prefix_lock = threading.Lock()
        # Prefill and decode speed of this model on this machine (inline completions are sized from them).
        self.speed = SpeedMeter()

    # -- model --------------------------------------------------------------------------------
    def resolve(self) -> ResolvedModel | None:
        if self.config.backend == "openai":
            return None
        if self._resolved is None:
            self._resolved = resolve_model(self.config.model)
        return self._resolved

    @property
    def backend(self) -> Backend:
        """Load the model on first use (raises ModelError with an actionable message)."""
        with self._load_lock:
            if self._backend is None:
                if self._closed:
                    raise HostClosed("the model host was closed")
                start = time.perf_counter()
                try:
                    loaded = create_backend(self.config, self.resolve())
                except ModelError as exc:
                    self.load_error = str(exc)
                    raise
                with self._lock:  # close() may have run during the load (seconds): then nobody owns this model
                    if not self._closed:
                        self._backend, loaded = loaded, None
                if loaded is not None:
                    loaded.close()
                    raise HostClosed("the model host was closed while the model loaded")
                self.load_error = None
                self.counters.model_loaded()
                self.log(f"model loaded in {time.perf_counter() - start:.2f}s: {self._backend.info()}")
            return self._backend

    @property
    def current_backend(self) -> Backend | None:
        """The backend if it is loaded; never loads it."""
        return self._backend

    @property
    def loaded(self) -> bool:
        return self._backend is not None

    def model_name(self) -> str:
        backend = self._backend
        return str(backend.info().get("model_name", "")) if backend is not None else ""

    def model_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"configured": self.config.model, "backend": self.config.backend}
        if self._resolved is not None:
            info.update(name=self._resolved.name, path=str(self._resolved.path), source=self._resolved.source,
                        small_default=self._resolved.is_small_default)
        if self._backend is not None:
            info.update(self._backend.info())
        if self.load_error:
            info["error"] = self.load_error
        return info

    # -- the worker ---------------------------------------------------------------------------
    @property
    def scheduler(self) -> Scheduler:
        with self._lock:
            if self._scheduler is None:
                if self._closed:  # a late request (a chat between steps) must not start a worker nobody stops
                    raise HostClosed("the model host was closed")
                self._scheduler = Scheduler(max_queue=16)
            return self._scheduler

    @property
    def started(self) -> bool:
        return self._scheduler is not None

    def remote_pool(self) -> ThreadPoolExecutor:
        """Chat on a remote server runs beside completions (a server runs requests concurrently)."""
        with self._lock:
            if self._remote_pool is None:
                self._remote_pool = ThreadPoolExecutor(2, thread_name_prefix="coderflash-chat")
            return self._remote_pool

    def close(self) -> None:
        """Stop the worker; snapshot the KV as it is now over the last prefix's older snapshot; unload. For good:
        a load still running when this is called closes its model itself (``backend``)."""
        with self._lock:
            self._closed = True
            scheduler, self._scheduler = self._scheduler, None
            backend = self._backend
        if scheduler is not None:
            scheduler.close()
        if self.last_prefix and backend is not None and hasattr(backend, "save_prefix"):
            try:
                backend.save_prefix(self.last_prefix, wait=True)  # type: ignore[attr-defined]
            except Exception as exc:  # noqa: BLE001 - a failed snapshot only costs the next start's speed
                self.log(f"KV snapshot at shutdown failed: {exc}")
        if self._remote_pool is not None:
            self._remote_pool.shutdown(wait=False, cancel_futures=True)
            self._remote_pool = None
        if backend is not None:
            backend.close()
            self._backend = None
