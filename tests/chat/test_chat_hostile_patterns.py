"""A pattern the model picks must never freeze the server. ``re`` holds the GIL for the whole of one search,
so a backtracking regex or glob used to stop every other thread (the LSP event loop with status and
cancel) for seconds to forever. Each test measures the longest pause of a ticking thread while the tool
runs: on the old code the hostile inputs below pause it for several seconds (sized so the old code still
finishes, and the test fails instead of hanging)."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from typing import Callable

import pytest

from engine.chat.repo_tools import glob_regex, grep
from engine.chat.tool_calls import ToolCall
from engine.chat.tool_runner import run_tool
from engine.chat.tools import ToolEnv, ToolResult
from engine.model.backend import Cancelled, CancelToken

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample_repo"
LONG_NAME = "computethetotalpriceofcart"  # 25 word characters: (\w*)*! backtracks for seconds on it


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(SAMPLE, root)
    (root / "long_names.py").write_text(f"{LONG_NAME}\n")
    (root / "src" / "components" / "widgets").mkdir(parents=True)
    (root / "src" / "components" / "widgets" / "long_module_name.py").write_text("x = 1\n")
    return root


def call(env: ToolEnv, name: str, **args: str) -> ToolResult:
    return run_tool(env, ToolCall(name, dict(args)))


def longest_pause(work: Callable[[], ToolResult]) -> tuple[ToolResult, float, float]:
    """Runs ``work`` while another thread ticks every 5 ms: (result, seconds taken, longest gap between
    ticks). A gap as long as the work means the work held the GIL, as a frozen server does."""
    ticks = [time.monotonic()]
    done = threading.Event()

    def tick() -> None:
        while not done.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.005)

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    start = time.monotonic()
    try:
        result = work()
    finally:
        taken = time.monotonic() - start
        done.set()
        ticker.join()
    ticks.append(time.monotonic())
    return result, taken, max(b - a for a, b in zip(ticks, ticks[1:]))


def test_grep_with_nested_quantifiers_neither_freezes_nor_runs_long(env: ToolEnv) -> None:
    result, taken, pause = longest_pause(lambda: call(env, "grep", pattern=r"(\w*)*!"))
    assert pause < 0.5, f"other threads stalled {pause:.1f} s"
    assert taken < 4.0, taken
    assert not result.ok and "too slow" in result.text and "simplify" in result.text, result.text


def test_grep_polynomial_pattern_is_stopped_too(env: ToolEnv, repo: Path) -> None:
    """No nesting at all, still cubic: why the regex runs in a child process instead of being vetted."""
    (repo / "long_names.py").write_text("a" * 450 + "\n")
    env.index().build()
    result, taken, pause = longest_pause(lambda: call(env, "grep", pattern=r"\w*\w*\w*!"))
    assert pause < 0.5 and taken < 4.0, (pause, taken)
    assert not result.ok and "too slow" in result.text


def test_grep_is_cancelled_while_the_child_searches(env: ToolEnv) -> None:
    token = CancelToken()
    env.cancel = token
    threading.Timer(0.3, token.cancel).start()
    start = time.monotonic()
    with pytest.raises(Cancelled):
        grep(env, {"pattern": r"(\w*)*!"})
    assert time.monotonic() - start < 1.5


def test_ordinary_regexes_behave_as_before(env: ToolEnv) -> None:
    out = call(env, "grep", pattern=r"def build_demo_\w+\(")
    assert out.ok and out.text.startswith("main.py:7:"), out.text
    assert call(env, "grep", pattern=LONG_NAME[:12] + r"\w+$").text == f"long_names.py:1: {LONG_NAME}"
    assert call(env, "grep", pattern="build_demo_cart(").ok  # an invalid regex is searched as plain text
    assert call(env, "grep", pattern=r"no_such_\d{3}_thing").text == r"no matches for 'no_such_\\d{3}_thing'"


def test_star_heavy_glob_neither_freezes_nor_runs_long(env: ToolEnv) -> None:
    for glob in ("**" * 9 + "zzz", "*" * 24 + "zzz", "*a" * 60 + "zzz", "**/" * 40 + "*.zzz"):
        result, taken, pause = longest_pause(lambda: call(env, "list_files", glob=glob))
        assert pause < 0.5 and taken < 1.0, (glob, pause, taken)
        assert result.ok and result.text == f"no files match {glob!r}", result.text


def test_overlong_glob_is_a_tool_error(env: ToolEnv) -> None:
    result = call(env, "list_files", glob="*" * 300)
    assert not result.ok and "at most 256" in result.text


@pytest.mark.parametrize("glob, path, matches", [
    ("**/*.py", "a/b/c.py", True), ("**/*.py", "c.py", True), ("src/*.py", "src/a/b.py", False),
    ("src/**/*.py", "src/a.py", True), ("src/**/*.py", "src/x/y/a.py", True), ("src/**/*.py", "srca.py", False),
    ("src/**", "src/x/y", True), ("**", "", True), ("*", "a/b", False), ("***", "a/b", True),
    ("***/b", "a/b", True), ("***/b", "b", False), ("****/b", "ab", True), ("*.p?", "x.py", True),
    ("*.p?", "x.p/", False), ("[a-c]*.py", "b1.py", True), ("[!a-c]*.py", "b1.py", False),
    ("[]x", "[]x", True), ("[z-a]", "z", False), ("*_test*.py", "shop_test_cart.py", True),
    ("s*/w*/*.py", "src/widgets/x.py", True), ("s*/w*/*.py", "src/a/widgets/x.py", False),
])
def test_glob_meaning_is_unchanged(glob: str, path: str, matches: bool) -> None:
    """The same answers the old regex translation gave (compared over random globs while writing this)."""
    assert bool(glob_regex(glob).match(path)) is matches


def test_list_files_still_finds_files(env: ToolEnv) -> None:
    assert call(env, "list_files", glob="src/**/long_*.py").text == "src/components/widgets/long_module_name.py"
    assert call(env, "list_files", glob="long*.py").text.splitlines() == [
        "long_names.py", "src/components/widgets/long_module_name.py"]
