-- The review of a real proposal the user partly edited meanwhile: one short notification (no
-- hit-enter prompt), then :ClaudeReview with context lines, ]c/[c, <CR> to the file, the
-- side-by-side view, and a conflict (both versions) resolved by editing the hunk.
local T = require('helpers')
local E = require('e2e')

local bufnr, job, review

local function expected_lines()
  local out = {}
  for i = 1, 12 do
    out[i] = 'a' .. i
  end
  return out
end

--- Every notification so far fits on one line of the command line, no error was raised and
--- Neovim is not waiting for a key.
local function not_blocked()
  for _, note in ipairs(_G.test_notes) do
    T.ok(not note.message:find('\n'), 'a one-line message: ' .. note.message)
    T.ok(vim.fn.strdisplaywidth(note.message) < vim.o.columns, 'fits the command line: ' .. note.message)
    T.ok(not note.message:find('channelcoder: channelcoder:', 1, true), 'said once: ' .. note.message)
  end
  T.eq('', vim.v.errmsg, 'v:errmsg')
  T.eq(false, vim.api.nvim_get_mode().blocking, 'Neovim waits for no key')
end

local function cursor_line()
  return vim.api.nvim_get_current_line()
end

T.run({
  { 'the user edits a line Claude changes too: one short notification', function()
    E.setup()
    bufnr = E.open('app.py')
    vim.api.nvim_buf_set_lines(bufnr, 0, -1, false, expected_lines())
    vim.cmd('write')
    vim.cmd('Claude shout some lines')
    job = E.wait_job()
    T.wait(function()
      for _, event in ipairs(job.events) do
        if event.type == 'init' then
          return true
        end
      end
    end, 'claude to start', E.JOB_GUARD)
    vim.api.nvim_buf_set_lines(bufnr, 5, 6, false, { 'a6 # mine' })
    E.wait_done(job)
    T.wait(function()
      return #require('channelcoder.proposals').answers > 0
    end, 'the applyEdit answer')
    vim.wait(500) -- the server's own warning would arrive now
    local waits = E.notes('app.py')
    T.eq(1, #waits, 'one notification about the waiting proposal: ' .. vim.inspect(_G.test_notes))
    T.eq('channelcoder: proposal waits: app.py changed meanwhile · :ClaudeReview', waits[1].message)
    T.eq(0, #E.notes('applyProposal'), 'no VS Code command names')
    T.eq(0, #E.notes('version'), 'no document versions')
    not_blocked()
  end },

  { ':ClaudeReview: a named review with context lines and the conflict with both versions', function()
    vim.cmd('ClaudeReview')
    E.wait_review(job, 'the rebased review')
    review = E.review_buf(job)
    T.eq('Claude: shout some lines — app.py', vim.fn.bufname(review), 'the review says what it is')
    local text = T.buf_text(review)
    T.contains(text, '@@ -1,4 +1,4 @@ [ ]\n-a1\n+A1\n a2\n a3\n a4\n', 'three lines of context')
    T.contains(text, ' a4\n@@ -5,5 +5,5 @@ [ ]  ⚠ conflict: you and Claude changed these lines\n a5\n'
      .. '<<<<<<< yours\n-a6 # mine\n======= Claude\n+A6\n>>>>>>>\n a7\n a8\n a9\n',
      'the conflict: your line and Claude\'s')
    T.contains(text, ' a9\n@@ -10,3 +10,3 @@ [ ]\n a10\n-a11\n+A11\n a12\n', 'context not repeated')
    not_blocked()
  end },

  { ']c and [c move between hunks; <CR> goes to the line in the file', function()
    local win = vim.fn.win_findbuf(review)[1]
    vim.api.nvim_set_current_win(win)
    T.ok(cursor_line():find('^@@ %-1,4'), 'starts on the first hunk: ' .. cursor_line())
    vim.cmd('normal ]c')
    T.ok(cursor_line():find('conflict'), ']c: the conflict: ' .. cursor_line())
    vim.cmd('normal ]c')
    T.ok(cursor_line():find('^@@ %-10,3'), ']c: the third hunk: ' .. cursor_line())
    vim.cmd('normal [c')
    T.ok(cursor_line():find('conflict'), '[c: back to the conflict: ' .. cursor_line())
    vim.fn.search('^-a6 # mine')
    vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes('<CR>', true, false, true), 'x', false)
    T.eq(bufnr, vim.api.nvim_get_current_buf(), '<CR> opened app.py')
    T.eq(6, vim.api.nvim_win_get_cursor(0)[1], 'at the line')
    vim.api.nvim_set_current_win(win)
  end },

  { 'a accepts, r rejects; the side-by-side view shows your text and Claude\'s in diff mode', function()
    E.press(job, '+A1', 'a')
    E.press(job, '+A11', 'r')
    local tabs = #vim.api.nvim_list_tabpages()
    E.press(job, '+A6', 'd')
    T.eq(tabs + 1, #vim.api.nvim_list_tabpages(), 'a tab of its own')
    local wins = vim.api.nvim_tabpage_list_wins(0)
    T.eq(2, #wins, 'two windows')
    local left, right = vim.api.nvim_win_get_buf(wins[1]), vim.api.nvim_win_get_buf(wins[2])
    T.ok(vim.wo[wins[1]].diff and vim.wo[wins[2]].diff, 'both in diff mode')
    T.eq('a6 # mine', vim.api.nvim_buf_get_lines(left, 5, 6, false)[1], 'yours on the left')
    T.eq({ 'A1', 'a2' }, vim.api.nvim_buf_get_lines(right, 0, 2, false), 'accepted hunk on the right')
    T.eq('A6', vim.api.nvim_buf_get_lines(right, 5, 6, false)[1], "Claude's side of the conflict")
    T.eq('a11', vim.api.nvim_buf_get_lines(right, 10, 11, false)[1], 'the rejected hunk is not there')
    T.contains(vim.fn.bufname(right), 'Claude: shout some lines — app.py')
    vim.cmd('normal q')
    T.eq(tabs, #vim.api.nvim_list_tabpages(), 'q closes the view')
    T.eq(review, vim.api.nvim_get_current_buf(), 'back in the review')
  end },

  { 'the conflict resolved by editing the hunk; the edited text is applied', function()
    E.press(job, '+A6', 'e')
    local edit_buf = vim.api.nvim_get_current_buf()
    T.contains(vim.fn.bufname(edit_buf), 'edit hunk')
    T.eq({ '<<<<<<< yours (the editor)', 'a6 # mine', '=======', 'A6', '>>>>>>> Claude' },
      vim.api.nvim_buf_get_lines(edit_buf, 0, -1, false), 'both versions to merge')
    vim.api.nvim_buf_set_lines(edit_buf, 0, -1, false, { 'A6 # mine' })
    vim.cmd('write')
    T.wait(function()
      return E.lines(bufnr)[6] == 'A6 # mine'
    end, 'the proposal applied')
    local want = expected_lines()
    want[1], want[6] = 'A1', 'A6 # mine'
    T.eq(want, E.lines(bufnr), 'accepted, edited and rejected hunks exactly')
    local answers = require('channelcoder.proposals').answers
    T.eq(true, answers[#answers].applied, 'answered applied')
    vim.wait(300)
    not_blocked()
    vim.cmd('write')
  end },
})
