-- The server's end, without a job: a stop Neovim or the user asked for is not a crash (no
-- notification, no restart); :ClaudeRestart restarts a running server with the buffers attached;
-- a server that dies right after starting is restarted at most 3 times, then left stopped.
-- Env: CHANNELCODER_NVIM_WORKDIR (an empty directory), CHANNELCODER_NVIM_SERVER (JSON argv).
local T = require('helpers')
local E = require('e2e')
local compat = require('channelcoder.compat')
local recovery = require('channelcoder.recovery')

local workdir, server, client, notes = E.workdir, E.server, E.client, E.notes
local bufnr

local function wait_attached(not_id)
  T.wait(function()
    local c = client()
    return c and c.id ~= not_id and c.initialized and compat.is_attached(c, bufnr)
  end, 'a server attached to the buffer')
  return client()
end

T.run({
  { 'a crash is told from a stop', function()
    T.eq(true, recovery.crashed(0, 9, 1001), 'SIGKILL')
    T.eq(true, recovery.crashed(1, 0, 1001), 'exit code 1')
    T.eq(false, recovery.crashed(0, 0, 1001), 'exit after shutdown')
    T.eq(false, recovery.crashed(0, 15, 1001), "Neovim's forced stop (SIGTERM)")
    recovery.stopping[1002] = true
    T.eq(false, recovery.crashed(0, 9, 1002), 'a stop the plugin asked for')
  end },

  { ':ClaudeRestart restarts a running server; a stop is not a crash', function()
    T.ok(require('channelcoder').setup({ cmd = server, settings = { docker = false },
      transcript = { open = false } }), 'setup')
    vim.fn.writefile({ 'one' }, workdir .. '/a.txt')
    vim.cmd('edit ' .. vim.fn.fnameescape(workdir .. '/a.txt'))
    bufnr = vim.api.nvim_get_current_buf()
    local first = wait_attached(nil)
    vim.cmd('ClaudeRestart')
    local second = wait_attached(first.id)
    T.ok(second.id ~= first.id, 'a new server')
    T.eq(1, #notes('language server started again'), 'said once')
    T.eq(0, #notes('the server died'), 'no crash reported')
    T.eq(0, #recovery.events, 'no restart of its own')
    compat.stop(second)
    T.wait(function()
      return client() == nil
    end, 'the server to stop')
    vim.wait(500)
    T.eq(nil, client(), 'not restarted')
    T.eq(0, #notes('the server died'), 'a stop is not a crash')
  end },

  { 'a server that dies at once is restarted 3 times, then left stopped', function()
    require('channelcoder.config').options.cmd = { 'sh', '-c', 'exit 3' }
    vim.cmd('ClaudeRestart')
    T.wait(function()
      return #notes('the server died again (exit code 3), left stopped: :ClaudeRestart') == 1
    end, 'giving up', 20000)
    T.eq(3, #notes('the server died (exit code 3); restarting it'), 'three restarts said')
    for _, note in ipairs(_G.test_notes) do
      T.ok(vim.fn.strdisplaywidth(note.message) < vim.o.columns, 'fits the command line: ' .. note.message)
    end
    vim.wait(1000)
    T.eq(nil, client(), 'no server')
    T.eq('', vim.v.errmsg, 'v:errmsg')
    T.eq(false, vim.api.nvim_get_mode().blocking, 'Neovim waits for no key')
  end },
})
