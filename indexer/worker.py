"""Read + check + parse files; runs in worker processes during the cold index.

Kept separate from the API so a forked/spawned worker imports only what it
needs (tree-sitter and the grammars), and so the same function serves the
in-process path for incremental updates.
"""

from __future__ import annotations

import gc
import hashlib
import os
import sys
import threading
import time
from typing import Any, Callable

from .languages import is_parseable, language_for_path
from .parsed import ParsedFile, to_wire
from .parser import lf_rows, parse_source
from .regular_files import NotRegularFileError, read_regular_file

# Result tuples:
#   ("parsed", rel, size, mtime_ns, hash, language, ParsedFile)
#   ("same", rel, size, mtime_ns)                       content hash unchanged
#   ("skip", rel, reason)
Result = tuple[Any, ...]


def content_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def content_skip_reason(data: bytes, max_line_length: int) -> str | None:
    """Reasons found by looking at the bytes: binary, not UTF-8, minified."""
    if b"\x00" in data:
        return "binary"
    if not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return "invalid_utf8"
    if len(data) > 20_000:
        nl = lf_rows(data).count(b"\n") + 1  # rows as the parser counts them: a lone ``\r`` ends a line too
        if len(data) / nl > max_line_length or (nl < 5 and len(data) > 50_000):
            return "minified"
    return None


def process_file(root: str, rel: str, mtime_ns: int, known_hash: str | None,
                 max_line_length: int,
                 parse: Callable[[str, bytes], tuple[str | None, ParsedFile]] | None = None) -> Result:
    """Read, check and parse one file (``parse``: the parser to use, ``parse_bytes`` when None).

    Unchanged content (hash ``known_hash``) is reported as "same" without parsing; the size reported
    is that of the bytes read, which is what was indexed even if the file changed since it was listed."""
    path = os.path.join(root, rel)
    try:  # never a plain open(): a file swapped for a FIFO since discovery blocked it forever
        data = read_regular_file(path, sys.maxsize)
    except NotRegularFileError:
        return ("skip", rel, "not_regular_file")
    except PermissionError:
        return ("skip", rel, "permission_denied")
    except FileNotFoundError:
        return ("skip", rel, "missing")
    except OSError as e:
        return ("skip", rel, "symlink_loop" if e.errno == 40 else "unreadable")
    reason = content_skip_reason(data, max_line_length)
    if reason:
        return ("skip", rel, reason)
    h = content_hash(data)
    if known_hash is not None and h == known_hash:
        return ("same", rel, len(data), mtime_ns)
    return ("parsed", rel, len(data), mtime_ns, h, *(parse or parse_bytes)(rel, data))


def parse_bytes(rel: str, data: bytes) -> tuple[str | None, ParsedFile]:
    lang = language_for_path(rel)
    data = lf_rows(data)  # lines at every line end, as the editor counts them
    try:
        parsed = parse_source(lang, data) if is_parseable(lang) else ParsedFile(
            data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1))
    except Exception:  # a grammar/query problem must not lose the file entry
        parsed = ParsedFile(data.count(b"\n") + 1)
    return lang, parsed


def process_chunk(args: tuple[str, int, list[tuple[str, int, int, str | None]]]) -> list[Result]:
    """Worker entry point: parsed files travel back as marshal bytes (see parsed.to_wire)."""
    root, max_line_length, items = args
    out: list[Result] = []
    # Parsing allocates millions of short-lived objects and no reference cycles: the cyclic
    # collector only burns ~10% of the worker's CPU here, so it is paused for the chunk.
    gc.disable()
    try:
        for rel, _size, mtime, h in items:
            r = process_file(root, rel, mtime, h, max_line_length)
            if r[0] == "parsed":
                r = r[:6] + (to_wire(r[6]),)
            out.append(r)
    finally:
        gc.enable()
    return out


# -- the parser pool ---------------------------------------------------------------------------------
_PARENT_POLL_S = 0.2


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def exit_when_orphaned(watched_pid: int | None, on_exit: Callable[[], None] | None = None,
                       poll_s: float = _PARENT_POLL_S) -> None:
    """End this process (``os._exit``) as soon as ``watched_pid`` is gone or this process is re-parented.

    Why polling: a process whose parent was SIGKILLed gets no signal and may wait forever on a pipe the
    dead parent can no longer close (pool workers, and the server itself when its editor died while
    another process still holds the pipe). A daemon thread checks both every ``poll_s`` seconds."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if (watched_pid and not process_alive(watched_pid)) or (parent != 1 and os.getppid() != parent):
                if on_exit is not None:
                    on_exit()
                os._exit(0)

    threading.Thread(target=watch, name="coderflash-parent-watch", daemon=True).start()
