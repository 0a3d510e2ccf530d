"""What the model sees in a chat turn: the instructions, the user's message with the code it is about, and
the conversation fitted into the model's window.

Why apart from the session loop: these are the decisions about tokens (what to show, what to elide first
when the window is full); the session decides when to generate and what to do with the answer.
"""

from __future__ import annotations

import re
from typing import Callable

from engine.context.redact import kind_for, redact
from engine.chat.conversation import ChatRequest, Conversation
from engine.chat.tool_calls import tool_response_text, tools_block
from engine.chat.tools import ToolEnv, ToolError, resolve_path
from engine.model.backend import Backend
from engine.model.prompt_format import Piece
from engine.text_position import offset_at, to_lf
from indexer.regular_files import read_regular_file

SYSTEM_ASK = ("You are coderflash, a coding assistant inside the user's editor, working on the repository "
              "{name}. Answer precisely and concisely; quote code from the repository context when it helps.")
SYSTEM_AGENT = ("You are coderflash, a coding agent inside the user's editor, working on the repository {name}. "
                "Use the tools to look at the repository before answering; never invent file contents. To "
                "change code, call propose_edit; the user reviews each edit and you are told whether it was "
                "applied. Paths are relative to the repository root.")
ELIDED = "[output elided to fit the context window]"


class BudgetExceeded(Exception):
    """The conversation does not fit the model's window even after everything that can go is gone."""


def count_tokens(backend: Backend, text: str) -> int:
    try:
        return int(backend.count_tokens(text))
    except Exception:  # noqa: BLE001
        return len(text) // 3 + 1


def instructions(agent: bool, repo_name: str, tools: list[dict], native_tools: bool) -> tuple[str, str]:
    """(system instructions, the tools block the template declares itself): with a template that does not
    declare tools, the instructions carry the block; either way it counts against the context budget."""
    system = (SYSTEM_AGENT if agent else SYSTEM_ASK).format(name=repo_name)
    if tools and not native_tools:
        system += "\n\n" + tools_block(tools)
    declared = tools_block(tools) if tools and native_tools else ""
    return system, declared


def safe_context(context: str, env: ToolEnv, log: Callable[[str], None]) -> str:
    """Drop file blocks the tools would refuse: the index lists a symlink to ``.env`` or to a file outside
    the workspace under its own harmless name."""
    kept = []
    for block in re.split(r"(?m)^(?=File: )", context):
        if block.startswith("File: "):
            path = block[6:].split("\n", 1)[0].strip()
            try:
                resolve_path(env, path)
            except ToolError:
                log(f"chat: left {path} out of the repository context (secret or outside)")
                continue
        kept.append(block)
    return "".join(kept)


def user_message(request: ChatRequest, rel: str | None, conversation: Conversation, context_budget: int,
                 count: Callable[[str], int] | None = None) -> str:
    """The user's message, followed by the selection or the current file (``rel``: its workspace path), cut to
    ``context_budget`` tokens (``count`` counts them exactly; without it, three characters a token). A current
    file already shown in the repository context is named, not repeated, on the first turn."""
    message = request.message.strip()
    if request.path is None or rel is None:
        return message
    text = to_lf(request.text) if request.text is not None else None  # \n text, as the model reads code
    if text is None:  # not open in the editor: the disk, never a FIFO or device (that open would block)
        try:  # only the start is ever shown (within_tokens): at most 4 bytes a character, one more to see a cut
            data = read_regular_file(request.path, 4 * max(2000, context_budget * 3) + 4, truncate=True)
        except OSError:
            return message
        text = to_lf(data.decode("utf-8", errors="replace"))
    if request.selection is not None:
        sl, sc, el, ec = request.selection
        if (sl, sc) != (el, ec):
            start, end = offset_at(text, sl, sc), offset_at(text, el, ec)
            start, end = min(start, end), max(start, end)
            selected = within_tokens(redact(text[start:end], kind_for(rel)), context_budget, count)
            return f"{message}\n\nSelected code in `{rel}` (lines {sl + 1}-{el + 1}):\n```\n{selected}\n```"
    if rel in conversation.context_files and conversation.messages == []:
        return f"{message}\n\nThe current file is `{rel}` (shown in the repository context)."
    body = within_tokens(redact(text, kind_for(rel)), context_budget, count)
    return f"{message}\n\nThe current file is `{rel}`:\n```\n{body}\n```"


def within_tokens(text: str, budget: int, count: Callable[[str], int] | None = None) -> str:
    """``text``, or its start with a note that it was cut, within ``budget`` tokens: first by characters (three a
    token, at least 2,000), then, when ``count`` is given, cut further until the count fits."""
    cap = max(2000, budget * 3)
    cut = len(text) > cap
    text = text[:cap]
    if count is not None:
        for _ in range(4):  # each cut aims 10% under: one or two rounds in practice
            tokens = count(text)
            if tokens <= budget:
                break
            text = text[:max(1, len(text) * budget // tokens * 9 // 10)]
            cut = True
    return text + "\n[... truncated]" if cut else text


def render_messages(system: str, working: list[dict[str, str]], native_tool_role: bool) -> list[dict[str, str]]:
    """Chat messages for the template: tool results as the template expects them, or (for templates without
    a tool role) as user turns the way Qwen3-Coder renders them."""
    out: list[dict[str, str]] = [{"role": "system", "content": system}]
    pending: list[str] = []
    for message in working:
        if message["role"] == "tool" and not native_tool_role:
            pending.append(message["content"])
            continue
        if pending:
            out.append({"role": "user", "content": tool_response_text(pending)})
            pending = []
        out.append({"role": message["role"], "content": message["content"]})
    if pending:
        out.append({"role": "user", "content": tool_response_text(pending)})
    return out


def fit_conversation(backend: Backend, conversation: Conversation, working: list[dict[str, str]],
                     tools: list[dict] | None, n_ctx: int, reserve: int,
                     native_tool_role: bool) -> tuple[list[Piece], int]:
    """(pieces, their token count) of the conversation, leaving ``reserve`` tokens for the answer. Out of
    room: elide older tool output, drop older turns, shrink the repository context (for good: it is the
    conversation's), elide the latest tool output, in that order; ``BudgetExceeded`` when even that does
    not fit. ``working`` itself is not changed."""
    work = [dict(m) for m in working]
    while True:
        pieces = backend.render_chat(render_messages(conversation.system, work, native_tool_role), tools)
        count = len(backend.pieces_to_ids(pieces))  # type: ignore[attr-defined]
        if count + reserve <= n_ctx:
            return pieces, count
        tool_msgs = [m for m in work if m["role"] == "tool" and m["content"] != ELIDED]
        if len(tool_msgs) > 1:
            max(tool_msgs[:-1], key=lambda m: len(m["content"]))["content"] = ELIDED
            continue
        current = max(i for i, m in enumerate(work) if m["role"] == "user")
        first_user = next((i for i, m in enumerate(work) if m["role"] == "user"), current)
        if first_user < current:
            cut = next((i for i in range(first_user + 1, current + 1) if work[i]["role"] == "user"), current)
            del work[first_user:cut]
            continue
        if conversation.shrink_context():
            continue
        if tool_msgs:
            tool_msgs[0]["content"] = ELIDED
            continue
        raise BudgetExceeded(f"the conversation ({count} tokens) no longer fits the model's window "
                             f"of {n_ctx} tokens")
