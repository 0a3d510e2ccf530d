"""Egress: with the default configuration a whole session opens no network connection.

Every Python process of the session (the server and the indexer's worker processes, which inherit the
environment) runs a ``sitecustomize`` that installs an audit hook (PEP 578) recording each network event:
``socket.connect``, ``socket.getaddrinfo``, ``socket.gethostbyname``, ``socket.sendto``, ``socket.bind``
of an internet socket and ``urllib.Request``. The session: a cold index of a repository, an inline
completion, and an agent chat whose tools run (``read_file``, ``grep``, ``search_symbols``; the test
hook's grammars make the tiny model call them). The test can fail: the same hook records a connection the
test itself makes from a process started the same way.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rawlsp import RawLspProcess

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample_repo"

SITECUSTOMIZE = textwrap.dedent('''
    import os, socket, sys

    _LOG = os.environ.get("CODERFLASH_TEST_EGRESS_LOG")
    _EVENTS = {"socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex",
               "socket.gethostbyaddr", "socket.sendto", "socket.sendmsg", "socket.bind", "urllib.Request",
               "http.client.connect"}

    def _hook(event, args):
        if event not in _EVENTS or not _LOG:
            return
        if event in ("socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg"):
            sock = args[0]
            if getattr(sock, "family", None) == socket.AF_UNIX:
                return  # a local pipe (asyncio, multiprocessing), not the network
        with open(_LOG, "a") as f:
            f.write(f"{os.getpid()} {event} {args[1:] if event.startswith('socket.') else args}\\n")

    if _LOG:
        sys.addaudithook(_hook)
        with open(_LOG + ".pids", "a") as f:  # which processes run the hook
            f.write(f"{os.getpid()}\\n")
''')


def _gbnf(text: str) -> str:
    return "root ::= " + json.dumps(text)


def _call(name: str, **args: str) -> str:
    params = "".join(f"<parameter={k}>\n{v}\n</parameter>\n" for k, v in args.items())
    return f"<tool_call>\n<function={name}>\n{params}</function>\n</tool_call>"


@pytest.fixture()
def audited(tmp_path: Path) -> dict[str, str]:
    """The environment that makes every Python process started with it record its network events."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    log = tmp_path / "egress.log"
    log.touch()
    path = os.pathsep.join([str(site)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    return {"PYTHONPATH": path, "CODERFLASH_TEST_EGRESS_LOG": str(log)}


def test_the_audit_hook_sees_a_connection(audited: dict[str, str]) -> None:
    code = "import socket\ntry:\n    socket.create_connection(('127.0.0.1', 9), timeout=1)\nexcept OSError:\n    pass\n"
    subprocess.run([sys.executable, "-c", code], env={**os.environ, **audited}, timeout=60, check=True)
    assert "socket.connect" in Path(audited["CODERFLASH_TEST_EGRESS_LOG"]).read_text()


def _audited_server(audited: dict[str, str], tmp_path: Path, options: dict) -> tuple[RawLspProcess, Path]:
    """A server on a copy of the sample repository, started with the audit hook, initialized with ``options``."""
    repo = Path(shutil.copytree(SAMPLE, tmp_path / "repo"))
    server = RawLspProcess(argv=[sys.executable, "-m", "lsp_server", "serve"], answer_requests=True,
                           env={**audited, "CODERFLASH_CACHE_DIR": str(tmp_path / "cache")})
    reply = server.call("initialize", {
        "processId": os.getpid(), "rootUri": repo.as_uri(), "capabilities": {},
        "workspaceFolders": [{"uri": repo.as_uri(), "name": "repo"}], "initializationOptions": options}, timeout=60)
    assert "result" in reply, reply
    server.notify("initialized", {})
    return server, repo


def test_a_whole_session_opens_no_connection(audited: dict[str, str], tiny_model: Path, tmp_path: Path) -> None:
    server, repo = _audited_server(audited, tmp_path, {
        "model": str(tiny_model), "llama": {"n_ctx": 8192}, "context": {"chat_reserve": 5000},
        "chat": {"max_tokens": 200}})
    try:
        assert server.wait_for_index(timeout=120)["state"] == "ready"
        main = repo / "main.py"
        server.notify("textDocument/didOpen", {"textDocument": {
            "uri": main.as_uri(), "languageId": "python", "version": 1, "text": main.read_text()}})
        reply = server.call("textDocument/inlineCompletion", {
            "textDocument": {"uri": main.as_uri()}, "position": {"line": 3, "character": 0},
            "context": {"triggerKind": 1}}, timeout=120)
        assert "result" in reply, reply
        grammars = [_gbnf(_call("read_file", path="shop/pricing.py")), _gbnf(_call("grep", pattern="def ")),
                    _gbnf(_call("search_symbols", query="Cart")), _gbnf("Done.")]
        reply = server.call("coderflash/chat", {"message": "Walk me through pricing.", "mode": "agent",
                                                "uri": main.as_uri(), "grammars": grammars}, timeout=300)
        assert "result" in reply, reply
        assert [c["name"] for c in reply["result"]["toolCalls"]] == ["read_file", "grep", "search_symbols"]
        assert server.close() == 0
    finally:
        server.proc.kill()
    hooked = Path(audited["CODERFLASH_TEST_EGRESS_LOG"] + ".pids").read_text().split()
    assert str(server.proc.pid) in hooked  # the server itself ran under the hook
    assert Path(audited["CODERFLASH_TEST_EGRESS_LOG"]).read_text() == ""


def test_a_configured_remote_backend_is_what_connects(audited: dict[str, str], tmp_path: Path) -> None:
    """The hook sees the server's own connections: with ``backend = "openai"`` a completion connects to
    ``remote.url`` (nothing listens there; the completion fails cleanly)."""
    server, repo = _audited_server(audited, tmp_path, {"backend": "openai",
                                                       "remote": {"url": "http://127.0.0.1:9/v1"}})
    try:
        main = repo / "main.py"
        server.notify("textDocument/didOpen", {"textDocument": {
            "uri": main.as_uri(), "languageId": "python", "version": 1, "text": main.read_text()}})
        server.call("textDocument/inlineCompletion", {
            "textDocument": {"uri": main.as_uri()}, "position": {"line": 3, "character": 0},
            "context": {"triggerKind": 1}}, timeout=120)
        server.close()
    finally:
        server.proc.kill()
    assert "socket.connect" in Path(audited["CODERFLASH_TEST_EGRESS_LOG"]).read_text()
