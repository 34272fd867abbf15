-- Three jobs share one transcript window (the focus stays in the file); the footer, the echoed
-- end of the progress and :ClaudeJobs show the same duration, within 10% of the wall time.
local T = require('helpers')
local E = require('e2e')
local progress = require('channelcoder.progress')

local uv = vim.uv or vim.loop
local runs = {}

local function transcript_windows()
  local out = {}
  for _, win in ipairs(vim.api.nvim_list_wins()) do
    if vim.api.nvim_buf_get_name(vim.api.nvim_win_get_buf(win)):find('^claude://job/') then
      table.insert(out, win)
    end
  end
  return out
end

--- Seconds in '1.5 s' / '840 ms' at the first match of `pattern` (which captures it).
local function seconds(text, pattern)
  local value = text:match(pattern)
  T.ok(value, string.format('%q in %q', pattern, text))
  local number, unit = value:match('^([%d.]+) (m?s)$')
  return tonumber(number) / (unit == 'ms' and 1000 or 1)
end

local function near(want, got, what)
  T.ok(math.abs(got - want) <= 0.1 * want, string.format('%s: %.3f s, wall time %.3f s', what, got, want))
end

T.run({
  { 'three asks, one transcript window, the focus stays in the file', function()
    E.setup()
    local file = E.open('app.py')
    for n = 1, 3 do
      local started = uv.hrtime()
      vim.cmd('ClaudeAsk question ' .. n)
      local job = E.job()
      T.ok(vim.wait(E.JOB_GUARD, function()
        return job.state ~= 'running'
      end, 5), 'job ' .. n .. ' to end')
      local wall = (uv.hrtime() - started) / 1e9
      E.wait_done(job)
      table.insert(runs, { job = job, wall = wall })
      T.eq(1, #transcript_windows(), 'one transcript window after job ' .. n)
      T.eq(file, vim.api.nvim_get_current_buf(), 'the focus stays in the file')
      T.contains(E.transcript(job), 'Answer ')
    end
    local win = transcript_windows()[1]
    T.eq('claude://job/' .. runs[3].job.id, vim.api.nvim_buf_get_name(vim.api.nvim_win_get_buf(win)),
      'it shows the newest job')
    T.eq(-1, vim.fn.bufnr(runs[3].job.id .. '.md'), 'no answer window')
    T.wait(function()
      return require('channelcoder').statusline() == ''
    end, 'the statusline to go idle')
  end },

  { 'the footer and the echoed end agree with the wall time', function()
    for _, run in ipairs(runs) do
      near(run.wall, seconds(E.transcript(run.job), '── done · ([%d.]+ m?s)'), 'footer of ' .. run.job.id)
      local entry
      T.wait(function()
        entry = progress.tokens[run.job.token]
        return entry and entry.done
      end, 'the end of the progress')
      near(run.wall, seconds(entry.message, 'done in ([%d.]+ m?s)'), 'echo of ' .. run.job.id)
    end
  end },

  { ':ClaudeJobs shows the same durations', function()
    vim.cmd('ClaudeJobs')
    local jobs_buf
    T.wait(function()
      jobs_buf = vim.fn.bufnr('claude://jobs')
      return jobs_buf ~= -1 and T.buf_text(jobs_buf):find(runs[1].job.id, 1, true)
    end, 'the jobs list')
    T.eq(1, #vim.fn.win_findbuf(jobs_buf), 'shown')
    for _, run in ipairs(runs) do
      local row
      for _, line in ipairs(E.lines(jobs_buf)) do
        if line:find(run.job.id, 1, true) then
          row = line
        end
      end
      T.ok(row and row:find('^✓ Ask: question'), 'a row: ' .. tostring(row))
      near(run.wall, seconds(row, 'ago%s+([%d.]+ m?s)'), 'listed duration of ' .. run.job.id)
    end
  end },
})
