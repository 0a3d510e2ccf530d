"""Paths as the index and the prompts name them: relative to the workspace root, POSIX."""

from __future__ import annotations

import functools
import os
from pathlib import Path


@functools.lru_cache(maxsize=4096)
def relative_to_root(path: str, root: Path | None) -> str:
    """``Engine.relative_path`` (see there), memoised: every keystroke asks, and resolving symlinks costs a
    system call per path component."""
    resolved = Path(path).resolve()
    if root is not None:
        try:
            return resolved.relative_to(root).as_posix()
        except ValueError:
            return Path(os.path.relpath(resolved, root)).as_posix()
    return resolved.name
