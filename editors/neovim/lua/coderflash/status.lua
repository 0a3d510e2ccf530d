-- :CoderflashStatus and a statusline component.
local util = require("coderflash.util")

local api = vim.api
local M = {}

M.last = nil -- last coderflash/status result

local function format(status)
  local lines = {}
  local function add(fmt, ...)
    lines[#lines + 1] = fmt:format(...)
  end
  add("coderflash %s", tostring(status.version or "?"))
  local model = status.model
  if type(model) == "table" then
    local parts = {}
    for k, v in vim.spairs(model) do
      if type(v) ~= "table" then
        parts[#parts + 1] = ("%s=%s"):format(k, tostring(v))
      end
    end
    add("model: %s", table.concat(parts, ", "))
  end
  add("requests: %s  cancelled: %s", tostring(status.requests or 0), tostring(status.cancelled or 0))
  add("prompt tokens: %s  reused: %s  evaluated: %s", tostring(status.prompt_tokens or 0),
    tostring(status.reused_tokens or 0), tostring(status.evaluated_tokens or 0))
  if type(status.counters) == "table" and next(status.counters) then
    local parts = {}
    for k, v in vim.spairs(status.counters) do
      parts[#parts + 1] = ("%s=%s"):format(k, type(v) == "table" and vim.inspect(v) or tostring(v))
    end
    add("counters: %s", table.concat(parts, ", "))
  end
  for _, ws in ipairs(type(status.workspaces) == "table" and status.workspaces or {}) do
    if type(ws) == "table" then
      add("workspace: %s", tostring(ws.root or ws.path or vim.inspect(ws)))
    else
      add("workspace: %s", tostring(ws))
    end
  end
  return lines
end

M.format = format

--- Request coderflash/status; show it (or pass it to cb).
function M.show(cb)
  local client = util.client(api.nvim_get_current_buf())
  if not client then
    util.notify("no coderflash client is running", vim.log.levels.WARN)
    return
  end
  client:request("coderflash/status", vim.empty_dict(), function(err, result)
    if err then
      util.notify("status: " .. (err.message or vim.inspect(err)), vim.log.levels.ERROR)
      return
    end
    M.last = result
    if cb then
      cb(result)
      return
    end
    vim.notify(table.concat(format(result or {}), "\n"), vim.log.levels.INFO, { title = "coderflash" })
  end, api.nvim_get_current_buf())
end

--- Short text for a statusline: server progress (indexing, model loading) or the reuse ratio.
function M.statusline()
  local client = util.client(api.nvim_get_current_buf())
  if not client then
    return ""
  end
  local progress = ""
  for _, msg in ipairs(vim.split(vim.lsp.status(), ", ", { plain = true })) do
    if msg ~= "" then
      progress = msg
    end
  end
  if progress ~= "" then
    return "✦ " .. progress
  end
  local s = M.last
  if s and (s.prompt_tokens or 0) > 0 then
    return ("✦ %d%% reused"):format(math.floor(100 * (s.reused_tokens or 0) / s.prompt_tokens))
  end
  return "✦"
end

return M
