-- Work-done progress of the channelcoder server: what the statusline shows, what gets echoed,
-- and which token :ClaudeCancel cancels.
local compat = require('channelcoder.compat')
local config = require('channelcoder.config')

local M = {}

--- token -> { client_id, token, title, message, done, job_id, seen }
M.tokens = {}
M.order = {} -- tokens, oldest first
M.history = {} -- every { kind, title, message } seen, for :ClaudeJobs and tests

local function ours(client_id)
  local client = vim.lsp.get_client_by_id(client_id)
  return client and client.name == 'channelcoder'
end

local function key(token)
  return tostring(token)
end

--- Tie a token the plugin chose to a job (before the server sends `begin`).
function M.expect(token, job_id, client_id)
  local entry = M.tokens[key(token)] or { token = token }
  entry.job_id = job_id
  entry.client_id = client_id
  M.tokens[key(token)] = entry
end

local function text(entry)
  local parts = { 'Claude' }
  local job = entry.job_id and require('channelcoder.jobs').get(entry.job_id)
  if job and job.title then
    parts[1] = job.title -- the same title as the transcript and :ClaudeJobs
  elseif entry.title and entry.title ~= '' then
    parts[1] = entry.title
  end
  if entry.message and entry.message ~= '' then
    table.insert(parts, entry.message)
  end
  return table.concat(parts, ': ')
end

local last_echo = 0
local function echo(entry, force)
  if not config.options.progress.echo then
    return
  end
  local now = compat.uv.now()
  if not force and now - last_echo < 100 then
    return
  end
  last_echo = now
  local line = text(entry):gsub('\n', ' ')
  line = vim.fn.strcharpart(line, 0, math.max(10, vim.o.columns - 14))
  if entry.done then
    line = line .. ' ✓'
  end
  vim.api.nvim_echo({ { line, 'ModeMsg' } }, false, {})
end

local function update(client_id, token, value)
  if token == nil or not ours(client_id) then
    return
  end
  local entry = M.tokens[key(token)]
  if not entry then
    entry = { token = token, client_id = client_id }
    M.tokens[key(token)] = entry
  end
  entry.client_id = client_id
  if not entry.seen then
    entry.seen = true
    table.insert(M.order, key(token))
  end
  if value.kind == 'begin' then
    entry.title = value.title
    entry.message = value.message
    entry.cancellable = value.cancellable
  elseif value.kind == 'report' then
    entry.message = value.message or entry.message
    entry.percentage = value.percentage
  elseif value.kind == 'end' then
    entry.message = M.with_job_clock(entry, value.message) or entry.message
    entry.done = true
  end
  table.insert(M.history, { kind = value.kind, title = value.title, message = value.message, token = token })
  echo(entry, value.kind ~= 'report')
  vim.cmd('redrawstatus!')
end

--- The end message with the job's duration by the plugin's clock (the one the transcript's
--- footer and :ClaudeJobs show) in place of the server's.
function M.with_job_clock(entry, message)
  local jobs = require('channelcoder.jobs')
  local job = entry.job_id and jobs.get(entry.job_id)
  if type(message) ~= 'string' or not job then
    return message
  end
  job.ended = job.ended or jobs.now()
  local duration = require('channelcoder.util').format_duration(jobs.duration_ms(job))
  return (message:gsub('done in [%d.]+ s', 'done in ' .. duration))
end

function M.setup(group)
  compat.on_progress(group, update)
end

--- The newest progress that has not ended, optionally of one job.
function M.active(job_id)
  for i = #M.order, 1, -1 do
    local entry = M.tokens[M.order[i]]
    if not entry.done and (job_id == nil or entry.job_id == job_id) then
      return entry
    end
  end
  return nil
end

M.LOST_SHOWN_MS = 30000
M.lost = nil -- { text, at }: the statusline says a job was lost for a while, then goes idle

--- The server `client_id` died: its progress ends ("lost"); the statusline says so for
--- LOST_SHOWN_MS (or until another job reports), then is idle.
function M.lose(client_id, lost_jobs)
  for _, entry in pairs(M.tokens) do
    if entry.client_id == client_id and not entry.done then
      entry.done = true
      entry.message = 'lost'
      table.insert(M.history, { kind = 'end', message = 'lost', token = entry.token })
    end
  end
  if #lost_jobs > 0 then
    local job = lost_jobs[#lost_jobs]
    local extra = #lost_jobs > 1 and string.format(' (and %d more)', #lost_jobs - 1) or ''
    M.lost = { text = string.format('%s%s: lost, the server died', job.title or 'Claude', extra), at = compat.uv.now() }
    vim.defer_fn(function()
      vim.cmd('redrawstatus!')
    end, M.LOST_SHOWN_MS + 50)
  end
  vim.cmd('redrawstatus!')
end

--- For the statusline: the newest running job's progress, a lost job for a while, else ''.
function M.status()
  local entry = M.active()
  if entry then
    return text(entry)
  end
  if M.lost and compat.uv.now() - M.lost.at < M.LOST_SHOWN_MS then
    return M.lost.text
  end
  return ''
end

--- Ask the server to cancel the progress `entry` (window/workDoneProgress/cancel).
function M.cancel(entry)
  local client = vim.lsp.get_client_by_id(entry.client_id)
  if not client then
    return false
  end
  compat.notify(client, 'window/workDoneProgress/cancel', { token = entry.token })
  return true
end

return M
