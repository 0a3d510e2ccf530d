"""Helpers shared by the indexer tests (importable as a plain module)."""

from __future__ import annotations

import os
import pwd
import sysconfig
import time
from pathlib import Path
from typing import Callable

import pytest


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




def unprivileged_ids() -> tuple[int, int]:
    """(uid, gid) a permission test's child process drops to: ``nobody``'s when running as root (root reads
    any file, so a permission-denied path would not be), else (-1, -1): the child keeps the current user.
    Skips the test when root has no ``nobody`` user to become."""
    if os.getuid() != 0:
        return -1, -1
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("running as root and no 'nobody' user to drop privileges to")
    return nobody.pw_uid, nobody.pw_gid
