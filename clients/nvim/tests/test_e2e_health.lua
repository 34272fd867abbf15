-- :checkhealth channelcoder: the server is found and answers, channelcoder.doctor's checks
-- (Docker engine, image, credentials) are listed.
local T = require('helpers')
local E = require('e2e')

T.run({
  { ':checkhealth channelcoder reports the server and the doctor checks', function()
    E.setup()
    E.open('app.py')
    vim.cmd('checkhealth channelcoder')
    local text = T.buf_text(vim.api.nvim_get_current_buf())
    T.contains(text, 'server command:')
    T.contains(text, 'server running')
    T.contains(text, 'docker')
    T.contains(text, 'sandbox: none (docker = false)', 'the settings in effect')
    T.contains(text, 'base URL host 127.0.0.1:', 'the API host')
    T.ok(not text:find(os.getenv('ANTHROPIC_API_KEY'), 1, true), 'no secret in the report')
    T.contains(text, 'standby sandbox (setting): off')
    T.ok(not text:find('ERROR channelcoder.doctor failed', 1, true), text)
    T.wait(function()
      return require('channelcoder.messages').swallow_document == nil
    end, "the doctor's report document (not opened during :checkhealth)")
    T.eq(-1, vim.fn.bufnr('doctor.md'), 'no report window from :checkhealth')
  end },

  { ':ClaudeDoctor opens the report', function()
    vim.cmd('ClaudeDoctor')
    T.wait(function()
      return vim.fn.bufnr('doctor.md') ~= -1
    end, 'the report', 60000)
    local report = vim.fn.bufnr('doctor.md')
    T.ok(#vim.fn.win_findbuf(report) > 0, 'shown')
    T.contains(T.buf_text(report), '# channelcoder doctor')
  end },
})
