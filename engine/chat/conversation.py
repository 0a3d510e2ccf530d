"""A chat's data: the request for one user turn, its result, and the conversations a workspace keeps.

A conversation keeps its instructions and repository context fixed while it lasts (the KV prefix of every
turn is then reused); its history is bounded (``chat.history`` messages) and starts at a user turn.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MODES = ("ask", "agent")


class ChatError(Exception):
    """A chat request that cannot run (bad parameters, no model); the message is for the user."""


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


def trim_history(messages: list[dict[str, str]], limit: int) -> list[dict[str, str]]:
    """At most ``limit`` messages, starting at a user turn (never at a dangling tool result or answer)."""
    if limit <= 0:
        return []
    kept = list(messages[-limit:]) if len(messages) > limit else list(messages)
    while kept and kept[0].get("role") != "user":
        kept.pop(0)
    return kept
