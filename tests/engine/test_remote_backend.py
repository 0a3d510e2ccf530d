"""The OpenAI-compatible backend against a real server: llama-cpp-python's own ``llama_cpp.server``
on the tiny model (needs its server extras: fastapi, uvicorn, sse-starlette, starlette-context,
pydantic-settings)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from engine.model.backend import BackendError, CancelToken, GenerationRequest, Sampling
from engine.config import RemoteConfig
from engine.model.remote_backend import RemoteBackend

pytest.importorskip("uvicorn")
pytest.importorskip("sse_starlette")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_model: Path):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(tiny_model), "--host",
                             "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--api_key", "sekret"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            req = urllib.request.Request(url + "/v1/models", headers={"Authorization": "Bearer sekret"})
            urllib.request.urlopen(req, timeout=1).read()
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail("llama_cpp.server exited: " + proc.stderr.read().decode()[-2000:])
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("llama_cpp.server did not start")
    yield url
    proc.terminate()
    proc.wait(10)


def test_fim_completion_streams_with_auth_from_env(server: str, monkeypatch):
    monkeypatch.setenv("MY_KEY", "sekret")
    backend = RemoteBackend(RemoteConfig(url=server + "/v1", api_key_env="MY_KEY", timeout_s=20, retries=1))
    fmt = backend.prompt_format
    pieces = fmt.repo_header("r") + fmt.file_block("a.py", "def add(a, b):\n    return a + b\n") + \
        fmt.current_file_header("b.py") + fmt.infill("def mul(a, b):\n    ", "\n")
    assert "<|fim_middle|>" in backend.render(pieces)
    streamed: list[str] = []
    result = backend.generate(GenerationRequest(pieces, max_tokens=12, on_text=streamed.append))
    assert result.text and "".join(streamed) == result.text
    assert result.generated_tokens >= 1 and result.prompt_tokens > 0 and result.first_token_ms > 0
    assert result.finish_reason in ("length", "stop")


def test_chat_streams_and_bad_key_is_explained(server: str):
    backend = RemoteBackend(RemoteConfig(url=server, api_key="sekret", timeout_s=20))
    streamed: list[str] = []
    result = backend.chat([{"role": "user", "content": "hello"}],
                          GenerationRequest([], max_tokens=10, sampling=Sampling(temperature=0.7, top_p=0.8, top_k=20,
                                                                                 repeat_penalty=1.05),
                                            on_text=streamed.append))
    assert streamed and "".join(streamed) == result.text
    wrong = RemoteBackend(RemoteConfig(url=server, api_key="nope", api_key_env=""))
    with pytest.raises(BackendError, match="credentials"):
        wrong.generate(GenerationRequest(["x"], max_tokens=2))


def test_cancel_closes_the_stream(server: str):
    backend = RemoteBackend(RemoteConfig(url=server, api_key="sekret"))
    token = CancelToken()
    seen: list[str] = []

    def on_text(piece: str) -> None:
        seen.append(piece)
        if len(seen) == 3:
            token.cancel("superseded")

    result = backend.generate(GenerationRequest(["def f():"], max_tokens=500, on_text=on_text), token)
    assert result.finish_reason == "cancelled" and len(seen) < 500


def test_server_down_is_a_clear_error():
    url = f"http://127.0.0.1:{_free_port()}"
    backend = RemoteBackend(RemoteConfig(url=url, retries=2, timeout_s=2))
    t0 = time.monotonic()
    with pytest.raises(BackendError, match=r"cannot reach the completion server at .* after 3 attempt"):
        backend.generate(GenerationRequest(["x"], max_tokens=2))
    assert time.monotonic() - t0 < 5  # retries back off briefly, they do not hang


def test_prompt_format_of_the_served_model_is_configurable() -> None:
    from engine.config import ConfigError, load_config

    backend = RemoteBackend(RemoteConfig(url="http://127.0.0.1:9", prompt_format="starcoder"))
    pieces = backend.prompt_format.infill("def f(", "):\n")
    assert backend.prompt_format.render(pieces) == "<fim_prefix>def f(<fim_suffix>):\n<fim_middle>"
    assert RemoteBackend(RemoteConfig(url="http://127.0.0.1:9")).prompt_format.name == "qwen"
    with pytest.raises(ConfigError, match="remote.prompt_format"):
        load_config(None, environ={"CODERFLASH_REMOTE__PROMPT_FORMAT": "gpt"})
