"""The agent's read-only tools: symbol search, references, reading, listing and grepping files.

Every path they show passes the same safety check as a path the model asks for (``tools.resolve_path``):
the index lists a symlink to a secret or to a file outside the workspace under its own harmless name, and
such a file is left out of every answer.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.context.redact import kind_for, redact_cached
from engine.chat.safe_match import GlobMatcher, RegexTimeout, RegexWorker, compile_glob
from engine.chat.tools import ToolEnv, ToolError, read_text, resolve_path, str_arg
from engine.text_position import ends_with_break, line_texts

if TYPE_CHECKING:  # pragma: no cover
    from indexer import Index

MAX_LIST = 500
MAX_MATCHES = 200
MAX_LINE_CHARS = 300
GREP_SECONDS = 10.0  # the whole search, spent in the child process
BATCH_LINES = 20000  # lines per message to the child: few round trips, early stop near MAX_MATCHES
BATCH_SECONDS = 2.0  # a normal regex searches a batch in milliseconds; far longer means it backtracks


def _int_arg(args: dict[str, Any], name: str) -> int | None:
    value = args.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        raise ToolError(f"parameter {name!r} must be an integer, got {value!r}") from None


def _require_index(env: ToolEnv) -> Index:
    index = env.index() if env.index is not None else None
    if index is None:
        raise ToolError("the repository index is not available")
    return index


def _check_cancel(env: ToolEnv) -> None:
    if env.cancel is not None:
        env.cancel.check()


def _hidden(env: ToolEnv, rel: str) -> bool:
    """True unless the indexed file is safe to show: its real path (symlinks resolved) must be inside a root
    and neither its name nor its target may be a secret (the index lists symlinks like any file)."""
    try:
        resolve_path(env, rel)
    except ToolError:
        return True
    return False


def search_symbols(env: ToolEnv, args: dict[str, Any]) -> str:
    query = str_arg(args, "query").strip()
    index = _require_index(env)
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
        if key in seen or _hidden(env, d.path):
            continue
        seen.add(key)
        signature = d.signature.strip().splitlines()[0][:MAX_LINE_CHARS] if d.signature.strip() else d.name
        lines.append(f"{d.path}:{d.start_line + 1}: {d.kind} {d.qualified_name or d.name}: {signature}")
        if len(lines) >= 50:
            break
    return "\n".join(lines) if lines else f"no symbols match {query!r}"


def find_references(env: ToolEnv, args: dict[str, Any]) -> str:
    symbol = str_arg(args, "symbol").strip()
    name = symbol.rsplit(".", 1)[-1]
    index = _require_index(env)
    out: list[str] = []
    defs = [d for d in index.definitions(name) if not _hidden(env, d.path)]
    for d in defs[:20]:
        out.append(f"{d.path}:{d.start_line + 1}: definition: {d.signature.strip().splitlines()[0][:MAX_LINE_CHARS] if d.signature.strip() else d.name}")
    refs = 0
    for info in index.files():
        _check_cancel(env)
        if info.language is None or _hidden(env, info.path):
            continue
        hits = [r for r in index.references_in_range(info.path, 0, 1 << 30) if r.name == name]
        if not hits:
            continue
        lines = editor_lines(redact_cached(index.read_text(info.path) or "", kind_for(info.path)))
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


def editor_lines(text: str) -> list[str]:
    """The lines of ``text`` without their line ends, numbered as the editor and the index number them (a
    line ends at \\r\\n, \\r or \\n only), and like ``str.splitlines`` none after a final line end. The tools
    used ``splitlines``, which also breaks at a form feed (stdlib modules have them): a reference's line
    (an index row) showed another line's text, and read_file's and grep's line numbers were not the editor's."""
    lines = line_texts(text)
    return lines[:-1] if ends_with_break(text) else lines


def read_file(env: ToolEnv, args: dict[str, Any]) -> str:
    path, rel, _root = resolve_path(env, args.get("path"))
    start = _int_arg(args, "start_line")
    end = _int_arg(args, "end_line")
    text = redact_cached(read_text(env, path), kind_for(rel))
    lines = editor_lines(text)
    first = max(1, start or 1)
    last = min(len(lines), end if end is not None else len(lines))
    if lines and first > len(lines):
        raise ToolError(f"{rel} has {len(lines)} lines; start_line {first} is past the end")
    body = "".join(f"{n:>5}  {lines[n - 1]}\n" for n in range(first, last + 1))
    header = f"{rel} (lines {first}-{last} of {len(lines)})\n" if lines else f"{rel} (empty file)\n"
    return header + body


def glob_regex(pattern: str) -> GlobMatcher:
    """``**`` crosses directories, ``*`` and ``?`` do not. Matched without backtracking (see safe_match):
    a regex translation of ``*a*a*...`` took seconds per path while holding the GIL."""
    return compile_glob(pattern)


def list_files(env: ToolEnv, args: dict[str, Any]) -> str:
    pattern = (str_arg(args, "glob", required=False) or "**").strip()
    while pattern.startswith("./"):
        pattern = pattern[2:]
    pattern = pattern or "**"
    if pattern.startswith("/") or ".." in Path(pattern).parts:
        raise ToolError("refused: the glob must be relative to the workspace")
    rx = glob_regex(pattern)
    by_name = "/" not in pattern
    index = _require_index(env)
    out = []
    total = 0
    for info in index.files():
        if _hidden(env, info.path):
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


def grep(env: ToolEnv, args: dict[str, Any]) -> str:
    """The model's regex runs in a child process (safe_match.RegexWorker), never in the server: a
    backtracking search holds the GIL, so in-process it froze every request, cancel included."""
    pattern = str_arg(args, "pattern")
    index = _require_index(env)
    out: list[str] = []
    deadline = time.monotonic() + GREP_SECONDS
    batch: list[tuple[str, list[str]]] = []
    with RegexWorker(pattern) as worker:
        files = iter(index.files())
        while True:
            info = next(files, None)
            if info is not None:
                _check_cancel(env)
                if _hidden(env, info.path):
                    continue
                text = index.read_text(info.path)
                if not text:
                    continue
                text = redact_cached(text, kind_for(info.path))  # a search never finds (or shows) a secret
                batch.append((info.path, editor_lines(text)))
                if sum(len(lines) for _p, lines in batch) < BATCH_LINES and len(batch) < 64:
                    continue
            if not batch:
                break
            try:
                budget = min(BATCH_SECONDS, deadline - time.monotonic())
                hits = worker.search([lines for _p, lines in batch], max(0.0, budget), lambda: _check_cancel(env))
            except RegexTimeout:
                note = (f"search stopped after {GREP_SECONDS:g} s" if budget < BATCH_SECONDS else
                        "search stopped: the pattern is too slow (nested or overlapping repeats such as (a*)* "
                        "or \\w*\\w* backtrack); simplify it")
                if not out:
                    raise ToolError(note) from None
                out.append(f"[... {note}]")
                break
            for f, n in hits:
                path, lines = batch[f]
                out.append(f"{path}:{n + 1}: {lines[n].strip()[:MAX_LINE_CHARS]}")
                if len(out) >= MAX_MATCHES:
                    out.append("[... more matches not shown]")
                    return "\n".join(out)
            batch = []
            if info is None:
                break
    return "\n".join(out) if out else f"no matches for {pattern!r}"
