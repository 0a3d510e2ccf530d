-- :CoderflashChat — a chat buffer fed by the `coderflash/chat` request and its streamed
-- `coderflash/chatDelta` notifications. Agent-mode edits arrive as workspace/applyEdit, which
-- Neovim applies itself.
local config = require("coderflash.config")
local util = require("coderflash.util")

local api = vim.api
local M = {}

---@type table<string, {bufnr: integer, client: vim.lsp.Client, request_id?: integer, done: boolean, streamed: boolean, text: string, result?: table, error?: table}>
M.conversations = {}
local chat_buf -- the chat buffer (one per Neovim instance; conversations continue in it)

local function append(bufnr, chunk)
  if not api.nvim_buf_is_valid(bufnr) or chunk == "" then
    return
  end
  vim.bo[bufnr].modifiable = true
  local last = api.nvim_buf_line_count(bufnr)
  local line = api.nvim_buf_get_lines(bufnr, last - 1, last, false)[1] or ""
  local lines = vim.split(line .. chunk, "\n", { plain = true })
  api.nvim_buf_set_lines(bufnr, last - 1, last, false, lines)
  vim.bo[bufnr].modifiable = false
  for _, win in ipairs(vim.fn.win_findbuf(bufnr)) do
    api.nvim_win_set_cursor(win, { api.nvim_buf_line_count(bufnr), 0 })
  end
end

local function open_buffer()
  if chat_buf and api.nvim_buf_is_valid(chat_buf) then
    if #vim.fn.win_findbuf(chat_buf) == 0 then
      local layout = config.options.chat.layout
      vim.cmd(layout == "tab" and "tab split" or layout == "split" and "split" or "vsplit")
      api.nvim_win_set_buf(0, chat_buf)
    end
    return chat_buf
  end
  local source_win = api.nvim_get_current_win()
  local layout = config.options.chat.layout
  vim.cmd(layout == "tab" and "tab split" or layout == "split" and "split" or "vsplit")
  chat_buf = api.nvim_create_buf(false, true)
  api.nvim_win_set_buf(0, chat_buf)
  api.nvim_buf_set_name(chat_buf, "coderflash://chat")
  vim.bo[chat_buf].buftype = "nofile"
  vim.bo[chat_buf].bufhidden = "hide"
  vim.bo[chat_buf].swapfile = false
  vim.bo[chat_buf].filetype = "markdown"
  vim.wo.wrap = true
  vim.wo.linebreak = true
  api.nvim_buf_set_lines(chat_buf, 0, -1, false, { "# coderflash chat", "" })
  vim.bo[chat_buf].modifiable = false
  local function map(lhs, fn, desc)
    vim.keymap.set("n", lhs, fn, { buffer = chat_buf, desc = "coderflash chat: " .. desc })
  end
  map("i", function()
    M.prompt()
  end, "ask a follow-up")
  map("<CR>", function()
    M.prompt()
  end, "ask a follow-up")
  map("<C-c>", function()
    M.cancel()
  end, "cancel the running answer")
  map("q", function()
    vim.cmd("close")
  end, "close")
  if api.nvim_win_is_valid(source_win) then
    vim.b[chat_buf].coderflash_source_win = source_win
  end
  return chat_buf
end

--- Send a message. args = { message = string, mode = "ask"|"agent", range = {line1, line2}? }
function M.ask(args)
  args = args or {}
  local source = api.nvim_get_current_buf()
  if source == chat_buf then
    local win = vim.b[chat_buf].coderflash_source_win
    source = (win and api.nvim_win_is_valid(win)) and api.nvim_win_get_buf(win) or vim.fn.bufnr("#")
  end
  local client = util.client(source)
  if not client then
    util.notify("no coderflash client is running (open a file first)", vim.log.levels.WARN)
    return
  end
  local message = args.message
  if not message or message == "" then
    vim.ui.input({ prompt = "coderflash> " }, function(input)
      if input and input ~= "" then
        M.ask(vim.tbl_extend("force", args, { message = input }))
      end
    end)
    return
  end
  local params = { message = message, mode = args.mode or "ask" }
  if api.nvim_buf_is_valid(source) and vim.bo[source].buftype == "" and api.nvim_buf_get_name(source) ~= "" then
    params.textDocument = { uri = vim.uri_from_bufnr(source) }
    if args.range then
      local last = api.nvim_buf_get_lines(source, args.range[2] - 1, args.range[2], false)[1] or ""
      params.range = {
        start = { line = args.range[1] - 1, character = 0 },
        ["end"] = { line = args.range[2] - 1, character = vim.str_utfindex(last, client.offset_encoding) },
      }
    end
  end

  local bufnr = open_buffer()
  local id = vim.b[bufnr].coderflash_conversation
  if not id or (M.conversations[id] and not M.conversations[id].done) then
    id = util.uuid()
    vim.b[bufnr].coderflash_conversation = id
  end
  params.conversationId = id
  local conv = { bufnr = bufnr, client = client, done = false, streamed = false, text = "" }
  M.conversations[id] = conv

  append(bufnr, ("\n## You%s\n\n%s\n\n## coderflash\n\n"):format(params.mode == "agent" and " (agent)" or "", message))
  local ok, request_id = client:request("coderflash/chat", params, function(err, result)
    conv.done = true
    conv.request_id = nil
    if err then
      conv.error = err
      append(bufnr, ("\n> error: %s\n"):format(err.message or vim.inspect(err)))
      return
    end
    conv.result = result
    if type(result) == "table" then
      if not conv.streamed and type(result.text) == "string" then
        conv.text = result.text
        append(bufnr, result.text)
      end
      if type(result.edits) == "table" and #result.edits > 0 then
        append(bufnr, ("\n\n> %d edit(s) applied"):format(#result.edits))
      end
    end
    append(bufnr, "\n")
  end, source)
  if ok then
    conv.request_id = request_id
  else
    conv.done = true
    append(bufnr, "\n> error: the server is not running\n")
  end
  return id
end

--- coderflash/chatDelta notification.
function M.on_delta(params)
  if type(params) ~= "table" then
    return
  end
  local conv = M.conversations[params.conversationId]
  if not conv or conv.done then
    return
  end
  local text = params.text or ""
  if params.kind == "tool_call" then
    append(conv.bufnr, ("\n\n> tool call: %s\n\n"):format((text:gsub("\n", "\n> "))))
  elseif params.kind == "tool_result" then
    append(conv.bufnr, ("> tool result: %s\n\n"):format((text:gsub("\n", "\n> "))))
  else
    conv.streamed = true
    conv.text = conv.text .. text
    append(conv.bufnr, text)
  end
end

function M.prompt(mode)
  vim.ui.input({ prompt = "coderflash> " }, function(input)
    if input and input ~= "" then
      M.ask({ message = input, mode = mode })
    end
  end)
end

--- Cancel the running answer in the chat buffer.
function M.cancel()
  local id = chat_buf and api.nvim_buf_is_valid(chat_buf) and vim.b[chat_buf].coderflash_conversation
  local conv = id and M.conversations[id]
  if not conv or conv.done then
    return
  end
  conv.client:request("coderflash/chat/cancel", { conversationId = id }, function() end)
  if conv.request_id then
    pcall(conv.client.cancel_request, conv.client, conv.request_id)
  end
  conv.done = true
  append(conv.bufnr, "\n> cancelled\n")
end

function M.buffer()
  return chat_buf
end

return M
