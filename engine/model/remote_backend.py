"""OpenAI-compatible HTTP backend (llama-server, vLLM, SGLang, Ollama, llama-cpp-python's server).

Why the standard library: two POST endpoints and Server-Sent Events are a few dozen lines with
``urllib``; a client library would add a dependency and its own retry/timeout policy on top of ours.

FIM goes to ``/v1/completions`` as a raw prompt (control tokens written as their text, which these servers
parse as special tokens); chat goes to ``/v1/chat/completions`` so the server applies the model's own
template. Both stream, so a newer keystroke can cancel a request between two chunks (the connection is
closed). Connection failures, 429 and 5xx are retried with exponential backoff until output has started.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Iterator, Sequence

from engine.model.backend import BackendError, CancelToken, GenerationRequest, GenerationResult, Sampling, elapsed_ms
from engine.config import RemoteConfig
from engine.model.prompt_format import Piece, text_format
from engine.model.tokens import estimate_tokens

_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}


class RemoteBackend:
    """Talks to one OpenAI-compatible server; token counts are estimates unless the server reports usage."""

    name = "openai"

    def __init__(self, config: RemoteConfig) -> None:
        if not config.url:
            raise BackendError("backend = \"openai\" needs remote.url (e.g. http://127.0.0.1:8080)")
        self.config = config
        base = config.url.rstrip("/")
        self.base = base[:-3] if base.endswith("/v1") else base
        # The server's model cannot be inspected: its FIM family comes from remote.prompt_format, with
        # control tokens rendered by their text.
        self.prompt_format = text_format(config.prompt_format)

    # -- tokens: the server's tokenizer is not ours to call on every chunk --------------------------
    def tokenize(self, text: str) -> list[int]:
        """Pseudo ids with the estimated count (over-counts code for Qwen3, so budgets hold)."""
        return [0] * estimate_tokens(text) if text else []

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text) if text else 0

    def detokenize(self, ids: Sequence[int]) -> str:
        return "".join(self.prompt_format.token_texts.get(i, "") for i in ids)

    def render(self, pieces: Sequence[Piece]) -> str:
        return self.prompt_format.render(pieces)

    # -- HTTP -----------------------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        key = self.config.api_key or os.environ.get(self.config.api_key_env or "", "")
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _open(self, path: str, body: dict[str, Any], deadline: float | None, cancel: CancelToken | None) -> Any:
        """POST with retries (connection errors, 429, 5xx) and exponential backoff."""
        url = self.base + path
        data = json.dumps(body).encode()
        attempts = max(1, self.config.retries + 1)
        last = ""
        for attempt in range(attempts):
            if cancel is not None:
                cancel.check()
            timeout = self.config.timeout_s
            if deadline is not None:
                timeout = max(0.05, min(timeout, deadline - time.monotonic()))
            request = urllib.request.Request(url, data=data, headers=self._headers(), method="POST")
            try:
                return urllib.request.urlopen(request, timeout=timeout)
            except urllib.error.HTTPError as exc:
                detail = exc.read(500).decode("utf-8", "replace").strip()
                if exc.code in (401, 403):
                    raise BackendError(f"{url} refused the credentials (HTTP {exc.code}); set remote.api_key "
                                       f"or ${self.config.api_key_env}") from None
                if exc.code not in _RETRY_STATUS:
                    raise BackendError(f"{url} answered HTTP {exc.code}: {detail[:300]}") from None
                last = f"HTTP {exc.code}: {detail[:200]}"
            except (urllib.error.URLError, ConnectionError, socket.timeout, TimeoutError) as exc:
                reason = getattr(exc, "reason", exc)
                last = str(reason) or type(exc).__name__
            if attempt + 1 < attempts:
                time.sleep(min(2.0, 0.2 * (2 ** attempt)))
        raise BackendError(f"cannot reach the completion server at {self.base} ({last}) after {attempts} "
                           "attempt(s); is it running? check remote.url")

    @staticmethod
    def _events(response: Any, cancel: CancelToken | None, ended: list[bool]) -> Iterator[dict[str, Any]]:
        """Parse an SSE stream; stops at ``[DONE]`` (``ended[0]`` becomes True) or when the cancel token fires."""
        for raw in response:
            if cancel is not None and cancel.cancelled:
                return
            line = raw.decode("utf-8", "replace").strip()
            if not line.startswith("data:"):
                continue
            payload = line[5:].strip()
            if payload == "[DONE]":
                ended[0] = True
                return
            try:
                event = json.loads(payload)
            except json.JSONDecodeError:
                continue
            if any(choice.get("finish_reason") for choice in event.get("choices") or []):
                ended[0] = True  # servers that end with a finish reason and close, without [DONE]
            yield event

    @staticmethod
    def _unblock_when(response: Any, cancel: CancelToken | None, deadline: float | None) -> threading.Event:
        """A watcher that shuts the stream's socket down once ``cancel`` fires or ``deadline`` passes, so a
        read blocked on a server that stopped sending returns at once instead of after ``timeout_s``. Set
        the returned event when the stream is done."""
        done = threading.Event()
        if cancel is None and deadline is None:
            return done
        sock = getattr(getattr(getattr(response, "fp", None), "raw", None), "_sock", None)
        if sock is None:
            return done

        def watch() -> None:
            while not done.wait(0.05):
                if (cancel is not None and cancel.cancelled) or (deadline is not None and time.monotonic() >= deadline):
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return

        threading.Thread(target=watch, name="coderflash-remote-watch", daemon=True).start()
        return done

    def _sampling_body(self, sampling: Sampling) -> dict[str, Any]:
        greedy = sampling.temperature <= 0
        body: dict[str, Any] = {"temperature": 0.0 if greedy else sampling.temperature,
                                "top_p": 1.0 if greedy else sampling.top_p, "min_p": 0.0}
        if sampling.top_k and not greedy:
            body["top_k"] = sampling.top_k
        if sampling.repeat_penalty != 1.0:
            body["repeat_penalty"] = sampling.repeat_penalty  # llama.cpp servers
            body["repetition_penalty"] = sampling.repeat_penalty  # vLLM / SGLang
        if sampling.seed:
            body["seed"] = sampling.seed
        return body

    def _stream(self, path: str, body: dict[str, Any], request_like: GenerationRequest, prompt_estimate: int,
                cancel: CancelToken | None) -> GenerationResult:
        start = time.perf_counter()
        body = {**body, "stream": True, "max_tokens": request_like.max_tokens}
        if self.config.model:
            body["model"] = self.config.model
        text = ""
        first_ms = 0.0
        chunks = 0
        usage: dict[str, Any] = {}
        finish = "length"
        response = self._open(path, body, request_like.deadline, cancel)
        ended = [False]
        watching = self._unblock_when(response, cancel, request_like.deadline)
        try:
            for event in self._events(response, cancel, ended):
                usage = event.get("usage") or usage
                for choice in event.get("choices") or []:
                    piece = choice.get("text")
                    if piece is None:
                        piece = (choice.get("delta") or {}).get("content") or ""
                    if piece:
                        if not first_ms:
                            first_ms = elapsed_ms(start)
                        chunks += 1
                        text += piece
                        if request_like.on_text is not None:
                            request_like.on_text(piece)
                    if choice.get("finish_reason"):
                        finish = "stop" if choice["finish_reason"] == "stop" else "length"
                if request_like.deadline is not None and time.monotonic() >= request_like.deadline:
                    finish = "deadline"
                    break
            if cancel is not None and cancel.cancelled:
                finish = "cancelled"
            elif request_like.deadline is not None and time.monotonic() >= request_like.deadline:
                finish = "deadline"
            elif not ended[0]:  # the server closed the stream mid-answer
                if not text:
                    raise BackendError(f"the completion server at {self.base} closed the stream before answering")
                finish = "deadline"  # what came is kept, trimmed as an interrupted answer
        except (OSError, socket.timeout, http.client.HTTPException) as exc:
            if cancel is not None and cancel.cancelled:
                finish = "cancelled"
            elif not text:
                raise BackendError(f"the completion server at {self.base} stopped answering: {exc}") from None
            else:
                finish = "deadline"
        finally:
            watching.set()
            response.close()
        for stop in request_like.stop_strings:
            at = text.find(stop)
            if at >= 0:
                text, finish = text[:at], "stop"
        prompt_tokens = int(usage.get("prompt_tokens") or prompt_estimate)
        cached = int(((usage.get("prompt_tokens_details") or {}).get("cached_tokens")) or 0)
        return GenerationResult(text=text, prompt_tokens=prompt_tokens, reused_tokens=cached,
                                evaluated_tokens=prompt_tokens - cached,
                                generated_tokens=int(usage.get("completion_tokens") or chunks),
                                elapsed_ms=elapsed_ms(start), finish_reason=finish, first_token_ms=first_ms)

    # -- Backend API -----------------------------------------------------------------------------------
    def generate(self, request: GenerationRequest, cancel: CancelToken | None = None) -> GenerationResult:
        """Raw-prompt completion (FIM): control-token pieces become their text; their texts are stops."""
        prompt = self.render(request.pieces)
        stops = list(request.stop_strings) + [self.prompt_format.token_texts[i] for i in request.stop_ids
                                              if i in self.prompt_format.token_texts]
        body = {"prompt": prompt, "stop": stops[:4] if "api.openai.com" in self.base else stops,
                **self._sampling_body(request.sampling)}
        return self._stream("/v1/completions", body, request, estimate_tokens(prompt), cancel)

    def chat(self, messages: Sequence[dict], request: GenerationRequest, tools: Sequence[dict] | None = None,
             cancel: CancelToken | None = None) -> GenerationResult:
        """Chat through the server's own template; ``request.pieces`` is ignored (only limits/sampling)."""
        body: dict[str, Any] = {"messages": list(messages), **self._sampling_body(request.sampling)}
        if tools:
            body["tools"] = list(tools)
        if request.stop_strings:
            body["stop"] = list(request.stop_strings)
        estimate = sum(estimate_tokens(str(m.get("content") or "")) + 4 for m in messages)
        return self._stream("/v1/chat/completions", body, request, estimate, cancel)

    def render_chat(self, messages: Sequence[dict], tools: Sequence[dict] | None = None) -> list[Piece]:
        """ChatML text, for token budgeting only (the server renders the real template)."""
        from engine.model.chat_template import render_chat_pieces

        return render_chat_pieces("", messages, tools, lambda text: [text])

    def warm_prefix(self, pieces: Sequence[Piece], cancel: CancelToken | None = None,
                    save: bool = True, chunk: int | None = None) -> dict[str, object]:
        return {"skipped": "remote backend: the server manages its own cache"}

    def info(self) -> dict[str, object]:
        return {"backend": self.name, "url": self.base, "model_name": self.config.model or "remote",
                "prompt_format": self.prompt_format.name, "n_ctx": 0}

    def close(self) -> None:
        pass
