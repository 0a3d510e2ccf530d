"""The one place the language server is put together: the server object, then every handler module
registers its methods on it. ``coderflash serve`` runs it."""

from __future__ import annotations

import faulthandler
import logging
import signal

from . import chat_handlers, code_actions, commands, completion, documents, lifecycle
from .process_memory import fix_mmap_threshold, limit_malloc_arenas
from .server import CoderflashServer
from .stdio import serve_stdio


def build_server() -> CoderflashServer:
    server = CoderflashServer()
    for module in (lifecycle, documents, completion, code_actions, commands, chat_handlers):
        module.register(server)
    return server


def run_server(tcp: str | None = None) -> int:
    """Serve on stdio, or on ``host:port`` (``--tcp``); the exit code (see ``serve_stdio``)."""
    limit_malloc_arenas()  # before any thread starts: fewer arenas, less RSS creep over a long session
    fix_mmap_threshold()  # large blocks mapped and unmapped, not left as holes in a heap
    logging.basicConfig(level=logging.WARNING)
    # A crash in native code (SIGSEGV, SIGABRT, ...) writes every thread's Python stack to stderr, which the
    # editor logs: without it, a crash leaves nothing but an exit code.
    faulthandler.enable(all_threads=True)
    if hasattr(signal, "SIGUSR1"):  # `kill -USR1 <pid>` dumps every thread's stack to stderr
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    server = build_server()
    if tcp:
        host, _, port = tcp.rpartition(":")
        server.start_tcp(host or "127.0.0.1", int(port))
        return 0
    return serve_stdio(server)
