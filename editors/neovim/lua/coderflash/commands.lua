-- User commands (created by plugin/coderflash.lua and again by setup(), for plugin managers that add
-- the runtimepath late).
local M = {}

local function cf()
  return require("coderflash")
end

function M.create()
  vim.api.nvim_create_user_command("CoderflashChat", function(opts)
    cf().chat({
      message = opts.args,
      mode = opts.bang and "agent" or "ask",
      range = opts.range > 0 and { opts.line1, opts.line2 } or nil,
    })
  end, { nargs = "*", bang = true, range = true, desc = "coderflash: chat (! = agent mode)" })

  vim.api.nvim_create_user_command("CoderflashChatCancel", function()
    require("coderflash.chat").cancel()
  end, { desc = "coderflash: cancel the running chat answer" })

  vim.api.nvim_create_user_command("CoderflashStatus", function()
    cf().status()
  end, { desc = "coderflash: server status" })

  vim.api.nvim_create_user_command("CoderflashToggle", function()
    cf().toggle()
  end, { desc = "coderflash: ghost text on/off in this buffer" })

  vim.api.nvim_create_user_command("CoderflashReindex", function()
    cf().execute("coderflash.reindex")
  end, { desc = "coderflash: re-index the workspace" })

  vim.api.nvim_create_user_command("CoderflashClearCache", function()
    cf().execute("coderflash.clearCache")
  end, { desc = "coderflash: clear the completion cache" })

  vim.api.nvim_create_user_command("CoderflashPullModel", function(opts)
    cf().execute("coderflash.pullModel", opts.args ~= "" and { opts.args } or {})
  end, { nargs = "?", desc = "coderflash: download a model" })
end

return M
