-- The server's `workspace/applyEdit` (a Claude proposal) as a reviewable diff.
--
-- Every edit is version-checked first: a stale one is answered `applied: false` (Neovim's own
-- handler would skip it silently and answer `applied: true`). A fresh one opens a review where
-- each hunk (and each file creation, deletion or rename) is accepted or rejected. On 0.10+ the
-- answer waits for the decisions (the handler runs in a coroutine); 0.7 must answer at once, so
-- the edit is held (`applied: false`), and once decided `channelcoder.applyProposal` re-offers
-- it, rebased, and the remembered decisions are applied without asking again.
local compat = require('channelcoder.compat')
local config = require('channelcoder.config')
local edit = require('channelcoder.edit')
local lsp = require('channelcoder.lsp')
local util = require('channelcoder.util')

local M = {}

M.reviews = {} -- job id -> the review on screen or waiting
M.decisions = {} -- job id -> { [hunk or file key] = 'accept' | 'reject' }
M.answers = {} -- every answer given: { jobId, applied, failureReason }

M.HELD = 'held for review in Neovim (the review is open; :ClaudeReview reopens it)'
M.REJECTED = "rejected in Neovim's review"

local function answer(job_id, applied, reason)
  table.insert(M.answers, { jobId = job_id, applied = applied, failureReason = reason })
  if applied then
    return { applied = true }
  end
  return { applied = false, failureReason = reason }
end

local function job_of(workspace_edit)
  for id in pairs(workspace_edit.changeAnnotations or {}) do
    local job = tostring(id):match('^channelcoder:(.+)$')
    if job then
      return job
    end
  end
  for _, change in ipairs(workspace_edit.documentChanges or {}) do
    local id = change.annotationId
    for _, text_edit in ipairs(change.edits or {}) do
      id = id or text_edit.annotationId
    end
    local job = id and tostring(id):match('^channelcoder:(.+)$')
    if job then
      return job
    end
  end
  return util.new_id('edit-')
end

-- Review state ----------------------------------------------------------------------------

local function each_item(review, fn)
  for _, f in ipairs(review.files) do
    if f.op ~= 'modify' and #f.hunks == 0 then
      fn(f, nil)
    end
    for _, h in ipairs(f.hunks) do
      fn(f, h)
    end
  end
end

local function decision_of(f, h)
  if h then
    return h.decision
  end
  return f.decision
end

local function undecided(review)
  local n = 0
  each_item(review, function(f, h)
    if decision_of(f, h) == nil then
      n = n + 1
    end
  end)
  return n
end

local function count(review, what)
  local n = 0
  each_item(review, function(f, h)
    if decision_of(f, h) == what then
      n = n + 1
    end
  end)
  return n
end

local function number_keys(review)
  for _, f in ipairs(review.files) do
    local seen = {}
    for _, h in ipairs(f.hunks) do
      seen[h.key] = (seen[h.key] or 0) + 1
      h.id = h.key .. '#' .. seen[h.key]
    end
  end
end

local function remember(review)
  local memory = M.decisions[review.job_id] or {}
  M.decisions[review.job_id] = memory
  for _, f in ipairs(review.files) do
    if f.key and f.decision then
      memory[f.key] = f.decision
    end
    for _, h in ipairs(f.hunks) do
      if h.decision then
        memory[h.id] = h.decision
      end
    end
  end
end

local function prefill(review)
  local memory = M.decisions[review.job_id] or {}
  for _, f in ipairs(review.files) do
    f.decision = f.key and memory[f.key] or nil
    for _, h in ipairs(f.hunks) do
      h.decision = memory[h.id]
    end
  end
end

local function accepted(f, h)
  return decision_of(f, h) == 'accept'
end

-- The review buffer -------------------------------------------------------------------------

local marks = { accept = '[✓]', reject = '[✗]' }
local op_names = { create = 'new file', delete = 'delete', rename = 'rename' }
local letters = { modify = 'M', create = 'A', delete = 'D', rename = 'R' }

local function render(review)
  local lines = {
    string.format('Claude proposal · %s  (job %s)', review.label or '', review.job_id),
    'a accept · r reject  (the hunk under the cursor; on a file line, the whole file)'
      .. ' · A accept all · R reject all · q close, decide later',
    '',
  }
  local map = {}
  local function add(line, item)
    table.insert(lines, line)
    map[#lines] = item
  end
  for fi, f in ipairs(review.files) do
    local name = vim.fn.fnamemodify(f.fname, ':~:.')
    local header = letters[f.op] .. ' ' .. name
    if f.op == 'rename' then
      header = header .. '  (from ' .. vim.fn.fnamemodify(f.source_fname, ':~:.') .. ')'
    elseif f.op ~= 'modify' then
      header = header .. '  (' .. op_names[f.op] .. ')'
    end
    if #f.hunks == 0 and f.op ~= 'modify' then
      header = header .. ' ' .. (marks[f.decision] or '[ ]')
    end
    add(header, { file = fi })
    if f.op == 'delete' then
      for _, old in ipairs(f.old_lines or {}) do
        add('-' .. old, { file = fi })
      end
    end
    for hi, h in ipairs(f.hunks) do
      add(string.format('@@ -%d,%d +%d,%d @@ %s', h.line + 1, #h.old, h.line + 1, #h.new,
        marks[h.decision] or '[ ]'), { file = fi, hunk = hi })
      for _, old in ipairs(h.old) do
        add('-' .. old, { file = fi, hunk = hi })
      end
      for _, new in ipairs(h.new) do
        add('+' .. new, { file = fi, hunk = hi })
      end
    end
    add('', nil)
  end
  review.map = map
  util.set_lines(review.bufnr, lines)
end

local finish -- forward

local function close_windows(review)
  if not review.bufnr or not vim.api.nvim_buf_is_valid(review.bufnr) then
    return
  end
  for _, win in ipairs(vim.fn.win_findbuf(review.bufnr)) do
    if #vim.api.nvim_list_wins() > 1 then
      pcall(vim.api.nvim_win_close, win, true)
    end
  end
end

local function next_undecided(review, from)
  local total = vim.api.nvim_buf_line_count(review.bufnr)
  for lnum = from, total do
    local item = review.map[lnum]
    if item then
      local f = review.files[item.file]
      local h = item.hunk and f.hunks[item.hunk]
      if (h and h.decision == nil) or (not item.hunk and #f.hunks == 0 and f.op ~= 'modify' and f.decision == nil) then
        return lnum
      end
    end
  end
  return nil
end

--- Decide on the item at line `lnum` of the review (nil: everything undecided).
function M.decide(job_id, what, lnum)
  local review = M.reviews[job_id]
  if not review then
    return
  end
  if lnum == nil then
    each_item(review, function(f, h)
      if decision_of(f, h) == nil then
        if h then
          h.decision = what
        else
          f.decision = what
        end
      end
    end)
  else
    local item = review.map and review.map[lnum]
    if not item then
      return
    end
    local f = review.files[item.file]
    if item.hunk then
      f.hunks[item.hunk].decision = what
    else
      f.decision = what
      for _, h in ipairs(f.hunks) do
        h.decision = what
      end
    end
  end
  remember(review)
  if undecided(review) == 0 then
    M.complete(review)
    return
  end
  render(review)
  local target = next_undecided(review, (lnum or 1)) or next_undecided(review, 1)
  for _, win in ipairs(vim.fn.win_findbuf(review.bufnr)) do
    if target then
      vim.api.nvim_win_set_cursor(win, { target, 0 })
    end
  end
end

local function keymaps(review)
  local function map(lhs, what, all)
    vim.keymap.set('n', lhs, function()
      local lnum = not all and vim.api.nvim_win_get_cursor(0)[1] or nil
      M.decide(review.job_id, what, lnum)
    end, { buffer = review.bufnr, nowait = true, desc = 'channelcoder: ' .. what })
  end
  map('a', 'accept', false)
  map('r', 'reject', false)
  map('A', 'accept', true)
  map('R', 'reject', true)
  vim.keymap.set('n', 'q', function()
    close_windows({ bufnr = vim.api.nvim_get_current_buf() })
  end, { buffer = review.bufnr, nowait = true, desc = 'channelcoder: decide later' })
end

function M.open(review)
  if not review.bufnr or not vim.api.nvim_buf_is_valid(review.bufnr) then
    review.bufnr = util.scratch('claude://review/' .. review.job_id, 'diff')
    keymaps(review)
  end
  render(review)
  util.show(review.bufnr, config.options.review.split, true)
  local first = next_undecided(review, 1)
  if first then
    vim.api.nvim_win_set_cursor(0, { first, 0 })
  end
end

-- Finishing ---------------------------------------------------------------------------------

local function ask_reason_and_reject(review)
  vim.ui.input({ prompt = 'Reject reason (optional; Claude continues with it): ' }, function(reason)
    local arg = { jobId = review.job_id }
    if reason and vim.trim(reason) ~= '' then
      arg.reason = reason
    end
    lsp.execute('channelcoder.rejectProposal', arg, {}, function(err, result)
      if err then
        return
      end
      local next_job = type(result) == 'table' and result.nextJobId
      if util.nonempty(next_job) then
        util.notify('proposal rejected; Claude continues in job ' .. next_job)
      else
        util.notify('proposal rejected')
      end
    end)
  end)
end

--- An empty buffer already holds one empty line, so a created file's text (ending in a
--- newline) leaves an extra empty last line behind; remove it.
local function trim_created(review)
  for _, f in ipairs(review.files) do
    if f.op == 'create' and #f.hunks > 0 then
      local bufnr = edit.find_buf(f.fname)
      local n = bufnr and vim.api.nvim_buf_line_count(bufnr) or 0
      if n > 1 and vim.api.nvim_buf_get_lines(bufnr, n - 1, n, false)[1] == '' then
        vim.api.nvim_buf_set_lines(bufnr, n - 1, n, false, {})
      end
    end
  end
end

--- Apply what was accepted (nil when nothing was), after checking nothing went stale meanwhile.
local function apply_accepted(review)
  local reason = edit.stale_reason(review.files)
  if reason then
    return answer(review.job_id, false, reason .. '; the proposal is kept: :ClaudeReview re-offers it')
  end
  local filtered = edit.filter(review.workspace_edit, review.files, accepted)
  local ok, err = pcall(vim.lsp.util.apply_workspace_edit, filtered, review.encoding)
  if not ok then
    util.error('applying the proposal failed: ' .. tostring(err), ':ClaudeReview re-offers it')
    return answer(review.job_id, false, 'applying failed: ' .. tostring(err))
  end
  trim_created(review)
  local hunks = count(review, 'accept')
  util.notify(string.format('applied %d change%s of job %s (:wa saves them)', hunks, hunks == 1 and '' or 's',
    review.job_id))
  return answer(review.job_id, true)
end

function finish(review)
  if review.superseded then
    return answer(review.job_id, false, 'superseded by a newer offer of the same proposal')
  end
  M.reviews[review.job_id] = nil
  close_windows(review)
  if count(review, 'accept') == 0 then
    vim.schedule(function()
      ask_reason_and_reject(review)
    end)
    return answer(review.job_id, false, M.REJECTED)
  end
  return apply_accepted(review)
end

--- Every item is decided: answer (0.10+), or ask the server to re-offer the edit (0.7).
function M.complete(review)
  if review.resume then
    local resume = review.resume
    review.resume = nil
    resume()
    return
  end
  M.reviews[review.job_id] = nil
  close_windows(review)
  if count(review, 'accept') == 0 then
    ask_reason_and_reject(review)
    return
  end
  M.reoffer(review.job_id)
end

--- channelcoder.applyProposal: the server sends the (rebased) edit again.
function M.reoffer(job_id)
  lsp.execute('channelcoder.applyProposal', job_id and { jobId = job_id } or nil, {}, function(err, result)
    if err or type(result) ~= 'table' then
      return
    end
    for _, skip in ipairs(result.skipped or {}) do
      util.notify(string.format('%s: %s (left out)', tostring(skip.path), tostring(skip.reason)), vim.log.levels.WARN)
    end
  end)
end

-- The handler -------------------------------------------------------------------------------

function M.handler(_, params, ctx)
  local client = vim.lsp.get_client_by_id(ctx.client_id)
  local encoding = client and client.offset_encoding or 'utf-16'
  local workspace_edit = params.edit or {}
  local job_id = job_of(workspace_edit)
  local files = edit.parse(workspace_edit, encoding)
  local reason = edit.stale_reason(files)
  if reason then
    return answer(job_id, false, reason .. '; the proposal is kept: :ClaudeReview re-offers it on the current text')
  end
  local previous = M.reviews[job_id]
  if previous and previous.resume then
    previous.superseded = true
    M.complete(previous)
  end
  local review = {
    job_id = job_id,
    client_id = ctx.client_id,
    encoding = encoding,
    label = params.label,
    workspace_edit = workspace_edit,
    files = files,
    bufnr = previous and previous.bufnr,
  }
  number_keys(review)
  prefill(review)
  if undecided(review) == 0 then
    return finish(review)
  end
  M.reviews[job_id] = review
  if compat.can_defer_reply() then
    local co = coroutine.running()
    review.resume = function()
      coroutine.resume(co)
    end
    M.open(review)
    coroutine.yield()
    return finish(review)
  end
  M.open(review)
  return answer(job_id, false, M.HELD)
end

--- :ClaudeReview — reopen a pending review, else ask the server to offer its newest proposal.
function M.review(job_id)
  if job_id and M.reviews[job_id] then
    return M.open(M.reviews[job_id])
  end
  if not job_id then
    for _, review in pairs(M.reviews) do
      return M.open(review)
    end
  end
  M.reoffer(job_id)
end

return M
