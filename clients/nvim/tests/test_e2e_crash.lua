-- The language server is killed (SIGKILL) mid-job, in the sandbox: the plugin says so in one
-- line (no hit-enter prompt, not Neovim's own "Client … quit"), marks the job lost in its
-- transcript, the statusline and :ClaudeJobs, and restarts the server; the dead server's
-- containers are gone within 10 s, and the proposal it had saved (undecided) is offered again.
-- Restarts are bounded: after 3 in 3 minutes it stops and says how to start it (:ClaudeRestart).
local T = require('helpers')
local E = require('e2e')
local compat = require('channelcoder.compat')

local GONE_WITHIN_MS = 10000
local workdir = vim.fn.resolve(E.workdir)
local bufnr, saved, running, dead_containers

--- The running sandbox containers of this workspace: id -> the session they keep warm ('' for
--- none), by the docker CLI.
local function containers()
  local out = vim.fn.systemlist({ 'docker', 'ps', '-q', '--no-trunc', '--filter',
    'label=io.channelcoder.workspace=' .. workdir, '--format', '{{.ID}} {{.Label "io.channelcoder.session"}}' })
  T.eq(0, vim.v.shell_error, 'docker ps: ' .. table.concat(out, '\n'))
  local found = {}
  for _, line in ipairs(out) do
    local id, session = line:match('^(%S+)%s*(%S*)$')
    if id then
      found[id] = session
    end
  end
  return found
end

--- The pid of the language server Neovim started (a child of this Neovim).
local function server_pid()
  local mine = tostring(vim.fn.getpid())
  for _, pid in ipairs(vim.fn.readdir('/proc')) do
    if pid:match('^%d+$') then
      local ok, stat = pcall(vim.fn.readfile, '/proc/' .. pid .. '/stat')
      local ok2, cmdline = pcall(vim.fn.readfile, '/proc/' .. pid .. '/cmdline', 'b')
      if ok and ok2 and stat[1] and stat[1]:match('^%d+ %b() %S (%d+)') == mine
        and table.concat(cmdline, ' '):find('channelcoder', 1, true) then
        return tonumber(pid)
      end
    end
  end
  return nil
end

local function kill_server()
  local client = E.client()
  T.ok(client and client.initialized, 'a running server')
  local pid = server_pid()
  T.ok(pid, 'the server process')
  compat.uv.kill(pid, 9)
  return client.id
end

--- Every notification fits on one line of the command line (a longer one is a hit-enter prompt).
local function fits()
  for _, note in ipairs(_G.test_notes) do
    T.ok(not note.message:find('\n'), 'a one-line message: ' .. note.message)
    T.ok(vim.fn.strdisplaywidth(note.message) < vim.o.columns, 'fits the command line: ' .. note.message)
  end
end

local function events(kind)
  local out = {}
  for _, event in ipairs(require('channelcoder.recovery').events) do
    if event.kind == kind then
      table.insert(out, event)
    end
  end
  return out
end

local function wait_new_client(old_id)
  T.wait(function()
    local client = E.client()
    return client and client.id ~= old_id and client.initialized and compat.is_attached(client, bufnr)
  end, 'the restarted server, attached to app.py', 60000)
  return E.client()
end

T.run({
  { 'a proposal waits for review while a second job runs', function()
    E.setup()
    bufnr = E.open('app.py')
    vim.cmd('Claude say hi')
    saved = E.wait_done(E.wait_job())
    T.eq('succeeded', saved.state, 'the first job')
    E.wait_review(saved)
    vim.fn.writefile({ 'the next job sleeps' }, E.workdir .. '/slow.flag')
    vim.cmd('Claude crash-marker wait for the slow tool')
    running = E.wait_job()
    T.ok(running.id ~= saved.id, 'a second job')
    T.wait(function()
      for _, event in ipairs(running.events) do
        if event.type == 'tool-use' then
          return true
        end
      end
    end, 'the second job to run its tool', E.JOB_GUARD)
    T.contains(require('channelcoder').statusline(), 'crash-marker')
    dead_containers = {}
    for id, session in pairs(containers()) do
      if session ~= 'lsp-' .. saved.id then -- the first job's session is kept warm for a follow-up
        dead_containers[id] = true
      end
    end
    T.ok(next(dead_containers) ~= nil, 'the server has containers')
  end },

  { 'SIGKILL: one notification, the job lost everywhere, the containers gone, the server back', function()
    vim.v.errmsg = ''
    local notes_before = #_G.test_notes
    local killed_at = compat.uv.hrtime()
    local old_id = kill_server()
    T.wait(function()
      return running.state == 'lost'
    end, 'the job marked lost')
    T.wait(function()
      for id in pairs(containers()) do
        if dead_containers[id] then
          return false
        end
      end
      return true
    end, "the dead server's containers to go", GONE_WITHIN_MS)
    T.log(string.format("the dead server's containers went within %.1f s", (compat.uv.hrtime() - killed_at) / 1e9))
    T.contains(E.transcript(running), '✗ lost: the server died (signal 9) while this job ran')
    T.contains(require('channelcoder').statusline(), 'lost')
    local client = wait_new_client(old_id)
    T.eq(1, #events('died'), 'one restart')
    local said = {}
    for i = notes_before + 1, #_G.test_notes do
      table.insert(said, _G.test_notes[i].message)
    end
    T.eq(1, #E.notes('the server died (signal 9); 1 job lost; restarting it (1 of 3)'), table.concat(said, '\n'))
    fits()
    T.eq(0, #E.notes('quit with exit code'), "Neovim's own message is not shown too")
    T.eq('', vim.v.errmsg, 'v:errmsg')
    T.eq(false, vim.api.nvim_get_mode().blocking, 'Neovim waits for no key')
    T.ok(client.id ~= old_id, 'a new server')
  end },

  { 'the saved proposal is offered again and applies; :ClaudeJobs keeps the history', function()
    local client = E.client()
    T.wait(function()
      local review = require('channelcoder.proposals').reviews[saved.id]
      return review and review.client_id == client.id
    end, 'the saved proposal offered by the new server', 60000)
    T.eq(1, #E.notes('Offering again a proposal saved before the server stopped'), 'why the review is back')
    E.wait_review(saved)
    E.press(saved, "+GREETING = 'hi'", 'a')
    T.wait(function()
      return E.lines(bufnr)[1] == "GREETING = 'hi'"
    end, 'the accepted hunk in the buffer')
    vim.api.nvim_buf_call(bufnr, function()
      vim.cmd('write')
    end)
    vim.cmd('ClaudeJobs')
    local list
    T.wait(function()
      local jobs_buf = vim.fn.bufnr('claude://jobs')
      list = jobs_buf ~= -1 and T.buf_text(jobs_buf) or ''
      return list:find(running.id, 1, true) ~= nil
    end, ':ClaudeJobs')
    T.contains(list, '↯ Claude: crash-marker')
    T.contains(list, 'lost: the server died')
    T.contains(list, saved.id, 'the first job is listed too')
  end },

  { 'restarts are bounded: the fourth death in 3 minutes is not restarted; :ClaudeRestart is', function()
    for attempt = 2, 3 do
      local old_id = kill_server()
      wait_new_client(old_id)
      T.eq(attempt, #events('died'), 'restarted again')
    end
    local last_id = kill_server()
    T.wait(function()
      return #events('gave-up') == 1
    end, 'giving up')
    T.eq(1, #E.notes('the server died again (signal 9), left stopped: :ClaudeRestart'), 'said once')
    fits()
    vim.wait(1500)
    T.eq(nil, E.client(), 'no server started')
    T.eq('', vim.v.errmsg, 'v:errmsg')
    T.eq(false, vim.api.nvim_get_mode().blocking, 'Neovim waits for no key')
    vim.cmd('ClaudeRestart')
    wait_new_client(last_id)
  end },
})
