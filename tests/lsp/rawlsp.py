"""A raw JSON-RPC-over-stdio LSP peer: for the messages a typed client cannot send (malformed ones), and
for driving a server started by an editor's own command line (the JetBrains template, the cancel
contract every editor relies on). Tests in other directories import it through pytest's ``pythonpath``."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from typing import Any

SERVER_ARGV = [sys.executable, "-m", "lsp_server", "serve"]


class RawLspProcess:
    """``argv`` defaults to this checkout's server; ``env`` is added to this process's environment.
    ``answer_requests``: reply to server requests with a null result, as a minimal editor does
    (otherwise they are only recorded in ``incoming``); ``preexec_fn``: run in the child before the server
    starts (resource limits)."""

    def __init__(self, env: dict[str, str] | None = None, cwd: str | None = None,
                 argv: list[str] | None = None, answer_requests: bool = False,
                 preexec_fn: Any = None) -> None:
        self.proc = subprocess.Popen(argv or SERVER_ARGV, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env={**os.environ, **(env or {})}, cwd=cwd, preexec_fn=preexec_fn)
        self.messages: "queue.Queue[dict[str, Any]]" = queue.Queue()
        self.stderr: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        threading.Thread(target=self._drain_stderr, daemon=True).start()  # a full pipe would block the server
        self._next_id = 0
        self._responses: dict[Any, dict[str, Any]] = {}
        self._answer_requests = answer_requests
        self.incoming: list[dict[str, Any]] = []

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)

    def _read(self) -> None:
        stream = self.proc.stdout
        assert stream is not None
        while True:
            length = 0
            while True:
                line = stream.readline()
                if not line:
                    return
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
                if line == b"\r\n":
                    break
            self.messages.put(json.loads(stream.read(length)))

    def send_bytes(self, body: bytes) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
            self.proc.stdin.flush()
        except BrokenPipeError as exc:  # the server is gone: say how it ended and what it last wrote
            raise BrokenPipeError(f"the server exited ({self.proc.wait(5)}); its stderr ends with:\n"
                                  + self.stderr_tail()) from exc

    def stderr_tail(self, lines: int = 40) -> str:
        return b"".join(self.stderr[-lines:]).decode("utf-8", "replace")

    def send(self, message: dict[str, Any]) -> None:
        self.send_bytes(json.dumps(message).encode())

    def request(self, method: str, params: Any) -> int:
        self._next_id += 1
        self.send({"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params})
        return self._next_id

    def notify(self, method: str, params: Any) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def open_document(self, path: "os.PathLike[str] | str", text: str | None = None,
                      language: str = "python") -> str:
        """didOpen ``path`` (version 1) with ``text``, else its text on disk; returns its URI."""
        from pathlib import Path

        path = Path(path)
        uri = path.as_uri()
        self.notify("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": language, "version": 1, "text": path.read_text() if text is None else text}})
        return uri

    def response(self, msg_id: int | None, timeout: float = 30.0) -> dict[str, Any]:
        """The response with ``msg_id``; responses to other ids are kept for later, notifications and
        server requests are kept in ``self.incoming``."""
        if msg_id in self._responses:
            return self._responses.pop(msg_id)
        while True:
            try:
                message = self.messages.get(timeout=timeout)
            except queue.Empty:
                if self.proc.poll() is not None:  # not slow: gone
                    raise AssertionError(f"the server exited ({self.proc.returncode}) before answering {msg_id}; "
                                         f"its stderr ends with:\n{self.stderr_tail()}") from None
                raise
            if "method" in message:
                self.incoming.append(message)
                if self._answer_requests and "id" in message:
                    self.send({"jsonrpc": "2.0", "id": message["id"], "result": None})
            elif message.get("id") == msg_id:
                return message
            else:
                self._responses[message.get("id")] = message

    def call(self, method: str, params: Any, timeout: float = 30.0) -> dict[str, Any]:
        return self.response(self.request(method, params), timeout)

    def initialize(self, root_uri: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
        result = self.call("initialize", {"processId": None, "rootUri": root_uri, "capabilities": {},
                                           "initializationOptions": options or {}})
        self.notify("initialized", {})
        return result

    def wait_for_index(self, timeout: float) -> dict[str, Any]:
        """Polls ``coderflash/status`` until the first workspace's index is ``ready`` or ``error``; returns its
        ``index`` object (AssertionError, with the last one, after ``timeout`` seconds)."""
        started = time.monotonic()
        while (index := self.call("coderflash/status", {})["result"]["workspaces"][0]["index"])["state"] \
                not in ("ready", "error"):
            assert time.monotonic() - started < timeout, index
            time.sleep(0.1)
        return index

    def close(self, timeout: float = 20.0) -> int:
        self.call("shutdown", None, timeout)
        self.notify("exit", None)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
