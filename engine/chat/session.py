"""Chat and agent mode: one user turn of a conversation, and the agent's tool loop.

One ``ChatSession.run`` is one user turn. In ``ask`` mode it is a single streamed assistant turn; in ``agent``
mode the model may call tools (Qwen3-Coder's XML format, engine/chat/tool_calls.py), whose results go back as
``<tool_response>`` turns, until it answers without a call, the step limit (``chat.max_steps``) is reached,
the conversation no longer fits the model's window, or the user cancels.

Scheduling: every generation step is a *resumable* job at chat priority on the engine's single inference
worker (engine/inference/chat_turn.py). An inline completion pre-empts it within one decode step; the step
is then resumed from the text it had produced (the stream never repeats itself). Tools run on the caller's
thread, never on the inference worker.

Front ends supply ``emit(kind, text, **extra)`` for the stream (``kind``: "text" | "tool_call" |
"tool_result") and, for edits, ``apply_edit(proposal) -> (applied, reason)``.
"""

from __future__ import annotations

import concurrent.futures
import time
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence

from engine.chat.conversation import ChatError, ChatRequest, ChatResult, Conversation, trim_history
from engine.chat.prompt import (
    BudgetExceeded,
    count_tokens,
    fit_conversation,
    instructions,
    render_messages,
    safe_context,
    user_message,
)
from engine.chat.tool_calls import Segment, ToolCall, ToolCallSplitter
from engine.chat.tool_runner import run_tool
from engine.chat.tools import EditProposal, ToolEnv, tool_specs
from engine.config import Config
from engine.inference.chat_turn import ChatPrompt, ChatTurn, chat_sampling
from engine.inference.scheduler import SHED, QueueFull
from engine.model.backend import Backend, BackendError, Cancelled, CancelToken, GenerationResult, chat_stop_ids
from engine.model.chat_template import renders_tool_role, renders_tools
from engine.model_host import Counters

if TYPE_CHECKING:  # pragma: no cover
    from indexer import Index

Emit = Callable[..., None]
SHED_RETRY_S = 60.0  # how long a chat step waits for room behind keystrokes before its error stands


class ChatEngine(Protocol):
    """What a chat session needs from its workspace's engine (``engine.service.Engine``)."""

    config: Config
    root: Path | None
    log: Callable[[str], None]

    @property
    def backend(self) -> Backend: ...

    @property
    def counters(self) -> Counters: ...

    def repo_index(self) -> Index | None: ...

    def relative_path(self, path: Path | str) -> str: ...

    def chat_context(self, budget: int, path: Path | str | None = None, text: str | None = None,
                     line: int = 0) -> str: ...

    def chat_turn(self, turn: ChatTurn, key: str) -> Future[GenerationResult]: ...

    def cancel_job(self, key: str) -> None: ...


class ChatSession:
    """One user turn on one conversation of one engine."""

    def __init__(self, engine: ChatEngine, conversation: Conversation, request: ChatRequest, *,
                 emit: Emit | None = None, apply_edit: Callable[[EditProposal], tuple[bool, str]] | None = None,
                 read_buffer: Callable[[Path], str | None] | None = None, roots: Sequence[Path] = (),
                 cancel: CancelToken | None = None) -> None:
        self.engine = engine
        self.config: Config = engine.config
        self.conversation = conversation
        self.request = request
        self._emit = emit or (lambda kind, text, **extra: None)
        self.cancel = cancel or CancelToken()
        roots = [Path(r) for r in roots]
        if engine.root is not None:
            roots = [Path(engine.root)] + [r for r in roots if Path(r).resolve() != Path(engine.root).resolve()]
        self.env = ToolEnv(roots=roots, config=self.config, index=self._index, read_buffer=read_buffer,
                           apply_edit=apply_edit, cancel=self.cancel)
        self.key = f"chat:{conversation.id}"
        self.result = ChatResult(conversation.id)
        self._counters = {"prompt_tokens": 0, "reused_tokens": 0, "evaluated_tokens": 0, "generated_tokens": 0,
                          "preemptions": 0}
        self.local = False  # in-process llama.cpp (else a server applies the template itself)
        self.native_tools = False  # the model's template declares tools (else the system turn does)
        self.native_tool_role = False  # the template renders tool results (else they go as user turns)

    # -- helpers ------------------------------------------------------------------------------------------
    def _index(self) -> Index | None:
        try:
            return self.engine.repo_index()
        except Exception as exc:  # noqa: BLE001 - tools report it
            self.engine.log(f"chat: repository index unavailable: {exc}")
            return None

    def emit(self, kind: str, text: str, **extra: Any) -> None:
        try:
            self._emit(kind, text, **extra)
        except Exception as exc:  # noqa: BLE001 - a broken stream must not kill the turn
            self.engine.log(f"chat: stream error: {exc}")

    @property
    def agent(self) -> bool:
        return self.request.mode == "agent"

    def _n_ctx(self, backend: Backend) -> int:
        try:
            return int(backend.info().get("n_ctx") or 0) or self.config.llama.n_ctx
        except Exception:  # noqa: BLE001
            return self.config.llama.n_ctx

    def _file_budget(self, n_ctx: int) -> int:
        """Tokens the current file (or selection) may take in the user's message: the context budget, at most
        half of what the window leaves beside the answer reserve. Why: a large open file under a small window
        (``llama.n_ctx = 8192``) once filled the whole window, and the turn ended "no longer fits"."""
        room = max(256, (n_ctx - self.config.context.chat_reserve) // 2)
        return min(self.config.context.budget, room)

    # -- the turn -----------------------------------------------------------------------------------------
    def run(self) -> ChatResult:
        conv = self.conversation
        with conv.lock:
            try:
                self._run_locked()
            except Cancelled:
                self.result.finish_reason = "cancelled"
            except BackendError as exc:  # e.g. the prompt does not fit; the stream so far stays valid
                self.result.finish_reason = "error"
                self.result.error = str(exc)
                self._note(f"error: {exc}")
            self.result.edits = list(self.env.edits)
            self.result.counters = dict(self._counters)
            return self.result

    def _run_locked(self) -> None:
        conv = self.conversation
        backend = self.engine.backend  # raises ModelError with an actionable message
        n_ctx = self._n_ctx(backend)
        template = getattr(backend, "chat_template", None)
        self.local = hasattr(backend, "pieces_to_ids") and self.config.backend != "openai"
        self.native_tools = self.local and renders_tools(template or "")
        self.native_tool_role = self.local and renders_tool_role(template or "")
        tools = tool_specs(self.config) if self.agent else []
        for grammar in self.request.grammars or []:
            if grammar is not None and self.local:
                check_grammar(backend, grammar)
        req = self.request
        rel = self.engine.relative_path(req.path) if req.path is not None else None
        if req.path is not None and self.engine.is_secret_document(req.path):
            rel = None  # a secret file as the current document (a .env open in the editor) is left out
        user = user_message(req, rel, conv, self._file_budget(n_ctx),
                            (lambda text: count_tokens(backend, text)) if self.local else None)
        if conv.instructions is None or conv.mode != self.request.mode:
            first = conv.instructions is None
            system, context = self._system_prompt(backend, n_ctx, tools, user, with_context=first)
            conv.instructions, conv.mode = system, self.request.mode
            if first:
                conv.context = context
        working: list[dict[str, str]] = list(conv.messages) + [{"role": "user", "content": user}]
        max_steps = max(1, self.request.max_steps or self.config.chat.max_steps) if self.agent else 1
        finish = "stop"
        try:
            for step in range(max_steps):
                self.cancel.check()
                grammar = self._grammar(step)
                result, segments = self._generate(backend, working, tools, grammar, n_ctx)
                self.result.steps = step + 1
                raw = result.text
                working.append({"role": "assistant", "content": raw})
                finish = result.finish_reason
                if finish == "cancelled":
                    break
                calls = [s.call for s in segments if s.kind == "call" and s.call is not None]
                if not self.agent or not calls:
                    break
                if step == max_steps - 1:
                    finish = "max_steps"
                    self._note(f"stopped after {max_steps} steps (chat.max_steps); {len(calls)} tool call(s) not run")
                    break
                for call in calls:
                    self.cancel.check()
                    working.append({"role": "tool", "content": self._run_call(call)})
        except Cancelled:
            finish = "cancelled"
        except BudgetExceeded as exc:
            finish = "budget"
            self._note(str(exc))
        self.result.finish_reason = finish
        conv.messages = trim_history(working, self.config.chat.history)

    def _note(self, text: str) -> None:
        note = f"\n[coderflash: {text}]"
        self.result.text += note
        self.emit("text", note)

    def _grammar(self, step: int) -> str | None:
        grammars = self.request.grammars or []
        return grammars[step] if step < len(grammars) and self.local else None

    def _run_call(self, call: ToolCall) -> str:
        self.emit("tool_call", call.describe(), name=call.name, arguments=call.arguments)
        outcome = run_tool(self.env, call)
        self.emit("tool_result", outcome.text, name=call.name, ok=outcome.ok)
        self.result.tool_calls.append({**call.to_json(), "ok": outcome.ok, "result": outcome.text})
        return outcome.text

    def _system_prompt(self, backend: Backend, n_ctx: int, tools: list[dict], user: str,
                       with_context: bool = True) -> tuple[str, str]:
        """(instructions, repository context). The context gets the model's window minus the answer reserve
        (``context.chat_reserve``); in agent mode half of that, the rest is room for tool results."""
        name = self.engine.root.name if self.engine.root is not None else "(no workspace)"
        system, declared = instructions(self.agent, name, tools, self.native_tools)
        used = count_tokens(backend, system) + count_tokens(backend, declared) + count_tokens(backend, user) + 64
        budget = n_ctx - self.config.context.chat_reserve - used
        if self.agent:
            budget //= 2
        context = ""
        if with_context and budget > 64 and self.engine.root is not None:
            req = self.request
            line = req.selection[0] if req.selection else 0
            try:
                context = self.engine.chat_context(budget, req.path, req.text, line)
            except Exception as exc:  # noqa: BLE001 - chat still works without repository context
                self.engine.log(f"chat: repository context unavailable: {exc}")
        context = safe_context(context, self.env, self.engine.log)
        return system, context if context.strip() else ""

    # -- generation ---------------------------------------------------------------------------------------
    def _generate(self, backend: Backend, working: list[dict[str, str]], tools: list[dict],
                  grammar: str | None, n_ctx: int) -> tuple[GenerationResult, list[Segment]]:
        """One step: an assistant turn on the conversation so far (see ``ChatTurn``). In process it runs on
        the inference worker; an OpenAI-compatible server runs requests concurrently, so there it runs
        here, with the template applied by the server and tools declared in text."""
        limit = self.request.max_tokens or self.config.chat.max_tokens
        reserve = min(limit, max(256, n_ctx // 8))
        template_tools = tools if (tools and self.native_tools) else None
        splitter = ToolCallSplitter(self._on_segment) if self.agent else None

        def stream(new: str) -> None:
            if splitter is not None:
                splitter.feed(new)
            else:
                self.result.text += new
                self.emit("text", new)

        def render(backend: Backend, text: str, generated: int) -> ChatPrompt:
            if not self.local:
                return ChatPrompt(max_tokens=limit, messages=render_messages(self.conversation.system, working,
                                                                             self.native_tool_role))
            pieces, prompt_tokens = fit_conversation(backend, self.conversation, working, template_tools, n_ctx,
                                                     reserve, self.native_tool_role)
            room = n_ctx - prompt_tokens - count_tokens(backend, text) - 1
            return ChatPrompt(pieces, min(limit - generated, room), chat_stop_ids(backend), prompt_tokens)

        turn = ChatTurn(render, sampling=chat_sampling(self.config.chat), record=self.engine.counters.add,
                        on_text=stream, grammar=grammar, cancel=self.cancel if self.local else None)
        try:
            if self.local:
                result = self._wait_for_room(turn)
            else:
                result = turn.run(backend, self.cancel)
        finally:
            self._counters["preemptions"] += max(0, turn.runs - 1)
        if self.cancel.cancelled:
            result.finish_reason = "cancelled"
        self._counters["prompt_tokens"] = result.prompt_tokens
        for key in ("reused_tokens", "evaluated_tokens", "generated_tokens"):
            self._counters[key] += getattr(result, key)
        segments = splitter.finish() if splitter is not None else [Segment("text", result.text)]
        return result, segments

    def _wait_for_room(self, turn: ChatTurn) -> GenerationResult:
        """The step on the inference worker. Keystrokes pre-empt chat; they must not fail it: a step the scheduler
        refused (its queue full of completions from many documents) or shed from its queue is submitted again,
        every 0.2 s, for up to ``SHED_RETRY_S`` — then the error stands."""
        deadline = time.monotonic() + SHED_RETRY_S
        while True:
            try:
                return self._wait(self.engine.chat_turn(turn, self.key), turn)
            except (QueueFull, Cancelled) as exc:
                if not (isinstance(exc, QueueFull) or str(exc) == SHED) or time.monotonic() > deadline:
                    raise
            time.sleep(0.2)
            if self.cancel.cancelled:
                return _cancelled(turn)

    def _wait(self, future: Future[GenerationResult], turn: ChatTurn) -> GenerationResult:
        """The step's result. On a user cancel the queued job is dropped (its future then raises Cancelled)
        or the running one stops within a decode step (its future returns the partial text)."""
        dropped = False
        try:
            while True:
                try:
                    return future.result(timeout=0.05)
                except concurrent.futures.TimeoutError:
                    if self.cancel.cancelled and not dropped:
                        self.engine.cancel_job(self.key)
                        dropped = True
        except Cancelled:
            if not self.cancel.cancelled:
                raise
            return _cancelled(turn)

    def _on_segment(self, segment: Segment) -> None:
        if segment.kind == "text":
            self.result.text += segment.text
            self.emit("text", segment.text)


def _cancelled(turn: ChatTurn) -> GenerationResult:
    """The step's result when the user cancelled it: the text so far."""
    result = turn.result(GenerationResult("", 0, 0, 0, 0, 0.0, "cancelled"))
    result.finish_reason = "cancelled"
    return result


def check_grammar(backend: Backend, grammar: str) -> None:
    """ChatError unless the in-process backend's llama.cpp accepts the GBNF (see LlamaBackend.check_grammar)."""
    check = getattr(backend, "check_grammar", None)
    if check is None:
        raise ChatError("grammars need the in-process llama.cpp backend")
    try:
        check(grammar)
    except BackendError as exc:
        raise ChatError(str(exc)) from None
