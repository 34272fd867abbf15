-- Shared steps of the end-to-end scripts: the plugin against the real server, which runs real
-- Claude Code jobs against the scripted model the pytest test started.
-- Env: CHANNELCODER_NVIM_WORKDIR, CHANNELCODER_NVIM_SERVER (JSON argv),
--      CHANNELCODER_NVIM_SETTINGS (JSON: the channelcoder settings for this run).
local T = require('helpers')
local compat = require('channelcoder.compat')

local E = {}

E.workdir = assert(os.getenv('CHANNELCODER_NVIM_WORKDIR'), 'CHANNELCODER_NVIM_WORKDIR is not set')
E.server = vim.json.decode(assert(os.getenv('CHANNELCODER_NVIM_SERVER')))
E.settings = vim.json.decode(os.getenv('CHANNELCODER_NVIM_SETTINGS') or '{}')
-- a job in the sandbox may build or start a container first
E.JOB_GUARD = tonumber(os.getenv('CHANNELCODER_NVIM_JOB_GUARD') or '') or 120000

function E.setup(extra)
  local opts = vim.tbl_deep_extend('force', { cmd = E.server, settings = E.settings }, extra or {})
  T.ok(require('channelcoder').setup(opts), 'setup')
end

function E.client()
  return compat.clients('channelcoder')[1]
end

--- Edit a file of the workspace and wait until the server has it open.
function E.open(name)
  vim.cmd('edit ' .. vim.fn.fnameescape(E.workdir .. '/' .. name))
  local bufnr = vim.api.nvim_get_current_buf()
  T.wait(function()
    local c = E.client()
    return c and c.initialized and compat.is_attached(c, bufnr)
  end, 'the server to attach ' .. name)
  return bufnr
end

function E.lines(bufnr)
  return vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
end

--- The only (or newest) job the plugin knows.
function E.job()
  local list = require('channelcoder').jobs()
  return list[#list]
end

function E.wait_job(what)
  T.wait(function()
    return E.job() ~= nil
  end, what or 'a job to start')
  return E.job()
end

--- Wait until the job has ended and its reply (if the plugin started it) came.
function E.wait_done(job)
  T.wait(function()
    return job.state ~= 'running' and (job.reply ~= nil or job.reply_error ~= nil or job.command == nil)
  end, 'job ' .. job.id .. ' to end', E.JOB_GUARD)
  return job
end

function E.transcript(job)
  local bufnr = vim.fn.bufnr('claude://job/' .. job.id)
  T.ok(bufnr ~= -1, 'a transcript buffer for ' .. job.id)
  return T.buf_text(bufnr), bufnr
end

--- Progress history entries of one token.
function E.progress(token)
  local out = {}
  for _, entry in ipairs(require('channelcoder.progress').history) do
    if entry.token == token then
      table.insert(out, entry)
    end
  end
  return out
end

function E.review_buf(job)
  local bufnr = require('channelcoder.review').find(job.id) or -1
  return bufnr ~= -1 and bufnr or nil
end

--- Wait until the review of `job` is shown in a window; its buffer.
function E.wait_review(job, what)
  T.wait(function()
    return E.review_buf(job) and #vim.fn.win_findbuf(E.review_buf(job)) > 0
  end, what or 'the review')
  return E.review_buf(job)
end

--- Press `keys` in the review of `job` with the cursor on the first line containing `pattern`.
function E.press(job, pattern, keys)
  local bufnr = E.review_buf(job)
  T.ok(bufnr, 'a review for ' .. job.id)
  local win = vim.fn.win_findbuf(bufnr)[1]
  T.ok(win, 'the review is shown')
  vim.api.nvim_set_current_win(win)
  for i, line in ipairs(E.lines(bufnr)) do
    if line:find(pattern, 1, true) then
      vim.api.nvim_win_set_cursor(win, { i, 0 })
      vim.cmd('normal ' .. keys)
      return
    end
  end
  T.fail('no line ' .. pattern .. ' in the review:\n' .. T.buf_text(bufnr))
end

--- The notifications whose text contains `needle`.
function E.notes(needle)
  local out = {}
  for _, note in ipairs(_G.test_notes) do
    if note.message:find(needle, 1, true) then
      table.insert(out, note)
    end
  end
  return out
end

return E
