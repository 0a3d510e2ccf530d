"""An OpenAI-compatible endpoint on localhost that keeps every request body and streams one short answer:
what the server sends a remote backend (the prompt, its cursor, what redaction left) is then visible to a
test. Tests in other directories import it through pytest's ``pythonpath``."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class RecordingPeer(ThreadingHTTPServer):
    """Keeps ``(path, body)`` of each request; answers completions with ``completion`` and chats with
    ``chat``."""

    daemon_threads = True

    def __init__(self, completion: str = "value", chat: str = "It reads the key.") -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.completion, self.chat = completion, chat
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
            chunk = {"choices": [{"delta": {"content": peer.chat}, "finish_reason": "stop"}]}
        else:
            chunk = {"choices": [{"text": peer.completion, "finish_reason": "stop"}]}
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\ndata: [DONE]\n\n")

    def log_message(self, *args: object) -> None:
        pass
