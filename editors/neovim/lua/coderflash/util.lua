local M = {}

M.NAME = "coderflash"

--- The coderflash client attached to a buffer (or any running one when bufnr is nil).
function M.client(bufnr)
  local clients = vim.lsp.get_clients({ name = M.NAME, bufnr = bufnr })
  if #clients == 0 and bufnr ~= nil then
    clients = vim.lsp.get_clients({ name = M.NAME })
  end
  return clients[1]
end

function M.uuid()
  local t = {}
  for i = 1, 16 do
    t[i] = math.random(0, 255)
  end
  t[7] = bit.bor(bit.band(t[7], 0x0f), 0x40)
  t[9] = bit.bor(bit.band(t[9], 0x3f), 0x80)
  local h = {}
  for i = 1, 16 do
    h[i] = string.format("%02x", t[i])
  end
  local s = table.concat(h)
  return ("%s-%s-%s-%s-%s"):format(s:sub(1, 8), s:sub(9, 12), s:sub(13, 16), s:sub(17, 20), s:sub(21, 32))
end

function M.notify(msg, level)
  vim.notify("coderflash: " .. msg, level or vim.log.levels.INFO)
end

return M
