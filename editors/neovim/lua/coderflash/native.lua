-- Ghost text through Neovim 0.12+'s vim.lsp.inline_completion (engine = "native" or "auto" on 0.12+).
local util = require("coderflash.util")

local M = {}

function M.available()
  local ic = vim.lsp.inline_completion
  return ic ~= nil and type(ic.enable) == "function" and type(ic.get) == "function"
end

function M.attach(bufnr, client_id)
  vim.lsp.inline_completion.enable(true, { bufnr = bufnr, client_id = client_id })
end

local function partial(what)
  return function(item)
    local text = item.insert_text or item.insertText
    if type(text) ~= "string" then
      return false
    end
    local part = what == "word" and (text:match("^%s*[%w_]+") or text:sub(1, 1)) or text:match("^[^\n]*")
    vim.api.nvim_put({ part }, "c", false, true)
    return true
  end
end

--- Accept; returns true when something was accepted.
function M.accept(what, bufnr)
  local ic = vim.lsp.inline_completion
  if what == "word" or what == "line" then
    local accepted = false
    local ok, res = pcall(ic.get, {
      bufnr = bufnr,
      on_accept = function(item)
        accepted = partial(what)(item)
        if not accepted then
          -- Unknown item shape: insert it whole.
          accepted = true
          return false
        end
      end,
    })
    return ok and (res == true or accepted)
  end
  local ok, res = pcall(ic.get, { bufnr = bufnr })
  return ok and res == true
end

function M.dismiss(bufnr)
  -- 0.12 has no public dismiss: toggling the capability off and on drops the shown item.
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local client = util.client(bufnr)
  local filter = { bufnr = bufnr, client_id = client and client.id or nil }
  vim.lsp.inline_completion.enable(false, filter)
  vim.lsp.inline_completion.enable(true, filter)
  return true
end

function M.cycle(delta, bufnr)
  local ic = vim.lsp.inline_completion
  local select = ic.select or ic.jump
  if select then
    select({ bufnr = bufnr, count = delta })
  end
end

function M.trigger(bufnr)
  pcall(vim.lsp.inline_completion.get, { bufnr = bufnr })
end

function M.visible()
  return nil -- unknown: accept() falls back to the key when nothing was accepted
end

return M
