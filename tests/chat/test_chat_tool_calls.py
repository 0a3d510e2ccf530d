"""Parsing Qwen3-Coder tool calls: well-formed, streamed in pieces, partial and malformed (text, no crash)."""

from __future__ import annotations

import random

import pytest

from engine.chat.tool_calls import (
    ToolCallSplitter,
    parse_call_block,
    split_tool_calls,
    text_without_calls,
    tool_calls_in,
    tool_response_text,
    tools_block,
)
from engine.config import Config
from engine.chat.tools import tool_specs

CALL = ("<tool_call>\n<function=read_file>\n<parameter=path>\nsrc/app.py\n</parameter>\n"
        "<parameter=start_line>\n3\n</parameter>\n</function>\n</tool_call>")


def test_well_formed_call() -> None:
    calls = tool_calls_in("Let me look.\n" + CALL)
    assert [c.to_json() for c in calls] == [{"name": "read_file", "arguments": {"path": "src/app.py", "start_line": "3"}}]
    assert text_without_calls("Let me look.\n" + CALL) == "Let me look.\n"


def test_multiline_values_keep_inner_newlines() -> None:
    text = ("<tool_call>\n<function=propose_edit>\n<parameter=path>\na.py\n</parameter>\n<parameter=new_text>\n"
            "def f():\n    return 1\n\n</parameter>\n</function>\n</tool_call>")
    (call,) = tool_calls_in(text)
    assert call.arguments["new_text"] == "def f():\n    return 1\n"


def test_two_calls_in_one_turn() -> None:
    calls = tool_calls_in(CALL + "\n" + CALL.replace("read_file", "grep").replace("path", "pattern"))
    assert [c.name for c in calls] == ["read_file", "grep"]


def test_tolerated_omissions() -> None:
    # no </parameter>, no </tool_call> at the end of the turn
    (call,) = tool_calls_in("<tool_call>\n<function=grep>\n<parameter=pattern>\nfoo\n</function>")
    assert call.arguments == {"pattern": "foo"}
    # the older JSON form
    (call,) = tool_calls_in('<tool_call>\n{"name": "grep", "arguments": {"pattern": "x"}}\n</tool_call>')
    assert call.arguments == {"pattern": "x"}


@pytest.mark.parametrize("text", [
    "<tool_call>",
    "<tool_call>\n<function=read_file>\n<parameter=path>\na.py",  # cut off mid-call
    "<tool_call>\nnot a call\n</tool_call>",
    "<tool_call>\n<function=>\n</function>\n</tool_call>",
    "<tool_call>\n<function=read_file>\ngarbage\n</function>\n</tool_call>",
    "<tool_call>\n<function=read_file>\n</function>\ntrailing junk\n</tool_call>",
    "<tool_call><tool_call></tool_call></tool_call>",
    "</tool_call> stray close",
    "<tool_call>\n{not json}\n</tool_call>",
    "a < b and <tool_ca",
])
def test_malformed_output_is_text(text: str) -> None:
    segments = split_tool_calls(text)
    assert all(s.kind == "text" for s in segments)
    assert "".join(s.text for s in segments) == text


def test_random_garbage_never_crashes() -> None:
    rng = random.Random(7)
    alphabet = ["<tool_call>", "</tool_call>", "<function=", "read_file>", "</function>", "<parameter=",
                "path>", "</parameter>", "\n", "x", "<", ">", "=", "{", "}"]
    for _ in range(500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        segments = split_tool_calls(text)
        assert "".join(s.text for s in segments) == text


def test_streaming_matches_whole_parse_and_hides_markup() -> None:
    text = "Before " + CALL + " after <tool_c and more"
    for size in (1, 2, 3, 7, 50):
        streamed: list[str] = []
        splitter = ToolCallSplitter(lambda seg: streamed.append(seg.text) if seg.kind == "text" else None)
        for i in range(0, len(text), size):
            splitter.feed(text[i:i + size])
        segments = splitter.finish()
        assert "".join(streamed) == "Before  after <tool_c and more"
        assert [s.call.name for s in segments if s.kind == "call"] == ["read_file"]
        assert not any("<tool_call>" in piece for piece in streamed)


def test_declaration_and_response_format() -> None:
    block = tools_block(tool_specs(Config()))
    assert block.count("<function>") == 6 and "<name>read_file</name>" in block and "run_command" not in block
    assert "<tool_call>\n<function=example_function_name>" in block
    assert tool_response_text(["a", "b"]) == "<tool_response>\na\n</tool_response>\n<tool_response>\nb\n</tool_response>"


def test_run_command_declared_only_with_allowlist() -> None:
    cfg = Config()
    assert "run_command" not in [s["function"]["name"] for s in tool_specs(cfg)]
    cfg.tools.run_commands = ["pytest"]
    assert "run_command" in [s["function"]["name"] for s in tool_specs(cfg)]


def test_parse_call_block_direct() -> None:
    assert parse_call_block("<tool_call>\n<function=x>\n</function>\n</tool_call>").to_json() == {"name": "x", "arguments": {}}
    assert parse_call_block("hello") is None
