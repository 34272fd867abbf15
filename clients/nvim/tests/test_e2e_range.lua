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
    -- the answer lives in the one transcript window, which does not take the focus
    local text, tbuf = E.transcript(ask_job)
    T.contains(text, 'These lines shout.')
    T.wait(function()
      return #vim.fn.win_findbuf(tbuf) > 0
    end, 'the transcript shows the answer')
    T.eq(-1, vim.fn.bufnr(ask_job.id .. '.md'), 'no second window with the answer document')
    T.ok(vim.api.nvim_get_current_buf() ~= tbuf, 'the focus stays in the file')
    T.ok(not text:find('collecting changes', 1, true) and not text:find('Δ 0', 1, true),
      'a read-only job collects no changes:\n' .. text)
  end },

  { ':ClaudeJobs lists both jobs: icon, title, age, duration, id', function()
    vim.cmd('ClaudeJobs')
    T.wait(function()
      return vim.fn.bufnr('claude://jobs') ~= -1 and T.buf_text(vim.fn.bufnr('claude://jobs')):find(ask_job.id, 1, true)
    end, 'the jobs list')
    local lines = E.lines(vim.fn.bufnr('claude://jobs'))
    local row
    for _, line in ipairs(lines) do
      if line:find(run_job.id, 1, true) then
        row = line
      end
    end
    T.ok(row, 'a row for the run job:\n' .. table.concat(lines, '\n'))
    T.ok(row:match('^✓ Claude: Explain these lines%s+%d+s ago%s+[%d.]+ m?s%s+' .. vim.pesc(run_job.id) .. '$'),
      'icon, title, age, duration, id: ' .. row)
    T.ok(not table.concat(lines, '\n'):find('Selected lines', 1, true), 'not the internal prompt')
  end },
})
