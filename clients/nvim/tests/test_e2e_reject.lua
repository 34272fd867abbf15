-- Rejecting a proposal asks for a reason; the reason becomes the next turn of the same Claude
-- session (a follow-up job with its own transcript and proposal), which is then accepted.
local T = require('helpers')
local E = require('e2e')

local bufnr, first, follow_up

T.run({
  { 'the first proposal is rejected with a reason', function()
    E.setup()
    bufnr = E.open('app.py')
    T.stub_input("say 'hi' instead")
    vim.cmd('Claude change the greeting')
    first = E.wait_done(E.wait_job())
    E.wait_review(first)
    E.press(first, 'M app.py', 'R')
    T.wait(function()
      return #T.prompts == 1
    end, 'the reason prompt')
    T.eq({ "GREETING = 'hello'" }, E.lines(bufnr), 'nothing applied')
    T.wait(function()
      return #E.notes('proposal rejected; Claude continues in job') == 1
    end, 'the rejection confirmed')
    T.eq({}, E.notes('was not applied'), 'no warning about our own answer')
  end },

  { 'the follow-up job runs with the reason and its proposal is accepted', function()
    T.wait(function()
      local list = require('channelcoder').jobs()
      return #list >= 2
    end, 'the follow-up job', E.JOB_GUARD)
    follow_up = require('channelcoder').jobs()[2]
    T.wait(function()
      return follow_up.state ~= 'running'
    end, 'the follow-up to end', E.JOB_GUARD)
    T.eq('succeeded', follow_up.state, 'follow-up state')
    T.contains(E.transcript(follow_up), 'Now it says hi.')
    E.wait_review(follow_up, 'the follow-up review')
    E.press(follow_up, 'M app.py', 'a')
    T.wait(function()
      return E.lines(bufnr)[1] == "GREETING = 'hi'"
    end, 'the follow-up edit applied')
  end },
})
