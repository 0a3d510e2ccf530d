"""The engine facade used by the command line and the language server.

It owns one backend (one model instance shared by completion, actions and chat), the context builder
and the counters that ``coderflash/status`` and ``--json`` outputs report.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

from engine.model.backend import Backend, CancelToken, GenerationRequest, GenerationResult, Sampling
from engine.config import Config
from engine.context.result import ContextResult
from engine.context import builder as context
from engine.context import redact
from engine.model_host import Counters, ModelHost
from engine.model.resolution import ModelError, ResolvedModel
from engine.chat.tools import secret_globs
from engine.inference.chat_turn import ChatTurn
from engine.inference.runtime import CompletionOutput, Runtime
from engine.inference.scheduler import Priority, wait_for
from engine.paths import relative_to_root
from engine.text_position import to_lf


class EngineClosed(RuntimeError):
    """The engine was closed (the settings changed, a folder was removed, shutdown) while work for it was on its
    way (a rebuild of the index queued before): that work is dropped."""


class Engine:
    """One workspace's engine: its index, context and editor buffers, on the process's one model.

    ``host`` is the shared model (``ModelHost``); without one the engine makes and owns its own (the
    command line). ``background_index``: the language server builds the index itself, in the background,
    and completions meanwhile use the current file only; the command line builds it on first use."""

    def __init__(self, config: Config, root: Path | str | None = None,
                 log: Callable[[str], None] | None = None, host: ModelHost | None = None,
                 background_index: bool = False) -> None:
        self.config = config
        redact.configure(config.redaction.names, config.redaction.patterns)
        self.root = Path(root).resolve() if root else None
        self.log = log or (lambda message: None)
        self.host = host if host is not None else ModelHost(config, self.log)
        self._owns_host = host is None
        self.background_index = background_index
        self._context: tuple[context.Workspace, context.ContextCache] | None = None
        self._context_source: str | None = None
        # One lock for the context builder, its caches and the redaction cache: the inference worker
        # (completions, prepare, warm-up) and the chat threads both build contexts.
        self._context_lock = threading.RLock()
        self._closed = False
        self._repo_index = None
        self._index_ready = False
        self.index_progress: dict[str, Any] = {"state": "none" if self.root is not None else "no_root"}
        self.open_documents: dict[str, str] = {}
        self._index_lock = threading.RLock()
        self._runtime: Runtime | None = None
        self._lock = threading.Lock()
        self._index_executor: ThreadPoolExecutor | None = None

    # -- model (the shared host) -------------------------------------------------------------------
    @property
    def counters(self) -> Counters:
        return self.host.counters

    @property
    def load_error(self) -> str | None:
        return self.host.load_error

    def resolve(self) -> ResolvedModel | None:
        return self.host.resolve()

    @property
    def backend(self) -> Backend:
        """Load the model on first use (raises ModelError with an actionable message)."""
        return self.host.backend

    @property
    def loaded(self) -> bool:
        return self.host.loaded

    def model_info(self) -> dict[str, Any]:
        return self.host.model_info()

    # -- context ------------------------------------------------------------------------------
    def context_workspace(self) -> tuple[context.Workspace, context.ContextCache]:
        """Repository-level context's inputs: the workspace (format, counter, index) and its caches. Works
        without a loaded model: a resolvable GGUF gives its vocabulary (exact counts, same ids), no model
        gives the estimate counter and the Qwen format by token text. Rebuilt (with fresh caches) once the
        model is loaded so completion prompts always carry the backend's own ids. Callers hold
        ``_context_lock`` while they use them (the caches are not thread-safe)."""
        backend = self.host.current_backend
        source = "backend" if backend is not None else None
        with self._context_lock:
            if self._context is None or (source == "backend" and self._context_source != "backend"):
                from engine.model.context_tokenizer import context_tokenizer

                model_path = None
                if source is None and self.config.backend != "openai":
                    try:
                        resolved = self.resolve()
                        model_path = resolved.path if resolved is not None else None
                    except ModelError:
                        model_path = None
                try:
                    fmt, counter = context_tokenizer(backend, model_path)
                except Exception as exc:  # an unreadable vocabulary: estimate rather than fail
                    self.log(f"tokenizer for context unavailable ({exc}); using the estimate")
                    fmt, counter = context_tokenizer(None, None)
                self._context_source = source or ("vocab" if model_path else "estimate")
                workspace = context.Workspace(fmt, counter, self.repo_index,
                                              repo_name=self.root.name if self.root else "",
                                              suffix_tokens=self.config.context.suffix_tokens,
                                              root=str(self.root) if self.root else None, log=self.log,
                                              is_open=self.is_open)
                self._context = (workspace, context.ContextCache(counter))
            return self._context

    def repo_index(self):
        """The workspace index (None without a root).

        Command line: opened and built on first use. Language server (``background_index``): the server
        builds it in the background (``reindex``); until the first build is done this returns None, so a
        completion never waits for a cold index and uses the current file alone."""
        if self.root is None:
            return None
        if self.background_index:
            return self._repo_index if self._index_ready else None
        with self._index_lock:
            if not self._index_ready:
                self.reindex()
            return self._repo_index

    def chat_context(self, budget: int, path: Path | str | None = None, text: str | None = None,
                     line: int = 0) -> str:
        """Repository context for chat (system or first user turn), as text within ``budget`` tokens."""
        rel = self.relative_path(path) if path is not None else None
        with self._context_lock:
            return context.chat_context(*self.context_workspace(), budget, rel, text, line)

    def relative_path(self, path: Path | str) -> str:
        """The path as the index and the prompt name it: relative to the root, POSIX. A file outside the
        root keeps a ``../`` path (it is never put into the index: see ``_inside_root``)."""
        return relative_to_root(str(path), self.root)

    def is_secret_document(self, path: Path | str) -> bool:
        """Whether ``path`` names a secret file (``.env``, a private key, ``index.secret_globs``), by its own name
        or, through symlinks, its target's. The server never reads one, and its open buffer never enters a
        prompt either: no completion inside a ``.env`` (as Copilot does), and chat leaves it out."""
        from indexer import is_secret_path

        globs = secret_globs(self.config)
        names = {str(path), self.relative_path(path), self.relative_path(os.path.realpath(path))}
        return any(is_secret_path(name, globs) for name in names)

    def document_key(self, path: Path | str) -> str:
        """A document's identity across all workspaces (scheduler keys: roots share one worker)."""
        return str(Path(path).resolve())

    def build_context(self, path: Path | str, text: str, line: int, character: int,
                      budget: int | None = None, suffix_tokens: int | None = None) -> ContextResult:
        """The completion prompt at a position, built from the buffer with ``\\n`` line ends as completions
        build it (``Runtime.submit_complete``), so ``coderflash context`` shows the prompt a completion sends."""
        budget = budget or self.config.context.budget
        with self._context_lock:
            return context.build(*self.context_workspace(), self.relative_path(path), to_lf(text), line, character,
                                 budget, suffix_tokens)

    # -- completion ---------------------------------------------------------------------------
    # Inference goes through one worker (engine/inference/runtime.py): inline completion > code action > chat >
    # warm-up; a newer completion for a document cancels the running one; results are cached.
    @property
    def runtime(self) -> Runtime:
        with self._lock:
            if self._runtime is None:
                self._runtime = Runtime(self, self.host, self.config, self.log)
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
        return self.runtime.chat(messages, tools=tools, on_text=on_text, cancel=cancel, max_tokens=max_tokens,
                                 sampling=sampling)

    def chat_turn(self, turn: ChatTurn, key: str) -> Future[GenerationResult]:
        """A chat session's step on the shared model; ``cancel_job(key)`` stops it."""
        return self.runtime.submit_chat(turn, key=key)

    def cancel_job(self, key: str) -> None:
        """Drop the queued and stop the running inference job with this key."""
        self.runtime.cancel(key)

    def warm_up(self, path: Path | str, text: str, line: int | None = None,
                character: int | None = None) -> Future[dict[str, object]]:
        """Background: make this document's repository prefix resident (snapshot restore or prefill+save),
        once the buffer events queued before it (a just-opened document's overlay) have reached the index."""
        return self.runtime.warm_up(path, text, line, character, after=self._buffer_events_applied())

    def prepare_document(self, path: Path | str, text: str, budget: int | None = None) -> Future[float] | None:
        """Call on didOpen (after ``document_opened``): computes this document's per-file repository context
        (ranking personalised to it, the definitions of its names, candidate snippets) on the inference
        worker at warm-up priority, so the first completion in it only does the near-cursor part. Never
        loads the model or builds the index (None when the index is not open yet, or the file is outside
        the workspace). The future carries the milliseconds spent."""
        if not self._index_ready or not self._inside_root(path):
            return None
        rel = self.relative_path(path)
        budget = budget or self.config.context.budget
        text = to_lf(text)  # as completions read it: the per-file part depends on the text's length
        applied = self._buffer_events_applied()

        def job(token: CancelToken) -> float:
            wait_for(applied, token)
            with self._context_lock:
                return context.prepare_file(*self.context_workspace(), rel, text, budget)

        return self.runtime.scheduler.submit(job, Priority.WARMUP, key=f"prepare:{self.document_key(path)}")

    def cancel_document(self, path: Path | str) -> None:
        """Drop queued and stop running completions for a document (closed, or the user pressed Escape)."""
        if self._runtime is not None:
            self._runtime.cancel(f"complete:{self.document_key(path)}")

    # -- editor buffers -------------------------------------------------------------------------
    # Open buffers overlay the saved files: in the context (open_documents) and in the index, where an
    # overlay wins over disk until the document closes.
    def document_opened(self, path: Path | str, text: str) -> None:
        rel = self.relative_path(path)
        with self._lock:  # see reindex: it copies the open documents on the index thread
            self.open_documents[rel] = text
        if self._inside_root(path):
            self._index_job(lambda index: index.set_overlay(rel, text))

    def is_open(self, rel: str) -> bool:
        """Whether the editor has this document open (by its index path)."""
        return rel in self.open_documents

    def document_changed(self, path: Path | str, text: str) -> None:
        """Cheap on every keystroke: the context builder syncs the index overlay of the file it completes in."""
        with self._lock:
            self.open_documents[self.relative_path(path)] = text

    def document_saved(self, path: Path | str) -> None:
        """A save makes disk agree with the buffer; the index re-reads the file."""
        if self._inside_root(path):
            rel = self.relative_path(path)
            self._index_job(lambda index: index.update_paths([rel]))

    def document_closed(self, path: Path | str) -> None:
        rel = self.relative_path(path)
        with self._lock:
            self.open_documents.pop(rel, None)
        self.cancel_document(path)
        if self._inside_root(path):
            self._index_job(lambda index: index.clear_overlay(rel))

    def _index_job(self, fn: Callable[[Any], object]) -> None:
        """Apply a buffer event to the index once it is built (a build re-applies open buffers itself).

        In the server this runs on a thread of its own, in order: an index update may wait for a
        running build, and the editor's notifications must never wait for that."""
        def run() -> None:
            with self._index_lock:
                if self._index_ready and self._repo_index is not None:
                    try:
                        fn(self._repo_index)
                    except Exception as exc:  # noqa: BLE001 - a buffer event never takes the server down
                        self.log(f"index update failed: {type(exc).__name__}: {exc}")

        if not self.background_index:
            run()
            return
        with self._lock:
            if self._closed:
                return
            if self._index_executor is None:
                self._index_executor = ThreadPoolExecutor(1, thread_name_prefix="coderflash-index-events")
            self._index_executor.submit(run)

    def _buffer_events_applied(self) -> threading.Event:
        """Set once the buffer events queued so far have reached the index. Why: work built before a
        just-opened document's overlay lands (its warm-up, its per-file context) used an index that did
        not know the file's imports, and so prefilled a prefix its completions do not use."""
        done = threading.Event()
        with self._lock:
            if self._index_executor is None or self._closed:
                done.set()
            else:
                self._index_executor.submit(done.set)
        return done

    def _inside_root(self, path: Path | str) -> bool:
        if self.root is None:
            return False
        resolved = Path(path).resolve()
        return resolved == self.root or self.root in resolved.parents

    # -- maintenance --------------------------------------------------------------------------------
    def _open_repo_index(self) -> Any:
        """The root's index, opened on first use (with ``_index_lock`` held)."""
        if self._repo_index is None:
            from engine.indexing import open_index
            self._repo_index = open_index(self.root, self.config)
        return self._repo_index

    def reindex(self, progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
        """Bring the index up to date (cold or warm) and re-apply open buffers; ``index_progress`` (in
        ``status()``) follows the build."""
        if self.root is None:
            return {}
        with self._index_lock:
            if self._closed:
                raise EngineClosed(f"the engine for {self.root} was closed")
            state = "updating" if self._index_ready else "building"
            self.index_progress = {"state": state, "done": 0, "total": 0}

            def report(done: int, total: int) -> None:
                if self._closed:  # stop at the next file (whole files written so far are kept): close() waits
                    raise EngineClosed(f"the engine for {self.root} was closed")  # for this lock, on the event loop
                self.index_progress = {"state": state, "done": done, "total": total}
                if progress is not None:
                    progress(done, total)

            try:  # opening fails too (a database path taken, a cache that cannot be written): status says so
                stats = self._open_repo_index().build(progress=report).to_json()
            except Exception as exc:
                self.index_progress = {"state": "error", "error": f"{type(exc).__name__}: {exc}"}
                raise
            # a copy, under the lock the editor's events take: list() over the live items is not atomic (each
            # item's tuple can start a garbage collection that runs Python code and switches threads; see
            # multiprocessing.util._run_finalizers), and once failed with "dictionary changed size"
            with self._lock:
                buffers = list(self.open_documents.items())
            for rel, text in buffers:
                if not rel.startswith("../"):  # a file outside the root (see relative_path) is never indexed
                    self._repo_index.set_overlay(rel, text)
            self._index_ready = True
            seen = stats.get("parsed_files", 0) + stats.get("reused_files", 0)
            self.index_progress = {"state": "ready", "done": seen, "total": seen, "files": stats.get("files"),
                                   "definitions": stats.get("definitions"), "elapsed_s": stats.get("elapsed_s")}
            return stats

    def start_watching(self, on_change: Callable[[list[str]], None] | None = None) -> str:
        """Follow the disk (branch switches, formatters, the agent's tools): see ``Index.start_watching``.
        Returns how: "inotify"/"native" watching, "polling" when the OS watch limit was reached, or ""."""
        with self._index_lock:
            if self._repo_index is None:
                return ""
            return self._repo_index.start_watching(on_change)

    def watch_info(self) -> dict[str, Any]:
        index = self._repo_index
        return index.watch_info() if index is not None else {"mode": ""}

    def clear_caches(self) -> int:
        """Forget cached completions and token counts (the KV cache refills on the next request)."""
        cleared = 0
        if self._runtime is not None:
            cleared += self._runtime.clear_cache()
        with self._context_lock:  # the counter is not thread-safe: never clear it under a prompt being built
            if self._context is not None:
                self._context[0].counter.clear()
                cleared += 1
        return cleared

    def status(self) -> dict[str, Any]:
        context_cache = self._context[1].stats() if self._context is not None else {}
        index = {**self.index_progress, "watch": self.watch_info().get("mode", "")}
        repo_index = self._repo_index
        if index["state"] == "ready" and repo_index is not None:  # the watcher changed it since the last build
            index.update(repo_index.row_counts())
        return {"model": self.model_info(), "counters": self.counters.to_json(),
                "open_documents": len(self.open_documents), "context_cache": context_cache, "index": index,
                "inference": self._runtime.status() if self._runtime is not None else {}}

    def close(self) -> None:
        self._closed = True  # for good: a rebuild still on its way must not reopen the index (see reindex)
        self._runtime = None  # the worker and the model belong to the host: closed below when owned
        if self._index_executor is not None:
            self._index_executor.shutdown(wait=True)
            self._index_executor = None
        with self._index_lock:
            if self._repo_index is not None:
                self._repo_index.close()
                self._repo_index = None
                self._index_ready = False
        if self._owns_host:
            self.host.close()
