-- :Claude with a line range and :ClaudeAsk with a characterwise selection: the selected text of
-- the unsaved buffer reaches the model; the answer opens in a buffer; :ClaudeJobs lists both.
local T = require('helpers')
local E = require('e2e')

local bufnr, run_job, ask_job

T.run({
  { 'unsaved lines in the buffer', function()
    E.setup()
    bufnr = E.open('app.py')
    vim.api.nvim_buf_set_lines(bufnr, 0, -1, false, {
      "GREETING = 'hello'",
      'def shout(name):',
      "    return name.upper() + '!'",
      "print(shout('x'))",
    })
  end },

  { ':2,3Claude sends lines 2-3 along', function()
    vim.cmd('2,3Claude Explain these lines')
    run_job = E.wait_job()
    T.contains(run_job.title, 'Claude: Explain these lines')
    E.wait_done(run_job)
    T.eq(true, run_job.reply.ok, 'reply ok')
    T.eq(nil, run_job.reply.proposalId, 'no proposal for an answer without changes')
    T.contains(E.transcript(run_job), 'These lines shout.')
  end },

  { ":'<,'>ClaudeAsk sends a characterwise selection", function()
    vim.api.nvim_win_set_cursor(0, { 2, 4 }) -- on "shout"
    vim.cmd('normal! vt:') -- "shout(name)"
    vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes('<Esc>', true, false, true), 'x', false)
    vim.cmd("'<,'>ClaudeAsk What is this?")
    ask_job = E.job()
    T.ok(ask_job ~= run_job, 'a second job')
    E.wait_done(ask_job)
    T.eq('channelcoder.ask', ask_job.command, 'asked')
    -- the server opens the answer (window/showDocument) and the plugin shows it in a split
    T.wait(function()
      return vim.fn.bufnr(ask_job.id .. '.md') ~= -1
    end, 'the answer document')
    local answer = vim.fn.bufnr(ask_job.id .. '.md')
    T.ok(#vim.fn.win_findbuf(answer) > 0, 'shown in a window')
    T.contains(T.buf_text(answer), 'These lines shout.')
    T.ok(not vim.lsp.buf_is_attached(answer, E.client().id), 'the answer is not a workspace document')
  end },

  { ':ClaudeJobs lists both jobs', function()
    vim.cmd('ClaudeJobs')
    T.wait(function()
      return vim.fn.bufnr('claude://jobs') ~= -1 and T.buf_text(vim.fn.bufnr('claude://jobs')):find(ask_job.id, 1, true)
    end, 'the jobs list')
    local text = T.buf_text(vim.fn.bufnr('claude://jobs'))
    T.contains(text, run_job.id)
    T.contains(text, 'succeeded')
  end },
})
