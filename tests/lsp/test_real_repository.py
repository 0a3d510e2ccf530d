"""`coderflash serve` over stdio, as an editor starts it, on a real repository of hundreds of files with a
cold cache: the first completion is answered while the index is built, indexing progress is visible,
a SIGKILLed server leaves no process behind, several roots plus a loose file share one model, and a Rust
crate that wraps whole modules in macros (tokio) is indexed with the definitions inside them."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from parser_crash_hook import MARK, crash_env
from rawlsp import RawLspProcess
from real_repos import COMMAND, alive, copy_stdlib, descendants, tokio_crate

CORPUS_CACHE = Path(os.environ.get("CODERFLASH_INDEX_BENCH_CACHE", Path.home() / ".cache" / "coderflash-index-bench"))


def _server(cache: Path) -> RawLspProcess:
    return RawLspProcess(argv=[COMMAND, "serve"], env={"CODERFLASH_CACHE_DIR": str(cache)}, answer_requests=True)


def _initialize(server: RawLspProcess, roots: list[Path], model: Path) -> None:
    reply = server.call("initialize", {
        "processId": os.getpid(), "rootUri": roots[0].as_uri(),
        "capabilities": {"window": {"workDoneProgress": True}},
        "workspaceFolders": [{"uri": r.as_uri(), "name": r.name} for r in roots],
        "initializationOptions": {"model": str(model)}})
    assert "result" in reply, reply
    server.notify("initialized", {})


def _inline(server: RawLspProcess, uri: str, line: int, character: int) -> int:
    return server.request("textDocument/inlineCompletion", {
        "textDocument": {"uri": uri}, "position": {"line": line, "character": character},
        "context": {"triggerKind": 2}})


def _status(server: RawLspProcess) -> dict:
    return server.call("coderflash/status", {}, timeout=30)["result"]


@pytest.fixture(scope="module")
def stdlib_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_stdlib(tmp_path_factory.mktemp("real") / "stdlib", files=600)


def test_cold_repository_first_completion_is_answered_while_indexing(stdlib_repo: Path, tiny_model: Path,
                                                                    tmp_path: Path) -> None:
    server = _server(tmp_path / "cache")
    try:
        _initialize(server, [stdlib_repo], tiny_model)
        target = stdlib_repo / "asyncio" / "tasks.py"
        uri = server.open_document(target)
        started = time.monotonic()
        request = _inline(server, uri, 30, 0)
        states = []
        while True:
            index = _status(server)["workspaces"][0]["index"]
            states.append(index)
            if index["state"] in ("ready", "error"):
                break
            assert time.monotonic() - started < 120, states[-1]
            time.sleep(0.05)
        reply = server.response(request, timeout=120)
        assert "result" in reply, reply
        assert time.monotonic() - started < 120
        assert index["state"] == "ready" and index["files"] >= 500, index
        building = [s for s in states if s["state"] == "building"]
        assert building, f"indexing progress never showed in coderflash/status: {states[:3]}"
        assert any(s["total"] >= 500 and 0 < s["done"] < s["total"] for s in building), building[-3:]
        progress = [m for m in server.incoming if m.get("method") == "$/progress"]
        titles = [m["params"]["value"].get("title", "") for m in progress if m["params"]["value"]["kind"] == "begin"]
        assert any("indexing" in t for t in titles), titles
        # With the index ready, a completion in another file is answered too.
        other = server.open_document(stdlib_repo / "asyncio" / "queues.py")
        assert "result" in server.response(_inline(server, other, 20, 0), timeout=120)
        assert server.close() == 0
    finally:
        server.proc.kill()


def test_sigkill_mid_index_leaves_no_process(tiny_model: Path, tmp_path: Path) -> None:
    repo = copy_stdlib(tmp_path / "stdlib", files=674)
    server = _server(tmp_path / "cache")
    tree: set[int] = set()
    try:
        _initialize(server, [repo], tiny_model)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            tree |= descendants(server.proc.pid)
            if len(alive(tree)) >= 2:  # the parser processes are running: we are mid-index
                break
            time.sleep(0.01)
        assert len(alive(tree)) >= 2, "the cold index never started its parser processes"
        assert _status(server)["workspaces"][0]["index"]["state"] == "building"
        tree |= descendants(server.proc.pid)
        # The editor goes away, then the server is killed without a chance to clean up.
        server.proc.kill()  # SIGKILL
        assert server.proc.stdin is not None
        server.proc.stdin.close()
        server.proc.wait(timeout=10)
        end = time.monotonic() + 5
        while alive(tree) and time.monotonic() < end:
            time.sleep(0.1)
        assert not alive(tree), f"processes of the killed server's tree still run: {sorted(alive(tree))}"
    finally:
        for pid in alive(tree):
            os.kill(pid, signal.SIGKILL)
        if server.proc.poll() is None:
            server.proc.kill()


def test_a_parser_process_that_dies_costs_one_file_not_the_index(tiny_model: Path, tmp_path: Path) -> None:
    """600 files, cold, and one that kills its parser process every time (SIGKILL, as the OOM killer or a
    crashing grammar would): the index gets ready without that file and completions are answered."""
    repo = copy_stdlib(tmp_path / "stdlib", files=600)
    (repo / "poison.py").write_text(f'"""{MARK}"""\n')
    server = RawLspProcess(argv=[COMMAND, "serve"], answer_requests=True,
                           env={"CODERFLASH_CACHE_DIR": str(tmp_path / "cache"), **crash_env(tmp_path / "hook")})
    try:
        _initialize(server, [repo], tiny_model)
        index = server.wait_for_index(timeout=300)
        assert index["state"] == "ready" and index["files"] == 600, index
        uri = server.open_document(repo / "asyncio" / "tasks.py")
        assert "result" in server.response(_inline(server, uri, 30, 0), timeout=120)
        # Edited on disk, the file is parsed again in a worker process, never in the server's own: it is still
        # skipped, while a file created after it is indexed (the watcher takes changes in order).
        with (repo / "poison.py").open("a") as f:
            f.write("def edited():\n    return 2\n")
        time.sleep(0.5)
        (repo / "fresh.py").write_text("def fresh():\n    return 3\n")
        deadline = time.monotonic() + 60
        while (files := _status(server)["workspaces"][0]["index"]["files"]) < 601:
            assert time.monotonic() < deadline, files
            time.sleep(0.1)
        time.sleep(1.0)
        assert _status(server)["workspaces"][0]["index"]["files"] == 601
        # Opened in the editor, its buffer is not indexed either (it would be parsed in the server's process),
        # and a completion in it is answered from the buffer.
        poison = server.open_document(repo / "poison.py")
        assert "result" in server.response(_inline(server, poison, 2, 0), timeout=120)
        assert _status(server)["workspaces"][0]["index"]["files"] == 601
        assert server.close() == 0
    finally:
        server.proc.kill()


def test_two_roots_and_a_loose_file_share_one_model(sample_repo: Path, tiny_model: Path, tmp_path: Path) -> None:
    second = tmp_path / "second_root"
    second.mkdir()
    (second / "shapes.py").write_text("def area(width, height):\n    return width * height\n\n\nsize = ")
    loose_dir = tmp_path / "scratch"
    loose_dir.mkdir()
    for i in range(60):  # a directory that must never be indexed
        (loose_dir / f"junk_{i}.py").write_text(f"def junk_{i}():\n    return {i}\n")
    loose = loose_dir / "notes.py"
    loose.write_text("from main import checkout_total\n\nvalue = ")
    cache = tmp_path / "cache"
    server = _server(cache)
    try:
        _initialize(server, [sample_repo, second], tiny_model)
        uris = [server.open_document(sample_repo / "main.py"), server.open_document(second / "shapes.py"), server.open_document(loose)]
        positions = [(15, 12), (4, 7), (2, 8)]
        for uri, (line, character) in zip(uris, positions):
            reply = server.response(_inline(server, uri, line, character), timeout=120)
            assert reply["result"]["items"], reply
        status = _status(server)
        assert status["counters"]["model_loads"] == 1, status["counters"]
        roots = sorted(w["root"] for w in status["workspaces"])
        assert roots == sorted([str(sample_repo.resolve()), str(second.resolve())]), roots
        assert server.close() == 0
    finally:
        server.proc.kill()
    databases = sorted(p.name for p in (cache / "index").glob("*.sqlite"))
    assert len(databases) == 2, databases  # the two roots; the loose file's directory was never indexed


@pytest.fixture(scope="module")
def tokio_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    crate = tokio_crate(CORPUS_CACHE)
    if crate is None:
        pytest.skip("apt-get could not download librust-tokio-dev (Debian's tokio sources)")
    return Path(shutil.copytree(crate, tmp_path_factory.mktemp("real") / "tokio"))


def test_rust_crate_with_macro_wrapped_modules(tokio_repo: Path, tiny_model: Path, tmp_path: Path) -> None:
    """tokio (420 files, cold cache): the server's index holds the items tokio writes inside ``cfg_*! { ... }``
    blocks, at their own lines, and a completion at a call site of one of them is answered."""
    server = _server(tmp_path / "cache")
    try:
        _initialize(server, [tokio_repo], tiny_model)
        index = server.wait_for_index(timeout=300)
        assert index["state"] == "ready" and index["files"] >= 400, index
        caller = tokio_repo / "src/runtime/io/registration.rs"
        line = next(i for i, text in enumerate(caller.read_text().splitlines()) if "self.shared.clear_wakers()" in text)
        uri = server.open_document(caller, language="rust")
        reply = server.response(_inline(server, uri, line, caller.read_text().splitlines()[line].index("clear")),
                                timeout=120)
        assert "result" in reply, reply
        assert server.close() == 0
    finally:
        server.proc.kill()
    from indexer import Index

    with Index.open(tokio_repo, tmp_path / "cache") as built:  # the database the server wrote
        for name, path in (("RngSeedGenerator", "src/util/rand.rs"),  # inside cfg_rt! { ... }
                           ("AsyncReadExt", "src/io/util/async_read_ext.rs"),  # inside cfg_io_util! { ... }
                           ("BlockingRegionGuard", "src/runtime/context.rs")):
            defs = [d for d in built.definitions(name) if d.path == path]
            assert defs, (name, built.definitions(name))
            assert name in (tokio_repo / path).read_text().splitlines()[defs[0].name_line]


def test_an_index_that_cannot_be_built_is_reported_once_and_completions_go_on(stdlib_repo: Path, tiny_model: Path,
                                                                               tmp_path: Path) -> None:
    """The index's database path is taken by a directory, so the build fails: ``coderflash/status`` says
    ``error`` with the exception, the client gets one error message, the log file gets the failure once with
    its traceback (it had the message twice, the traceback only in the first), and completions are answered."""
    from indexer.api import db_path_for

    cache = tmp_path / "cache"
    db_path_for(os.path.realpath(stdlib_repo), cache).mkdir(parents=True)
    server = _server(cache)
    try:
        _initialize(server, [stdlib_repo], tiny_model)
        index = server.wait_for_index(timeout=120)
        assert index["state"] == "error" and "Error" in index["error"], index
        uri = server.open_document(stdlib_repo / "asyncio" / "tasks.py")
        reply = server.response(_inline(server, uri, 30, 0), timeout=120)
        assert "result" in reply, reply
        errors = [m["params"]["message"] for m in server.incoming
                  if m.get("method") == "window/logMessage" and m["params"]["type"] == 1]
        assert len([e for e in errors if e.startswith(f"indexing {stdlib_repo.resolve()} failed: ")]) == 1, errors
        assert server.close() == 0
    finally:
        server.proc.kill()
    log = (cache / "logs" / "server.log").read_text()
    assert log.count(" failed: ") == 1 and "Traceback (most recent call last)" in log.split(" failed: ")[1], log
