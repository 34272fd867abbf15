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
    T.ok(not text:find('ERROR channelcoder.doctor failed', 1, true), text)
  end },
})
