"""The agent's tools: read-only repository tools, edit proposals the user approves, allowlisted commands.

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

import fnmatch
import os
import re
import shlex
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from engine.model.backend import CancelToken
from engine.config import Config
from engine.chat.tool_calls import ToolCall

MAX_LIST = 500
MAX_MATCHES = 200
MAX_LINE_CHARS = 300


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


# -- the tools ----------------------------------------------------------------------------------------
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
    if call.name == "run_command":  # caps the command's output itself, after the exit-code header
        return ToolResult(True, text)
    return ToolResult(True, _cap(text, env.config.tools.output_cap))


def _cap(text: str, cap: int) -> str:
    if cap > 0 and len(text) > cap:
        return text[:cap] + f"\n[... truncated: {len(text) - cap} more characters]"
    return text


def _arg(args: dict[str, Any], name: str, required: bool = True) -> str:
    value = args.get(name)
    if value is None or (isinstance(value, str) and not value.strip() and required):
        if required:
            raise ToolError(f"missing parameter {name!r}")
        return ""
    return value if isinstance(value, str) else str(value)


def _int_arg(args: dict[str, Any], name: str) -> int | None:
    value = args.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        raise ToolError(f"parameter {name!r} must be an integer, got {value!r}") from None


def _index(env: ToolEnv):
    index = env.index() if env.index is not None else None
    if index is None:
        raise ToolError("the repository index is not available")
    return index


def _check_cancel(env: ToolEnv) -> None:
    if env.cancel is not None:
        env.cancel.check()


def _search_symbols(env: ToolEnv, args: dict[str, Any]) -> str:
    query = _arg(args, "query").strip()
    index = _index(env)
    found = list(index.definitions(query)) + list(index.definitions_by_qualified(query))
    if len(found) < 50:
        needle = query.lower().rsplit(".", 1)[-1]
        for definition, _score in index.ranked_definitions(limit=20000):
            if needle in definition.name.lower() or needle in definition.qualified_name.lower():
                found.append(definition)
            if len(found) >= 200:
                break
    seen: set[tuple] = set()
    lines = []
    for d in found:
        key = (d.path, d.start_line, d.name)
        if key in seen or _secret(env, d.path):
            continue
        seen.add(key)
        signature = d.signature.strip().splitlines()[0][:MAX_LINE_CHARS] if d.signature.strip() else d.name
        lines.append(f"{d.path}:{d.start_line + 1}: {d.kind} {d.qualified_name or d.name}: {signature}")
        if len(lines) >= 50:
            break
    return "\n".join(lines) if lines else f"no symbols match {query!r}"


def _secret(env: ToolEnv, rel: str) -> bool:
    """True unless the indexed file is safe to show: its real path (symlinks resolved) must be inside a root
    and neither its name nor its target may be a secret (the index lists symlinks like any file)."""
    try:
        resolve_path(env, rel)
    except ToolError:
        return True
    return False


def _find_references(env: ToolEnv, args: dict[str, Any]) -> str:
    symbol = _arg(args, "symbol").strip()
    name = symbol.rsplit(".", 1)[-1]
    index = _index(env)
    out: list[str] = []
    defs = [d for d in index.definitions(name) if not _secret(env, d.path)]
    for d in defs[:20]:
        out.append(f"{d.path}:{d.start_line + 1}: definition: {d.signature.strip().splitlines()[0][:MAX_LINE_CHARS] if d.signature.strip() else d.name}")
    refs = 0
    for info in index.files():
        _check_cancel(env)
        if info.language is None or _secret(env, info.path):
            continue
        hits = [r for r in index.references_in_range(info.path, 0, 1 << 30) if r.name == name]
        if not hits:
            continue
        lines = (index.read_text(info.path) or "").splitlines()
        for ref in hits:
            text = lines[ref.line].strip()[:MAX_LINE_CHARS] if ref.line < len(lines) else ""
            out.append(f"{ref.path}:{ref.line + 1}: {text}")
            refs += 1
            if refs >= MAX_MATCHES:
                out.append("[... more references not shown]")
                return "\n".join(out)
    if not out:
        return f"no references to {symbol!r}"
    return "\n".join(out)


def _read_text(env: ToolEnv, path: Path) -> str:
    if env.read_buffer is not None:
        text = env.read_buffer(path)
        if text is not None:
            return text
    if path.is_dir():
        raise ToolError(f"{path.name} is a directory; use list_files")
    limit = env.config.index.max_file_size
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise ToolError(f"file is larger than index.max_file_size ({limit} bytes)")
    if b"\x00" in data:
        raise ToolError("binary file")
    return data.decode("utf-8", "replace")


def _read_file(env: ToolEnv, args: dict[str, Any]) -> str:
    path, rel, _root = resolve_path(env, args.get("path"))
    start = _int_arg(args, "start_line")
    end = _int_arg(args, "end_line")
    text = _read_text(env, path)
    lines = text.splitlines(keepends=True)
    first = max(1, start or 1)
    last = min(len(lines), end if end is not None else len(lines))
    if lines and first > len(lines):
        raise ToolError(f"{rel} has {len(lines)} lines; start_line {first} is past the end")
    body = "".join(f"{n:>5}  {lines[n - 1].rstrip(chr(10)).rstrip(chr(13))}\n" for n in range(first, last + 1))
    header = f"{rel} (lines {first}-{last} of {len(lines)})\n" if lines else f"{rel} (empty file)\n"
    return header + body


def glob_regex(pattern: str) -> re.Pattern[str]:
    """``**`` crosses directories, ``*`` and ``?`` do not."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[":
            close = pattern.find("]", i + 1)
            if close < 0:
                out.append(re.escape("["))
                i += 1
            else:
                out.append(fnmatch.translate(pattern[i: close + 1])[4:-3])
                i = close + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def _list_files(env: ToolEnv, args: dict[str, Any]) -> str:
    pattern = (_arg(args, "glob", required=False) or "**").strip()
    while pattern.startswith("./"):
        pattern = pattern[2:]
    pattern = pattern or "**"
    if pattern.startswith("/") or ".." in Path(pattern).parts:
        raise ToolError("refused: the glob must be relative to the workspace")
    rx = glob_regex(pattern)
    by_name = "/" not in pattern
    index = _index(env)
    out = []
    total = 0
    for info in index.files():
        if _secret(env, info.path):
            continue
        target = info.path.rsplit("/", 1)[-1] if by_name else info.path
        if rx.match(target) or (by_name and rx.match(info.path)):
            total += 1
            if len(out) < MAX_LIST:
                out.append(info.path)
    if not out:
        return f"no files match {pattern!r}"
    if total > len(out):
        out.append(f"[... {total - len(out)} more files]")
    return "\n".join(out)


def _grep(env: ToolEnv, args: dict[str, Any]) -> str:
    pattern = _arg(args, "pattern")
    try:
        rx = re.compile(pattern)
    except re.error:
        rx = re.compile(re.escape(pattern))
    index = _index(env)
    out = []
    deadline = time.monotonic() + 10.0
    for info in index.files():
        _check_cancel(env)
        if _secret(env, info.path):
            continue
        text = index.read_text(info.path)
        if not text:
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if rx.search(line):
                out.append(f"{info.path}:{n}: {line.strip()[:MAX_LINE_CHARS]}")
                if len(out) >= MAX_MATCHES:
                    out.append("[... more matches not shown]")
                    return "\n".join(out)
        if time.monotonic() > deadline:
            out.append("[... search stopped after 10 s]")
            break
    return "\n".join(out) if out else f"no matches for {pattern!r}"


def _propose_edit(env: ToolEnv, args: dict[str, Any]) -> str:
    path, rel, _root = resolve_path(env, args.get("path"), must_exist=False)
    old = args.get("old_text")
    new = args.get("new_text")
    old = "" if old is None else str(old)
    if new is None:
        raise ToolError("missing parameter 'new_text'")
    new = str(new)
    exists = path.exists()
    if exists and path.is_dir():
        raise ToolError(f"{rel} is a directory")
    if not exists:
        if old:
            raise ToolError(f"no such file: {rel}")
        proposal = EditProposal(path, rel, "", new, "", 0, 0, create=True)
    else:
        current = _read_text(env, path)
        if not old:
            if current:
                raise ToolError("old_text is empty but the file exists; quote the text to replace")
            at = 0
        else:
            count = current.count(old)
            if count == 0:
                raise ToolError(f"old_text does not occur in {rel}; read the file and quote it exactly")
            if count > 1:
                raise ToolError(f"old_text occurs {count} times in {rel}; include more context so it is unique")
            at = current.index(old)
        proposal = EditProposal(path, rel, old, new, current, at, at + len(old))
    record = proposal.to_json()
    if env.apply_edit is None:
        record.update(applied=False, reason="no editor is attached to review edits")
        env.edits.append(record)
        raise ToolError("the edit was not applied: no editor is attached to review it")
    applied, reason = env.apply_edit(proposal)
    record.update(applied=applied, reason=reason)
    env.edits.append(record)
    if not applied:
        raise ToolError(f"the user refused the edit to {rel}" + (f": {reason}" if reason else ""))
    return f"the edit to {rel} was applied"


def _run_command(env: ToolEnv, args: dict[str, Any]) -> str:
    cfg = env.config.tools
    line = _arg(args, "command")
    try:
        argv = shlex.split(line)
    except ValueError as exc:
        raise ToolError(f"cannot parse the command: {exc}") from None
    if not argv:
        raise ToolError("empty command")
    if argv[0] not in cfg.run_commands:
        raise ToolError(f"refused: {argv[0]!r} is not on the allowlist (tools.run_commands: "
                        f"{', '.join(cfg.run_commands) or 'empty'})")
    if not env.roots:
        raise ToolError("no workspace root")
    cwd = os.path.realpath(env.roots[0])
    start = time.monotonic()
    try:
        proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
    except OSError as exc:
        raise ToolError(f"cannot run {argv[0]!r}: {exc}") from None
    import threading

    chunks: list[bytes] = []
    size = [0]
    cap = max(1, cfg.output_cap) * 4

    def pump() -> None:
        assert proc.stdout is not None
        for chunk in iter(lambda: proc.stdout.read1(65536), b""):
            if size[0] < cap:
                chunks.append(chunk)
            size[0] += len(chunk)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    status = ""
    while proc.poll() is None:
        if time.monotonic() - start > cfg.command_timeout_s:
            status = f"killed after the {cfg.command_timeout_s:g} s timeout"
            break
        if env.cancel is not None and env.cancel.cancelled:
            status = "killed: the chat was cancelled"
            break
        time.sleep(0.02)
    if status:
        _kill(proc)
    reader.join(timeout=2)
    output = b"".join(chunks).decode("utf-8", "replace")
    code = proc.returncode
    head = f"$ {shlex.join(argv)}\nexit code: {code}" + (f" ({status})" if status else "") + "\n"
    return head + _cap(output, cfg.output_cap)


def _kill(proc: subprocess.Popen) -> None:
    import signal

    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (OSError, ProcessLookupError):
        proc.kill()
    proc.wait(timeout=5)


_TOOLS: dict[str, Callable[[ToolEnv, dict[str, Any]], str]] = {
    "search_symbols": _search_symbols,
    "find_references": _find_references,
    "read_file": _read_file,
    "list_files": _list_files,
    "grep": _grep,
    "propose_edit": _propose_edit,
    "run_command": _run_command,
}
