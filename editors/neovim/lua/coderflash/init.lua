-- coderflash for Neovim >= 0.11: registers the language server, draws inline completions as ghost
-- text, and adds chat/status commands. Usage: require("coderflash").setup{ ... } (:help coderflash).
local config = require("coderflash.config")
local util = require("coderflash.util")

local api = vim.api
local M = {}

M.version = "0.1.0"

local did_setup = false

--- Which ghost-text implementation a buffer uses.
function M.engine()
  local choice = config.options.ghost_text.engine
  local native = require("coderflash.native")
  if choice == "native" or (choice == "auto" and native.available()) then
    return native
  end
  return require("coderflash.ghost")
end

local function feed(key)
  api.nvim_feedkeys(vim.keycode(key), "n", false)
end

local function map_keys(bufnr)
  local keys = config.options.keys
  local function map(lhs, fn, desc)
    if lhs then
      vim.keymap.set("i", lhs, fn, { buffer = bufnr, desc = "coderflash: " .. desc, silent = true })
    end
  end
  map(keys.accept, function()
    if not M.engine().accept("all", bufnr) then
      feed(keys.accept)
    end
  end, "accept suggestion")
  map(keys.accept_word, function()
    if not M.engine().accept("word", bufnr) then
      feed(keys.accept_word)
    end
  end, "accept next word")
  map(keys.accept_line, function()
    if not M.engine().accept("line", bufnr) then
      feed(keys.accept_line)
    end
  end, "accept next line")
  map(keys.dismiss, function()
    if not M.engine().dismiss(bufnr) then
      feed(keys.dismiss)
    end
  end, "dismiss suggestion")
  map(keys.next, function()
    M.engine().cycle(1, bufnr)
  end, "next suggestion")
  map(keys.prev, function()
    M.engine().cycle(-1, bufnr)
  end, "previous suggestion")
  map(keys.trigger, function()
    M.engine().trigger(bufnr)
  end, "request a suggestion")
end

local function on_attach(client, bufnr)
  if vim.tbl_contains(config.options.disabled_filetypes or {}, vim.bo[bufnr].filetype) then
    vim.schedule(function()
      pcall(vim.lsp.buf_detach_client, bufnr, client.id)
    end)
    return
  end
  if config.options.ghost_text.enabled then
    local engine = M.engine()
    if engine == require("coderflash.native") then
      engine.attach(bufnr, client.id)
    else
      engine.attach(bufnr)
    end
    map_keys(bufnr)
  end
end

--- Settings the server receives (initializationOptions and didChangeConfiguration).
function M.settings()
  return vim.deepcopy(config.options.settings or {})
end

--- Change server settings at run time: merged into the current ones and sent to running clients.
function M.update_settings(settings)
  config.options.settings = vim.tbl_deep_extend("force", config.options.settings or {}, settings or {})
  for _, client in ipairs(vim.lsp.get_clients({ name = util.NAME })) do
    client.settings = { coderflash = M.settings() }
    client:notify("workspace/didChangeConfiguration", { settings = { coderflash = M.settings() } })
  end
end

function M.setup(opts)
  if vim.fn.has("nvim-0.11") == 0 then
    util.notify("needs Neovim 0.11 or later", vim.log.levels.ERROR)
    return
  end
  config.set(opts)
  did_setup = true
  require("coderflash.commands").create()
  api.nvim_set_hl(0, "CoderflashGhost", { link = "Comment", default = true })

  vim.lsp.config(util.NAME, {
    cmd = config.cmd(),
    filetypes = config.options.filetypes,
    root_markers = config.options.root_markers,
    init_options = M.settings(),
    settings = { coderflash = M.settings() },
    on_attach = on_attach,
    handlers = {
      ["coderflash/chatDelta"] = function(_, params)
        require("coderflash.chat").on_delta(params)
      end,
    },
  })
  vim.lsp.enable(util.NAME)
  if vim.v.vim_did_enter == 0 then
    -- setup() ran after the files were read (e.g. from `nvim -c`): vim.lsp.enable only starts
    -- clients for buffers that exist once Neovim has entered, so attach them at VimEnter.
    api.nvim_create_autocmd("VimEnter", {
      once = true,
      callback = function()
        pcall(vim.cmd.doautoall, "nvim.lsp.enable FileType")
      end,
    })
  end
end

function M.is_setup()
  return did_setup
end

-- Public helpers used by commands and statuslines.
function M.status(cb)
  require("coderflash.status").show(cb)
end

function M.statusline()
  return require("coderflash.status").statusline()
end

function M.chat(args)
  require("coderflash.chat").ask(args)
end

--- Run a server command through workspace/executeCommand.
function M.execute(command, arguments)
  local client = util.client(api.nvim_get_current_buf())
  if not client then
    util.notify("no coderflash client is running", vim.log.levels.WARN)
    return
  end
  client:request("workspace/executeCommand", { command = command, arguments = arguments or {} }, function(err, result)
    if err then
      util.notify(command .. ": " .. (err.message or vim.inspect(err)), vim.log.levels.ERROR)
    elseif result ~= nil and result ~= vim.NIL then
      util.notify(command .. ": " .. (type(result) == "string" and result or vim.inspect(result)))
    end
  end, api.nvim_get_current_buf())
end

function M.toggle(bufnr)
  bufnr = bufnr or api.nvim_get_current_buf()
  local engine = M.engine()
  if engine == require("coderflash.native") then
    local on = not vim.lsp.inline_completion.is_enabled({ bufnr = bufnr })
    vim.lsp.inline_completion.enable(on, { bufnr = bufnr })
    util.notify("ghost text " .. (on and "on" or "off"))
  else
    local ghost = require("coderflash.ghost")
    local on = not ghost.is_enabled(bufnr)
    ghost.set_enabled(bufnr, on)
    util.notify("ghost text " .. (on and "on" or "off"))
  end
end

return M
