"""Serving LSP over stdio with one reader thread that hands the event loop whole messages.

Why not pygls's own stdio loop: pygls 2.1 reads stdin through its thread pool, three round trips per
message (the header line, the blank line, the body), each waking the event loop, each queued behind the
handlers that run in the same pool. At 2,000 didChange a second that is most of a core spent on handing
bytes over, and a completion request waits behind it. Here a thread of its own frames the messages and
wakes the loop once for every batch it has read; the loop decodes and dispatches them exactly as pygls
does (the same ``structure_message`` / ``handle_message``, the same error reporting), a bounded batch at
a time so that running handlers get their turn between batches. A batch ends after a request: an async
handler's first step (which reads the document's text and version) runs before the next message, so a
didChange sent after a completion request cannot slip in under it — the request gets ContentModified
instead of an answer for a position in text it never saw.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import threading
from collections import deque
from typing import BinaryIO, Callable

from pygls.exceptions import JsonRpcException
from pygls.io_ import StdoutWriter
from pygls.server import JsonRPCServer

logger = logging.getLogger("coderflash")

BATCH = 64  # messages dispatched per wake-up before the loop runs other callbacks and tasks


class MessageFramer:
    """Cuts a byte stream into message bodies: headers up to a blank line, then Content-Length bytes. A
    header block without a usable Content-Length is dropped, as pygls does."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        buffer = self._buffer
        buffer += data
        bodies: list[bytes] = []
        start = 0
        while True:
            header_end = buffer.find(b"\r\n\r\n", start)
            if header_end < 0:
                break
            length = _content_length(bytes(buffer[start:header_end]))
            body_start = header_end + 4
            if length is None:
                start = body_start
                continue
            if len(buffer) < body_start + length:
                break
            bodies.append(bytes(buffer[body_start:body_start + length]))
            start = body_start + length
        del buffer[:start]
        return bodies


def _content_length(headers: bytes) -> int | None:
    for line in headers.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            try:
                length = int(value.strip())
            except ValueError:
                return None
            return length if length >= 0 else None
    return None


class StdioPump:
    """Reads messages on a daemon thread; the event loop drains them in order."""

    def __init__(self, server: JsonRPCServer, stdin_fd: int, loop: asyncio.AbstractEventLoop) -> None:
        self._server = server
        self._fd = stdin_fd
        self._loop = loop
        self._inbox: deque[bytes] = deque()
        self._scheduled = False
        self.closed: asyncio.Future[None] = loop.create_future()

    def start(self) -> None:
        threading.Thread(target=self._read, name="lsp-stdin", daemon=True).start()

    def _read(self) -> None:
        """Plain ``os.read`` on the descriptor: a daemon thread blocked inside a buffered reader's lock makes
        the interpreter abort at exit (``_enter_buffered_busy``); one blocked in a system call does not."""
        framer = MessageFramer()
        try:
            while data := os.read(self._fd, 1 << 16):
                bodies = framer.feed(data)
                if not bodies:
                    continue
                self._inbox.extend(bodies)
                if not self._scheduled:  # the drain clears the flag before it empties the inbox
                    self._scheduled = True
                    if not self._call_soon(self._drain):
                        return
        except (OSError, ValueError) as exc:  # stdin closed under us
            logger.info("stdin: %s", exc)
        finally:
            self._call_soon(self._end)

    def _call_soon(self, callback: Callable[[], None]) -> bool:
        """False when the loop is closed (the server is gone already)."""
        try:
            self._loop.call_soon_threadsafe(callback)
        except RuntimeError:
            return False
        return True

    def _end(self) -> None:
        while self._inbox and not self._stopped():
            self._drain()
        if not self.closed.done():
            self.closed.set_result(None)

    def _stopped(self) -> bool:
        return self._server._stop_event is not None and self._server._stop_event.is_set()

    def _drain(self) -> None:
        self._scheduled = False
        protocol = self._server.protocol
        for _ in range(BATCH):
            if not self._inbox or self._stopped():
                return
            body = self._inbox.popleft()
            message = None
            try:
                message = json.loads(body, object_hook=protocol.structure_message)
                protocol.handle_message(message)
            except Exception as exc:  # noqa: BLE001 - as pygls: log, report (ParseError for non-JSON), go on
                logger.exception("Unable to handle message")
                self._server._report_server_error(exc, JsonRpcException)
            if isinstance(message, dict) and "method" in message and message.get("id") is not None:
                break  # a request: its handler's first step (queued just now) runs before the next message
        if self._inbox and not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._drain)


def serve_stdio(server: JsonRPCServer, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> int:
    """``server.start_io()`` with the reader above: runs until stdin ends or the client sends ``exit``. The
    process's exit code: LSP's 1 for an ``exit`` without ``shutdown`` (a client can tell a crash from a
    clean stop), else 0."""
    server._stop_event = threading.Event()
    server.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))

    async def main() -> None:
        pump = StdioPump(server, (stdin or sys.stdin.buffer).fileno(), asyncio.get_running_loop())
        pump.start()
        await pump.closed

    code = 0
    try:
        asyncio.run(main())
    except BrokenPipeError:
        logger.error("Connection to the client is lost! Shutting down the server.")
    except KeyboardInterrupt:
        pass
    except SystemExit as exc:  # pygls's ``exit`` handler: 0 after shutdown, 1 without
        code = exc.code if isinstance(exc.code, int) else 0
    finally:
        server.shutdown()
    return code
