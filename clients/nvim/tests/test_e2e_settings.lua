-- Settings the server does not accept: one short notice for all of them (no wait for Enter,
-- nothing in v:errmsg), each named as the user wrote it in :checkhealth, said once.
local T = require('helpers')
local E = require('e2e')

T.run({
  { 'four settings problems are one short notice, listed by :checkhealth', function()
    vim.v.errmsg = ''
    E.setup({ settings = { maxTurns = 'lots', bogusKey = 1, appendSystem = 3, maxJobs = 'many' } })
    E.open('app.py')
    T.wait(function()
      return #E.notes('not accepted') > 0
    end, 'the notice about the settings', 20000)
    vim.wait(500)
    local notices = E.notes('not accepted')
    T.eq(1, #notices, 'one notice')
    T.contains(notices[1].message, '4 settings were not accepted — see :checkhealth channelcoder')
    T.eq(0, #E.notes("setting '"), 'no message per problem')
    T.ok(#notices[1].message < 80, 'fits the command line')
    T.eq('', vim.v.errmsg, 'v:errmsg')
    T.eq('n', vim.fn.mode(), 'not waiting for a key')
    vim.cmd('checkhealth channelcoder')
    local text = T.buf_text(vim.api.nvim_get_current_buf())
    T.contains(text, "setting 'maxTurns' must be a positive whole number, got 'lots'")
    T.contains(text, "setting 'appendSystem' must be a string")
    T.contains(text, "unknown setting 'bogusKey' (ignored)")
    T.contains(text, 'max jobs: "many" (not accepted: 2)', 'the value in effect, not the one sent')
  end },
})
