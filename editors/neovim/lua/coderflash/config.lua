-- Options for require("coderflash").setup{}; see :help coderflash-config.
local M = {}

M.defaults = {
  -- Command that starts the server on stdio. nil: `coderflash serve` from $PATH (or `server_path`).
  cmd = nil,
  -- Path to the coderflash executable when it is not on $PATH.
  server_path = nil,
  -- Filetypes to attach to; nil attaches to every file buffer.
  filetypes = nil,
  -- Filetypes never to attach to (applied to buffers on attach).
  disabled_filetypes = { "help", "gitcommit", "gitrebase", "TelescopePrompt" },
  root_markers = { ".coderflash.toml", ".git", "pyproject.toml", "package.json", "Cargo.toml", "go.mod" },
  -- Server settings sent as initializationOptions and via workspace/didChangeConfiguration,
  -- e.g. { model = "/path/to/model.gguf", context = { budget = 8192 } } or, for a remote backend,
  -- { backend = "openai", remote = { url = "http://127.0.0.1:8080/v1" } }. Unknown keys are rejected by the server.
  settings = {},
  ghost_text = {
    enabled = true,
    -- "auto": vim.lsp.inline_completion on Neovim 0.12+, the plugin's own extmarks on 0.11.
    -- "builtin": always the plugin's own implementation. "native": always vim.lsp.inline_completion.
    engine = "auto",
    debounce_ms = 75,
    hl_group = "CoderflashGhost",
  },
  -- Insert-mode keys; set any to false to leave that key alone.
  keys = {
    accept = "<Tab>", -- falls back to a normal <Tab> when nothing is shown
    accept_word = "<M-w>",
    accept_line = "<M-l>",
    dismiss = "<C-]>",
    next = "<M-]>",
    prev = "<M-[>",
    trigger = "<M-\\>",
  },
  chat = {
    -- How :CoderflashChat opens its buffer: "vsplit", "split" or "tab".
    layout = "vsplit",
  },
}

M.options = vim.deepcopy(M.defaults)

function M.set(opts)
  M.options = vim.tbl_deep_extend("force", vim.deepcopy(M.defaults), opts or {})
  return M.options
end

--- The command line that starts the server.
function M.cmd()
  local o = M.options
  if o.cmd then
    return o.cmd
  end
  local exe = o.server_path or vim.env.CODERFLASH_SERVER or "coderflash"
  return { exe, "serve" }
end

return M
