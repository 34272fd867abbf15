-- What the plugin knows about jobs: the ones it started and the ones the server reports
-- through `channelcoder/event` (e.g. started from a code action).
local compat = require('channelcoder.compat')

local M = {}

--- jobId -> { id, title, state, phase, started, ended, token, client_id, result, changes, error,
--- events }; state: running | succeeded | failed | cancelled | lost (its server died)
M.by_id = {}
M.order = {} -- job ids, oldest first

local listeners = {}
local finished = { result = true, error = true }

local function finished_or_phase(event)
  return finished[event.type] or event.type == 'status' or event.type == 'lost'
end

--- Call fn(job, event) for every event of every job (event = nil for local state changes).
function M.subscribe(fn)
  table.insert(listeners, fn)
end

local function emit(job, event)
  if event == nil or finished_or_phase(event) then
    vim.schedule(function()
      vim.cmd('redrawstatus!')
    end)
  end
  for _, fn in ipairs(listeners) do
    local ok, err = pcall(fn, job, event)
    if not ok then
      vim.schedule(function()
        vim.notify('channelcoder: ' .. tostring(err), vim.log.levels.ERROR)
      end)
    end
  end
end

--- Wall-clock milliseconds (monotonic; not the event loop's cached time).
function M.now()
  return compat.uv.hrtime() / 1e6
end

--- How long a job ran (so far), by the plugin's one clock: from the moment it was started
--- (or first reported) until its result; the footer, the echo and :ClaudeJobs all use this.
function M.duration_ms(job)
  return math.floor((job.ended or M.now()) - job.started + 0.5)
end

function M.get(id)
  return M.by_id[id]
end

--- Record a job (idempotent). fields: title, token, kind, bufnr.
function M.track(id, fields)
  local job = M.by_id[id]
  if not job then
    job = {
      id = id,
      title = 'Claude job',
      state = 'running',
      phase = 'starting',
      started = M.now(),
      events = {},
    }
    M.by_id[id] = job
    table.insert(M.order, id)
  end
  for key, value in pairs(fields or {}) do
    job[key] = value
  end
  return job
end

--- A `channelcoder/event` notification: params = { jobId, event }, from client `client_id`.
function M.on_event(params, client_id)
  local id = params and params.jobId
  local event = params and params.event
  if type(id) ~= 'string' and type(id) ~= 'number' or type(event) ~= 'table' then
    return
  end
  local job = M.track(tostring(id))
  job.client_id = job.client_id or client_id
  table.insert(job.events, event)
  local kind = event.type
  if kind == 'status' then
    job.phase = event.phase or job.phase
  elseif kind == 'tool-use' then
    job.last_tool = event.summary ~= '' and event.summary or event.name
  elseif kind == 'changes' then
    job.changes = event
  elseif kind == 'result' then
    job.result = event
    job.state = event.ok and 'succeeded' or 'failed'
  elseif kind == 'error' then
    job.error = event
    job.state = event.code == 'cancelled' and 'cancelled' or 'failed'
  end
  if finished[kind] and not job.ended then
    job.ended = M.now()
  end
  emit(job, event)
end

--- The reply to the command that started a job (e.g. channelcoder.run).
function M.on_reply(id, err, result)
  local job = M.by_id[id]
  if not job then
    return
  end
  job.reply = result
  job.reply_error = err
  if job.state == 'running' then
    if err then
      job.state = 'failed'
    elseif type(result) == 'table' and result.ok == false then
      job.state = 'failed'
    else
      job.state = 'succeeded'
    end
    job.ended = M.now()
  end
  emit(job, nil)
end

--- The language server `client_id` died: its running jobs are lost (their sandboxes go with
--- it). Each gets a `lost` event { type = 'lost', message = reason }. Returns them.
function M.lose(client_id, reason)
  local lost = {}
  for _, id in ipairs(M.order) do
    local job = M.by_id[id]
    if job.state == 'running' and (job.client_id == nil or job.client_id == client_id) then
      job.state = 'lost'
      job.ended = M.now()
      job.error = { code = 'lost', message = reason }
      table.insert(lost, job)
      local event = { type = 'lost', message = reason }
      table.insert(job.events, event)
      emit(job, event)
    end
  end
  return lost
end

--- The newest job that has not ended.
function M.newest_running()
  for i = #M.order, 1, -1 do
    local job = M.by_id[M.order[i]]
    if job.state == 'running' then
      return job
    end
  end
  return nil
end

function M.list()
  local out = {}
  for _, id in ipairs(M.order) do
    table.insert(out, M.by_id[id])
  end
  return out
end

return M
