-- A proposal that edits files the host runs later (a git hook and the Makefile): the review says
-- so at the top, on each such file and on each of its hunks.
local T = require('helpers')
local E = require('e2e')

T.run({
  { 'the review flags what runs on your machine', function()
    E.setup()
    vim.cmd('Claude add a pre-commit hook and a make target')
    local job = E.wait_done(E.wait_job())
    T.eq('succeeded', job.state, 'job state')
    E.wait_review(job)
    local review = T.buf_text(E.review_buf(job))
    T.contains(review, '⚠ 2 files here run on your machine')
    T.contains(review, '.husky/pre-commit  ⚠ runs on your machine: husky git hook')
    T.contains(review, 'Makefile  ⚠ runs on your machine: runs on `make`')
    T.contains(review, '[ ]  ⚠ runs on your machine')
    T.ok(not review:find('app.py  ⚠', 1, true), 'a plain file is not flagged')
    local ns = vim.api.nvim_create_namespace('channelcoder_review_hostrun')
    local marks = vim.api.nvim_buf_get_extmarks(E.review_buf(job), ns, 0, -1, {})
    local _, flagged = review:gsub('⚠', '')
    T.eq(flagged, #marks, 'each flag is highlighted as a warning')
    T.ok(#marks >= 5, 'the header, two files and their hunks: ' .. #marks)
    T.contains((E.transcript(job)),
      '⚠ runs on your machine: .husky/pre-commit (husky git hook), Makefile (runs on `make`) — review before you run it')
  end },
})
