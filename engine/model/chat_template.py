"""Render a GGUF chat template so that message text can never turn into control tokens.

The template is rendered with a unique sentinel standing in for each message's content; the output is
then split at the sentinels. Template text is tokenized with control tokens recognised, user text without.
"""

from __future__ import annotations

import uuid
from typing import Callable, Sequence

from engine.model.prompt_format import Piece

CHATML_FALLBACK = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def render_chat_pieces(
    template: str,
    messages: Sequence[dict],
    tools: Sequence[dict] | None,
    template_text_to_pieces: Callable[[str], list[Piece]],
) -> list[Piece]:
    """Pieces for a chat prompt ending with the assistant's generation prompt."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)

    def raise_exception(message: str) -> None:
        raise ValueError(message)

    env.globals["raise_exception"] = raise_exception
    sentinels: dict[str, str] = {}
    masked = []
    for message in messages:
        key = f"\x00{uuid.uuid4().hex}\x00"
        sentinels[key] = str(message.get("content") or "")
        masked.append({**message, "content": key})
    kwargs: dict[str, object] = {"messages": masked, "add_generation_prompt": True,
                                 "bos_token": "", "eos_token": "<|im_end|>"}
    if tools:
        kwargs["tools"] = list(tools)
    rendered = env.from_string(template or CHATML_FALLBACK).render(**kwargs)
    pieces: list[Piece] = []
    rest = rendered
    while rest:
        positions = [(rest.find(k), k) for k in sentinels if k in rest]
        if not positions:
            pieces.extend(template_text_to_pieces(rest))
            break
        pos, key = min(positions)
        if pos:
            pieces.extend(template_text_to_pieces(rest[:pos]))
        if sentinels[key]:
            pieces.append(sentinels[key])
        rest = rest[pos + len(key):]
    return pieces


_PROBE = "__coderflash_probe__"


def _render_text(template: str, messages: list[dict], tools: list[dict] | None) -> str:
    try:
        return "".join(str(p) for p in render_chat_pieces(template, messages, tools, lambda t: [t]))
    except Exception:  # noqa: BLE001 - a template that cannot render this is one that lacks the feature
        return ""


def renders_tools(template: str) -> bool:
    """Whether the template declares tools itself (else the chat writes them into the system turn)."""
    probe = [{"type": "function", "function": {"name": _PROBE, "description": "probe",
                                               "parameters": {"type": "object", "properties": {}}}}]
    return _PROBE in _render_text(template, [{"role": "user", "content": "x"}], probe)


def renders_tool_role(template: str) -> bool:
    """Whether the template renders ``tool`` messages as ``<tool_response>`` (else the chat sends tool
    results as user turns, the way Qwen3-Coder renders them)."""
    messages = [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"},
                {"role": "tool", "content": _PROBE}]
    out = _render_text(template, messages, None)
    return "<tool_response>" in out and _PROBE in out
