"""Running one tool call: the name → function table and the one place errors become results.

Why apart from the tools: a failed or refused call must never end the chat; the model reads the error
as the tool's result and may try again.
"""

from __future__ import annotations

from typing import Any, Callable

from engine.context.redact import redact
from engine.chat.action_tools import propose_edit, run_command
from engine.chat.repo_tools import find_references, grep, list_files, read_file, search_symbols
from engine.chat.tool_calls import ToolCall
from engine.chat.tools import ToolEnv, ToolError, ToolResult, cap_output, tool_specs


def run_tool(env: ToolEnv, call: ToolCall) -> ToolResult:
    """Execute one call; never raises (errors become an unsuccessful result the model reads)."""
    fn = _TOOLS.get(call.name)
    if fn is None or (call.name == "run_command" and not env.config.tools.run_commands):
        known = ", ".join(spec["function"]["name"] for spec in tool_specs(env.config))
        return ToolResult(False, f"error: unknown tool {call.name!r}; available: {known}")
    try:
        text = fn(env, call.arguments)
    except ToolError as exc:
        return ToolResult(False, f"error: {exc}")
    except Exception as exc:  # noqa: BLE001 - a tool bug must not end the chat
        return ToolResult(False, f"error: {call.name} failed: {type(exc).__name__}: {exc}")
    text = redact(text)  # what the tools did not redact at the source (signatures, command output)
    if call.name == "run_command":  # caps the command's output itself, after the exit-code header
        return ToolResult(True, text)
    return ToolResult(True, cap_output(text, env.config.tools.output_cap))


_TOOLS: dict[str, Callable[[ToolEnv, dict[str, Any]], str]] = {
    "search_symbols": search_symbols,
    "find_references": find_references,
    "read_file": read_file,
    "list_files": list_files,
    "grep": grep,
    "propose_edit": propose_edit,
    "run_command": run_command,
}
