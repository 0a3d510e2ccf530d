"""Drive a real headless Neovim over its RPC socket without extra Python dependencies: every call is
`nvim --server SOCK --remote-expr/--remote-send`, which speaks msgpack-RPC for us."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "editors" / "neovim"
SAMPLE_REPO = REPO / "examples" / "sample_repo"


def nvim_binary() -> str | None:
    candidate = Path(sys.executable).parent / "nvim"
    if candidate.exists():
        return str(candidate)
    return shutil.which("nvim")


def nvim_version(binary: str) -> tuple[int, int, int]:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30).stdout
    first = out.splitlines()[0].split()[1].lstrip("v")  # "NVIM v0.11.4"
    parts = [int("".join(ch for ch in p if ch.isdigit()) or 0) for p in first.split(".")[:3]]
    return tuple(parts + [0] * (3 - len(parts)))  # type: ignore[return-value]


def server_command() -> list[str]:
    exe = Path(sys.executable).parent / "coderflash"
    if exe.exists():
        return [str(exe), "serve"]
    return [sys.executable, "-m", "lsp_server", "serve"]


def lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid Lua string literal for our inputs


def plugin_setup(model: Path) -> str:
    """The plugin's setup as a user writes it: this checkout's server, ``model``, fast built-in ghost text."""
    cmd = "{" + ", ".join(lua_string(c) for c in server_command()) + "}"
    return f"""
require("coderflash").setup({{
  cmd = {cmd},
  settings = {{ model = {lua_string(str(model))} }},
  ghost_text = {{ engine = "builtin", debounce_ms = 30 }},
}})
"""


class Nvim:
    """One headless Neovim with the plugin on its runtimepath, listening on a socket."""

    def __init__(self, binary: str, workdir: Path, state: Path, setup_lua: str, files: list[str]):
        self.binary = binary
        self.sock = str(state / "nvim.sock")
        env = dict(os.environ)
        for key, sub in (("XDG_STATE_HOME", "state"), ("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"),
                         ("XDG_CACHE_HOME", "cache")):
            path = state / sub
            path.mkdir(parents=True, exist_ok=True)
            env[key] = str(path)
        env.pop("NVIM", None)
        env.pop("NVIM_LISTEN_ADDRESS", None)
        self.env = env
        setup_file = state / "setup.lua"
        setup_file.write_text(setup_lua)
        self.log = open(state / "nvim.log", "w")
        self.proc = subprocess.Popen(
            [binary, "--headless", "--clean", "--listen", self.sock,
             "--cmd", f"set rtp^={PLUGIN}", "-c", f"luafile {setup_file}", *files],
            cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while not os.path.exists(self.sock):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nvim did not start: {(state / 'nvim.log').read_text()}")
            time.sleep(0.05)

    def _remote(self, flag: str, arg: str) -> str:
        res = subprocess.run([self.binary, "--headless", "--clean", "--server", self.sock, flag, arg],
                             capture_output=True, text=True, timeout=30, env=self.env, stdin=subprocess.DEVNULL)
        if res.returncode != 0:
            raise RuntimeError(f"nvim {flag} failed: {res.stderr}")
        return res.stdout

    def lua(self, code: str):
        """Evaluate a Lua expression in the editor; the result comes back through JSON."""
        wrapped = f"vim.json.encode({{ v = (function() {code} end)() }})"
        out = self._remote("--remote-expr", f"luaeval({json.dumps(wrapped)})")
        data = json.loads(out) if out.strip() else None
        return data.get("v") if isinstance(data, dict) else None  # {v = nil} encodes as []

    def keys(self, keys: str) -> None:
        """Type keys as if the user did (nvim_input)."""
        self.lua(f"vim.api.nvim_input({lua_string(keys)})")

    def wait(self, code: str, timeout: float = 30.0, interval: float = 0.1):
        """Poll a Lua function body until it returns a truthy value; returns it."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.lua(code)
            if last:
                return last
            time.sleep(interval)
        raise TimeoutError(f"timed out waiting for: {code} (last: {last!r})")

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self._remote("--remote-send", "<C-\\><C-n>:qa!<CR>")
            except Exception:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
