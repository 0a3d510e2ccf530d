"""Where a ``coderflash`` command writes (a model file, the models or cache directory, a benchmark's JSON):
checked before the work starts, and a failure to write there reported as one line naming the path and why.

Why: the commands wrote first and asked later, so an unwritable destination (``/proc/x.gguf``, a path under
a regular file, a read-only directory) ended in the CLI's last-resort ``unexpected FileNotFoundError``, an
internal-error message about a ``.part`` file the user never named, sometimes after minutes of work. The
check runs before the work; errors during it still name the destination, not the temporary file.
"""

from __future__ import annotations

import errno
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


WRITE_ERRNOS = {None, errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO}


class DestinationError(Exception):
    """A destination the command cannot write, said in one line."""


def _nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists (``/`` always does)."""
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            return candidate
    return Path(path.anchor or "/")


def _reason(path: Path, exc: OSError) -> str:
    """Why ``path`` cannot be written, in words: the ancestor in the way, else the error's meaning. A lone
    ``No such file or directory`` for a directory that exists (``/proc``) reads as a bug, so it says who refused."""
    existing = _nearest_existing(path.parent)
    if not os.path.isdir(existing):
        return f"{existing} is not a directory"
    if exc.errno is None:  # a short write reported by a library (numpy's ``tofile``): no errno to name
        return f"the write failed ({exc})"
    if exc.errno == errno.EISDIR:
        return "it is a directory"
    if exc.errno == errno.ENOENT:
        return f"{existing} does not accept new files"
    return (exc.strerror or str(exc)).lower()  # "permission denied", "read-only file system", "no space left…"


def _fail(what: str, path: Path, reason: str) -> DestinationError:
    return DestinationError(f"cannot write {what} {path}: {reason}")


def check_destination(path: Path | str, what: str, *, directory: bool) -> Path:
    """Refuse, before any work, a destination that cannot be written: the directory ``path`` (``directory``)
    or the file ``path``. Nothing is created: a probe file is made and removed in the nearest existing
    directory (the command creates the missing ones itself). Returns ``path`` made absolute."""
    path = Path(os.path.abspath(os.path.expanduser(path)))
    if os.path.isdir(path) != directory and os.path.exists(path):
        raise _fail(what, path, "it is not a directory" if directory else "it is a directory")
    existing = _nearest_existing(path if directory else path.parent)
    if not os.path.isdir(existing):
        raise _fail(what, path, f"{existing} is not a directory")
    try:
        handle, probe = tempfile.mkstemp(dir=existing, prefix=".coderflash-write-check-")
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise _fail(what, path, _reason(existing / "probe", exc)) from None
    return path


@contextmanager
def writing(path: Path | str, what: str, *, directory: bool) -> Iterator[Path]:
    """``check_destination``, then the block that writes there: an ``OSError`` it raises about the destination
    (its own path, anything under or beside it with its name as prefix: ``x.gguf.part``) or about no path but
    one that only a write raises (disk full, file too large, read-only file system, I/O error, or a library's
    short write with no errno) becomes one ``DestinationError``; others pass unchanged. Why the errno check:
    an error about no path can come from anything the block does (a broken pipe to a worker process), and
    "cannot write the index cache: broken pipe" sent users after the wrong cause."""
    path = check_destination(path, what, directory=directory)
    try:
        yield path
    except OSError as exc:
        names = [str(name) for name in (exc.filename, exc.filename2) if name is not None]
        if names and not any(os.path.abspath(name).startswith(str(path)) for name in names):
            raise
        if not names and exc.errno not in WRITE_ERRNOS:
            raise
        raise _fail(what, path, _reason(Path(os.path.abspath(names[0])) if names else path, exc)) from None
