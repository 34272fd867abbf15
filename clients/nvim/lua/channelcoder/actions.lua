-- What the user commands do: start jobs with a client-chosen job id and progress token, and
-- show what the server answers.
local compat = require('channelcoder.compat')
local config = require('channelcoder.config')
local jobs = require('channelcoder.jobs')
local lsp = require('channelcoder.lsp')
local progress = require('channelcoder.progress')
local transcript = require('channelcoder.transcript')
local util = require('channelcoder.util')

local M = {}

local function ready_client(bufnr)
  local client = lsp.client(bufnr) or lsp.ensure_client(bufnr)
  if not client then
    return nil -- ensure_client said why
  end
  if not lsp.wait_ready(client, 15000) then
    util.error('the language server did not start', 'see :LspLog and :checkhealth channelcoder')
    return nil
  end
  return client
end

local function encoding(client)
  return client.offset_encoding or 'utf-16'
end

--- An LSP range for lines line1..line2 (1-based, inclusive) of `bufnr`, or for the last
--- characterwise visual selection when it covers exactly those lines.
function M.range(bufnr, line1, line2, client)
  local enc = encoding(client)
  local first = vim.fn.getpos("'<")
  local last = vim.fn.getpos("'>")
  local charwise = vim.fn.visualmode() == 'v' and first[2] == line1 and last[2] == line2
    and bufnr == vim.api.nvim_get_current_buf()
  local lines = vim.api.nvim_buf_get_lines(bufnr, line1 - 1, line2, false)
  local last_line = lines[#lines] or ''
  if charwise then
    local start_col = first[3] - 1
    local end_byte = math.min(last[3], #last_line)
    -- extend to the end of a multibyte character under '>
    local char_end = vim.str_utf_end and vim.str_utf_end(last_line, end_byte) or 0
    end_byte = math.min(end_byte + char_end, #last_line)
    return {
      start = { line = line1 - 1, character = compat.char_index(lines[1] or '', start_col, enc) },
      ['end'] = { line = line2 - 1, character = compat.char_index(last_line, end_byte, enc) },
    }
  end
  return {
    start = { line = line1 - 1, character = 0 },
    ['end'] = { line = line2 - 1, character = compat.char_index(last_line, #last_line, enc) },
  }
end

--- Start a job: command is channelcoder.run | .ask | .fix; arg its argument (jobId and
--- workDoneToken are added). Returns the job id.
function M.start_job(command, arg, opts)
  opts = opts or {}
  local client = opts.client or ready_client(opts.bufnr)
  if not client then
    return nil
  end
  arg = vim.deepcopy(arg or {})
  local job_id = arg.jobId or util.new_id('nvim-')
  local token = arg.workDoneToken or ('channelcoder-' .. job_id)
  arg.jobId, arg.workDoneToken = job_id, token
  jobs.track(job_id, { title = opts.title or 'Claude', token = token, command = command, client_id = client.id })
  progress.expect(token, job_id, client.id)
  lsp.execute(command, arg, { bufnr = opts.bufnr, token = token }, function(err, result)
    jobs.on_reply(job_id, err, result)
    if err then
      return
    end
    if opts.on_done then
      opts.on_done(result)
    end
  end)
  return job_id
end

local function title(prefix, text)
  text = (text or ''):gsub('%s+', ' ')
  if #text > 60 then
    text = text:sub(1, 57) .. '...'
  end
  return prefix .. text
end

--- :Claude / :ClaudeAsk. cmd = the user-command callback's opts (args, range, line1, line2).
function M.prompt_command(command, cmd)
  local bufnr = vim.api.nvim_get_current_buf()
  local function go(prompt)
    if command == 'channelcoder.run' and not util.nonempty(prompt) then
      util.error(':Claude needs a prompt', 'e.g. :Claude add type hints (with a range, the selection goes along)')
      return
    end
    local client = ready_client(bufnr)
    if not client then
      return
    end
    local arg = {}
    if util.nonempty(prompt) then
      arg.prompt = prompt
    end
    if lsp.attachable(bufnr) then
      arg.uri = vim.uri_from_bufnr(bufnr)
      if cmd.range and cmd.range > 0 then
        arg.range = M.range(bufnr, cmd.line1, cmd.line2, client)
      end
    end
    local prefix = command == 'channelcoder.ask' and 'Ask: ' or 'Claude: '
    return M.start_job(command, arg, { bufnr = bufnr, client = client, title = title(prefix, prompt or 'explain') })
  end
  if util.nonempty(cmd.args) or command == 'channelcoder.ask' then
    return go(cmd.args)
  end
  vim.ui.input({ prompt = 'Claude: ' }, function(input)
    if input ~= nil then
      go(input)
    end
  end)
end

function M.fix()
  local bufnr = vim.api.nvim_get_current_buf()
  local client = ready_client(bufnr)
  if not client then
    return
  end
  local diagnostic = require('channelcoder.diagnostics').at_cursor(encoding(client))
  if not diagnostic then
    util.error('no diagnostic under the cursor', 'move to a line with one (]d), or describe the fix with :Claude')
    return
  end
  return M.start_job('channelcoder.fix', { uri = vim.uri_from_bufnr(bufnr), diagnostic = diagnostic },
    { bufnr = bufnr, client = client, title = title('Fix: ', diagnostic.message) })
end

--- :ClaudeCancel [jobId]: window/workDoneProgress/cancel on the job's progress token; without
--- progress to cancel, channelcoder.cancel.
function M.cancel(job_id)
  job_id = util.nonempty(job_id) and job_id or nil
  local entry = progress.active(job_id)
  if not entry and job_id == nil then
    entry = progress.active()
  end
  if entry and progress.cancel(entry) then
    util.notify('cancelling ' .. (entry.title or 'the job'))
    return entry.token
  end
  lsp.execute('channelcoder.cancel', job_id and { jobId = job_id } or nil, {}, function(err, result)
    if not err and type(result) == 'table' then
      if result.cancelled then
        util.notify('cancelling job ' .. tostring(result.jobId))
      else
        util.notify('nothing to cancel')
      end
    end
  end)
end

local function pad(text, width)
  text = tostring(text == nil and '' or text)
  local w = vim.fn.strdisplaywidth(text)
  if w >= width then
    return vim.fn.strcharpart(text, 0, width - 1) .. '…'
  end
  return text .. string.rep(' ', width - w)
end

M.icons = { queued = '◷', running = '●', succeeded = '✓', failed = '✗', cancelled = '⊘', lost = '↯' }

local function age(seconds)
  if seconds < 60 then
    return string.format('%ds ago', seconds)
  elseif seconds < 3600 then
    return string.format('%dm ago', math.floor(seconds / 60))
  end
  return string.format('%dh ago', math.floor(seconds / 3600))
end

--- One row per job: status icon, title, age, duration, id (newest first): the server's jobs,
--- then those of servers before it (one that died: its running jobs are "lost").
function M.job_rows(server_jobs, proposals)
  local pending = {}
  for _, p in ipairs(proposals or {}) do
    pending[tostring(p.jobId)] = true
  end
  local infos, listed = {}, {}
  for _, info in ipairs(server_jobs or {}) do
    listed[tostring(info.jobId)] = true
    table.insert(infos, info)
  end
  local earlier = jobs.list()
  for i = #earlier, 1, -1 do
    local mine = earlier[i]
    if not listed[mine.id] then
      table.insert(infos, { jobId = mine.id, state = mine.state, kind = mine.kind })
    end
  end
  local rows, now = {}, jobs.now()
  for _, info in ipairs(infos) do
    local id = tostring(info.jobId)
    local mine = jobs.get(id)
    local state = mine and mine.state ~= 'running' and mine.state or info.state
    local title = mine and mine.title or ((info.kind == 'ask' and 'Ask: ' or 'Claude: ')
      .. tostring(util.nonempty(info.prompt) and info.prompt or ''):gsub('%s+', ' '))
    local duration_ms = mine and jobs.duration_ms(mine)
      or (type(info.elapsed) == 'number' and info.elapsed * 1000) or 0
    local started_ago = mine and (now - mine.started) / 1000 or duration_ms / 1000
    table.insert(rows, {
      id = id,
      line = string.format('%s %s %s %s %s%s', M.icons[state] or '?', pad(title, 44), pad(age(math.floor(started_ago)), 8),
        pad(util.format_duration(duration_ms), 9), id, pending[id] and '  ◆ review pending'
          or (state == 'lost' and '  lost: the server died' or '')),
    })
  end
  return rows
end

function M.jobs()
  lsp.execute('channelcoder.jobs', nil, { quiet = true }, function(err, result)
    if err or type(result) ~= 'table' then
      result = { jobs = {}, proposals = {} } -- no server (it stopped): the jobs this Neovim saw
    end
    local lines = { 'Claude jobs — <CR> transcript · c cancel · r review · q close', '' }
    local ids = {}
    for _, row in ipairs(M.job_rows(result.jobs, result.proposals)) do
      table.insert(lines, row.line)
      ids[#lines] = row.id
    end
    if #lines == 2 then
      table.insert(lines, '(no jobs yet)')
    end
    local listed = {}
    for _, id in pairs(ids) do
      listed[id] = true
    end
    for _, p in ipairs(result.proposals or {}) do
      if not listed[tostring(p.jobId)] then
        table.insert(lines, string.format('◆ %s %s  (review pending, from an earlier session)',
          pad(tostring(util.nonempty(p.prompt) and p.prompt or ''):gsub('%s+', ' '), 44), tostring(p.jobId)))
        ids[#lines] = tostring(p.jobId)
      end
    end
    local bufnr = util.scratch('claude://jobs', 'channelcoderjobs')
    util.set_lines(bufnr, lines)
    local function at_cursor()
      return ids[vim.api.nvim_win_get_cursor(0)[1]]
    end
    local function map(lhs, fn, desc)
      vim.keymap.set('n', lhs, function()
        local id = at_cursor()
        if id then
          fn(id)
        end
      end, { buffer = bufnr, nowait = true, desc = 'channelcoder: ' .. desc })
    end
    map('<CR>', function(id)
      transcript.open(id)
    end, 'open the transcript')
    map('c', function(id)
      M.cancel(id)
    end, 'cancel the job')
    map('r', function(id)
      require('channelcoder.proposals').review(id)
    end, 'review its proposal')
    vim.keymap.set('n', 'q', function()
      transcript.toggle()
    end, { buffer = bufnr, nowait = true, desc = 'channelcoder: close' })
    transcript.show(bufnr, true)
    if #lines > 2 then
      vim.api.nvim_win_set_cursor(0, { 3, 0 })
    end
  end)
end

--- channelcoder.doctor; the server opens its report (showDocument).
function M.doctor()
  local client = ready_client()
  if not client then
    return
  end
  require('channelcoder.messages').swallow_document = nil
  lsp.execute('channelcoder.doctor', nil, {}, function(err, result)
    if not err and type(result) == 'table' and not result.ok then
      util.notify('some checks failed; see the report', vim.log.levels.WARN)
    end
  end)
end

function M.build_image(force)
  local client = ready_client()
  if not client then
    return
  end
  local token = 'channelcoder-build-' .. util.new_id('')
  progress.expect(token, nil, client.id)
  lsp.execute('channelcoder.buildImage', { force = force or false }, { token = token }, function(err, result)
    if err or type(result) ~= 'table' then
      return
    end
    local level = result.ok and vim.log.levels.INFO or vim.log.levels.ERROR
    local message = tostring(util.nonempty(result.message) and result.message or (result.ok and 'image ready' or 'build failed'))
    if util.nonempty(result.image) and not message:find(result.image, 1, true) then
      message = message .. ': ' .. result.image
    end
    util.notify(message, level)
  end)
end

--- Code actions carry server commands; run them through start_job so they get a job id and a
--- progress token the plugin knows (for the transcript, the statusline and :ClaudeCancel).
function M.client_command(command, ctx)
  local arg = (command.arguments or {})[1] or {}
  local label = command.title or arg.prompt or (arg.diagnostic and arg.diagnostic.message) or command.command
  local client = ctx and ctx.client_id and vim.lsp.get_client_by_id(ctx.client_id) or nil
  return M.start_job(command.command, arg, { bufnr = ctx and ctx.bufnr, client = client, title = title('', label) })
end

return M
