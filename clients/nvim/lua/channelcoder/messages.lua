-- The server's window/showMessage and window/showMessageRequest, through vim.notify and
-- vim.ui.select, so every server error reaches the user with its hint.
local compat = require('channelcoder.compat')
local config = require('channelcoder.config')
local util = require('channelcoder.util')

local M = {}

local levels = {
  [1] = vim.log.levels.ERROR,
  [2] = vim.log.levels.WARN,
  [3] = vim.log.levels.INFO,
  [4] = vim.log.levels.DEBUG,
}

M.shown = {} -- every message: { type, message } (for :messages-like inspection and tests)
M.settings_problems = {} -- what the server said of the settings, as :checkhealth lists them

--- The server names each settings problem in a message of its own, at start and after each
--- change: one short notice for all of them (a long one would wait for Enter), once each;
--- :checkhealth channelcoder lists them.
local SETTINGS_PROBLEM = {
  "^channelcoder: unknown setting '",
  "^channelcoder: setting '",
  '^channelcoder: unknown option ',
  '^channelcoder: channelcoder settings from ',
}
local pending = nil

local function settings_problem(message)
  for _, pattern in ipairs(SETTINGS_PROBLEM) do
    if message:find(pattern) then
      return true
    end
  end
  return false
end

local function collect(message)
  local text = message:gsub('^channelcoder: ', '')
  if vim.tbl_contains(M.settings_problems, text) then
    return
  end
  table.insert(M.settings_problems, text)
  if pending then
    pending.count = pending.count + 1
    return
  end
  pending = { count = 1 }
  vim.defer_fn(function()
    local count = pending.count
    pending = nil
    util.notify(string.format('%s — see :checkhealth channelcoder',
      count == 1 and 'a setting was not accepted' or (count .. ' settings were not accepted')),
      vim.log.levels.WARN)
  end, 200)
end

--- Our own `applied: false` answers (a review is open; the user rejected it and the plugin
--- sends channelcoder.rejectProposal) come back as server warnings the user needs not see.
local function expected(message)
  local proposals = require('channelcoder.proposals')
  if message:find(proposals.HELD, 1, true) or message:find(proposals.REJECTED, 1, true) then
    return true
  end
  if message:find('was not applied (', 1, true) then
    for reason in pairs(proposals.stale_reasons) do
      if message:find(reason, 1, true) then
        return true
      end
    end
  end
  -- a conflict is shown in the review itself
  return message:find("^Claude's proposal: .* both changed") ~= nil
end

function M.show_message(_, params, _)
  local message = tostring(params.message or '')
  table.insert(M.shown, { type = params.type, message = message })
  if params.type == 2 and expected(message) then
    return vim.NIL
  end
  if params.type == 2 and settings_problem(message) then
    collect(message)
    return vim.NIL
  end
  if params.type == 3 and message:find('^Claude: ') and require('channelcoder.transcript').visible() then
    return vim.NIL -- a short answer the open transcript shows already
  end
  util.notify(message, levels[params.type] or vim.log.levels.INFO)
  return vim.NIL
end

--- Pick an action with vim.ui.select. 0.10+ answers when the user has picked (the handler
--- may yield); 0.7 must answer at once, so it waits for vim.ui.select (immediate with the
--- built-in picker).
function M.show_message_request(_, params, _)
  local actions = params.actions or {}
  if #actions == 0 then
    M.show_message(nil, params, { client_id = -1 })
    return vim.NIL
  end
  local choice, done = nil, false
  local co = compat.can_defer_reply() and coroutine.running() or nil
  local waiting = false
  vim.ui.select(actions, {
    prompt = tostring(params.message),
    format_item = function(action)
      return action.title
    end,
  }, function(item)
    choice, done = item, true
    if co and waiting then
      coroutine.resume(co)
    end
  end)
  if not done then
    if co then
      waiting = true
      coroutine.yield()
    else
      vim.wait(600000, function()
        return done
      end, 50)
    end
  end
  return choice or vim.NIL
end

--- A document name (e.g. 'doctor.md') whose next showDocument is not opened: :checkhealth
--- already prints the doctor's checks.
M.swallow_document = nil

--- window/showDocument (0.7 has no handler; 0.11's replaces the current window): open the
--- document in a split, focused only when the server asks for focus.
function M.show_document(_, params, _)
  local uri = params.uri or ''
  if params.external then
    if vim.ui.open then
      vim.ui.open(uri)
      return { success = true }
    end
    return { success = false }
  end
  if not uri:match('^file:') then
    return { success = false }
  end
  local fname = vim.uri_to_fname(uri)
  if M.swallow_document and fname:sub(-#M.swallow_document) == M.swallow_document then
    M.swallow_document = nil
    return { success = true }
  end
  local answered = fname:match('/answers/([^/]+)%.md$')
  if answered and require('channelcoder.jobs').get(answered) then
    -- the answer streamed into the job's transcript already: show that (unless the transcript
    -- window is open, on it or on something the user chose since), keep the focus
    local transcript = require('channelcoder.transcript')
    if not transcript.visible() then
      transcript.open(answered, false)
    end
    return { success = true }
  end
  local bufnr = vim.fn.bufadd(fname)
  vim.b[bufnr].channelcoder_document = true
  vim.fn.bufload(bufnr)
  vim.bo[bufnr].buflisted = true
  local win = util.show(bufnr, config.options.transcript.split, params.takeFocus)
  local selection = params.selection
  if selection and selection.start then
    pcall(vim.api.nvim_win_set_cursor, win, { selection.start.line + 1, 0 })
  end
  return { success = true }
end

return M
