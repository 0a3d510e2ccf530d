"""An exclusive advisory lock on a file, between processes (POSIX flock; a no-op where fcntl is missing).

Why: two editors (or an editor and ``coderflash index``) on one repository share one SQLite index file.
Opening it (the schema check, which may wipe a foreign or corrupt file) and building it must each be done by
one process at a time, or one process can take the other's half-created schema for a foreign file and wipe
it, and both then build cold.
"""

from __future__ import annotations

import os


class FileLock:
    """``with FileLock(path):`` holds an exclusive lock on ``path`` (created if missing)."""

    def __init__(self, path: os.PathLike[str] | str) -> None:
        self.path = path
        self._fd: int | None = None

    def __enter__(self) -> "FileLock":
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return self
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            import fcntl

            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
