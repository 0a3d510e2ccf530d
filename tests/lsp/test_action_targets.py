"""Code actions against hostile targets and ranges, end to end over stdio with the tiny model: a test file
that is a FIFO or a symlink out of the workspace or to a secret, and a selection or diagnostic made
backwards. Each once hung the server, edited a file outside the workspace, or answered an edit no editor
can apply."""

from __future__ import annotations

import os
import queue
from pathlib import Path
from typing import Any

import pytest

from rawlsp import RawLspProcess

OPTIONS = {"llama": {"n_ctx": 4096}, "completion": {"max_tokens": 4}}
CURSOR = {"start": {"line": 7, "character": 4}, "end": {"line": 7, "character": 4}}  # in build_demo_cart


@pytest.fixture
def server(sample_repo: Path, tiny_model: Path):
    """A server on the sample repository (prepared by the test before ``start``), killed if left running."""
    started: list[RawLspProcess] = []

    def start() -> RawLspProcess:
        proc = RawLspProcess()
        started.append(proc)
        proc.call("initialize", {"processId": None, "rootUri": sample_repo.as_uri(), "capabilities": {},
                                 "initializationOptions": {"model": str(tiny_model), **OPTIONS}})
        proc.notify("initialized", {})
        return proc

    yield start
    for proc in started:
        if proc.proc.poll() is None:
            proc.proc.kill()


def _action(server: RawLspProcess, uri: str, kind: str, rng: dict[str, Any],
            diagnostics: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    listed = server.call("textDocument/codeAction", {"textDocument": {"uri": uri}, "range": rng,
                                                     "context": {"diagnostics": diagnostics or []}})["result"]
    return next(action for action in listed if action["data"]["kind"] == kind)


def _open_main(server: RawLspProcess, repo: Path) -> str:
    uri = (repo / "main.py").as_uri()
    server.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1,
                                                            "text": (repo / "main.py").read_text()}})
    return uri


def _warnings(server: RawLspProcess) -> list[str]:
    return [m["params"]["message"] for m in server.incoming if m.get("method") == "window/showMessage"]


def _resolve_tests(server: RawLspProcess, repo: Path) -> dict[str, Any]:
    uri = _open_main(server, repo)
    try:
        return server.call("codeAction/resolve", _action(server, uri, "tests", CURSOR), timeout=90)["result"]
    except queue.Empty:
        pytest.fail("codeAction/resolve of 'Generate tests' never answered")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this platform")
def test_generate_tests_into_a_fifo_test_file_is_refused_and_the_server_exits(server, sample_repo: Path) -> None:
    """``test_main.py`` a FIFO: the action read it with ``read_text``, blocked in ``open`` for a writer that
    never came, never answered, and the blocked loader thread kept the process alive after exit."""
    os.mkfifo(sample_repo / "test_main.py")
    proc = server()
    resolved = _resolve_tests(proc, sample_repo)
    assert "edit" not in resolved or not resolved["edit"]
    assert any("named pipe" in message for message in _warnings(proc)), _warnings(proc)
    assert proc.close() == 0


@pytest.mark.parametrize("link", ["outside", "secret"])
def test_generate_tests_refuses_a_test_file_linked_outside_or_to_a_secret(server, sample_repo: Path,
                                                                         tmp_path: Path, link: str) -> None:
    """SECURITY.md: symlinks are followed only inside the root, secret files are never read. A
    ``test_main.py`` linked to a file outside (or to ``.env``) was read and answered with an edit appending
    the model's output to it."""
    if link == "outside":
        target = tmp_path / "outside_rc.sh"
        target.write_text("".join(f"echo line {i}\n" for i in range(500)))
    else:
        target = sample_repo / ".env"
        target.write_text("A=1\nB=2\n")
    (sample_repo / "test_main.py").symlink_to(target)
    proc = server()
    resolved = _resolve_tests(proc, sample_repo)
    assert not resolved.get("edit"), resolved["edit"]
    expected = "outside the workspace" if link == "outside" else "secret"
    assert any(expected in message for message in _warnings(proc)), _warnings(proc)
    assert proc.close() == 0


def _edit_range(resolved: dict[str, Any], uri: str) -> dict[str, Any]:
    (edit,) = resolved["edit"]["changes"][uri]
    return edit["range"]


def _ordered(rng: dict[str, Any]) -> bool:
    return (rng["start"]["line"], rng["start"]["character"]) <= (rng["end"]["line"], rng["end"]["character"])


def test_a_backwards_selection_gives_a_rewrite_that_applies(server, sample_repo: Path) -> None:
    """A selection made upwards arrives with ``end`` before ``start``: the rewrite sent the model an empty
    block and answered a TextEdit starting after its end."""
    proc = server()
    uri = _open_main(proc, sample_repo)
    backwards = {"start": {"line": 15, "character": 0}, "end": {"line": 2, "character": 5}}
    rewrite = proc.call("codeAction/resolve", _action(proc, uri, "rewrite", backwards), timeout=180)["result"]
    rng = _edit_range(rewrite, uri)
    assert _ordered(rng), rng
    assert (rng["start"]["line"], rng["end"]["line"]) == (2, 15)
    assert proc.close() == 0


def test_a_backwards_diagnostic_range_gives_a_fix_that_applies(server, sample_repo: Path) -> None:
    """A diagnostic whose range ends before it starts: the quickfix asked about no lines and answered a
    TextEdit starting after its end."""
    proc = server()
    uri = _open_main(proc, sample_repo)
    backwards = {"start": {"line": 15, "character": 0}, "end": {"line": 2, "character": 5}}
    diagnostic = {"range": backwards, "message": "SyntaxError: invalid syntax", "severity": 1}
    fix = proc.call("codeAction/resolve", _action(proc, uri, "quickfix", CURSOR, [diagnostic]), timeout=180)["result"]
    rng = _edit_range(fix, uri)
    assert _ordered(rng), rng
    assert rng["start"]["line"] <= 2 and rng["end"]["line"] >= 15
    assert proc.close() == 0
