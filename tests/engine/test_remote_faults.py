"""A remote backend that misbehaves: hangs before answering, stops sending mid-stream, or drops the connection
mid-stream. Each ends in bounded time with a clear error or the partial answer, and the calling thread (the
engine's one inference worker) is never stuck: a cancel or the deadline frees it at once, not after
``remote.timeout_s``. The peer is a real TCP server speaking HTTP/1.1 and server-sent events, scripted per
test."""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Callable

import pytest

from engine.config import RemoteConfig
from engine.model.backend import BackendError, CancelToken, GenerationRequest
from engine.model.remote_backend import RemoteBackend

HEADERS = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
           b"Connection: close\r\n\r\n")


def _event(text: str) -> bytes:
    return b"data: " + json.dumps({"choices": [{"text": text, "finish_reason": None}]}).encode() + b"\n\n"


class ScriptedServer:
    """Accepts connections on a free port; ``script(conn)`` plays each one."""

    def __init__(self, script: Callable[[socket.socket], None]) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.script = script
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._play, args=(conn,), daemon=True).start()

    def _play(self, conn: socket.socket) -> None:
        try:
            conn.recv(65536)  # the request
            self.script(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


def _hang(conn: socket.socket) -> None:
    time.sleep(30)


def _stall_after_two(conn: socket.socket) -> None:
    conn.sendall(HEADERS + _event("def ") + _event("main("))
    time.sleep(30)


def _drop_after_two(conn: socket.socket) -> None:
    conn.sendall(HEADERS + _event("def ") + _event("main("))


def _drop_at_once(conn: socket.socket) -> None:
    conn.sendall(HEADERS)


@pytest.fixture
def serve():
    servers: list[ScriptedServer] = []

    def start(script: Callable[[socket.socket], None]) -> str:
        servers.append(ScriptedServer(script))
        return servers[-1].url

    yield start
    for server in servers:
        server.close()


def _backend(url: str, timeout_s: float = 20.0) -> RemoteBackend:
    return RemoteBackend(RemoteConfig(url=url, timeout_s=timeout_s, retries=0))


def test_a_server_that_never_answers_ends_at_the_deadline(serve) -> None:
    backend = _backend(serve(_hang))
    started = time.monotonic()
    with pytest.raises(BackendError, match="cannot reach"):
        backend.generate(GenerationRequest(["x"], max_tokens=8, deadline=time.monotonic() + 1.0))
    assert time.monotonic() - started < 3


def test_a_stalled_stream_is_freed_by_a_cancel_at_once(serve) -> None:
    backend = _backend(serve(_stall_after_two))
    token = CancelToken()
    seen: list[str] = []

    def on_text(piece: str) -> None:
        seen.append(piece)
        if len(seen) == 2:
            threading.Timer(0.3, token.cancel, args=("superseded",)).start()

    started = time.monotonic()
    result = backend.generate(GenerationRequest(["x"], max_tokens=64, on_text=on_text), token)
    assert result.finish_reason == "cancelled" and seen == ["def ", "main("]
    assert time.monotonic() - started < 2  # not the 20 s read timeout


def test_a_stalled_stream_ends_at_the_deadline_with_what_came(serve) -> None:
    backend = _backend(serve(_stall_after_two))
    started = time.monotonic()
    result = backend.generate(GenerationRequest(["x"], max_tokens=64, deadline=time.monotonic() + 1.0))
    assert result.finish_reason == "deadline" and result.text == "def main("
    assert time.monotonic() - started < 3


def test_a_stalled_chat_stream_ends_at_the_read_timeout(serve) -> None:
    backend = _backend(serve(_stall_after_two), timeout_s=1.0)
    started = time.monotonic()
    result = backend.chat([{"role": "user", "content": "hi"}], GenerationRequest([], max_tokens=64))
    assert result.finish_reason == "deadline" and result.text == "def main("
    assert time.monotonic() - started < 4


def test_a_stream_dropped_mid_answer_keeps_the_partial_answer_as_interrupted(serve) -> None:
    result = _backend(serve(_drop_after_two)).generate(GenerationRequest(["x"], max_tokens=64))
    assert result.finish_reason == "deadline" and result.text == "def main("


def test_a_stream_dropped_before_any_text_is_a_clear_error(serve) -> None:
    with pytest.raises(BackendError, match="closed the stream before answering"):
        _backend(serve(_drop_at_once)).generate(GenerationRequest(["x"], max_tokens=64))
