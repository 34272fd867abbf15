-- No error is hidden: a failing model, a bad command argument and a missing diagnostic all
-- reach the user as a notification with a hint.
local T = require('helpers')
local E = require('e2e')

T.run({
  { 'a job failing at the API ends with an error notification', function()
    E.setup()
    E.open('app.py')
    vim.cmd('Claude this will fail')
    local job = E.wait_done(E.wait_job())
    T.eq('failed', job.state, 'job state')
    T.eq(false, job.reply.ok, 'reply ok')
    T.wait(function()
      return #E.notes('Claude job failed') > 0
    end, 'the failure notification')
    T.eq(vim.log.levels.ERROR, E.notes('Claude job failed')[1].level, 'as an error')
    local history = E.progress(job.token)
    T.contains(history[#history].message, 'failed')
    T.contains(E.transcript(job), 'failed')
  end },

  { 'an invalid argument comes back with the server hint', function()
    require('channelcoder.lsp').execute('channelcoder.cancel', { jobId = 'no-such-job' })
    T.wait(function()
      return #E.notes('channelcoder.cancel:') > 0
    end, 'the error notification')
    local note = E.notes('channelcoder.cancel:')[1]
    T.eq(vim.log.levels.ERROR, note.level, 'as an error')
    T.contains(note.message, 'no-such-job')
    T.contains(note.message, 'hint')
    T.eq(1, select(2, note.message:gsub('see channelcoder.jobs', '')), 'the hint once')
  end },

  { ':ClaudeFix without a diagnostic says what to do', function()
    pcall(vim.cmd, 'ClaudeFix') -- headless Neovim turns the error message into an exception
    T.contains(_G.test_notes[#_G.test_notes].message, 'no diagnostic under the cursor')
  end },
})
