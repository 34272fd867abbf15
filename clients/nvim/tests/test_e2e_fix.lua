-- A linter's diagnostic -> vim.lsp.buf.code_action() -> "Fix with Claude" (picked through a
-- stubbed vim.ui.select) -> a job with progress and a live transcript -> the proposal reviewed
-- and accepted -> the buffer changed (the file on disk only after :write).
-- The workspace has app.py = "GREETING = 'hello'"; the scripted model runs a Bash sed on it.
local T = require('helpers')
local E = require('e2e')

local bufnr, job

T.run({
  { 'the server starts and attaches', function()
    E.setup()
    bufnr = E.open('app.py')
    T.eq({ "GREETING = 'hello'" }, E.lines(bufnr), 'app.py as committed')
  end },

  { "a code action on a linter's diagnostic starts a fix job", function()
    local ns = vim.api.nvim_create_namespace('test-linter')
    vim.diagnostic.set(ns, bufnr, { {
      lnum = 0, col = 0, end_lnum = 0, end_col = 8, source = 'test-linter',
      severity = vim.diagnostic.severity.WARN, message = 'GREETING should say hello, world',
    } })
    vim.api.nvim_win_set_cursor(0, { 1, 3 })
    T.stub_select('Fix with Claude')
    vim.lsp.buf.code_action()
    T.wait(function()
      return #T.offered > 0
    end, 'the code action picker')
    T.contains(T.offered, 'Fix with Claude: GREETING should say hello, world')
    job = E.wait_job('the fix job')
    T.eq('channelcoder.fix', job.command, 'started through the plugin (job id + progress token)')
  end },

  { 'progress and the transcript follow the job', function()
    E.wait_done(job)
    T.eq('succeeded', job.state, 'job state')
    local history = E.progress(job.token)
    T.ok(#history >= 3, 'begin, report(s), end: ' .. vim.inspect(history))
    T.eq('begin', history[1].kind, 'first progress')
    T.eq('end', history[#history].kind, 'last progress')
    T.contains(history[1].title, 'Claude')
    T.contains(history[#history].message, 'done')
    local text = E.transcript(job)
    T.contains(text, '▸ $ sed')
    T.contains(text, 'Fixed the greeting.')
    T.contains(text, '── done')
    T.ok(type(job.reply) == 'table' and job.reply.ok and job.reply.proposalId == job.id, 'reply: ' .. vim.inspect(job.reply))
  end },

  { 'the proposal opens as a review; accepting it edits the buffer, not the disk', function()
    E.wait_review(job)
    local review = T.buf_text(E.review_buf(job))
    T.contains(review, "-GREETING = 'hello'\n+GREETING = 'hello, world'")
    E.press(job, 'M app.py', 'a')
    T.wait(function()
      return E.lines(bufnr)[1] == "GREETING = 'hello, world'"
    end, 'the accepted edit in the buffer')
    T.eq({ "GREETING = 'hello'" }, vim.fn.readfile(E.workdir .. '/app.py'), 'disk untouched before :write')
    local answers = require('channelcoder.proposals').answers
    T.eq(true, answers[#answers].applied, 'the last applyEdit answer')
    vim.api.nvim_set_current_buf(bufnr)
    vim.cmd('write')
  end },

  { ':ClaudeFix fixes the diagnostic under the cursor', function()
    vim.api.nvim_win_set_cursor(0, { 1, 2 })
    vim.cmd('ClaudeFix')
    local fix = E.job()
    T.eq('channelcoder.fix', fix.command, 'a fix job')
    T.ok(fix ~= job, 'a new job')
    T.contains(fix.title, 'Fix: GREETING should say hello, world')
    E.wait_done(fix)
    T.eq(true, fix.reply.ok, 'reply ok')
  end },
})
