"""Scripted chat steps for a model that cannot choose tools itself (the tiny random-weight model): each step's
output is fixed by a GBNF grammar that admits exactly one text — a tool call as Qwen3-Coder writes it, or an
answer. Shared by the chat tests and the load bench's soak."""

from __future__ import annotations

import json


def gbnf_literal(text: str) -> str:
    """A grammar whose only sentence is ``text``."""
    return "root ::= " + json.dumps(text)


def call_text(name: str, **args: str) -> str:
    """A tool call in Qwen3-Coder's XML-style format."""
    params = "".join(f"<parameter={k}>\n{v}\n</parameter>\n" for k, v in args.items())
    return f"<tool_call>\n<function={name}>\n{params}</function>\n</tool_call>"
