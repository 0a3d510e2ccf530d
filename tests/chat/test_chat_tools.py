"""Agent tools: what they return, and what they refuse (traversal, outside paths, symlinks out, secrets,
commands off the allowlist) without reading or running anything."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from unittest import mock

import pytest

from engine.chat.tool_calls import ToolCall
from engine.chat.repo_tools import glob_regex
from engine.chat.tool_runner import run_tool
from engine.chat.tools import EditProposal, ToolEnv

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample_repo"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(SAMPLE, root)
    (root / ".env").write_text("API_KEY=hunter2\n")
    (root / "shop" / "id_rsa").write_text("PRIVATE\n")
    (tmp_path / "outside.txt").write_text("outside secret\n")
    (root / "link_out.txt").symlink_to(tmp_path / "outside.txt")
    (root / "innocent.txt").symlink_to(root / ".env")
    (root / "linkdir").symlink_to(tmp_path)
    return root


def call(env: ToolEnv, name: str, **args):
    return run_tool(env, ToolCall(name, {k: str(v) for k, v in args.items()}))


def test_read_file_and_line_range(env: ToolEnv) -> None:
    out = call(env, "read_file", path="main.py", start_line=3, end_line=4)
    assert out.ok, out.text
    assert "main.py (lines 3-4 of" in out.text
    assert "from shop.models import Cart, Item" in out.text and "build_demo_cart" not in out.text


@pytest.mark.parametrize("path", ["../outside.txt", "shop/../../outside.txt", "link_out.txt", "linkdir/outside.txt",
                                  "/etc/passwd"])
def test_paths_outside_the_workspace_are_refused(env: ToolEnv, path: str) -> None:
    with mock.patch("builtins.open", side_effect=AssertionError("must not read")):
        out = call(env, "read_file", path=path)
    assert not out.ok and "outside the workspace" in out.text, out.text


def test_absolute_path_outside_is_refused(env: ToolEnv, tmp_path: Path) -> None:
    out = call(env, "read_file", path=str(tmp_path / "outside.txt"))
    assert not out.ok and "outside the workspace" in out.text
    # an absolute path inside the root is fine
    assert call(env, "read_file", path=str(env.roots[0] / "main.py")).ok


@pytest.mark.parametrize("path", [".env", "shop/id_rsa", "innocent.txt", "./shop/../.env"])
def test_secret_files_are_refused(env: ToolEnv, path: str) -> None:
    with mock.patch("builtins.open", side_effect=AssertionError("must not read")):
        out = call(env, "read_file", path=path)
    assert not out.ok and "secret" in out.text, out.text
    assert "hunter2" not in out.text


def test_secret_files_never_listed_or_grepped(env: ToolEnv) -> None:
    listing = call(env, "list_files", glob="**")
    assert listing.ok and "main.py" in listing.text and ".env" not in listing.text
    assert call(env, "grep", pattern="hunter2").text == "no matches for 'hunter2'"
    assert call(env, "grep", pattern="PRIVATE").text == "no matches for 'PRIVATE'"


def test_list_files_globs(env: ToolEnv) -> None:
    assert call(env, "list_files", glob="*.py").text.splitlines() == ["main.py", "shop/__init__.py", "shop/models.py",
                                                                      "shop/pricing.py"]
    assert call(env, "list_files", glob="shop/*.py").text.splitlines() == ["shop/__init__.py", "shop/models.py",
                                                                           "shop/pricing.py"]
    assert not call(env, "list_files", glob="../*").ok
    assert glob_regex("**/*.py").match("a/b/c.py") and glob_regex("**/*.py").match("c.py")
    assert not glob_regex("src/*.py").match("src/a/b.py")


def test_grep_search_symbols_find_references(env: ToolEnv) -> None:
    grep = call(env, "grep", pattern=r"def build_demo_cart")
    assert grep.ok and grep.text.startswith("main.py:7:")
    symbols = call(env, "search_symbols", query="checkout_total")
    assert "shop/pricing.py" in symbols.text and "checkout_total" in symbols.text
    refs = call(env, "find_references", symbol="build_demo_cart")
    assert "main.py:15: cart = build_demo_cart()" in refs.text, refs.text


def test_unknown_tool_and_missing_parameters(env: ToolEnv) -> None:
    out = run_tool(env, ToolCall("rm_rf", {}))
    assert not out.ok and "unknown tool" in out.text
    out = run_tool(env, ToolCall("read_file", {}))
    assert not out.ok and "path is required" in out.text
    out = run_tool(env, ToolCall("read_file", {"path": "main.py", "start_line": "x"}))
    assert not out.ok and "integer" in out.text


def test_run_command_off_by_default_and_allowlist(env: ToolEnv, repo: Path) -> None:
    with mock.patch("subprocess.Popen", side_effect=AssertionError("must not run")):
        out = call(env, "run_command", command="ls")
        assert not out.ok and "unknown tool" in out.text
        env.config.tools.run_commands = ["echo"]
        out = call(env, "run_command", command="ls -la")
        assert not out.ok and "not on the allowlist" in out.text
        out = call(env, "run_command", command="/bin/echo hi")
        assert not out.ok and "not on the allowlist" in out.text
        out = call(env, "run_command", command="echo hi; rm -rf /")  # no shell: ';' is just an argument
    assert not out.ok  # Popen was mocked to fail: it *would* have run echo with literal arguments


def test_run_command_runs_without_shell_with_cap_and_timeout(env: ToolEnv) -> None:
    py = Path(sys.executable).name
    env.config.tools.run_commands = ["echo", sys.executable]
    out = call(env, "run_command", command="echo hi; ls $HOME")
    assert out.ok and "exit code: 0" in out.text and "hi; ls $HOME" in out.text
    env.config.tools.output_cap = 100
    out = call(env, "run_command", command=f"{sys.executable} -c \"print('x' * 5000)\"")
    assert "truncated" in out.text and len(out.text) < 400
    env.config.tools.command_timeout_s = 0.5
    out = call(env, "run_command", command=f"{sys.executable} -c \"import time; time.sleep(30)\"")
    assert "timeout" in out.text, (py, out.text)


def test_propose_edit_goes_through_the_reviewer(env: ToolEnv, repo: Path) -> None:
    seen: list[EditProposal] = []
    env.apply_edit = lambda p: (seen.append(p), (True, ""))[1]
    out = call(env, "propose_edit", path="main.py", old_text="total = \n", new_text="total = checkout_total(cart)\n")
    assert out.ok and "applied" in out.text
    (proposal,) = seen
    assert proposal.current[proposal.start:proposal.end] == "total = \n"
    assert env.edits[-1]["applied"] is True
    env.apply_edit = lambda p: (False, "no thanks")
    out = call(env, "propose_edit", path="main.py", old_text="total = \n", new_text="x")
    assert not out.ok and "refused" in out.text and "no thanks" in out.text
    assert env.edits[-1]["applied"] is False
    # refused before the reviewer is asked
    env.apply_edit = lambda p: pytest.fail("must not be asked")
    for path, old in [(".env", "API"), ("../outside.txt", "outside"), ("link_out.txt", "outside"), ("main.py", "nope"),
                      ("main.py", "cart")]:
        out = call(env, "propose_edit", path=path, old_text=old, new_text="x")
        assert not out.ok, out.text
    assert (repo / ".env").read_text() == "API_KEY=hunter2\n"


def test_symlink_checks_use_the_real_path(env: ToolEnv, repo: Path, tmp_path: Path) -> None:
    # a root that is itself reached through a symlink still works
    alias = tmp_path / "alias"
    os.symlink(repo, alias)
    env.roots = [alias]
    assert call(env, "read_file", path="main.py").ok
    assert not call(env, "read_file", path="link_out.txt").ok


def test_index_driven_tools_skip_symlinks_to_secrets_and_outside(env: ToolEnv) -> None:
    for pattern in ("hunter2", "outside secret"):
        out = call(env, "grep", pattern=pattern)
        assert out.text == f"no matches for {pattern!r}", out.text
    listing = call(env, "list_files", glob="*.txt").text
    assert "innocent.txt" not in listing and "link_out.txt" not in listing
