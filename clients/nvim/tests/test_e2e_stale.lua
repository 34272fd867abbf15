-- The user types while Claude works: the proposal for the old version is refused (applied =
-- false, nothing clobbered); :ClaudeReview gets it rebased onto the current text; accepted,
-- both the user's and Claude's changes are in the buffer.
local T = require('helpers')
local E = require('e2e')
local proposals = require('channelcoder.proposals')

local bufnr, job

T.run({
  { 'a job starts on a saved three-line file', function()
    E.setup()
    bufnr = E.open('app.py')
    vim.api.nvim_buf_set_lines(bufnr, 0, -1, false, { "GREETING = 'hello'", 'A = 1', 'B = 2' })
    vim.cmd('write')
    vim.cmd('Claude change the greeting')
    job = E.wait_job()
    T.wait(function()
      for _, event in ipairs(job.events) do
        if event.type == 'init' then
          return true
        end
      end
    end, 'claude to start', E.JOB_GUARD)
  end },

  { 'the user edits the buffer meanwhile; the stale proposal is refused', function()
    vim.api.nvim_buf_set_lines(bufnr, 2, 3, false, { 'B = 3  # typed while Claude worked' })
    E.wait_done(job)
    T.eq(job.id, job.reply.proposalId, 'a proposal')
    T.wait(function()
      return #proposals.answers > 0
    end, 'the applyEdit answer')
    T.eq(false, proposals.answers[1].applied, 'refused')
    T.contains(proposals.answers[1].failureReason, 'changed since the job started')
    T.eq({ "GREETING = 'hello'", 'A = 1', 'B = 3  # typed while Claude worked' }, E.lines(bufnr), 'nothing clobbered')
    T.eq(nil, E.review_buf(job), 'no review of a stale edit')
  end },

  { ':ClaudeReview offers it rebased; accepting keeps both changes', function()
    vim.cmd('ClaudeReview ' .. job.id)
    E.wait_review(job, 'the rebased review')
    E.press(job, 'M app.py', 'A')
    T.wait(function()
      return E.lines(bufnr)[1] == "GREETING = 'hello, world'"
    end, 'the rebased edit applied')
    T.eq({ "GREETING = 'hello, world'", 'A = 1', 'B = 3  # typed while Claude worked' }, E.lines(bufnr), 'both changes')
    T.eq(true, proposals.answers[#proposals.answers].applied, 'last answer')
  end },
})
