"""Qwen3-Coder's tool-call format: declaring tools, parsing calls (also while streaming), tool responses.

A call, as the model writes it::

    <tool_call>
    <function=read_file>
    <parameter=path>
    src/app.py
    </parameter>
    </function>
    </tool_call>

Model output is untrusted and often imperfect: anything that does not parse as a call (no function name,
an unterminated block at the end of the turn, junk) stays ordinary text. Nothing here raises on model
output. The same splitter serves streaming (text is released as soon as it cannot start a call) and the
final parse (the whole turn fed at once), so what was streamed and what is executed always agree.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

OPEN = "<tool_call>"
CLOSE = "</tool_call>"

_FUNCTION_RE = re.compile(r"<function\s*=\s*([A-Za-z_][\w.\-]*)\s*>")
_PARAM_RE = re.compile(r"<parameter\s*=\s*([A-Za-z_][\w.\-]*)\s*>")
_FUNCTION_END = "</function>"
_PARAM_END = "</parameter>"


@dataclass
class ToolCall:
    name: str
    arguments: dict[str, str] = field(default_factory=dict)
    raw: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": dict(self.arguments)}

    def describe(self) -> str:
        """One line for people: ``read_file(path="a.py", start_line="3")``."""
        args = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in self.arguments.items())
        return f"{self.name}({args})"


def _strip_one_newline(value: str) -> str:
    if value.startswith("\r\n"):
        value = value[2:]
    elif value.startswith("\n"):
        value = value[1:]
    if value.endswith("\r\n"):
        value = value[:-2]
    elif value.endswith("\n"):
        value = value[:-1]
    return value


def parse_call_block(block: str) -> ToolCall | None:
    """The call inside one ``<tool_call>…</tool_call>`` block (the tags may be missing); None if malformed.

    Tolerated: a missing ``</parameter>`` (the value runs to the next parameter or ``</function>``), a
    missing ``</function>`` or ``</tool_call>``, and the older JSON form ``{"name": …, "arguments": {…}}``.
    """
    body = block
    if body.startswith(OPEN):
        body = body[len(OPEN):]
    if body.rstrip().endswith(CLOSE):
        body = body.rstrip()[: -len(CLOSE)]
    match = _FUNCTION_RE.search(body)
    if match is None:
        return _parse_json_call(body, block)
    if body[: match.start()].strip():
        return None  # junk before <function=…>
    name = match.group(1)
    rest = body[match.end():]
    end = rest.find(_FUNCTION_END)
    if end >= 0:
        if rest[end + len(_FUNCTION_END):].strip():
            return None  # junk after </function>
        rest = rest[:end]
    arguments: dict[str, str] = {}
    params = list(_PARAM_RE.finditer(rest))
    if not params and rest.strip():
        return None  # text inside the function that is not a parameter
    if params and rest[: params[0].start()].strip():
        return None
    for i, param in enumerate(params):
        stop = params[i + 1].start() if i + 1 < len(params) else len(rest)
        value = rest[param.end(): stop]
        close = value.rfind(_PARAM_END)
        if close >= 0:
            if value[close + len(_PARAM_END):].strip():
                return None
            value = value[:close]
        arguments[param.group(1)] = _strip_one_newline(value)
    return ToolCall(name, arguments, block)


def _parse_json_call(body: str, raw: str) -> ToolCall | None:
    text = body.strip()
    if not text.startswith("{"):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return None
    args = data.get("arguments", data.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except ValueError:
            return None
    if not isinstance(args, dict):
        return None
    return ToolCall(data["name"], {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in args.items()}, raw)


@dataclass
class Segment:
    kind: str  # "text" | "call"
    text: str
    call: ToolCall | None = None


class ToolCallSplitter:
    """Split a stream of model text into plain text and tool calls.

    ``feed`` returns segments that are final: text that cannot be the start of a call, and complete calls.
    ``finish`` flushes the rest (an unterminated call that still parses is a call, otherwise text).
    """

    def __init__(self, on_segment: Callable[[Segment], None] | None = None) -> None:
        self._pending = ""
        self._inside = False
        self._on_segment = on_segment
        self.segments: list[Segment] = []

    def _out(self, segment: Segment) -> None:
        if segment.kind == "text" and not segment.text:
            return
        if segment.kind == "text" and self.segments and self.segments[-1].kind == "text":
            self.segments[-1].text += segment.text
        else:
            self.segments.append(Segment(segment.kind, segment.text, segment.call))
        if self._on_segment is not None:
            self._on_segment(segment)

    def feed(self, piece: str) -> None:
        self._pending += piece
        while self._pending:
            if not self._inside:
                at = self._pending.find(OPEN)
                if at >= 0:
                    self._out(Segment("text", self._pending[:at]))
                    self._pending = self._pending[at:]
                    self._inside = True
                    continue
                keep = _partial_suffix(self._pending, OPEN)
                self._out(Segment("text", self._pending[: len(self._pending) - keep]))
                self._pending = self._pending[len(self._pending) - keep:]
                return
            end = self._pending.find(CLOSE, len(OPEN))
            if end < 0:
                return
            block = self._pending[: end + len(CLOSE)]
            self._pending = self._pending[end + len(CLOSE):]
            self._inside = False
            call = parse_call_block(block)
            self._out(Segment("call", block, call) if call else Segment("text", block))

    def finish(self) -> list[Segment]:
        rest, self._pending = self._pending, ""
        if rest:
            call = parse_call_block(rest) if self._inside and _FUNCTION_END in rest else None
            self._out(Segment("call", rest, call) if call else Segment("text", rest))
        self._inside = False
        return self.segments


def _partial_suffix(text: str, marker: str) -> int:
    """Length of the longest end of ``text`` that is a proper start of ``marker``."""
    for n in range(min(len(marker) - 1, len(text)), 0, -1):
        if text.endswith(marker[:n]):
            return n
    return 0


def split_tool_calls(text: str) -> list[Segment]:
    splitter = ToolCallSplitter()
    splitter.feed(text)
    return splitter.finish()


def tool_calls_in(text: str) -> list[ToolCall]:
    return [s.call for s in split_tool_calls(text) if s.kind == "call" and s.call is not None]


def text_without_calls(text: str) -> str:
    return "".join(s.text for s in split_tool_calls(text) if s.kind == "text")


# -- declaring tools and returning results -----------------------------------------------------------
def tools_block(tools: Sequence[dict]) -> str:
    """The tool declaration Qwen3-Coder's template writes into the system turn, for templates without one."""
    out = ["# Tools\n\nYou have access to the following tools:\n\n<tools>"]
    for tool in tools:
        fn = tool.get("function", tool)
        out.append(f"\n<function>\n<name>{fn['name']}</name>")
        if fn.get("description"):
            out.append(f"\n<description>{fn['description'].strip()}</description>")
        out.append("\n<parameters>")
        params = fn.get("parameters") or {}
        for pname, pfields in (params.get("properties") or {}).items():
            out.append(f"\n<parameter>\n<name>{pname}</name>")
            if "type" in pfields:
                out.append(f"\n<type>{pfields['type']}</type>")
            if pfields.get("description"):
                out.append(f"\n<description>{pfields['description'].strip()}</description>")
            out.append("\n</parameter>")
        if params.get("required"):
            out.append(f"\n<required>{json.dumps(params['required'])}</required>")
        out.append("\n</parameters>\n</function>")
    out.append("\n</tools>")
    out.append(
        "\n\nIf you choose to call a tool ONLY reply in the following format with NO suffix:\n\n"
        "<tool_call>\n<function=example_function_name>\n<parameter=example_parameter_1>\nvalue_1\n</parameter>\n"
        "<parameter=example_parameter_2>\nvalue_2\n</parameter>\n</function>\n</tool_call>\n\n<IMPORTANT>\n"
        "Reminder:\n- Function calls MUST follow the specified format: the tool calling block MUST begin with an "
        "opening <tool_call> tag and end with a closing </tool_call> tag.\n- Required parameters MUST be "
        "specified\n- You may provide optional reasoning for your function call in natural language BEFORE the "
        "function call, but NOT after\n- If there is no function call available, answer the question like normal "
        "with your current knowledge and do not tell the user about function calls\n</IMPORTANT>"
    )
    return "".join(out)


def tool_response_text(results: Sequence[str]) -> str:
    """A user turn carrying tool results, as Qwen3-Coder's template renders consecutive tool messages."""
    return "".join(f"<tool_response>\n{r}\n</tool_response>\n" for r in results).rstrip("\n")
