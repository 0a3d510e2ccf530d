"""Reading a file that must be a regular file, without ever blocking on one that is not.

Why: ``open()`` on a named pipe (FIFO) waits for a writer, forever if none comes, and a character device
(``/dev/zero``) never ends. The indexer skips such files when it walks the tree, but a file the editor,
the chat agent or a query names directly is opened by path: a FIFO there hung the server's event loop or a
chat thread. ``read_regular_file`` checks the kind with ``os.stat`` first, then opens with ``O_NONBLOCK``
(an open of a FIFO returns at once, so a file swapped for a FIFO between the check and the open cannot
block either) and checks the opened descriptor again before reading.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))

# O_NONBLOCK: opening a FIFO does not wait for a writer (POSIX); Windows has neither the flag nor FIFOs.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)


class NotRegularFileError(OSError):
    """The path is a directory, FIFO, socket or device: refused, never opened for reading. ``kind`` says
    which, in words ("a named pipe (FIFO)"), for a message that names the path its own way."""

    kind: str = "not a regular file"


class FileTooLargeError(OSError):
    """The file is larger than the limit the caller gave (usually ``index.max_file_size``)."""


def file_kind(mode: int) -> str:
    """What a non-regular file is, in words for an error message."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _check(path: str | Path, mode: int, size: int, max_bytes: int | None) -> None:
    if not stat.S_ISREG(mode):
        error = NotRegularFileError(f"{path} is {file_kind(mode)}, not a regular file")
        error.kind = file_kind(mode)
        raise error
    if max_bytes is not None and size > max_bytes:
        raise FileTooLargeError(f"{path} is larger than index.max_file_size ({max_bytes} bytes)")


def read_regular_file(path: str | Path, max_bytes: int, truncate: bool = False) -> bytes:
    """The bytes of ``path`` (symlinks followed), at most ``max_bytes`` of them.

    Raises ``NotRegularFileError`` for anything but a regular file, ``FileTooLargeError`` above ``max_bytes``
    (also when the file grew after the check; with ``truncate``, the first ``max_bytes`` bytes instead, for a
    reader that shows only the start anyway), and the usual ``OSError``s (missing, no permission)."""
    limit = None if truncate else max_bytes
    before = os.stat(path)
    _check(path, before.st_mode, before.st_size, limit)
    fd = os.open(path, _OPEN_FLAGS)
    try:
        opened = os.fstat(fd)  # the file actually opened: it may have been replaced since the stat
        _check(path, opened.st_mode, opened.st_size, limit)
        chunks: list[bytes] = []
        left = max_bytes + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if truncate:
        return data[:max_bytes]
    if len(data) > max_bytes:
        raise FileTooLargeError(f"{path} is larger than index.max_file_size ({max_bytes} bytes)")
    return data
