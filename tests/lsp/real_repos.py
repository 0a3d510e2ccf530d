"""Real repositories for end-to-end tests: copies of code nobody here wrote (the Python standard library
installed with this interpreter), and a look at a process tree through /proc."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
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


def debian_package(package: str, cache: Path) -> Path | None:
    """A Debian package unpacked under ``cache/package`` (``apt-get download`` + ``dpkg -x``; tokio's sources
    are 0.5 MB), fetched once; None where apt cannot fetch it (the caller skips and says so)."""
    root = cache / package
    if not root.is_dir() and shutil.which("apt-get") and shutil.which("dpkg"):
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["apt-get", "download", package], cwd=tmp, capture_output=True, timeout=300, check=False)
            debs = list(Path(tmp).glob(f"{package}_*.deb"))
            if debs:
                staging = Path(tmp) / "unpacked"
                subprocess.run(["dpkg", "-x", str(debs[0]), str(staging)], check=True, timeout=300)
                cache.mkdir(parents=True, exist_ok=True)
                shutil.move(str(staging), str(root))
    return root if root.is_dir() else None


def tokio_crate(cache: Path) -> Path | None:
    """Debian's tokio 1.24 crate directory (src/, tests/, Cargo.toml: 420 Rust files, 97,600 lines), whose
    modules are wrapped in item-level macros (``cfg_rt! { ... }``); None where apt cannot fetch it."""
    root = debian_package("librust-tokio-dev", cache)
    found = sorted(root.glob("usr/share/cargo/registry/tokio-*")) if root else []
    return found[0] if found else None


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
