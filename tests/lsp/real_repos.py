"""Real repositories for end-to-end tests: copies of code nobody here wrote (the Python standard library
installed with this interpreter), and a look at a process tree through /proc."""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path

STDLIB = Path(sysconfig.get_paths()["stdlib"])
COMMAND = str(Path(sys.executable).parent / "coderflash")  # the console script, as an editor starts it
_SKIP_PARTS = {"site-packages", "test", "tests", "idlelib", "__pycache__"}


def copy_stdlib(target: Path, files: int = 600) -> Path:
    """Copy ``files`` source files of the standard library (sorted by path, packages kept whole as far as
    they fit) into ``target``; a real repository of hundreds of files with real imports between them."""
    sources = sorted(p for p in STDLIB.rglob("*.py") if not _SKIP_PARTS & set(p.relative_to(STDLIB).parts))
    assert len(sources) >= files, f"the standard library here has only {len(sources)} source files"
    for source in sources[:files]:
        destination = target / source.relative_to(STDLIB)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, destination)
    return target


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (children, their children, …), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    found: set[int] = set()
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    """The pids of ``pids`` that still run (zombies count as gone)."""
    running = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            running.add(pid)
    return running
