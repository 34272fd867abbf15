-- A proposal with two hunks in one file and a new file: accept the first hunk, reject the
-- second, accept the new file. Only what was accepted lands (on 0.7 through the re-offer).
local T = require('helpers')
local E = require('e2e')

local bufnr, job

T.run({
  { 'a job changes two places and adds a file', function()
    E.setup()
    bufnr = E.open('app.py')
    vim.api.nvim_buf_set_lines(bufnr, 0, -1, false,
      { "GREETING = 'hello'", 'a = 1', 'b = 2', 'c = 3', 'd = 4', 'e = 5', "FAREWELL = 'bye'" })
    vim.cmd('write')
    vim.cmd('Claude shout everything')
    job = E.wait_done(E.wait_job())
    T.eq('succeeded', job.state, 'job state')
    E.wait_review(job)
    local review = T.buf_text(E.review_buf(job))
    T.contains(review, "-GREETING = 'hello'\n+GREETING = 'HELLO'")
    T.contains(review, "-FAREWELL = 'bye'\n+FAREWELL = 'BYE'")
    T.contains(review, 'A notes.txt  (new file)')
  end },

  { 'per-hunk decisions are applied exactly', function()
    E.press(job, "+GREETING = 'HELLO'", 'a')
    E.press(job, "+FAREWELL = 'BYE'", 'r')
    E.press(job, 'A notes.txt', 'a')
    T.wait(function()
      return E.lines(bufnr)[1] == "GREETING = 'HELLO'"
    end, 'the accepted hunk')
    T.eq({ "GREETING = 'HELLO'", 'a = 1', 'b = 2', 'c = 3', 'd = 4', 'e = 5', "FAREWELL = 'bye'" },
      E.lines(bufnr), 'only the accepted hunk')
    local notes = vim.fn.bufnr(E.workdir .. '/notes.txt')
    T.ok(notes ~= -1, 'the new file is loaded')
    T.eq({ 'shouted' }, vim.api.nvim_buf_get_lines(notes, 0, -1, false), 'its content')
    local answers = require('channelcoder.proposals').answers
    T.eq(true, answers[#answers].applied, 'answered applied')
    vim.cmd('wall')
  end },
})
