"""Helpers shared by the indexer tests (importable as a plain module)."""

from __future__ import annotations

import sysconfig
import time
from pathlib import Path
from typing import Callable


SAMPLES = Path(__file__).resolve().parent / "samples"
STDLIB = Path(sysconfig.get_paths()["stdlib"])


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)
    return root


def wait_for(pred: Callable[[], bool], timeout: float = 1.0, interval: float = 0.01) -> bool:
    """Poll until pred() is true; returns False on timeout (never sleeps blindly)."""
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


