"""The inference runtime behind ``Engine``: scheduling, the completion cache, warm-up, snapshots, chat.

Why a module of its own: ``engine/service.py`` is the facade several people edit; the policies that
decide *when* the model runs (priorities, supersession, typed-ahead reuse, background prefix warm-up and
snapshotting, resumable chat) live here and are driven by thin ``Engine`` methods.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

from engine.config import Config
from engine.context.result import ContextResult, split_at_cursor
from engine.inference.chat_turn import ChatPrompt, ChatTurn, chat_sampling
from engine.inference.completion_cache import CompletionCache
from engine.inference.latency import QUIET_MS, Plan, repository_cut, target_ms, trim_current_prefix
from engine.inference.postprocess import CompletionShape, choose_shape, finish_completion, syntax_at_cursor
from engine.inference.scheduler import Priority, Scheduler, wait_for
from engine.model.backend import (
    Backend,
    Cancelled,
    CancelToken,
    GenerationRequest,
    GenerationResult,
    Sampling,
    chat_stop_ids,
)
from engine.model.kv_store import prefix_hash
from engine.model.name_rule import NameRule
from engine.model.prompt_format import Piece, PromptFormat
from engine.model_host import ModelHost
from engine.text_position import line_ending, line_texts, offset_at, to_lf, with_line_ending


@dataclass
class CompletionOutput:
    completion: str
    result: GenerationResult
    context: ContextResult
    model: str
    multiline: bool
    cached: str = ""  # "" (model ran), "lru" or "typed_ahead" (served from the completion cache)
    # the prompt sent left part of the context out to meet the first-token target (repository files or the start
    # of the current file, not resident in the KV cache yet)
    repository_cut: bool = False
    syntax: str | None = None  # what tree-sitter saw at the cursor (shape decision)

    def to_json(self, include_prompt: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {"completion": self.completion, "model": self.model, "multiline": self.multiline,
                                "cached": self.cached, "syntax": self.syntax}
        data.update(self.result.counters())
        data["finish_reason"] = self.result.finish_reason
        data["context"] = {k: v for k, v in self.context.to_json().items() if include_prompt or k != "prompt"}
        return data


class Workspace(Protocol):
    """What the runtime needs from the workspace it completes in (``engine.service.Engine``)."""

    def relative_path(self, path: Path | str) -> str: ...

    def document_key(self, path: Path | str) -> str: ...

    def build_context(self, path: Path | str, text: str, line: int, character: int,
                      budget: int | None = None, suffix_tokens: int | None = None) -> ContextResult: ...


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


def completion_request(pieces: Sequence[Piece], shape: CompletionShape, max_tokens: int, stop_ids: Sequence[int],
                       deadline: float | None = None, name_rule: NameRule | None = None) -> GenerationRequest:
    """The generation a completion of ``shape`` asks for: greedy (FIM), a single line stopping at the line
    break with at most 48 tokens, a multi-line one up to ``max_tokens``; ``name_rule``: the context's."""
    return GenerationRequest(pieces=list(pieces), max_tokens=max_tokens if shape.multiline else min(max_tokens, 48),
                             sampling=Sampling(), stop_ids=frozenset(stop_ids),
                             stop_strings=() if shape.multiline else ("\n",), deadline=deadline, name_rule=name_rule)


def empty_context(prefix: str = "", suffix: str = "") -> ContextResult:
    return ContextResult([], "", 0, 0, "", 0, [], 0.0, prefix, suffix)


def cancelled_result(reason: str = "cancelled") -> GenerationResult:
    return GenerationResult("", 0, 0, 0, 0, 0.0, "cancelled" if reason != "stale" else "stale")


class Runtime:
    """One workspace's completion cache and jobs on the process's one model (``host``).

    ``config`` is the workspace's (completion, context and chat settings); ``workspace`` names documents
    and builds their contexts."""

    def __init__(self, workspace: Workspace, host: ModelHost, config: Config,
                 log: Callable[[str], None]) -> None:
        self.workspace = workspace
        self.host = host
        self.config = config
        self.log = log
        self.cache = CompletionCache(config.completion.cache_size)
        self.last_warm_up: dict[str, object] = {}
        self.last_latency: dict[str, object] = {}  # the first-token target and the latest completion's sizes

    @property
    def scheduler(self) -> Scheduler:
        """The process's one inference worker (shared by every workspace's engine)."""
        return self.host.scheduler

    def cancel(self, key: str) -> None:
        """Drop the queued and stop the running jobs with this key."""
        self.scheduler.cancel(key)

    def clear_cache(self) -> int:
        """Forget every cached completion; returns how many there were."""
        entries = self.cache.stats()["entries"]
        self.cache = CompletionCache(self.cache.size)
        return entries

    # -- inline completion ------------------------------------------------------------------------------
    def submit_complete(self, path: Path | str, text: str, line: int, character: int, *,
                        budget: int | None = None, cancel: CancelToken | None = None,
                        priority: Priority = Priority.INLINE, use_cache: bool = True) -> Future[CompletionOutput]:
        """Cache first (no model call), else a job keyed by document: a newer one supersedes it.

        The prompt, the shape rules and the cache read the buffer with ``\\n`` line ends (``to_lf``; the
        positions are unchanged): the model was trained on such text, and a CRLF prompt was text it rarely
        saw. The completion goes back in the document's line end: an editor inserts ``insertText`` as is,
        and ``\\n`` lines in a CRLF file are mixed line ends."""
        eol = line_ending(text)
        text = to_lf(text)
        rel = self.workspace.relative_path(path)
        prefix, suffix = split_at_cursor(text, line, character)
        if use_cache:
            hit = self.cache.get(rel, prefix, suffix)
            if hit is not None:
                done: Future[CompletionOutput] = Future()
                result = GenerationResult(hit[0], 0, 0, 0, 0, 0.0, "cache")
                out = CompletionOutput(with_line_ending(hit[0], eol), result, empty_context(prefix, suffix),
                                       self._model_name(), "\n" in hit[0])
                out.cached = hit[1]
                done.set_result(out)
                self.host.counters.cache_hit()
                return done
        timeout = self.config.completion.timeout_ms / 1000.0
        deadline = time.monotonic() + timeout

        def job(token: CancelToken) -> CompletionOutput:
            out = self._run_completion(path, rel, text, line, character, budget, token, deadline)
            # A completion the deadline cut is shown (trimmed) but never cached: the next request at the same
            # place runs again, on the prompt the KV cache still holds, and may finish it. Nor is one whose
            # prompt left repository files out: the same place asked again later gets the whole context.
            if out.result.finish_reason not in ("cancelled", "deadline") and use_cache and not out.repository_cut:
                self.cache.put(rel, prefix, suffix, out.completion)
            self._after_completion(out)
            out.completion = with_line_ending(out.completion, eol)
            return out

        return self.scheduler.submit(job, priority, key=f"complete:{self.workspace.document_key(path)}",
                                     deadline=deadline, cancel=cancel)

    def complete(self, path: Path | str, text: str, line: int, character: int, *,
                 budget: int | None = None, cancel: CancelToken | None = None,
                 priority: Priority = Priority.INLINE, use_cache: bool = True) -> CompletionOutput:
        future = self.submit_complete(path, text, line, character, budget=budget, cancel=cancel,
                                      priority=priority, use_cache=use_cache)
        try:
            return future.result()
        except Cancelled as exc:
            prefix, suffix = split_at_cursor(text, line, character)
            self.host.counters.cancelled_before_start()
            return CompletionOutput("", cancelled_result(str(exc)), empty_context(prefix, suffix),
                                    self._model_name(), False)

    def _model_name(self) -> str:
        return self.host.model_name()

    def _run_completion(self, path: Path | str, rel: str, text: str, line: int, character: int,
                        budget: int | None, cancel: CancelToken, deadline: float) -> CompletionOutput:
        backend = self.host.backend
        cfg = self.config.completion
        info = backend.info()
        cancel.check()
        context, plan = self._completion_context(info, path, text, line, character, budget)
        syntax = syntax_at_cursor(rel, text, offset_at(text, line, character))
        before_cursor = context.prefix + context.indent  # the prompt may leave the indentation out: the buffer has it
        shape = choose_shape(before_cursor, context.suffix, cfg.max_lines, syntax)
        pieces = self._fit_to_target(backend, context.pieces, plan) if plan is not None else context.pieces
        request = completion_request(pieces, shape, cfg.max_tokens, backend.prompt_format.stop_ids, deadline,
                                     context.name_rule)
        result = backend.generate(request, cancel)
        self.host.counters.add(result)
        self.host.speed.observe(result)
        if plan is not None:
            self.last_latency.update(evaluated_tokens=result.evaluated_tokens,
                                     first_token_ms=round(result.first_token_ms, 1))
        completion = finish_completion(result.text, result.finish_reason, before_cursor, context.suffix, shape, rel,
                                       context.indent)
        out = CompletionOutput(completion, result, context, self._model_name(), shape.multiline)
        out.syntax = shape.syntax
        out.repository_cut = pieces is not context.pieces and pieces != context.pieces
        return out

    def _completion_context(self, info: dict[str, object], path: Path | str, text: str, line: int, character: int,
                            budget: int | None = None) -> tuple[ContextResult, Plan | None]:
        """The prompt a completion at (``line``, ``character``) of ``text`` (``\\n`` line ends) is built from, and
        the first-token plan that sized it; ``info`` is the backend's. Completions and warm-up both build it
        here: the budget leaves the model's window room for the answer (``n_ctx - max_tokens - 1``), and the
        plan's suffix cap moves what the repository part gets, so a warm-up sized otherwise (it used the bare
        ``context.budget``) prefilled a prefix the completion there did not use, or one the window refused."""
        n_ctx = int(info.get("n_ctx") or 0)
        budget = budget or self.config.context.budget
        if n_ctx:
            budget = min(budget, n_ctx - self.config.completion.max_tokens - 1)
        plan = self._latency_plan(info) if self.config.completion.latency_target else None
        context = self.workspace.build_context(path, text, line, character, budget,
                                               suffix_tokens=plan.suffix_tokens if plan else None)
        return context, plan

    # -- first-token target (engine/inference/latency.py) -------------------------------------------------
    def _latency_plan(self, info: dict[str, object]) -> Plan | None:
        gpu = bool(info.get("gpu_offload")) and self.config.llama.n_gpu_layers != 0
        target = target_ms(self.config.completion.first_token_ms, gpu)
        self.last_latency["target_ms"] = target
        plan = self.host.speed.plan(target, self.config.context.suffix_tokens)
        if plan is not None:
            self.last_latency.update(evaluable_tokens=plan.evaluable_tokens, suffix_tokens=plan.suffix_tokens)
        return plan

    def _fit_to_target(self, backend: Backend, pieces: list[Piece], plan: Plan) -> list[Piece]:
        """``pieces``, sized so that what the KV cache does not hold yet fits the target: repository files not
        resident are left out (cut at a file separator), then, when the current file is not resident either,
        its prefix is cut from the start. The warm-up queued after the completion evaluates the whole prompt
        while the editor is idle, so a later completion at this place carries all of it."""
        if not hasattr(backend, "common_prefix"):
            return pieces  # a remote server keeps its own cache
        fmt = backend.prompt_format
        tokens_of = lambda text: len(backend.pieces_to_ids([text]))  # noqa: E731  (cached for long pieces)
        piece_ids = [[p] if isinstance(p, int) else backend.pieces_to_ids([p]) for p in pieces]  # type: ignore[attr-defined]
        piece_tokens = [len(chunk) for chunk in piece_ids]
        ids = [t for chunk in piece_ids for t in chunk]  # what generate() evaluates: pieces are tokenized one by one
        resident = backend.common_prefix(ids)  # type: ignore[attr-defined]
        budget_tokens, used = len(ids), list(pieces)
        if budget_tokens - resident > plan.evaluable_tokens:
            repository = len(repository_prefix(pieces, fmt))
            cut = repository_cut(pieces, fmt, repository, piece_tokens, resident)
            if cut is not None:
                used = used[:cut] + used[repository:]
                piece_tokens = piece_tokens[:cut] + piece_tokens[repository:]
                resident = sum(piece_tokens[:cut])
            if sum(piece_tokens) - resident > plan.evaluable_tokens and fmt.prefix_id in used:
                first = len(used) - 1 - used[::-1].index(fmt.prefix_id)  # the current file's FIM part
                header_cost = max(0, sum(piece_tokens[:first]) - resident)  # its file header, unless resident
                used, piece_tokens = trim_current_prefix(used, fmt, piece_tokens,
                                                         plan.evaluable_tokens - header_cost, tokens_of)
        repository = len(repository_prefix(used, fmt))
        self.last_latency.update(budget_tokens=budget_tokens, resident_tokens=resident,
                                 prompt_tokens=sum(piece_tokens), repository_tokens=sum(piece_tokens[:repository]))
        return used

    # -- warm-up and snapshots ---------------------------------------------------------------------------
    def _after_completion(self, out: CompletionOutput) -> None:
        """Queue, for when nothing else is queued: a snapshot of a repository prefix not yet on disk, and
        when this completion's prompt was not all evaluated (repository files left out for the first-token
        target, or a prefill the deadline cut, or the draft model holds too little of it to draft), the rest
        of it — so that the next keystroke at this place finds it resident and evaluates only what it changed."""
        backend = self.host.current_backend
        if backend is None or not hasattr(backend, "save_prefix") or not out.context.pieces:
            return
        prefix = repository_prefix(out.context.pieces, backend.prompt_format)
        if len(prefix) < 2:
            return
        ids = backend.pieces_to_ids(prefix)  # type: ignore[attr-defined]
        key = prefix_hash(ids)
        incomplete = out.repository_cut or out.result.finish_reason == "deadline"
        draft_model_behind = getattr(backend, "draft_model_behind", None)
        incomplete = incomplete or bool(draft_model_behind and draft_model_behind(out.context.pieces))
        with self.host.prefix_lock:
            self.host.last_prefix = ids
            if key in self.host.saved_prefixes and not incomplete:
                return
            self.host.saved_prefixes.add(key)
        whole = list(out.context.pieces) if incomplete else None

        def job(token: CancelToken) -> dict[str, object]:
            chunk = None
            if self.config.completion.latency_target:
                token.wait(QUIET_MS / 1000.0)  # not in the middle of a typing burst
                plan = self.host.speed.plan(int(self.last_latency.get("target_ms") or 0),
                                            self.config.context.suffix_tokens)
                chunk = plan.warm_up_chunk if plan is not None else None
            info = self._observed(backend.warm_prefix(prefix, token, chunk=chunk))  # type: ignore[attr-defined]
            if whole is not None:
                self._observed(backend.warm_prefix(whole, token, save=False, chunk=chunk))  # type: ignore[attr-defined]
            return info

        future = self.scheduler.submit(job, Priority.WARMUP, key="warm-up", resumable=True)
        future.add_done_callback(lambda done: self._forget_unsaved(key, done))

    def _forget_unsaved(self, key: str, done: Future[dict[str, object]]) -> None:
        """A snapshot job dropped before it saved (superseded by the next completion's, shed, shut down): its
        prefix is no longer counted as saved, so a later completion at that place queues it again."""
        if done.cancelled() or done.exception() is not None:
            with self.host.prefix_lock:
                self.host.saved_prefixes.discard(key)

    def _observed(self, info: dict[str, object]) -> dict[str, object]:
        """A warm-up's prefill is a speed measurement too."""
        evaluated, elapsed = info.get("evaluated_tokens"), info.get("elapsed_ms")
        if isinstance(evaluated, int) and isinstance(elapsed, (int, float)):
            self.host.speed.observe_prefill(evaluated, float(elapsed))
        return info

    def warm_up(self, path: Path | str, text: str, line: int | None = None, character: int | None = None,
                after: threading.Event | None = None) -> Future[dict[str, object]]:
        """Make the repository prefix for this document resident (snapshot restore or prefill + save).

        Lowest priority and pre-emptible: a keystroke interrupts it, and it resumes afterwards from what
        it had evaluated. Call it when a document opens or the editor goes idle. Without a position, the end
        of the document (by LSP's lines: ``split("\\n")`` warmed a lone-CR document at the end of its first
        line), in the ``\\n`` text a completion there builds its prompt from. ``after``: the prompt is built
        once it is set (the document's index overlay applied: see ``Engine.warm_up``), or after a second.
        """
        text = to_lf(text)
        if line is None or character is None:
            lines = line_texts(text)
            line, character = len(lines) - 1, len(lines[-1])

        def job(token: CancelToken) -> dict[str, object]:
            if after is not None:
                wait_for(after, token)
            backend = self.host.backend
            context, _plan = self._completion_context(backend.info(), path, text, line, character)
            prefix = repository_prefix(context.pieces, backend.prompt_format)
            if not prefix:
                return {"skipped": "no repository prefix in this prompt format"}
            info = self._observed(backend.warm_prefix(prefix, token))
            self.last_warm_up = info
            self.log(f"warm-up: {info}")
            return info

        return self.scheduler.submit(job, Priority.WARMUP, key="warm-up", resumable=True)

    # -- code actions and chat ---------------------------------------------------------------------------
    def submit_generate(self, request: GenerationRequest, *, priority: Priority = Priority.ACTION,
                        key: str | None = None, cancel: CancelToken | None = None) -> Future[GenerationResult]:
        """Any raw generation (code actions, commands) on the shared worker."""

        def job(token: CancelToken) -> GenerationResult:
            result = self.host.backend.generate(request, token)
            self.host.counters.add(result)
            return result

        return self.scheduler.submit(job, priority, key=key, cancel=cancel)

    def submit_chat(self, turn: ChatTurn, *, key: str | None = None,
                    cancel: CancelToken | None = None) -> Future[GenerationResult]:
        """An assistant turn at chat priority, pre-empted by keystrokes and then resumed (``ChatTurn``)."""

        def job(token: CancelToken) -> GenerationResult:
            return turn.run(self.host.backend, token)

        if self.config.backend == "openai":
            # A server runs requests concurrently: chat need not wait behind (or pre-empt) completions.
            return self.host.remote_pool().submit(job, cancel or CancelToken())
        return self.scheduler.submit(job, Priority.CHAT, key=key, resumable=True, cancel=cancel)

    def chat(self, messages: Sequence[dict], *, tools: Sequence[dict] | None = None,
             on_text: Callable[[str], None] | None = None, cancel: CancelToken | None = None,
             max_tokens: int | None = None, sampling: Sampling | None = None) -> Future[GenerationResult]:
        """An assistant turn on a fixed conversation, streamed through ``on_text``.

        The first run lets the backend apply its template (``Backend.chat``); a resumed one renders the
        conversation plus the text so far and continues it."""
        cfg = self.config.chat
        limit = max_tokens or cfg.max_tokens
        local = self.config.backend != "openai"

        def render(backend: Backend, text: str, generated: int) -> ChatPrompt:
            room = max(1, limit - generated)
            if text and local:
                return ChatPrompt(backend.render_chat(messages, tools), room, chat_stop_ids(backend))
            return ChatPrompt(max_tokens=room, messages=messages, tools=tools)

        turn = ChatTurn(render, sampling=sampling or chat_sampling(cfg), record=self.host.counters.add,
                        on_text=on_text)
        return self.submit_chat(turn, cancel=cancel)

    # -- status -----------------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        data: dict[str, Any] = {"scheduler": self.scheduler.status(), "cache": self.cache.stats()}
        backend = self.host.current_backend
        if backend is not None:
            data["kv_cached_tokens"] = backend.info().get("cached_tokens")
        if self.last_warm_up:
            data["last_warm_up"] = self.last_warm_up
        data["latency"] = {"enabled": self.config.completion.latency_target, **self.host.speed.to_json(),
                           **self.last_latency}
        return data
