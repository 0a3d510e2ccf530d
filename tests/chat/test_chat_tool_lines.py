"""The agent's read-only tools number lines as the editor and the index do (a line ends at ``\\r\\n``, ``\\r`` or
``\\n``), over a real index of a file with form feeds (page breaks, as in CPython's stdlib) and a CRLF file.

They used ``str.splitlines``, which also breaks at a form feed: ``find_references`` showed, for a reference
on the index's row N, the text of another line, and ``read_file``/``grep`` gave line numbers the editor and
the index do not have."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.chat.tool_calls import ToolCall
from engine.chat.tool_runner import run_tool
from engine.chat.tools import ToolEnv

PAGES = "import os\n\x0c\ndef first():\n    return 1\n\x0c\n\x0c\ndef second():\n    return first()  # here\n"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "pages.py").write_text(PAGES)  # ``return first()`` is the editor's line 8 (1-based)
    (root / "windows.py").write_bytes(b"def w():\r\n    return first()  # crlf\r\n")
    return root


def call(env: ToolEnv, name: str, **args: str) -> str:
    out = run_tool(env, ToolCall(name, args))
    assert out.ok, out.text
    return out.text


def test_a_reference_after_form_feeds_shows_its_own_line(env: ToolEnv) -> None:
    out = call(env, "find_references", symbol="first")
    assert "pages.py:8: return first()  # here" in out.split("\n"), out  # was the text of line 11 by splitlines
    assert "windows.py:2: return first()  # crlf" in out.split("\n"), out


def test_read_file_and_grep_count_the_editors_lines(env: ToolEnv) -> None:
    out = call(env, "read_file", path="pages.py", start_line="8", end_line="8")
    assert out == "pages.py (lines 8-8 of 8)\n    8      return first()  # here\n", out
    assert "pages.py:8: return first()  # here" in call(env, "grep", pattern="here").split("\n")
    crlf = call(env, "read_file", path="windows.py")
    assert crlf == "windows.py (lines 1-2 of 2)\n    1  def w():\n    2      return first()  # crlf\n", crlf


def test_an_edit_quoted_in_lf_lines_is_found_in_a_crlf_file_once_per_occurrence(env: ToolEnv) -> None:
    """The quote matches the file's own line ends, its count too; the proposal records the file's text."""
    out = run_tool(env, ToolCall("propose_edit", {"path": "windows.py", "old_text": "def w():\n    return",
                                                  "new_text": "def w():\n    x = 1\n    return"}))
    assert "no editor is attached" in out.text, out.text  # found (was "does not occur"); nothing to apply it
    assert env.edits[-1]["oldText"] == "def w():\r\n    return"
    assert env.edits[-1]["newText"] == "def w():\r\n    x = 1\r\n    return"
    twice = run_tool(env, ToolCall("propose_edit", {"path": "pages.py", "old_text": "\x0c\n", "new_text": ""}))
    assert "occurs 3 times" in twice.text, twice.text
