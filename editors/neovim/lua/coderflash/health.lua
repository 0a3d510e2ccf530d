-- :checkhealth coderflash
local M = {}

function M.check()
  local health = vim.health
  local config = require("coderflash.config")
  local util = require("coderflash.util")

  health.start("coderflash: Neovim")
  local v = vim.version()
  local version = ("%d.%d.%d"):format(v.major, v.minor, v.patch)
  if vim.fn.has("nvim-0.11") == 1 then
    health.ok("Neovim " .. version)
  else
    health.error("Neovim " .. version .. " is too old", { "coderflash needs Neovim 0.11 or later" })
    return
  end
  local native = require("coderflash.native").available()
  local engine = config.options.ghost_text.engine
  if engine == "native" and not native then
    health.error("ghost_text.engine = \"native\" but vim.lsp.inline_completion is missing (Neovim 0.12+)")
  elseif engine == "builtin" or not native then
    health.ok("ghost text: the plugin's own extmarks (textDocument/inlineCompletion)")
  else
    health.ok("ghost text: vim.lsp.inline_completion")
  end

  health.start("coderflash: setup")
  if require("coderflash").is_setup() then
    health.ok("require(\"coderflash\").setup{} was called")
  else
    health.warn("setup() has not been called", { "Add require(\"coderflash\").setup{} to your config" })
  end
  local cmd = config.cmd()
  if type(cmd) ~= "table" or #cmd == 0 then
    health.error("no server command", { "Set `cmd` or `server_path` in setup{}" })
    return
  end
  if vim.fn.executable(cmd[1]) == 1 then
    health.ok(("server command: %s"):format(table.concat(cmd, " ")))
  else
    health.error(("%s is not executable"):format(cmd[1]), {
      "Install coderflash (pip install coderflash) so `coderflash` is on $PATH,",
      "or set `server_path`/`cmd` in setup{}",
    })
    return
  end
  if cmd[#cmd] == "serve" then
    local probe = vim.list_slice(cmd, 1, #cmd - 1)
    probe[#probe + 1] = "--version"
    local ok, res = pcall(function()
      return vim.system(probe, { text = true }):wait(15000)
    end)
    if ok and res.code == 0 then
      health.ok(vim.trim(res.stdout ~= "" and res.stdout or res.stderr))
    else
      health.warn(("`%s` failed: %s"):format(table.concat(probe, " "),
        ok and vim.trim((res.stderr or "") .. (res.stdout or "")) or tostring(res)))
    end
  end
  local model = (config.options.settings or {}).model or vim.env.CODERFLASH_MODEL
  if model then
    health.ok("model: " .. tostring(model))
  else
    health.info("model: the server's default (see `coderflash doctor`)")
  end

  health.start("coderflash: client")
  local clients = vim.lsp.get_clients({ name = util.NAME })
  if #clients == 0 then
    health.info("no coderflash client is running (open a file to start one)")
    return
  end
  for _, client in ipairs(clients) do
    local caps = client.server_capabilities or {}
    local bufs = vim.tbl_keys(client.attached_buffers or {})
    health.ok(("client %d running (root %s, %d buffer(s))"):format(client.id, client.root_dir or "none", #bufs))
    if caps.inlineCompletionProvider then
      health.ok("server offers textDocument/inlineCompletion")
    else
      health.warn("server does not offer textDocument/inlineCompletion")
    end
    if caps.codeActionProvider then
      health.ok("server offers code actions (vim.lsp.buf.code_action)")
    else
      health.info("server offers no code actions")
    end
  end
end

return M
