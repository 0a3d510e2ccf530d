"""The engine facade used by the command line and the language server.

It owns one backend (one model instance shared by completion, actions and chat), the context builder
and the counters that ``coderflash/status`` and ``--json`` outputs report.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .backend import Backend, CancelToken, GenerationRequest, GenerationResult, Sampling
from .config import Config
from .context import ContextResult
from .context_repo import RepoContextBuilder
from .models import ModelError, ResolvedModel, resolve_model
from .runtime import Runtime
from .scheduler import Priority
from .tokens import TokenCounter


@dataclass
class CompletionOutput:
    completion: str
    result: GenerationResult
    context: ContextResult
    model: str
    multiline: bool
    cached: str = ""  # "" (model ran), "lru" or "typed_ahead" (served from the completion cache)
    syntax: str | None = None  # what tree-sitter saw at the cursor (shape decision)

    def to_json(self, include_prompt: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {"completion": self.completion, "model": self.model, "multiline": self.multiline,
                                "cached": self.cached, "syntax": self.syntax}
        data.update(self.result.counters())
        data["finish_reason"] = self.result.finish_reason
        data["context"] = {k: v for k, v in self.context.to_json().items() if include_prompt or k != "prompt"}
        return data


@dataclass
class Counters:
    requests: int = 0
    prompt_tokens: int = 0
    reused_tokens: int = 0
    evaluated_tokens: int = 0
    generated_tokens: int = 0
    cancelled: int = 0
    errors: int = 0
    cache_hits: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def cache_hit(self) -> None:
        with self.lock:
            self.cache_hits += 1

    def cancelled_before_start(self) -> None:
        with self.lock:
            self.cancelled += 1

    def add(self, result: GenerationResult) -> None:
        with self.lock:
            self.requests += 1
            self.prompt_tokens += result.prompt_tokens
            self.reused_tokens += result.reused_tokens
            self.evaluated_tokens += result.evaluated_tokens
            self.generated_tokens += result.generated_tokens
            if result.finish_reason == "cancelled":
                self.cancelled += 1

    def to_json(self) -> dict[str, int]:
        with self.lock:
            return {k: getattr(self, k) for k in ("requests", "prompt_tokens", "reused_tokens",
                                                  "evaluated_tokens", "generated_tokens", "cancelled", "errors",
                                                  "cache_hits")}


def create_backend(config: Config, resolved: ResolvedModel | None) -> Backend:
    """The configured backend: in-process llama.cpp on a resolved GGUF, or an OpenAI-compatible server."""
    if config.backend == "openai":
        from .remote_backend import RemoteBackend

        return RemoteBackend(config.remote)
    assert resolved is not None
    from .llama_backend import LlamaBackend

    return LlamaBackend(resolved.path, config.llama, kv_dir=config.cache_path / "kv")


class Engine:
    """One workspace's engine: model, context and counters."""

    def __init__(self, config: Config, root: Path | str | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.root = Path(root).resolve() if root else None
        self.log = log or (lambda message: None)
        self.counters = Counters()
        self._backend: Backend | None = None
        self._resolved: ResolvedModel | None = None
        self._context: RepoContextBuilder | None = None
        self._context_source: str | None = None
        self._repo_index = None
        self._load_lock = threading.Lock()
        self.load_error: str | None = None
        self.open_documents: dict[str, str] = {}
        self._index_lock = threading.RLock()
        self._runtime: Runtime | None = None

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
                start = time.perf_counter()
                try:
                    self._backend = create_backend(self.config, self.resolve())
                except ModelError as exc:
                    self.load_error = str(exc)
                    raise
                self.load_error = None
                self.log(f"model loaded in {time.perf_counter() - start:.2f}s: {self._backend.info()}")
            return self._backend

    @property
    def loaded(self) -> bool:
        return self._backend is not None

    def model_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"configured": self.config.model, "backend": self.config.backend}
        if self._resolved is not None:
            info.update(path=str(self._resolved.path), source=self._resolved.source,
                        small_default=self._resolved.is_small_default)
        if self._backend is not None:
            info.update(self._backend.info())
        if self.load_error:
            info["error"] = self.load_error
        return info

    def token_counter(self) -> TokenCounter:
        backend = self.backend
        return TokenCounter(backend.tokenize, name=str(backend.info().get("model_name", backend.name)))

    # -- context ------------------------------------------------------------------------------
    def context_builder(self) -> RepoContextBuilder:
        """Repository-level context. Works without a loaded model: a resolvable GGUF gives its vocabulary
        (exact counts, same ids), no model gives the estimate counter and the Qwen format by token text.
        Rebuilt once the model is loaded so completion prompts always carry the backend's own ids."""
        source = "backend" if self._backend is not None else None
        if self._context is None or (source == "backend" and self._context_source != "backend"):
            from .context_tokenizer import context_tokenizer

            model_path = None
            if source is None and self.config.backend != "openai":
                try:
                    resolved = self.resolve()
                    model_path = resolved.path if resolved is not None else None
                except ModelError:
                    model_path = None
            try:
                fmt, counter = context_tokenizer(self._backend, model_path)
            except Exception as exc:  # an unreadable vocabulary: estimate rather than fail
                self.log(f"tokenizer for context unavailable ({exc}); using the estimate")
                fmt, counter = context_tokenizer(None, None)
            self._context_source = source or ("vocab" if model_path else "estimate")
            self._context = RepoContextBuilder(fmt, counter, self.repo_index,
                                               repo_name=self.root.name if self.root else "",
                                               suffix_tokens=self.config.context.suffix_tokens,
                                               root=str(self.root) if self.root else None, log=self.log)
        return self._context

    def repo_index(self):
        """The workspace index, opened and brought up to date on first use (None without a root).

        One Index per engine: the server's background indexing and the first completion may race here."""
        if self.root is None:
            return None
        with self._index_lock:
            if self._repo_index is None:
                from .indexing import open_index

                index = open_index(self.root, self.config)
                index.build()
                for rel, text in self.open_documents.items():
                    index.set_overlay(rel, text)
                self._repo_index = index
            return self._repo_index

    def chat_context(self, budget: int, path: Path | str | None = None, text: str | None = None,
                     line: int = 0) -> str:
        """Repository context for chat (system or first user turn), as text within ``budget`` tokens."""
        rel = self.relative_path(path) if path is not None else None
        return self.context_builder().chat_context(budget, rel, text, line)

    def relative_path(self, path: Path | str) -> str:
        path = Path(path).resolve()
        if self.root is not None:
            try:
                return path.relative_to(self.root).as_posix()
            except ValueError:
                pass
        return path.name

    def build_context(self, path: Path | str, text: str, line: int, character: int,
                      budget: int | None = None) -> ContextResult:
        budget = budget or self.config.context.budget
        return self.context_builder().build(self.relative_path(path), text, line, character, budget)

    # -- completion ---------------------------------------------------------------------------
    # Inference goes through one worker (engine/runtime.py): inline completion > code action > chat >
    # warm-up; a newer completion for a document cancels the running one; results are cached.
    @property
    def runtime(self) -> Runtime:
        with self._load_lock:
            if self._runtime is None:
                self._runtime = Runtime(self)
            return self._runtime

    def complete(self, path: Path | str, text: str, line: int, character: int, *,
                 budget: int | None = None, cancel: CancelToken | None = None,
                 priority: Priority = Priority.INLINE, use_cache: bool = True) -> CompletionOutput:
        """Blocking inline completion. Superseded/cancelled → empty completion, finish_reason "cancelled"."""
        return self.runtime.complete(path, text, line, character, budget=budget, cancel=cancel,
                                     priority=priority, use_cache=use_cache)

    def submit_complete(self, path: Path | str, text: str, line: int, character: int, *,
                        budget: int | None = None, cancel: CancelToken | None = None,
                        priority: Priority = Priority.INLINE) -> Future[CompletionOutput]:
        """Non-blocking inline completion (``asyncio.wrap_future`` it); raises Cancelled when superseded."""
        return self.runtime.submit_complete(path, text, line, character, budget=budget, cancel=cancel,
                                            priority=priority)

    def generate(self, request: GenerationRequest, *, priority: Priority = Priority.ACTION,
                 key: str | None = None, cancel: CancelToken | None = None) -> Future[GenerationResult]:
        """Raw generation for code actions and commands on the shared model."""
        return self.runtime.submit_generate(request, priority=priority, key=key, cancel=cancel)

    def chat(self, messages: list[dict], *, tools: list[dict] | None = None,
             on_text: Callable[[str], None] | None = None, cancel: CancelToken | None = None,
             max_tokens: int | None = None, sampling: Sampling | None = None) -> Future[GenerationResult]:
        """An assistant turn with the model's chat template, streamed to ``on_text`` (chat sampling defaults)."""
        return self.runtime.submit_chat(messages, tools=tools, on_text=on_text, cancel=cancel,
                                        max_tokens=max_tokens, sampling=sampling)

    def warm_up(self, path: Path | str, text: str, line: int | None = None,
                character: int | None = None) -> Future[dict[str, object]]:
        """Background: make this document's repository prefix resident (snapshot restore or prefill+save)."""
        return self.runtime.warm_up(path, text, line, character)

    def prepare_document(self, path: Path | str, text: str, budget: int | None = None) -> Future[float] | None:
        """Call on didOpen (after ``document_opened``): computes this document's per-file repository context
        (ranking personalised to it, the definitions of its names, candidate snippets) on the inference
        worker at warm-up priority, so the first completion in it only does the near-cursor part. Never
        loads the model or builds the index (None when the index is not open yet, or the file is outside
        the workspace). The future carries the milliseconds spent."""
        if self._repo_index is None or not self._inside_root(path):
            return None
        rel = self.relative_path(path)
        budget = budget or self.config.context.budget

        def job(token: CancelToken) -> float:
            return self.context_builder().prepare_file(rel, text, budget)

        return self.runtime.scheduler.submit(job, Priority.WARMUP, key=f"prepare:{rel}")

    def cancel_document(self, path: Path | str) -> None:
        """Drop queued and stop running completions for a document (closed, or the user pressed Escape)."""
        if self._runtime is not None:
            self._runtime.scheduler.cancel(f"complete:{self.relative_path(path)}")

    # -- editor buffers -------------------------------------------------------------------------
    # Open buffers overlay the saved files: in the context (open_documents) and in the index, where an
    # overlay wins over disk until the document closes.
    def document_opened(self, path: Path | str, text: str) -> None:
        rel = self.relative_path(path)
        self.open_documents[rel] = text
        if self._repo_index is not None and self._inside_root(path):
            self._repo_index.set_overlay(rel, text)

    def document_changed(self, path: Path | str, text: str) -> None:
        """Cheap on every keystroke: the context builder syncs the index overlay of the file it completes in."""
        self.open_documents[self.relative_path(path)] = text

    def document_saved(self, path: Path | str) -> None:
        """A save makes disk agree with the buffer; the index re-reads the file."""
        if self._repo_index is not None and self._inside_root(path):
            self._repo_index.update_paths([self.relative_path(path)])

    def document_closed(self, path: Path | str) -> None:
        rel = self.relative_path(path)
        self.open_documents.pop(rel, None)
        self.cancel_document(path)
        if self._repo_index is not None and self._inside_root(path):
            self._repo_index.clear_overlay(rel)

    def _inside_root(self, path: Path | str) -> bool:
        if self.root is None:
            return False
        resolved = Path(path).resolve()
        return resolved == self.root or self.root in resolved.parents

    # -- maintenance --------------------------------------------------------------------------------
    def reindex(self, progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
        """Bring the index up to date (cold or warm) and re-apply open buffers."""
        if self.root is None:
            return {}
        with self._index_lock:
            if self._repo_index is None:
                from .indexing import open_index

                self._repo_index = open_index(self.root, self.config)
            stats = self._repo_index.build(progress=progress)
            for rel, text in self.open_documents.items():
                self._repo_index.set_overlay(rel, text)
            return stats.to_json()

    def clear_caches(self) -> int:
        """Forget cached completions and token counts (the KV cache refills on the next request)."""
        cleared = 0
        if self._runtime is not None:
            from .completion_cache import CompletionCache

            cleared += self._runtime.cache.stats()["entries"]
            self._runtime.cache = CompletionCache(self._runtime.cache.size)
        if self._context is not None:
            counter = getattr(self._context, "counter", None)
            if counter is not None and hasattr(counter, "clear"):
                counter.clear()
                cleared += 1
        return cleared

    def status(self) -> dict[str, Any]:
        return {"model": self.model_info(), "counters": self.counters.to_json(),
                "open_documents": len(self.open_documents), "index": {},
                "inference": self._runtime.status() if self._runtime is not None else {}}

    def close(self) -> None:
        if self._runtime is not None:
            self._runtime.close()
            self._runtime = None
        if self._repo_index is not None:
            self._repo_index.close()
            self._repo_index = None
        if self._backend is not None:
            self._backend.close()
            self._backend = None
