"""Chat and agent mode: conversations, repository context, the tool loop, and the terminal front end.

One ``ChatSession.run`` is one user turn. In ``ask`` mode it is a single streamed assistant turn; in ``agent``
mode the model may call tools (Qwen3-Coder's XML format, engine/chat/tool_calls.py), whose results go back as
``<tool_response>`` turns, until it answers without a call, the step limit (``chat.max_steps``) is reached,
the conversation no longer fits the model's window, or the user cancels.

Scheduling: every generation step is a *resumable* job at chat priority on the engine's single inference
worker (engine/inference/scheduler.py). An inline completion pre-empts it within one decode step; the step is then
resumed from the text it had produced (the stream never repeats itself). Tools run on the caller's thread,
never on the inference worker.

Front ends supply ``emit(kind, text, **extra)`` for the stream (``kind``: "text" | "tool_call" |
"tool_result") and, for edits, ``apply_edit(proposal) -> (applied, reason)``.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from engine.model.backend import BackendError, Cancelled, CancelToken, GenerationRequest, GenerationResult, Sampling, chat_stop_ids
from engine.config import Config
from engine.chat.tool_calls import Segment, ToolCall, ToolCallSplitter, tool_response_text, tools_block
from engine.chat.tools import EditProposal, ToolEnv, run_tool, tool_specs

MODES = ("ask", "agent")
_PROBE = "__coderflash_probe__"
Emit = Callable[..., None]


class ChatError(Exception):
    """A chat request that cannot run (bad parameters, no model); the message is for the user."""


class LinkedCancel(CancelToken):
    """Fires when any of its tokens fires (the scheduler's pre-emption token and the user's cancel)."""

    def __init__(self, *tokens: CancelToken) -> None:
        super().__init__()
        self._tokens = tokens

    @property
    def cancelled(self) -> bool:  # type: ignore[override]
        return any(t.cancelled for t in self._tokens)

    def check(self) -> None:
        for token in self._tokens:
            token.check()


@dataclass
class ChatRequest:
    message: str
    mode: str = "ask"
    conversation_id: str | None = None
    path: Path | None = None  # the current document
    text: str | None = None  # its (unsaved) text
    selection: tuple[int, int, int, int] | None = None  # start line, start char, end line, end char (0-based)
    grammars: list[str | None] | None = None  # GBNF per step (tests, structured output); llama.cpp only
    max_steps: int | None = None
    max_tokens: int | None = None  # per step; default chat.max_tokens

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ChatError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not isinstance(self.message, str) or not self.message.strip():
            raise ChatError("message is required")


@dataclass
class ChatResult:
    conversation_id: str
    text: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    edits: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str = "stop"  # stop | length | cancelled | max_steps | budget | error
    steps: int = 0
    counters: dict[str, int] = field(default_factory=dict)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"conversationId": self.conversation_id, "text": self.text,
                                "toolCalls": self.tool_calls, "edits": self.edits,
                                "finishReason": self.finish_reason, "steps": self.steps,
                                "counters": self.counters}
        if self.error:
            data["error"] = self.error
        return data


@dataclass
class Conversation:
    id: str
    instructions: str | None = None  # fixed for the conversation, like the context: the KV prefix is reused
    mode: str = ""  # the mode the instructions were written for
    context: str = ""  # repository context ("File: path" + fenced code blocks), shrunk only when out of room
    messages: list[dict[str, str]] = field(default_factory=list)  # user / assistant / tool, oldest first
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def system(self) -> str:
        if not self.context.strip():
            return self.instructions or ""
        return (self.instructions or "") + "\n\nRepository context:\n\n" + self.context.rstrip()

    @property
    def context_files(self) -> set[str]:
        return {ln[6:].strip() for ln in self.context.splitlines() if ln.startswith("File: ")}

    def shrink_context(self) -> bool:
        """Drop the last file block of the repository context; False when there is none left."""
        at = self.context.rfind("\nFile: ")
        if at < 0:
            if not self.context:
                return False
            self.context = ""
            return True
        self.context = self.context[:at]
        return True


class ConversationStore:
    """Conversations of one workspace, least recently used dropped first; each history bounded."""

    def __init__(self, max_conversations: int = 32) -> None:
        self.max_conversations = max_conversations
        self._items: OrderedDict[str, Conversation] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, conversation_id: str | None) -> Conversation:
        with self._lock:
            cid = conversation_id or uuid.uuid4().hex[:12]
            conv = self._items.get(cid)
            if conv is None:
                conv = Conversation(cid)
                self._items[cid] = conv
            self._items.move_to_end(cid)
            while len(self._items) > self.max_conversations:
                self._items.popitem(last=False)
            return conv

    def drop(self, conversation_id: str) -> bool:
        with self._lock:
            return self._items.pop(conversation_id, None) is not None

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._items)


def trim_history(messages: list[dict[str, str]], limit: int) -> list[dict[str, str]]:
    """At most ``limit`` messages, starting at a user turn (never at a dangling tool result or answer)."""
    if limit <= 0:
        return []
    kept = list(messages[-limit:]) if len(messages) > limit else list(messages)
    while kept and kept[0].get("role") != "user":
        kept.pop(0)
    return kept


SYSTEM_ASK = ("You are coderflash, a coding assistant inside the user's editor, working on the repository "
              "{name}. Answer precisely and concisely; quote code from the repository context when it helps.")
SYSTEM_AGENT = ("You are coderflash, a coding agent inside the user's editor, working on the repository {name}. "
                "Use the tools to look at the repository before answering; never invent file contents. To "
                "change code, call propose_edit; the user reviews each edit and you are told whether it was "
                "applied. Paths are relative to the repository root.")


class ChatSession:
    """One user turn on one conversation of one engine (``engine.service.Engine``)."""

    def __init__(self, engine: Any, conversation: Conversation, request: ChatRequest, *,
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

    # -- helpers ------------------------------------------------------------------------------------------
    def _index(self):
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

    def _n_ctx(self, backend: Any) -> int:
        try:
            return int(backend.info().get("n_ctx") or 0) or self.config.llama.n_ctx
        except Exception:  # noqa: BLE001
            return self.config.llama.n_ctx

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
        self.native_tools = self.local and _template_renders_tools(template or "")
        self.native_tool_role = self.local and _template_renders_tool_role(template or "")
        tools = tool_specs(self.config) if self.agent else []
        for grammar in self.request.grammars or []:
            if grammar is not None and self.local:
                check_grammar(backend, grammar)
        user = self._user_message()
        if conv.instructions is None or conv.mode != self.request.mode:
            first = conv.instructions is None
            instructions, context = self._system_prompt(backend, n_ctx, tools, user, with_context=first)
            conv.instructions, conv.mode = instructions, self.request.mode
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
        except _BudgetExceeded as exc:
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

    # -- prompt -------------------------------------------------------------------------------------------
    def _count(self, backend: Any, text: str) -> int:
        try:
            return int(backend.count_tokens(text))
        except Exception:  # noqa: BLE001
            return len(text) // 3 + 1

    def _system_prompt(self, backend: Any, n_ctx: int, tools: list[dict], user: str,
                       with_context: bool = True) -> tuple[str, str]:
        """(instructions, repository context). The context gets the model's window minus the answer reserve
        (``context.chat_reserve``); in agent mode half of that, the rest is room for tool results."""
        name = self.engine.root.name if self.engine.root is not None else "(no workspace)"
        system = (SYSTEM_AGENT if self.agent else SYSTEM_ASK).format(name=name)
        if tools and not self.native_tools:
            system += "\n\n" + tools_block(tools)
        declared = tools_block(tools) if tools and self.native_tools else ""
        used = self._count(backend, system) + self._count(backend, declared) + self._count(backend, user) + 64
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
        context = self._safe_context(context)
        return system, context if context.strip() else ""

    def _safe_context(self, context: str) -> str:
        """Drop file blocks the tools would refuse: the index lists a symlink to ``.env`` or to a file outside
        the workspace under its own harmless name."""
        from engine.chat.tools import ToolError, resolve_path

        blocks = re.split(r"(?m)^(?=File: )", context)
        kept = []
        for block in blocks:
            if block.startswith("File: "):
                path = block[6:].split("\n", 1)[0].strip()
                try:
                    resolve_path(self.env, path)
                except ToolError:
                    self.engine.log(f"chat: left {path} out of the repository context (secret or outside)")
                    continue
            kept.append(block)
        return "".join(kept)

    def _user_message(self) -> str:
        req = self.request
        parts = [req.message.strip()]
        if req.path is None:
            return parts[0]
        rel = self.engine.relative_path(req.path)
        text = req.text
        if text is None:
            try:
                text = Path(req.path).read_text(encoding="utf-8", errors="replace")
            except OSError:
                text = None
        if text is None:
            return parts[0]
        lines = text.splitlines(keepends=True)
        if req.selection is not None:
            sl, sc, el, ec = req.selection
            if (sl, sc) != (el, ec):
                from engine.text_position import offset_at

                start, end = offset_at(text, sl, sc), offset_at(text, el, ec)
                start, end = min(start, end), max(start, end)
                parts.append(f"Selected code in `{rel}` (lines {sl + 1}-{el + 1}):\n```\n{text[start:end]}\n```")
                return "\n\n".join(parts)
        if rel in self.conversation.context_files and self.conversation.messages == []:
            parts.append(f"The current file is `{rel}` (shown in the repository context).")
        else:
            cap = max(2000, self.config.context.budget * 3)
            body = text if len(text) <= cap else "".join(lines)[:cap] + "\n[... truncated]"
            parts.append(f"The current file is `{rel}`:\n```\n{body}\n```")
        return "\n\n".join(parts)

    def _render_messages(self, system: str, working: list[dict[str, str]]) -> list[dict[str, str]]:
        """Chat messages for the template: tool results as the template expects them (or as Qwen3-Coder
        renders them, for templates without a tool role)."""
        out: list[dict[str, str]] = [{"role": "system", "content": system}]
        pending: list[str] = []
        for message in working:
            if message["role"] == "tool" and not self.native_tool_role:
                pending.append(message["content"])
                continue
            if pending:
                out.append({"role": "user", "content": tool_response_text(pending)})
                pending = []
            out.append({"role": message["role"], "content": message["content"]})
        if pending:
            out.append({"role": "user", "content": tool_response_text(pending)})
        return out

    # -- generation ---------------------------------------------------------------------------------------
    def _generate(self, backend: Any, working: list[dict[str, str]], tools: list[dict],
                  grammar: str | None, n_ctx: int) -> tuple[GenerationResult, list[Segment]]:
        cfg = self.config.chat
        sampling = Sampling(temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k,
                            repeat_penalty=cfg.repeat_penalty)
        template_tools = tools if (tools and self.native_tools) else None
        splitter = ToolCallSplitter(self._on_segment) if self.agent else None
        state: dict[str, Any] = {"text": "", "fed": 0, "results": [], "runs": 0}

        def collect(piece: str) -> None:
            state["text"] += piece
            if len(state["text"]) > state["fed"]:
                new = state["text"][state["fed"]:]
                state["fed"] = len(state["text"])
                if splitter is not None:
                    splitter.feed(new)
                else:
                    self.result.text += new
                    self.emit("text", new)

        def job(token: CancelToken) -> GenerationResult:
            self.cancel.check()
            state["runs"] += 1
            if state["runs"] > 1:
                self._counters["preemptions"] += 1
            link = LinkedCancel(token, self.cancel)
            if grammar is not None and state["text"]:
                state["text"] = ""  # a grammar cannot resume mid-way: regenerate, stream only what is new
                state["results"] = []
            done = sum(r.generated_tokens for r in state["results"])
            messages, pieces, prompt_tokens = self._fit(backend, working, template_tools, n_ctx)
            if state["text"]:
                pieces = pieces + [state["text"]]
            room = n_ctx - prompt_tokens - self._count(backend, state["text"]) - 1
            limit = min((self.request.max_tokens or cfg.max_tokens) - done, room)
            if limit <= 0:
                return _combine(state["text"], state["results"] or
                                [GenerationResult("", prompt_tokens, 0, 0, 0, 0.0, "length")])
            request = GenerationRequest(pieces=pieces, max_tokens=limit, sampling=sampling,
                                        stop_ids=_chat_stops(backend), grammar=grammar, on_text=collect)
            result = backend.generate(request, link)
            state["results"].append(result)
            self.engine.counters.add(result)
            return _combine(state["text"], state["results"])

        if self.local:
            scheduler = self.engine.runtime.scheduler
            future = scheduler.submit(job, _chat_priority(), key=self.key, resumable=True)
            try:
                result = _wait(future, self.cancel, scheduler, self.key)
            except Cancelled:
                if not self.cancel.cancelled:
                    raise
                result = _combine(state["text"], state["results"] or [GenerationResult("", 0, 0, 0, 0, 0.0, "cancelled")])
                result.finish_reason = "cancelled"
        else:
            result = self._generate_remote(backend, working, sampling, collect)
        if self.cancel.cancelled:
            result.finish_reason = "cancelled"
        self._counters["prompt_tokens"] = result.prompt_tokens
        for key in ("reused_tokens", "evaluated_tokens", "generated_tokens"):
            self._counters[key] += getattr(result, key)
        segments = splitter.finish() if splitter is not None else [Segment("text", result.text)]
        return result, segments

    def _generate_remote(self, backend: Any, working: list[dict[str, str]], sampling: Sampling,
                         collect: Callable[[str], None]) -> GenerationResult:
        """OpenAI-compatible servers run requests concurrently: no local scheduling, tools declared in text."""
        messages = self._render_messages(self.conversation.system, working)
        request = GenerationRequest(pieces=[], max_tokens=self.request.max_tokens or self.config.chat.max_tokens,
                                    sampling=sampling,
                                    on_text=collect)
        result = backend.chat(messages, request, None, self.cancel)
        self.engine.counters.add(result)
        return result

    def _on_segment(self, segment: Segment) -> None:
        if segment.kind == "text":
            self.result.text += segment.text
            self.emit("text", segment.text)

    def _fit(self, backend: Any, working: list[dict[str, str]], tools: list[dict] | None,
             n_ctx: int) -> tuple[list[dict[str, str]], list, int]:
        """Render the conversation so that it leaves room for an answer. Out of room: elide older tool output,
        drop older turns, shrink the repository context, elide the latest tool output, in that order;
        ``_BudgetExceeded`` when even that does not fit."""
        reserve = min(self.request.max_tokens or self.config.chat.max_tokens, max(256, n_ctx // 8))
        work = [dict(m) for m in working]
        elided = "[output elided to fit the context window]"
        while True:
            messages = self._render_messages(self.conversation.system, work)
            pieces = backend.render_chat(messages, tools)
            count = len(backend.pieces_to_ids(pieces))
            if count + reserve <= n_ctx:
                return messages, pieces, count
            tool_msgs = [m for m in work if m["role"] == "tool" and m["content"] != elided]
            if len(tool_msgs) > 1:
                max(tool_msgs[:-1], key=lambda m: len(m["content"]))["content"] = elided
                continue
            current = max(i for i, m in enumerate(work) if m["role"] == "user")
            first_user = next((i for i, m in enumerate(work) if m["role"] == "user"), current)
            if first_user < current:
                cut = next((i for i in range(first_user + 1, current + 1) if work[i]["role"] == "user"), current)
                del work[first_user:cut]
                continue
            if self.conversation.shrink_context():
                continue
            if tool_msgs:
                tool_msgs[0]["content"] = elided
                continue
            raise _BudgetExceeded(f"the conversation ({count} tokens) no longer fits the model's window "
                                  f"of {n_ctx} tokens")


class _BudgetExceeded(Exception):
    pass


def check_grammar(backend: Any, grammar: str) -> None:
    """ChatError unless the in-process backend's llama.cpp accepts the GBNF (see LlamaBackend.check_grammar)."""
    check = getattr(backend, "check_grammar", None)
    if check is None:
        raise ChatError("grammars need the in-process llama.cpp backend")
    try:
        check(grammar)
    except BackendError as exc:
        raise ChatError(str(exc)) from None


def _chat_priority():
    from engine.inference.scheduler import Priority

    return Priority.CHAT


def _wait(future: Any, cancel: CancelToken, scheduler: Any, key: str) -> GenerationResult:
    """Wait for a scheduler future. On a user cancel the scheduler drops the queued job (its future then
    raises Cancelled) or stops the running one within a decode step (its future returns the partial text)."""
    import concurrent.futures

    dropped = False
    while True:
        try:
            return future.result(timeout=0.05)
        except concurrent.futures.TimeoutError:
            if cancel.cancelled and not dropped:
                scheduler.cancel(key)
                dropped = True


def _chat_stops(backend: Any) -> frozenset[int]:
    return chat_stop_ids(backend)


def _combine(text: str, results: list[GenerationResult]) -> GenerationResult:
    last = results[-1]
    return GenerationResult(
        text=text, prompt_tokens=last.prompt_tokens,
        reused_tokens=sum(r.reused_tokens for r in results),
        evaluated_tokens=sum(r.evaluated_tokens for r in results),
        generated_tokens=sum(r.generated_tokens for r in results),
        elapsed_ms=round(sum(r.elapsed_ms for r in results), 3),
        finish_reason=last.finish_reason, first_token_ms=results[0].first_token_ms)


def _render_plain(template: str, messages: list[dict], tools: list[dict] | None) -> str:
    from engine.model.chat_template import render_chat_pieces

    try:
        return "".join(str(p) for p in render_chat_pieces(template, messages, tools, lambda t: [t]))
    except Exception:  # noqa: BLE001 - a template that cannot render this is one that lacks the feature
        return ""


def _template_renders_tools(template: str) -> bool:
    probe = [{"type": "function", "function": {"name": _PROBE, "description": "probe",
                                               "parameters": {"type": "object", "properties": {}}}}]
    return _PROBE in _render_plain(template, [{"role": "user", "content": "x"}], probe)


def _template_renders_tool_role(template: str) -> bool:
    messages = [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"},
                {"role": "tool", "content": _PROBE}]
    out = _render_plain(template, messages, None)
    return "<tool_response>" in out and _PROBE in out


__all__ = ["ChatSession", "ChatRequest", "ChatResult", "ChatError", "Conversation", "ConversationStore",
           "trim_history"]
