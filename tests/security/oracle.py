"""detect-secrets (Yelp) as the test oracle: every plugin it ships (cloud and service tokens, private keys,
basic auth, JWT, high-entropy strings) and its keyword detector with the rules of each file type."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from detect_secrets.core.scan import scan_file
from detect_secrets.settings import default_settings

_SPECIAL = re.compile(r"<\|(?:fim_prefix|fim_suffix|fim_middle|repo_name|file_sep|endoftext)\|>")


def flagged(name: str, text: str) -> list[tuple[int, str, str]]:
    """(1-based line, secret type, the line) of what detect-secrets finds in ``text`` scanned as a file named
    ``name`` (its file type picks the keyword rules), as ``detect-secrets scan`` reads a repository's files.
    (Its ad-hoc ``scan_line`` is not used: it takes a whole line for one candidate string and calls
    ``import os`` high-entropy.)"""
    lines = text.splitlines()
    found: set[tuple[int, str]] = set()
    with tempfile.TemporaryDirectory() as tmp, default_settings():
        path = Path(tmp) / name.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        for secret in scan_file(str(path)):
            found.add((secret.line_number, secret.type))
    return sorted((n, kind, lines[n - 1] if 0 < n <= len(lines) else "") for n, kind in found)


def prompt_blocks(prompt: str) -> list[tuple[str, str]]:
    """(path, text) of each file block of a prompt in the ``<|file_sep|>path`` layout, special tokens removed;
    text before the first block is returned under the name ``prompt.txt``."""
    parts = prompt.split("<|file_sep|>")
    out = [("prompt.txt", _SPECIAL.sub("\n", parts[0]))] if parts[0].strip() else []
    for part in parts[1:]:
        path, _, body = part.partition("\n")
        out.append((path.strip() or "block.txt", _SPECIAL.sub("\n", body)))
    return out


def flagged_in_prompt(prompt: str) -> list[tuple[str, int, str, str]]:
    """(path, line, type, line text) of every flagged line of every block of ``prompt``."""
    return [(path, n, kind, line) for path, body in prompt_blocks(prompt) for n, kind, line in flagged(path, body)]


def chat_blocks(text: str) -> list[tuple[str, str]]:
    """(path, code) of each ``File: path`` + fenced block of a chat context."""
    return [(m.group(1), m.group(2)) for m in re.finditer(r"^File: (\S+)\n```[^\n]*\n(.*?)^```", text, re.M | re.S)]
