"""The inference runtime behind ``Engine``: scheduling, the completion cache, warm-up, snapshots, chat.

Why a module of its own: ``engine/service.py`` is the facade several people edit; the policies that
decide *when* the model runs (priorities, supersession, typed-ahead reuse, background prefix warm-up and
snapshotting, resumable chat) live here and are driven by thin ``Engine`` methods.
"""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from engine.model.backend import Cancelled, CancelToken, GenerationRequest, GenerationResult, Sampling, chat_stop_ids
from engine.inference.completion_cache import CompletionCache
from engine.context.result import ContextResult, split_at_cursor
from engine.model.kv_store import prefix_hash
from engine.inference.postprocess import choose_shape, syntax_at_cursor, trim_completion, trim_interrupted
from engine.model.prompt_format import Piece, PromptFormat
from engine.inference.scheduler import Priority, Scheduler
from engine.text_position import offset_at

if TYPE_CHECKING:  # pragma: no cover
    from engine.service import CompletionOutput, Engine


def repository_prefix(pieces: Sequence[Piece], fmt: PromptFormat) -> list[Piece]:
    """The part of a FIM prompt that does not depend on the current file: up to its file separator.

    That is what is worth warming and snapshotting: it changes when the repository context changes, not
    on every keystroke. Without file separators, everything before the FIM prefix token.
    """
    marker = fmt.file_sep_id if fmt.file_sep_id is not None and fmt.file_sep_id in pieces else fmt.prefix_id
    if marker is None or marker not in pieces:
        return []
    last = len(pieces) - 1 - list(reversed(pieces)).index(marker)
    return list(pieces[:last])


def empty_context(prefix: str = "", suffix: str = "") -> ContextResult:
    return ContextResult([], "", 0, 0, "", 0, [], 0.0, prefix, suffix)


def cancelled_result(reason: str = "cancelled") -> GenerationResult:
    return GenerationResult("", 0, 0, 0, 0, 0.0, "cancelled" if reason != "stale" else "stale")


class Runtime:
    """One model's worker, cache and background jobs for one ``Engine``."""

    def __init__(self, engine: "Engine") -> None:
        self.engine = engine
        self.host = engine.host
        self.cache = CompletionCache(engine.config.completion.cache_size)
        self.last_warm_up: dict[str, object] = {}

    @property
    def scheduler(self) -> Scheduler:
        """The process's one inference worker (shared by every workspace's engine)."""
        return self.host.scheduler

    # -- inline completion ------------------------------------------------------------------------------
    def submit_complete(self, path: Path | str, text: str, line: int, character: int, *,
                        budget: int | None = None, cancel: CancelToken | None = None,
                        priority: Priority = Priority.INLINE, use_cache: bool = True) -> "Future[CompletionOutput]":
        """Cache first (no model call), else a job keyed by document: a newer one supersedes it."""
        from engine.service import CompletionOutput

        engine = self.engine
        rel = engine.relative_path(path)
        prefix, suffix = split_at_cursor(text, line, character)
        if use_cache:
            hit = self.cache.get(rel, prefix, suffix)
            if hit is not None:
                done: Future[CompletionOutput] = Future()
                result = GenerationResult(hit[0], 0, 0, 0, 0, 0.0, "cache")
                out = CompletionOutput(hit[0], result, empty_context(prefix, suffix), self._model_name(),
                                       "\n" in hit[0])
                out.cached = hit[1]
                done.set_result(out)
                engine.counters.cache_hit()
                return done
        timeout = engine.config.completion.timeout_ms / 1000.0
        deadline = time.monotonic() + timeout

        def job(token: CancelToken) -> CompletionOutput:
            out = self._run_completion(path, rel, text, line, character, budget, token, deadline)
            # A completion the deadline cut is shown (trimmed) but never cached: the next request at the same
            # place runs again, on the prompt the KV cache still holds, and may finish it.
            if out.result.finish_reason not in ("cancelled", "deadline") and use_cache:
                self.cache.put(rel, prefix, suffix, out.completion)
            self._after_completion(out)
            return out

        return self.scheduler.submit(job, priority, key=f"complete:{engine.document_key(path)}", deadline=deadline,
                                     cancel=cancel)

    def complete(self, path: Path | str, text: str, line: int, character: int, *,
                 budget: int | None = None, cancel: CancelToken | None = None,
                 priority: Priority = Priority.INLINE, use_cache: bool = True) -> "CompletionOutput":
        from engine.service import CompletionOutput

        future = self.submit_complete(path, text, line, character, budget=budget, cancel=cancel,
                                      priority=priority, use_cache=use_cache)
        try:
            return future.result()
        except Cancelled as exc:
            prefix, suffix = split_at_cursor(text, line, character)
            self.engine.counters.cancelled_before_start()
            return CompletionOutput("", cancelled_result(str(exc)), empty_context(prefix, suffix),
                                    self._model_name(), False)

    def _model_name(self) -> str:
        return self.host.model_name()

    def _run_completion(self, path: Path | str, rel: str, text: str, line: int, character: int,
                        budget: int | None, cancel: CancelToken, deadline: float) -> "CompletionOutput":
        from engine.service import CompletionOutput

        engine = self.engine
        backend = engine.backend
        cfg = engine.config.completion
        n_ctx = int(backend.info().get("n_ctx") or 0)
        budget = budget or engine.config.context.budget
        if n_ctx:
            budget = min(budget, n_ctx - cfg.max_tokens - 1)
        cancel.check()
        context = engine.build_context(path, text, line, character, budget)
        syntax = syntax_at_cursor(rel, text, offset_at(text, line, character))
        shape = choose_shape(context.prefix, context.suffix, cfg.max_lines, syntax)
        request = GenerationRequest(
            pieces=context.pieces,
            max_tokens=cfg.max_tokens if shape.multiline else min(cfg.max_tokens, 48),
            sampling=Sampling(),  # FIM: greedy
            stop_ids=backend.prompt_format.stop_ids,
            stop_strings=() if shape.multiline else ("\n",),
            deadline=deadline,
        )
        result = backend.generate(request, cancel)
        engine.counters.add(result)
        completion = trim_completion(result.text, context.prefix, context.suffix, shape)
        if result.finish_reason == "deadline":  # cut mid-generation: whole tokens that parse, or nothing
            completion = trim_interrupted(completion, context.prefix, context.suffix, rel)
        if result.finish_reason == "cancelled":
            completion = ""
        out = CompletionOutput(completion, result, context, self._model_name(), shape.multiline)
        out.syntax = shape.syntax
        return out

    # -- warm-up and snapshots ---------------------------------------------------------------------------
    def _after_completion(self, out: "CompletionOutput") -> None:
        """Queue a snapshot of a repository prefix not yet on disk (runs when nothing else is queued)."""
        backend = self.host.current_backend
        if backend is None or not hasattr(backend, "save_prefix") or not out.context.pieces:
            return
        prefix = repository_prefix(out.context.pieces, backend.prompt_format)
        if len(prefix) < 2:
            return
        ids = backend.pieces_to_ids(prefix)  # type: ignore[attr-defined]
        key = prefix_hash(ids)
        with self.host.prefix_lock:
            self.host.last_prefix = ids
            if key in self.host.saved_prefixes:
                return
            self.host.saved_prefixes.add(key)
        self.scheduler.submit(lambda token: backend.warm_prefix(prefix, token), Priority.WARMUP,
                              key="warm-up", resumable=True)

    def warm_up(self, path: Path | str, text: str, line: int | None = None,
                character: int | None = None) -> "Future[dict[str, object]]":
        """Make the repository prefix for this document resident (snapshot restore or prefill + save).

        Lowest priority and pre-emptible: a keystroke interrupts it, and it resumes afterwards from what
        it had evaluated. Call it when a document opens or the editor goes idle.
        """
        if line is None or character is None:
            lines = text.split("\n")
            line, character = len(lines) - 1, len(lines[-1])

        def job(token: CancelToken) -> dict[str, object]:
            engine = self.engine
            backend = engine.backend
            context = engine.build_context(path, text, line, character)
            prefix = repository_prefix(context.pieces, backend.prompt_format)
            if not prefix:
                return {"skipped": "no repository prefix in this prompt format"}
            info = backend.warm_prefix(prefix, token)
            self.last_warm_up = info
            engine.log(f"warm-up: {info}")
            return info

        return self.scheduler.submit(job, Priority.WARMUP, key="warm-up", resumable=True)

    # -- code actions and chat ---------------------------------------------------------------------------
    def submit_generate(self, request: GenerationRequest, *, priority: Priority = Priority.ACTION,
                        key: str | None = None, cancel: CancelToken | None = None) -> "Future[GenerationResult]":
        """Any raw generation (code actions, commands) on the shared worker."""

        def job(token: CancelToken) -> GenerationResult:
            result = self.engine.backend.generate(request, token)
            self.engine.counters.add(result)
            return result

        return self.scheduler.submit(job, priority, key=key, cancel=cancel)

    def submit_chat(self, messages: Sequence[dict], *, tools: Sequence[dict] | None = None,
                    on_text: Callable[[str], None] | None = None, cancel: CancelToken | None = None,
                    max_tokens: int | None = None, sampling: Sampling | None = None,
                    key: str | None = None) -> "Future[GenerationResult]":
        """An assistant turn, streamed through ``on_text``; pre-empted by keystrokes, then resumed.

        Resuming re-renders the conversation plus the text generated so far and continues from there, so
        the stream never repeats itself; counters add up over the runs.
        """
        cfg = self.engine.config.chat
        sampling = sampling or Sampling(temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k,
                                        repeat_penalty=cfg.repeat_penalty)
        limit = max_tokens or cfg.max_tokens
        state: dict[str, Any] = {"text": "", "results": []}

        def job(token: CancelToken) -> GenerationResult:
            backend = self.engine.backend
            remaining = limit - sum(r.generated_tokens for r in state["results"])
            request = GenerationRequest(pieces=[], max_tokens=max(1, remaining), sampling=sampling,
                                        on_text=_collect(state, on_text))
            if state["text"] and hasattr(backend, "render_chat") and self.engine.config.backend != "openai":
                pieces = backend.render_chat(messages, tools) + [state["text"]]
                result = backend.generate(dataclasses.replace(request, pieces=pieces,
                                                              stop_ids=_chat_stops(backend)), token)
            else:
                result = backend.chat(messages, request, tools, token)
            state["results"].append(result)
            self.engine.counters.add(result)
            return _combine(state["text"], state["results"])

        if self.engine.config.backend == "openai":
            # A server runs requests concurrently: chat need not wait behind (or pre-empt) completions.
            token = cancel or CancelToken()
            return self.host.remote_pool().submit(job, token)
        return self.scheduler.submit(job, Priority.CHAT, key=key, resumable=True, cancel=cancel)

    # -- status -----------------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        data: dict[str, Any] = {"scheduler": self.scheduler.status(), "cache": self.cache.stats()}
        backend = self.host.current_backend
        if backend is not None:
            data["kv_cached_tokens"] = backend.info().get("cached_tokens")
        if self.last_warm_up:
            data["last_warm_up"] = self.last_warm_up
        return data


def _collect(state: dict[str, Any], on_text: Callable[[str], None] | None) -> Callable[[str], None]:
    def collect(piece: str) -> None:
        state["text"] += piece
        if on_text is not None:
            on_text(piece)

    return collect


def _chat_stops(backend: Any) -> frozenset[int]:
    return chat_stop_ids(backend)


def _combine(text: str, results: list[GenerationResult]) -> GenerationResult:
    last = results[-1]
    return GenerationResult(
        text=text,
        prompt_tokens=last.prompt_tokens,
        reused_tokens=sum(r.reused_tokens for r in results),
        evaluated_tokens=sum(r.evaluated_tokens for r in results),
        generated_tokens=sum(r.generated_tokens for r in results),
        elapsed_ms=round(sum(r.elapsed_ms for r in results), 3),
        finish_reason=last.finish_reason,
        first_token_ms=results[0].first_token_ms,
    )
