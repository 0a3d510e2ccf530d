"""Commands that write files, pointed at a destination they cannot write: one line naming the path and why,
a non-zero exit, and no partial file left behind. Each of these once ended in the last-resort
``coderflash: unexpected FileNotFoundError`` about a ``.part`` file (or a traceback, for ``bench``), and
``model synth`` left its ``.part`` beside the destination. Run as real subprocesses."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from engine.model.synth import synthesize

HAS_PROC = os.path.isdir("/proc/self")
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def run(*args: str, env: dict[str, str] | None = None, preexec_fn=None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lsp_server", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300, preexec_fn=preexec_fn)


def assert_clear_error(out: subprocess.CompletedProcess[str], what: str, path: Path | str, why: str) -> None:
    assert out.returncode == 1, (out.returncode, out.stderr)
    message = out.stderr.strip()
    assert "\n" not in message and "unexpected" not in message, message
    assert message == f"coderflash: error: cannot write {what} {path}: {why}", message


def files_in(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


@pytest.fixture
def regular_file(tmp_path: Path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_text("a file, not a directory\n")
    return path


@pytest.mark.skipif(not HAS_PROC, reason="needs /proc")
def test_model_synth_into_proc_says_so() -> None:
    assert_clear_error(run("model", "synth", "/proc/x.gguf"), "the model file", "/proc/x.gguf",
                       "/proc does not accept new files")


def test_model_synth_under_a_regular_file(tmp_path: Path, regular_file: Path) -> None:
    target = regular_file / "x.gguf"
    assert_clear_error(run("model", "synth", str(target)), "the model file", target,
                       f"{regular_file} is not a directory")
    assert files_in(tmp_path) == {"notes.txt"}


def test_model_synth_onto_a_directory_leaves_no_partial_file(tmp_path: Path) -> None:
    """The rename onto the directory failed after the whole model was written, and left ``models.part``."""
    (tmp_path / "models").mkdir()
    assert_clear_error(run("model", "synth", str(tmp_path / "models")), "the model file", tmp_path / "models",
                       "it is a directory")
    assert files_in(tmp_path) == {"models"}


@pytest.mark.skipif(IS_ROOT, reason="root writes into a directory without write permission")
def test_model_synth_into_a_read_only_directory(tmp_path: Path) -> None:
    folder = tmp_path / "read-only"
    folder.mkdir(mode=0o555)
    try:
        assert_clear_error(run("model", "synth", str(folder / "x.gguf")), "the model file", folder / "x.gguf",
                           "permission denied")
    finally:
        folder.chmod(0o755)
    assert files_in(folder) == set()


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="needs RLIMIT_FSIZE")
def test_model_synth_that_fails_mid_write_leaves_no_partial_file(tmp_path: Path) -> None:
    """A write that fails after it started (here a 100 kB file size limit, as a full disk would): the
    ``.part`` file stayed, and the message was ``unexpected OSError``."""
    import resource

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))

    out = run("model", "synth", str(tmp_path / "m.gguf"), preexec_fn=small_files)
    assert out.returncode == 1, out.stderr
    message = out.stderr.strip()
    assert "\n" not in message and "unexpected" not in message, message
    assert message.startswith(f"coderflash: error: cannot write the model file {tmp_path / 'm.gguf'}: "), message
    assert files_in(tmp_path) == set()


def test_synthesize_onto_a_directory_refuses_before_writing(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    with pytest.raises(IsADirectoryError):
        synthesize(tmp_path / "models")
    assert files_in(tmp_path) == {"models"}


@pytest.mark.parametrize("command, variable, what", [
    (["index", "."], "CODERFLASH_CACHE_DIR", "the index cache"),
    (["model", "synth", "{tmp}/q.gguf", "--vocab", "qwen3"], "CODERFLASH_CACHE_DIR", "the vocabulary cache"),
    (["model", "pull", "qwen2.5-coder-0.5b", "--find-links", "{tmp}"], "CODERFLASH_MODELS_DIR",
     "the models directory"),
], ids=["index", "synth-qwen3-vocab", "pull"])
@pytest.mark.parametrize("where", ["under-a-file", "proc"])
def test_a_cache_or_models_directory_that_cannot_be_written(tmp_path: Path, regular_file: Path, command: list[str],
                                                            variable: str, what: str, where: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    if where == "proc" and not HAS_PROC:
        pytest.skip("needs /proc")
    directory, why = ((regular_file / "cache", f"{regular_file} is not a directory") if where == "under-a-file"
                      else (Path("/proc/coderflash-cache"), "/proc does not accept new files"))
    monkeypatch.chdir(tmp_path)
    args = [arg.replace("{tmp}", str(tmp_path)) for arg in command]
    assert_clear_error(run(*args, env={variable: str(directory)}), what, directory, why)
    assert files_in(tmp_path) == {"notes.txt"}


def test_bench_results_that_cannot_be_written_are_refused_before_the_suites_run(regular_file: Path) -> None:
    """The suites ran, or the runner died with a traceback, before the results' folder was found unwritable."""
    target = regular_file / "bench.json"
    out = run("bench", "index", "--json", str(target))
    assert_clear_error(out, "the benchmark results", target, f"{regular_file} is not a directory")
    assert "coderflash bench: index" not in out.stdout + out.stderr  # no suite started


@pytest.mark.parametrize("error, blamed", [
    (OSError(errno.ENOSPC, "No space left on device"), True),
    (OSError("short write"), True),
    (BrokenPipeError(errno.EPIPE, "Broken pipe"), False),
    (ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"), False),
])
def test_an_error_about_no_path_blames_the_destination_only_when_a_write_raises_it(
        tmp_path: Path, error: OSError, blamed: bool) -> None:
    """``coderflash index`` said "cannot write the index cache …: broken pipe" when its parser pool failed to
    start: an OSError about no path was taken for a failed write, whatever its errno."""
    from lsp_server.destinations import DestinationError, writing

    with pytest.raises(DestinationError if blamed else type(error)) as raised:
        with writing(tmp_path / "cache", "the index cache", directory=True):
            raise error
    if blamed:
        assert str(raised.value).startswith(f"cannot write the index cache {tmp_path / 'cache'}: ")
