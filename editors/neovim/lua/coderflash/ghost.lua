-- Ghost text for Neovim 0.11 (and for engine = "builtin" on later versions): debounced
-- textDocument/inlineCompletion requests on TextChangedI, cancelled when stale, drawn as extmarks
-- (inline virt_text for the first line, virt_lines for the rest).
local config = require("coderflash.config")
local util = require("coderflash.util")

local api = vim.api
local M = {}

M.ns = api.nvim_create_namespace("coderflash.ghost")
local METHOD = "textDocument/inlineCompletion"
local TRIGGER_INVOKED, TRIGGER_AUTOMATIC = 1, 2

---@class coderflash.GhostState
---@field timer? uv.uv_timer_t
---@field client? vim.lsp.Client
---@field request_id? integer
---@field items? table[]   { text = string, range = {srow, scol, erow, ecol} (0-based bytes) }
---@field index? integer
---@field remaining? string text not yet in the buffer
---@field anchor? integer[] {row, col} 0-based position where the ghost starts
---@field tick? integer changedtick the ghost belongs to
---@field extmark? integer
---@field enabled boolean
local states = {}

local function state(bufnr)
  local s = states[bufnr]
  if not s then
    s = { enabled = true }
    states[bufnr] = s
  end
  return s
end

local function cursor()
  local pos = api.nvim_win_get_cursor(0)
  return pos[1] - 1, pos[2]
end

local function in_insert()
  return api.nvim_get_mode().mode:sub(1, 1) == "i"
end

local function cancel_request(s)
  if s.request_id and s.client then
    pcall(s.client.cancel_request, s.client, s.request_id)
  end
  s.request_id = nil
end

local function stop_timer(s)
  if s.timer then
    s.timer:stop()
  end
end

--- Remove the ghost (keeps the buffer's enabled flag).
function M.clear(bufnr)
  bufnr = bufnr or api.nvim_get_current_buf()
  local s = states[bufnr]
  if not s then
    return
  end
  stop_timer(s)
  cancel_request(s)
  if api.nvim_buf_is_valid(bufnr) then
    api.nvim_buf_clear_namespace(bufnr, M.ns, 0, -1)
  end
  s.items, s.index, s.remaining, s.anchor, s.extmark, s.tick = nil, nil, nil, nil, nil, nil
end

function M.visible(bufnr)
  local s = states[bufnr or api.nvim_get_current_buf()]
  return s ~= nil and s.remaining ~= nil and s.remaining ~= ""
end

local function draw(bufnr, s, counter)
  api.nvim_buf_clear_namespace(bufnr, M.ns, 0, -1)
  local hl = config.options.ghost_text.hl_group
  local lines = vim.split(s.remaining, "\n", { plain = true })
  local first = { { lines[1], hl } }
  if counter then
    table.insert(first, { counter, "Comment" })
  end
  local virt_lines = {}
  for i = 2, #lines do
    virt_lines[#virt_lines + 1] = { { lines[i] == "" and " " or lines[i], hl } }
  end
  s.extmark = api.nvim_buf_set_extmark(bufnr, M.ns, s.anchor[1], s.anchor[2], {
    virt_text = first,
    virt_text_pos = "inline",
    virt_lines = #virt_lines > 0 and virt_lines or nil,
    hl_mode = "combine",
    priority = 1000,
  })
end

--- Show item `index`: the part of its text that is not yet typed, at the cursor.
local function present(bufnr, s, index)
  local item = s.items[index]
  local row, col = cursor()
  local srow, scol = item.range[1], item.range[2]
  local typed = ""
  if srow == row and scol <= col then
    typed = api.nvim_buf_get_text(bufnr, row, scol, row, col, {})[1] or ""
  end
  if item.text:sub(1, #typed) ~= typed then
    return false -- the user typed something else
  end
  s.index = index
  s.remaining = item.text:sub(#typed + 1)
  s.anchor = { row, col }
  s.tick = api.nvim_buf_get_changedtick(bufnr)
  if s.remaining == "" then
    return false
  end
  draw(bufnr, s, #s.items > 1 and (" (%d/%d)"):format(index, #s.items) or nil)
  return true
end

local function to_item(bufnr, client, raw, row, col)
  local text = raw.insertText
  if type(text) == "table" then
    text = text.value -- a snippet: shown and inserted as its text
  end
  if type(text) ~= "string" or text == "" then
    return nil
  end
  local range = { row, col, row, col }
  if raw.range then
    local function byte(pos)
      local line = api.nvim_buf_get_lines(bufnr, pos.line, pos.line + 1, false)[1] or ""
      local ok, b = pcall(vim.str_byteindex, line, client.offset_encoding, pos.character, false)
      return ok and b or pos.character
    end
    range = { raw.range.start.line, byte(raw.range.start), raw.range["end"].line, byte(raw.range["end"]) }
  end
  return { text = text, range = range }
end

--- Send one request for the cursor position; a newer request or edit makes the answer stale.
function M.request(bufnr, trigger_kind)
  bufnr = bufnr or api.nvim_get_current_buf()
  local s = state(bufnr)
  cancel_request(s)
  local client = util.client(bufnr)
  if not client or not s.enabled or api.nvim_get_current_buf() ~= bufnr then
    return
  end
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  params.context = { triggerKind = trigger_kind or TRIGGER_AUTOMATIC }
  local tick = api.nvim_buf_get_changedtick(bufnr)
  local row, col = cursor()
  local request_id
  local ok, id = client:request(METHOD, params, function(err, result)
    if s.request_id ~= request_id then
      return -- superseded
    end
    s.request_id = nil
    if err or not result or not api.nvim_buf_is_valid(bufnr) then
      return
    end
    if api.nvim_get_current_buf() ~= bufnr or not in_insert() then
      return
    end
    local crow, ccol = cursor()
    if api.nvim_buf_get_changedtick(bufnr) ~= tick or crow ~= row or ccol ~= col then
      return -- stale: the buffer or cursor moved on
    end
    local items = {}
    for _, raw in ipairs(result.items or result) do
      local item = to_item(bufnr, client, raw, row, col)
      if item then
        items[#items + 1] = item
      end
    end
    if #items == 0 then
      return
    end
    s.items = items
    present(bufnr, s, 1)
  end, bufnr)
  if ok then
    request_id = id
    s.request_id = id
    s.client = client
  end
end

--- Debounced request (TextChangedI).
function M.schedule(bufnr)
  local s = state(bufnr)
  if not s.enabled or not config.options.ghost_text.enabled then
    return
  end
  if s.tick and s.tick == api.nvim_buf_get_changedtick(bufnr) and M.visible(bufnr) then
    return -- our own partial accept
  end
  M.clear(bufnr)
  s.timer = s.timer or vim.uv.new_timer()
  s.timer:start(config.options.ghost_text.debounce_ms, 0, vim.schedule_wrap(function()
    if api.nvim_buf_is_valid(bufnr) and in_insert() then
      M.request(bufnr, TRIGGER_AUTOMATIC)
    end
  end))
end

local function next_word(text)
  return text:match("^%s*[%w_]+") or text:match("^%s*[^%w_%s]+") or text:match("^%s+") or text:sub(1, 1)
end

local function next_line(text)
  if text:sub(1, 1) == "\n" then
    return "\n" .. (text:sub(2):match("^[^\n]*") or "")
  end
  return text:match("^[^\n]*")
end

--- Accept all, one word or one line of the ghost. Returns false when nothing is shown.
---@param what? "all"|"word"|"line"
function M.accept(what, bufnr)
  bufnr = bufnr or api.nvim_get_current_buf()
  local s = states[bufnr]
  if not M.visible(bufnr) then
    return false
  end
  local part = s.remaining
  if what == "word" then
    part = next_word(part)
  elseif what == "line" then
    part = next_line(part)
  end
  local row, col = s.anchor[1], s.anchor[2]
  local lines = vim.split(part, "\n", { plain = true })
  local rest = s.remaining:sub(#part + 1)
  api.nvim_buf_clear_namespace(bufnr, M.ns, 0, -1)
  if rest == "" then
    -- Whole item: replace its range (which may extend past the cursor) with its text.
    local item = s.items[s.index]
    local erow, ecol = item.range[3], item.range[4]
    if erow < row or (erow == row and ecol < col) then
      erow, ecol = row, col
    end
    api.nvim_buf_set_text(bufnr, row, col, erow, ecol, lines)
  else
    api.nvim_buf_set_text(bufnr, row, col, row, col, lines)
  end
  local new_row = row + #lines - 1
  local new_col = (#lines == 1 and col or 0) + #lines[#lines]
  api.nvim_win_set_cursor(0, { new_row + 1, new_col })
  if rest == "" then
    M.clear(bufnr)
  else
    s.remaining = rest
    s.anchor = { new_row, new_col }
    s.tick = api.nvim_buf_get_changedtick(bufnr)
    draw(bufnr, s)
  end
  return true
end

function M.dismiss(bufnr)
  local visible = M.visible(bufnr)
  M.clear(bufnr)
  return visible
end

--- Show the next/previous candidate; with none shown, ask the server explicitly.
function M.cycle(delta, bufnr)
  bufnr = bufnr or api.nvim_get_current_buf()
  local s = states[bufnr]
  if not s or not s.items or #s.items < 2 then
    if not M.visible(bufnr) then
      M.request(bufnr, TRIGGER_INVOKED)
    end
    return
  end
  local index = (s.index - 1 + delta) % #s.items + 1
  present(bufnr, s, index)
end

function M.trigger(bufnr)
  M.request(bufnr or api.nvim_get_current_buf(), TRIGGER_INVOKED)
end

function M.set_enabled(bufnr, enabled)
  state(bufnr).enabled = enabled
  if not enabled then
    M.clear(bufnr)
  end
end

function M.is_enabled(bufnr)
  return state(bufnr).enabled and config.options.ghost_text.enabled
end

--- Hook the buffer's insert-mode events.
function M.attach(bufnr)
  local group = api.nvim_create_augroup("coderflash.ghost." .. bufnr, { clear = true })
  api.nvim_create_autocmd("TextChangedI", {
    group = group,
    buffer = bufnr,
    callback = function()
      M.schedule(bufnr)
    end,
  })
  api.nvim_create_autocmd("CursorMovedI", {
    group = group,
    buffer = bufnr,
    callback = function()
      local s = states[bufnr]
      if s and s.anchor then
        local row, col = cursor()
        if row ~= s.anchor[1] or col ~= s.anchor[2] then
          M.clear(bufnr)
        end
      end
    end,
  })
  api.nvim_create_autocmd({ "InsertLeave", "BufLeave" }, {
    group = group,
    buffer = bufnr,
    callback = function()
      M.clear(bufnr)
    end,
  })
  api.nvim_create_autocmd("LspDetach", {
    group = group,
    buffer = bufnr,
    callback = function(args)
      local client = vim.lsp.get_client_by_id(args.data.client_id)
      if client and client.name == util.NAME then
        M.clear(bufnr)
        pcall(api.nvim_del_augroup_by_id, group)
        local s = states[bufnr]
        if s and s.timer then
          s.timer:close()
        end
        states[bufnr] = nil
      end
    end,
  })
end

-- Test/introspection helper: the ghost as plain data.
function M.get(bufnr)
  bufnr = bufnr or api.nvim_get_current_buf()
  local s = states[bufnr]
  if not s or not s.remaining then
    return nil
  end
  return { text = s.remaining, row = s.anchor[1], col = s.anchor[2], index = s.index, count = #s.items }
end

return M
