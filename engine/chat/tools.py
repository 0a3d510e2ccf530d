"""The agent's tools: what is declared to the model, what they may touch, and the path safety rules.

The tools themselves: read-only look-ups in engine/chat/repo_tools.py, edit proposals and commands in
engine/chat/action_tools.py; engine/chat/tool_runner.py runs a call.

Safety rules (every tool, before anything is read or run):
- a path is resolved, symlinks included, and must lie inside a workspace root; ``../`` traversal, absolute
  paths elsewhere and symlinks pointing outside are refused;
- secret files (``indexer.is_secret_path``, plus ``index.secret_globs``) are refused by the requested name
  and by the resolved name (a harmless-looking symlink to ``.env`` is still a secret);
- ``propose_edit`` changes nothing itself: the front end asks the user (LSP ``workspace/applyEdit``) and the
  model is told whether the edit was applied or refused;
- ``run_command`` exists only when ``tools.run_commands`` names commands: no shell, argv from ``shlex``,
  the first word must be on the allowlist, a timeout and an output cap apply.

A refused or failed call is a ``ToolError``: its message goes back to the model as the tool's result.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from engine.model.backend import CancelToken
from engine.config import Config
from indexer.regular_files import FileTooLargeError, NotRegularFileError, read_regular_file

class ToolError(Exception):
    """A refused or failed tool call; the message is what the model sees."""


@dataclass
class EditProposal:
    path: Path  # resolved absolute path
    rel: str
    old_text: str
    new_text: str
    current: str  # the file's text the edit applies to (editor buffer when open)
    start: int  # character offsets of old_text in ``current``
    end: int
    create: bool = False  # a new file (old_text empty, file missing)

    def to_json(self) -> dict[str, Any]:
        return {"path": self.rel, "uri": self.path.as_uri(), "oldText": self.old_text, "newText": self.new_text,
                "create": self.create}


@dataclass
class ToolResult:
    ok: bool
    text: str


@dataclass
class ToolEnv:
    """What the tools may touch, and how edits reach the user."""

    roots: list[Path]  # first: the workspace of this chat (relative paths resolve against it)
    config: Config
    index: Callable[[], Any] | None = None  # lazily opened indexer.Index (or None)
    read_buffer: Callable[[Path], str | None] | None = None  # unsaved editor text for a path
    apply_edit: Callable[[EditProposal], tuple[bool, str]] | None = None  # (applied, reason)
    cancel: CancelToken | None = None
    edits: list[dict[str, Any]] = field(default_factory=list)


def _spec(name: str, description: str, props: dict[str, tuple[str, str]], required: Sequence[str]) -> dict:
    return {"type": "function", "function": {
        "name": name, "description": description,
        "parameters": {"type": "object",
                       "properties": {k: {"type": t, "description": d} for k, (t, d) in props.items()},
                       "required": list(required)}}}


TOOL_SPECS: dict[str, dict] = {
    "search_symbols": _spec("search_symbols", "Find definitions (functions, classes, methods, ...) whose name "
                            "matches the query.", {"query": ("string", "a symbol name or part of one")}, ["query"]),
    "find_references": _spec("find_references", "Find where a symbol is used in the repository.",
                             {"symbol": ("string", "the symbol name")}, ["symbol"]),
    "read_file": _spec("read_file", "Read a file of the repository, optionally a range of lines (1-based, "
                       "inclusive).", {"path": ("string", "path relative to the repository root"),
                                       "start_line": ("integer", "first line to read"),
                                       "end_line": ("integer", "last line to read")}, ["path"]),
    "list_files": _spec("list_files", "List repository files matching a glob (e.g. **/*.py, src/*).",
                        {"glob": ("string", "glob pattern; ** matches across directories")}, ["glob"]),
    "grep": _spec("grep", "Search the repository's files for a regular expression; returns path:line: text.",
                  {"pattern": ("string", "a Python regular expression")}, ["pattern"]),
    "propose_edit": _spec("propose_edit", "Propose replacing old_text (which must occur exactly once) with "
                          "new_text in a file. The user reviews it; the result says whether it was applied. An "
                          "empty old_text creates a new file.",
                          {"path": ("string", "path relative to the repository root"),
                           "old_text": ("string", "exact text to replace"),
                           "new_text": ("string", "replacement text")}, ["path", "old_text", "new_text"]),
    "run_command": _spec("run_command", "Run an allowlisted command (no shell) in the repository root; "
                         "returns its exit code and output.",
                         {"command": ("string", "the command line, e.g. pytest -q tests/test_x.py")}, ["command"]),
}


def tool_specs(config: Config) -> list[dict]:
    """Tools declared to the model (OpenAI function-schema shape); run_command only with an allowlist."""
    return [spec for name, spec in TOOL_SPECS.items() if name != "run_command" or config.tools.run_commands]


# -- paths --------------------------------------------------------------------------------------------
def secret_globs(config: Config) -> list[str]:
    from indexer import DEFAULT_SECRET_GLOBS

    return list(DEFAULT_SECRET_GLOBS) + list(config.index.secret_globs)


def resolve_path(env: ToolEnv, raw: Any, must_exist: bool = True) -> tuple[Path, str, Path]:
    """(resolved path, path relative to its root, root); ToolError when outside every root or secret."""
    from indexer import is_secret_path

    if not isinstance(raw, str) or not raw.strip():
        raise ToolError("a path is required")
    text = raw.strip()
    if text.startswith("file://"):
        from urllib.parse import unquote, urlparse

        text = unquote(urlparse(text).path)
    if "\x00" in text:
        raise ToolError("invalid path")
    roots = [Path(os.path.realpath(r)) for r in env.roots]
    if not roots:
        raise ToolError("no workspace root: file tools are unavailable")
    candidate = Path(os.path.expanduser(text)) if text.startswith("~") else Path(text)
    if not candidate.is_absolute():
        candidate = roots[0] / candidate
    globs = secret_globs(env.config)
    lexical = Path(os.path.normpath(candidate))
    resolved = Path(os.path.realpath(candidate))
    root = next((r for r in roots if resolved == r or r in resolved.parents), None)
    if root is None:
        raise ToolError(f"refused: {raw!r} is outside the workspace")
    rel = resolved.relative_to(root).as_posix() if resolved != root else "."
    lexical_root = next((r for r in roots if lexical == r or r in lexical.parents), None)
    lexical_rel = lexical.relative_to(lexical_root).as_posix() if lexical_root and lexical != lexical_root else None
    if is_secret_path(rel, globs) or (lexical_rel and is_secret_path(lexical_rel, globs)) \
            or is_secret_path(text, globs):
        raise ToolError(f"refused: {raw!r} is a secret file")
    if must_exist and not resolved.exists():
        raise ToolError(f"no such file: {raw}")
    return resolved, rel, root


# -- shared by the tools -------------------------------------------------------------------------------
def cap_output(text: str, cap: int) -> str:
    """At most ``cap`` characters (``tools.output_cap``), saying how much was cut."""
    if cap > 0 and len(text) > cap:
        return text[:cap] + f"\n[... truncated: {len(text) - cap} more characters]"
    return text


def str_arg(args: dict[str, Any], name: str, required: bool = True) -> str:
    """A call's argument as text; the model may send numbers where a string is declared."""
    value = args.get(name)
    if value is None or (isinstance(value, str) and not value.strip() and required):
        if required:
            raise ToolError(f"missing parameter {name!r}")
        return ""
    return value if isinstance(value, str) else str(value)


def read_text(env: ToolEnv, path: Path) -> str:
    """A file as the user sees it: the editor's unsaved buffer when open, else the disk (bounded, no binary)."""
    if env.read_buffer is not None:
        text = env.read_buffer(path)
        if text is not None:
            return text
    if path.is_dir():
        raise ToolError(f"{path.name} is a directory; use list_files")
    limit = env.config.index.max_file_size
    try:  # a FIFO or device is refused, never opened: opening a FIFO blocked the chat's thread for good
        data = read_regular_file(path, limit)
    except NotRegularFileError as exc:
        raise ToolError(f"refused: {path.name} is {exc.kind}, not a regular file") from None
    except FileTooLargeError:
        raise ToolError(f"file is larger than index.max_file_size ({limit} bytes)") from None
    if b"\x00" in data:
        raise ToolError("binary file")
    return data.decode("utf-8", "replace")
