-- :checkhealth channelcoder in the sandbox: besides the standby setting, what the standby is
-- right now — ready, in which container, for which image and workspace, how old.
local T = require('helpers')
local E = require('e2e')

local workdir = vim.fn.resolve(E.workdir)

local function standby_ready()
  local out = vim.fn.systemlist({ 'docker', 'ps', '-q', '--filter', 'label=io.channelcoder.standby=1',
    '--filter', 'label=io.channelcoder.workspace=' .. workdir })
  return vim.v.shell_error == 0 and #out > 0 and out[1] or nil
end

T.run({
  { ':checkhealth channelcoder shows the standby that is running', function()
    E.setup()
    E.open('app.py')
    T.wait(standby_ready, 'the standby container', E.JOB_GUARD)
    local container = standby_ready()
    local text
    T.wait(function()
      vim.cmd('checkhealth channelcoder')
      text = T.buf_text(vim.api.nvim_get_current_buf())
      return text:find('standby sandbox: ready', 1, true) ~= nil
    end, 'a ready standby in the report (its claude warming up first)', E.JOB_GUARD)
    T.contains(text, 'standby sandbox (setting): on')
    T.contains(text, 'standby sandbox: ready: container ' .. container:sub(1, 12))
    T.contains(text, 'for ' .. workdir)
    T.ok(text:match('standby sandbox: ready: [^\n]*, image [^\n]+, %d+ s old'), text)
  end },
})
