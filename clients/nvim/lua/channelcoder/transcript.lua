-- A scratch buffer per job, fed by `channelcoder/event`: text streams in, one line per tool
-- call, a footer with the outcome, time and cost.
local config = require('channelcoder.config')
local jobs = require('channelcoder.jobs')
local util = require('channelcoder.util')

local M = {}

local state = {} -- job id -> { bufnr, in_text }
M.win = nil -- the one transcript window, reused by every job

local function window_valid()
  return M.win ~= nil and vim.api.nvim_win_is_valid(M.win)
end

local function open_float(bufnr, focus)
  local width = math.max(40, math.floor(vim.o.columns * 0.7))
  local height = math.max(8, math.floor(vim.o.lines * 0.6))
  return vim.api.nvim_open_win(bufnr, focus, {
    relative = 'editor', width = width, height = height, style = 'minimal', border = 'rounded',
    row = math.floor((vim.o.lines - height) / 2) - 1, col = math.floor((vim.o.columns - width) / 2),
  })
end

--- Show `bufnr` in the transcript window (created once, then reused), focused only if asked.
function M.show(bufnr, focus)
  if window_valid() then
    if vim.api.nvim_win_get_buf(M.win) ~= bufnr then
      vim.api.nvim_win_set_buf(M.win, bufnr)
    end
    if focus then
      vim.api.nvim_set_current_win(M.win)
    end
  elseif config.options.transcript.style == 'float' then
    M.win = open_float(bufnr, focus)
  else
    local previous = vim.api.nvim_get_current_win()
    vim.cmd(config.options.transcript.split)
    M.win = vim.api.nvim_get_current_win()
    vim.api.nvim_win_set_buf(M.win, bufnr)
    if not focus and vim.api.nvim_win_is_valid(previous) then
      vim.api.nvim_set_current_win(previous)
    end
  end
  vim.wo[M.win].wrap = true
  local last = vim.api.nvim_buf_line_count(bufnr)
  pcall(vim.api.nvim_win_set_cursor, M.win, { last, 0 })
  return M.win
end

function M.visible()
  return window_valid()
end

--- :ClaudeToggle — hide the transcript window, or show the newest job's transcript.
function M.toggle()
  if window_valid() and #vim.api.nvim_list_wins() > 1 then
    vim.api.nvim_win_close(M.win, true)
    M.win = nil
    return
  end
  M.open(nil, false)
end

function M.name(id)
  return 'claude://job/' .. id
end

local function ensure(job)
  local s = state[job.id]
  if s and vim.api.nvim_buf_is_valid(s.bufnr) then
    return s
  end
  local bufnr = util.scratch(M.name(job.id), 'markdown')
  util.set_lines(bufnr, { '# ' .. job.title .. '  (job ' .. job.id .. ')', '' })
  s = { bufnr = bufnr, in_text = false }
  state[job.id] = s
  return s
end

local function follow(bufnr)
  local last = vim.api.nvim_buf_line_count(bufnr)
  for _, win in ipairs(vim.fn.win_findbuf(bufnr)) do
    if vim.api.nvim_get_current_win() ~= win then
      vim.api.nvim_win_set_cursor(win, { last, 0 })
    end
  end
end

local function append(s, lines)
  if #lines == 0 then
    return
  end
  vim.bo[s.bufnr].modifiable = true
  vim.api.nvim_buf_set_lines(s.bufnr, -1, -1, false, lines)
  vim.bo[s.bufnr].modifiable = false
  s.in_text = false
  follow(s.bufnr)
end

--- Streamed text: continue the last line, start new ones at each newline.
local function stream(s, text)
  local parts = vim.split(text, '\n', { plain = true })
  vim.bo[s.bufnr].modifiable = true
  if s.in_text then
    local last = vim.api.nvim_buf_line_count(s.bufnr)
    local current = vim.api.nvim_buf_get_lines(s.bufnr, last - 1, last, false)[1] or ''
    vim.api.nvim_buf_set_lines(s.bufnr, last - 1, last, false, { current .. parts[1] })
    table.remove(parts, 1)
  end
  if #parts > 0 then
    vim.api.nvim_buf_set_lines(s.bufnr, -1, -1, false, parts)
  end
  vim.bo[s.bufnr].modifiable = false
  s.in_text = true
  follow(s.bufnr)
end

local function footer(job, event)
  local bits = { event.ok and 'done' or ('failed: ' .. tostring(event.error or event.subtype or 'error')) }
  table.insert(bits, util.format_duration(jobs.duration_ms(job)))
  if type(event.costUsd) == 'number' then
    table.insert(bits, string.format('$%.4f', event.costUsd))
  end
  if type(event.numTurns) == 'number' then
    table.insert(bits, string.format('%d turn%s', event.numTurns, event.numTurns == 1 and '' or 's'))
  end
  local lines = { '', '── ' .. table.concat(bits, ' · ') }
  if util.nonempty(event.hint) then
    table.insert(lines, '   hint: ' .. event.hint)
  end
  for _, denial in ipairs(event.permissionDenials or {}) do
    table.insert(lines, '   denied: ' .. tostring(denial.toolName) .. (util.nonempty(denial.hint) and (' — ' .. denial.hint) or ''))
  end
  local host_run = {}
  for _, change in ipairs(event.runsOnHost or {}) do
    table.insert(host_run, string.format('%s (%s)', tostring(change.path), tostring(change.reason)))
  end
  if #host_run > 0 then
    table.insert(lines, '⚠ runs on your machine: ' .. table.concat(host_run, ', ') .. ' — review before you run it')
  end
  return lines
end

local status_names = {
  queued = 'queued',
  ['resolving-image'] = 'resolving image',
  ['pulling-image'] = 'pulling image',
  ['building-image'] = 'building image',
  ['starting-sandbox'] = 'starting sandbox',
  ['preparing-worktree'] = 'preparing worktree',
  ['preparing-snapshot'] = 'preparing snapshot',
  running = 'running',
  ['collecting-changes'] = 'collecting changes',
}

local function read_only(job)
  return job.command == 'channelcoder.ask' or job.kind == 'ask'
end

local function render(job, event, s)
  local kind = event.type
  if kind == 'status' and event.phase == 'collecting-changes' and read_only(job) then
    return
  elseif kind == 'changes' and #(event.files or {}) == 0 then
    return
  elseif kind == 'status' then
    if util.nonempty(event.logLine) then
      append(s, { '  │ ' .. event.logLine:gsub('\n+$', '') })
    else
      local text = '· ' .. (status_names[event.phase] or tostring(event.phase))
      if util.nonempty(event.message) then
        text = text .. ' — ' .. event.message
      end
      append(s, { text })
    end
  elseif kind == 'init' then
    append(s, { string.format('· session %s · %s', tostring(event.sessionId), tostring(event.model)), '' })
  elseif kind == 'text-delta' then
    stream(s, event.text or '')
  elseif kind == 'text' then
    if not event.streamed then
      append(s, util.lines(event.text))
    end
  elseif kind == 'tool-use' then
    local summary = util.nonempty(event.summary) and event.summary or event.name
    append(s, { (event.subagent and '    ▸ ' or '▸ ') .. summary })
  elseif kind == 'tool-result' then
    if event.isError then
      local first = util.lines(event.output)[1] or 'error'
      append(s, { '  ✗ ' .. first })
    end
  elseif kind == 'changes' then
    local marks = { added = 'A', modified = 'M', deleted = 'D', renamed = 'R' }
    local lines = { '', string.format('Δ %d file%s changed', #event.files, #event.files == 1 and '' or 's') }
    for _, file in ipairs(event.files or {}) do
      table.insert(lines, string.format('  %s %s', marks[file.status] or '?', file.path))
    end
    append(s, lines)
  elseif kind == 'networkBlocked' then
    append(s, { string.format('⊘ network: blocked %s:%s (%s)', tostring(event.host), tostring(event.port),
      tostring(event.reason)) })
  elseif kind == 'security' then
    append(s, { string.format('⚠ security: %s: %s (%s)', tostring(event.path), tostring(event.change),
      tostring(event.outcome)) })
  elseif kind == 'result' then
    append(s, footer(job, event))
  elseif kind == 'lost' then
    append(s, { '', '✗ lost: ' .. tostring(event.message) .. ' while this job ran; its sandbox is removed' })
  elseif kind == 'error' then
    local lines = { '', '✗ ' .. tostring(event.message) }
    if util.nonempty(event.hint) then
      table.insert(lines, '  hint: ' .. event.hint)
    end
    append(s, lines)
  end
end

function M.on_event(job, event)
  if event == nil then
    return
  end
  local fresh = state[job.id] == nil
  local s = ensure(job)
  render(job, event, s)
  if fresh and config.options.transcript.open then
    M.show(s.bufnr, false)
  end
end

--- The transcript buffer of a job (created when missing), or nil for an unknown job.
function M.buffer(id)
  local job = jobs.get(id)
  if not job then
    return nil
  end
  return ensure(job).bufnr
end

--- Open the transcript of `id` (default: the newest job) in the transcript window.
function M.open(id, focus)
  if not id or id == '' then
    local list = jobs.list()
    id = list[#list] and list[#list].id
  end
  local bufnr = id and M.buffer(id)
  if not bufnr then
    util.error('no job ' .. (id and ("'" .. id .. "'") or 'yet'), ':ClaudeJobs lists the jobs')
    return
  end
  M.show(bufnr, focus ~= false)
end

return M
