"""The agent's tools with effects: edit proposals, which the user reviews, and allowlisted commands.

``propose_edit`` changes nothing itself: the front end asks the user (LSP ``workspace/applyEdit``) and the
model is told whether the edit was applied or refused. ``run_command`` runs no shell: argv from ``shlex``,
the first word on the ``tools.run_commands`` allowlist, a timeout and an output cap.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import threading
import time
from typing import Any

from engine.chat.tools import EditProposal, ToolEnv, ToolError, cap_output, read_text, resolve_path, str_arg
from engine.text_position import LSP_BREAK, line_ending, with_line_ending

_ANY_BREAK = r"(?:\r\n|\r|\n)"  # LSP's line ends, longest first: a quoted \n takes a whole \r\n


def propose_edit(env: ToolEnv, args: dict[str, Any]) -> str:
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
        current = read_text(env, path)
        if not old:
            if current:
                raise ToolError("old_text is empty but the file exists; quote the text to replace")
            at = end = 0
        else:
            found = occurrences(current, old)
            if not found:
                raise ToolError(f"old_text does not occur in {rel}; read the file and quote it exactly")
            if len(found) > 1:
                raise ToolError(f"old_text occurs {len(found)} times in {rel}; include more context so it is unique")
            at, end = found[0]
            old = current[at:end]  # as the file has it: its own line ends
        # the model writes \n lines (``read_file`` shows a CRLF file's lines without their \r): the file's
        # line end goes back on, so a CRLF or lone-CR file does not end up with mixed line ends
        new = with_line_ending(new, line_ending(current)) if current else new
        proposal = EditProposal(path, rel, old, new, current, at, end)
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


def occurrences(text: str, quoted: str) -> list[tuple[int, int]]:
    """(start, end) in ``text`` of each non-overlapping occurrence of ``quoted``, any LSP line end in one
    matching any in the other: the model quotes a CRLF file's lines with \\n (as it reads them), and
    ``str.count`` found none of them there."""
    parts = LSP_BREAK.split(quoted)[::2]
    if len(parts) == 1:  # no line end to match loosely: the plain search, in C
        step = max(1, len(quoted))
        found, at = [], text.find(quoted)
        while at >= 0:
            found.append((at, at + len(quoted)))
            at = text.find(quoted, at + step)
        return found
    pattern = re.compile(_ANY_BREAK.join(map(re.escape, parts)))
    return [(m.start(), m.end()) for m in pattern.finditer(text)]


def run_command(env: ToolEnv, args: dict[str, Any]) -> str:
    cfg = env.config.tools
    line = str_arg(args, "command")
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
    return head + cap_output(output, cfg.output_cap)


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (OSError, ProcessLookupError):
        proc.kill()
    proc.wait(timeout=5)
