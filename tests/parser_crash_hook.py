"""A parser process that dies at a chosen file, for the tests of indexer/parse_pool.py.

``crash_env`` writes a ``sitecustomize.py`` that every Python process started with the returned environment
imports: in a parser worker (a process with a multiprocessing parent) the parse of a file holding ``MARK``
ends the process with SIGKILL, as the OOM killer or a grammar crashing on a hostile file would. The server
and the command-line process itself never die (they have no multiprocessing parent). With ``once``, only the
first worker to meet the mark dies (an O_EXCL flag file says it did), the later ones parse it.
``no_worker_env``: no worker process can be started at all."""

from __future__ import annotations

import os
from pathlib import Path

MARK = "CODERFLASH_TEST_KILLS_ITS_PARSER"

_HOOK = '''
import multiprocessing, os, signal

_mark = os.environ.get("CF_TEST_CRASH_MARK", "").encode()
_flag = os.environ.get("CF_TEST_CRASH_ONCE_FLAG")
if _mark:
    import indexer.worker as _worker

    _parse_bytes = _worker.parse_bytes

    def _first_crash():
        if not _flag:
            return True
        try:
            os.close(os.open(_flag, os.O_CREAT | os.O_EXCL))
            return True
        except FileExistsError:
            return False

    def parse_bytes(rel, data):
        if _mark in data and multiprocessing.parent_process() is not None and _first_crash():
            os.kill(os.getpid(), signal.SIGKILL)
        return _parse_bytes(rel, data)

    _worker.parse_bytes = parse_bytes

if os.environ.get("CF_TEST_POOL_START_FAILS") and multiprocessing.parent_process() is None:
    from multiprocessing import forkserver as _forkserver

    def _refuse(fds):
        raise BrokenPipeError(32, "Broken pipe (test: no worker process can start)")

    _forkserver.connect_to_new_process = _refuse  # what popen_forkserver calls
'''


def crash_env(hook_dir: Path, once_flag: Path | None = None) -> dict[str, str]:
    """Environment additions that make parser workers die at files holding ``MARK``."""
    env = _hook_env(hook_dir)
    env["CF_TEST_CRASH_MARK"] = MARK
    if once_flag is not None:
        env["CF_TEST_CRASH_ONCE_FLAG"] = str(once_flag)
    return env


def no_worker_env(hook_dir: Path) -> dict[str, str]:
    """Environment additions under which no worker process can start: the fork server refuses with
    BrokenPipeError, as a pool start once did in CI (the index build ended in an error then)."""
    return {**_hook_env(hook_dir), "CF_TEST_POOL_START_FAILS": "1"}


def _hook_env(hook_dir: Path) -> dict[str, str]:
    hook_dir.mkdir(parents=True, exist_ok=True)
    (hook_dir / "sitecustomize.py").write_text(_HOOK)
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(hook_dir), os.environ.get("PYTHONPATH", "")]))}
