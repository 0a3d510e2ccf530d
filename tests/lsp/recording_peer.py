"""An OpenAI-compatible endpoint on localhost that keeps every request body and streams one short answer:
what the server sends a remote backend (the prompt, its cursor, what redaction left) is then visible to a
test. Tests in other directories import it through pytest's ``pythonpath``."""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

from rawlsp import RawLspProcess


class RecordingPeer(ThreadingHTTPServer):
    """Keeps ``(path, body)`` of each request; answers completions with ``completion`` and chats with
    ``chat``, streamed word by word ``chat_word_s`` seconds apart (a slow server, for cancellation)."""

    daemon_threads = True

    def __init__(self, completion: str = "value", chat: str = "It reads the key.", chat_word_s: float = 0.0) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.completion, self.chat, self.chat_word_s = completion, chat, chat_word_s
        self.bodies: list[tuple[str, dict]] = []
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    @property
    def prompts(self) -> list[str]:
        """The completion prompts, oldest first."""
        return [body["prompt"] for path, body in self.bodies if "prompt" in body]


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        peer: RecordingPeer = self.server  # type: ignore[assignment]
        peer.bodies.append((self.path, body))
        if self.path.endswith("/chat/completions"):
            words = peer.chat.split(" ") if peer.chat_word_s else [peer.chat]
            chunks = [{"choices": [{"delta": {"content": (" " if n else "") + word}, "finish_reason": None}]}
                      for n, word in enumerate(words)]
            chunks[-1]["choices"][0]["finish_reason"] = "stop"
        else:
            chunks = [{"choices": [{"text": peer.completion, "finish_reason": "stop"}]}]
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        try:
            for chunk in chunks:
                self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                self.wfile.flush()
                time.sleep(peer.chat_word_s if len(chunks) > 1 else 0)
            self.wfile.write(b"data: [DONE]\n\n")
        except OSError:  # the server stopped reading (a cancelled turn)
            pass

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def served_through(peer: RecordingPeer, root: Path, cache: Path, **options: object) -> Iterator[RawLspProcess]:
    """``coderflash serve`` over stdio on ``root`` (indexed, cache in ``cache``) with ``peer`` as its remote
    backend and ``options`` added to its initialization options; closed, with the peer, on the way out. The
    shape of every test that reads what the server sends a model."""
    server = RawLspProcess(env={"CODERFLASH_CACHE_DIR": str(cache)}, answer_requests=True)
    try:
        server.initialize(root.as_uri(), {"backend": "openai", "remote": {"url": peer.url, "retries": 0}, **options})
        server.wait_for_index(timeout=60)
        yield server
    finally:
        if server.proc.poll() is None:
            server.close()
        peer.shutdown()
