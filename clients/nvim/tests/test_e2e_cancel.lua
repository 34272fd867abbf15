-- :ClaudeCancel while the model is still thinking: window/workDoneProgress/cancel ends the job
-- (progress "cancelled", the transcript says so) and nothing keeps running.
local T = require('helpers')
local E = require('e2e')

local job

T.run({
  { 'a job reaches the model', function()
    E.setup()
    E.open('app.py')
    vim.cmd('Claude cancel-marker-7f3a wait for the slow model')
    job = E.wait_job()
    T.wait(function()
      for _, event in ipairs(job.events) do
        if event.type == 'init' then
          return true
        end
      end
    end, 'claude to start (init event)', E.JOB_GUARD)
    T.ok(require('channelcoder.progress').active(job.id), 'progress is active')
    T.contains(require('channelcoder').statusline(), 'Claude')
  end },

  { ':ClaudeCancel cancels through the progress token', function()
    vim.cmd('ClaudeCancel')
    T.eq(1, #E.notes('cancelling Claude: cancel-marker-7f3a'), 'cancelled through the progress token')
    T.wait(function()
      return job.state ~= 'running'
    end, 'the job to end after cancel', 20000)
    T.eq('cancelled', job.state, 'job state')
    T.wait(function()
      local history = E.progress(job.token)
      return history[#history].kind == 'end'
    end, 'the progress to end')
    local history = E.progress(job.token)
    T.contains(history[#history].message, 'cancel')
    T.contains(E.transcript(job), 'cancel')
    E.wait_done(job)
    T.eq(false, job.reply.ok, 'reply ok')
    T.eq('cancelled', job.reply.error.code, 'reply error code')
    T.eq('', require('channelcoder').statusline(), 'statusline idle again')
  end },
})
