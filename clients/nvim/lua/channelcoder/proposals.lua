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
local view = require('channelcoder.review')

local M = {}

M.reviews = {} -- job id -> the review on screen or waiting
M.decisions = {} -- job id -> { [hunk or file key] = 'accept' | 'reject' }
M.answers = {} -- every answer given: { jobId, applied, failureReason }
M.stale_reasons = {} -- failure reasons the plugin already told the user about

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
    local job = id and (tostring(id):match('^channelcoder:(.+)$') or tostring(id):match('^channelcoder%-hostrun:([^:]+):'))
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
      memory[f.key] = { decision = f.decision }
    end
    for _, h in ipairs(f.hunks) do
      if h.decision then
        memory[h.id] = { decision = h.decision, lines = h.edit.newText ~= h.original and h.new or nil,
          edited = h.edited, choice = h.choice }
      end
    end
  end
end

local function prefill(review)
  local memory = M.decisions[review.job_id] or {}
  for _, f in ipairs(review.files) do
    f.decision = f.key and memory[f.key] and memory[f.key].decision or nil
    for _, h in ipairs(f.hunks) do
      local m = memory[h.id]
      h.decision = m and m.decision
      if m and m.lines then
        edit.set_new(h, m.lines)
        h.edited, h.choice = m.edited, m.choice
      end
    end
  end
end

local function accepted(f, h)
  return decision_of(f, h) == 'accept'
end

local finish, stale_note -- forward

-- Deciding ----------------------------------------------------------------------------------

--- A hunk's decision; on a conflict, accepting takes Claude's version (or both, marked).
local function set_hunk(h, what, choice)
  h.decision = what
  if h.conflict and not h.edited and what == 'accept' then
    h.choice = choice or 'claude'
    edit.set_new(h, choice == 'both' and edit.marked_lines(h) or h.conflict.claude)
  end
end

--- Decide on the item at line `lnum` of the review, or on `item` ({file, hunk?}); neither:
--- everything undecided. `choice` = 'both' keeps a conflict's two versions between markers.
function M.decide(job_id, what, lnum, item, choice)
  local review = M.reviews[job_id]
  if not review then
    return
  end
  if lnum ~= nil then
    item = review.map and review.map[lnum]
    if not item then
      return
    end
  end
  if item == nil then
    each_item(review, function(f, h)
      if decision_of(f, h) == nil then
        if h then
          set_hunk(h, what)
        else
          f.decision = what
        end
      end
    end)
  else
    local f = review.files[item.file]
    if item.hunk then
      set_hunk(f.hunks[item.hunk], what, choice)
    else
      f.decision = what
      for _, h in ipairs(f.hunks) do
        set_hunk(h, what, choice)
      end
    end
  end
  remember(review)
  if undecided(review) == 0 then
    M.complete(review)
    return
  end
  view.render(review)
  local target = view.next_undecided(review, (lnum or 1)) or view.next_undecided(review, 1)
  for _, win in ipairs(vim.fn.win_findbuf(review.bufnr)) do
    if target then
      vim.api.nvim_win_set_cursor(win, { target, 0 })
    end
  end
end

function M.open(review)
  view.open(review)
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
    stale_note(review.label, reason)
    return answer(review.job_id, false, reason)
  end
  local filtered = edit.filter(review.workspace_edit, review.files, accepted)
  local ok, err = pcall(vim.lsp.util.apply_workspace_edit, filtered, review.encoding)
  if not ok then
    util.error('applying the proposal failed: ' .. tostring(err), ':ClaudeReview re-offers it')
    return answer(review.job_id, false, 'applying failed: ' .. tostring(err))
  end
  trim_created(review)
  local hunks = count(review, 'accept')
  util.notify(string.format('applied %d change%s (:wa saves them)', hunks, hunks == 1 and '' or 's'))
  return answer(review.job_id, true)
end

function finish(review)
  if review.superseded then
    return answer(review.job_id, false, 'superseded by a newer offer of the same proposal')
  end
  M.reviews[review.job_id] = nil
  view.close_windows(review)
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
  view.close_windows(review)
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
      util.notify(string.format('%s: %s', tostring(skip.path), tostring(skip.reason)), vim.log.levels.WARN)
    end
  end)
end

-- The handler -------------------------------------------------------------------------------

--- One short, non-blocking line when a proposal waits because the user typed meanwhile (the
--- server's own warning about it is not shown: messages.lua knows these reasons).
function stale_note(_, reason)
  M.stale_reasons[reason] = true
  local short = reason:gsub(' since the job started$', ' meanwhile')
  util.notify(string.format('proposal waits: %s · :ClaudeReview', short), vim.log.levels.WARN)
end

function M.handler(_, params, ctx)
  local client = vim.lsp.get_client_by_id(ctx.client_id)
  local encoding = client and client.offset_encoding or 'utf-16'
  local workspace_edit = params.edit or {}
  local job_id = job_of(workspace_edit)
  local files = edit.parse(workspace_edit, encoding)
  local reason = edit.stale_reason(files)
  if reason then
    stale_note(params.label, reason)
    return answer(job_id, false, reason)
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

--- The server `client_id` died: its reviews stay open with their decisions, but their answer
--- can no longer reach it, so they finish the way 0.7's do — decided, they ask the server now
--- running to offer the proposal again (which applies the decisions without asking), and the
--- restarted server's own re-offer replaces them.
function M.lose(client_id)
  for _, review in pairs(M.reviews) do
    if review.client_id == client_id then
      review.resume = nil -- the handler waiting in it answers nobody
    end
  end
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
