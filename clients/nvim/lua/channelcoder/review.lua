-- The review buffer of a proposal: files and hunks with context lines, a mark per decision,
-- conflicts with both versions, and the keys that decide, jump, edit and compare.
local config = require('channelcoder.config')
local edit = require('channelcoder.edit')
local util = require('channelcoder.util')

local M = {}

local marks = { accept = '[✓]', reject = '[✗]' }
local op_names = { create = 'new file', delete = 'delete', rename = 'rename' }
local letters = { modify = 'M', create = 'A', delete = 'D', rename = 'R' }

local function keys()
  return config.options.review.keys
end

local function short(fname)
  return vim.fn.fnamemodify(fname, ':~:.')
end

--- "Claude: fix this — stats.py" (+N more files), unique among buffers.
function M.title(review)
  local names = {}
  for _, f in ipairs(review.files) do
    table.insert(names, vim.fn.fnamemodify(f.fname, ':t'))
  end
  local files = names[1] or ''
  if #names > 1 then
    files = files .. string.format(' +%d', #names - 1)
  end
  return string.format('%s — %s', review.label or 'Claude', files)
end

local function buffer_name(review)
  local name = M.title(review)
  local existing = vim.fn.bufnr(name)
  if existing ~= -1 and vim.b[existing].channelcoder_review ~= review.job_id then
    name = name .. ' (' .. review.job_id:sub(-6) .. ')'
  end
  return name
end

--- The help line, from the configured keys.
local function help(review)
  local k = keys()
  local parts = {
    k.accept .. ' accept', k.reject .. ' reject', k.edit .. ' edit', k.accept_all .. '/' .. k.reject_all .. ' all',
    k.next_hunk .. '/' .. k.prev_hunk .. ' hunks', k.jump .. ' go to line', k.side_by_side .. ' side by side',
    k.close .. ' later',
  }
  if review.has_conflicts then
    table.insert(parts, 3, k.both .. ' keep both (markers)')
  end
  return table.concat(parts, ' · ')
end

local function conflict_note(h)
  if not h.conflict then
    return ''
  end
  if h.decision == 'reject' then
    return '  conflict → yours'
  elseif h.decision == 'accept' then
    return h.edited and '  conflict → edited' or (h.choice == 'both' and '  conflict → both, marked' or
      '  conflict → Claude')
  end
  return '  ⚠ conflict: you and Claude changed these lines'
end

--- Lines of one hunk with `context` lines around it; `add(line, item)` collects them.
local function add_hunk(f, hi, h, delta, add, shown_until)
  local context = config.options.review.context
  local lines = f.lines or {}
  -- lines the previous hunk already showed as its context are not repeated
  local first = math.max(1, h.line + 1 - context, shown_until + 1)
  local after_start = h.line + #h.old + 1
  local next_hunk = f.hunks[hi + 1]
  local after_end = math.min(#lines, after_start + context - 1,
    next_hunk and next_hunk.line or math.huge)
  local before = h.line + 1 - first
  local after = math.max(0, after_end - after_start + 1)
  local shown_new = h.conflict and h.decision == nil and #h.conflict.claude or #h.new
  add(string.format('@@ -%d,%d +%d,%d @@ %s%s%s', first, before + #h.old + after, first + delta,
    before + shown_new + after, marks[h.decision] or '[ ]', conflict_note(h),
    f.host_run and '  ⚠ runs on your machine' or ''), { file = f.index, hunk = hi, lnum = h.line + 1 })
  for l = first, h.line do
    add(' ' .. lines[l], { file = f.index, hunk = hi, lnum = l })
  end
  if h.conflict and h.decision == nil then
    add('<<<<<<< yours', { file = f.index, hunk = hi, lnum = h.line + 1 })
    for i, line in ipairs(h.conflict.yours) do
      add('-' .. line, { file = f.index, hunk = hi, lnum = h.line + i })
    end
    add('======= Claude', { file = f.index, hunk = hi, lnum = h.line + 1 })
    for _, line in ipairs(h.conflict.claude) do
      add('+' .. line, { file = f.index, hunk = hi, lnum = h.line + 1 })
    end
    add('>>>>>>>', { file = f.index, hunk = hi, lnum = h.line + 1 })
  else
    for i, old in ipairs(h.old) do
      add('-' .. old, { file = f.index, hunk = hi, lnum = h.line + i })
    end
    for _, new in ipairs(h.new) do
      add('+' .. new, { file = f.index, hunk = hi, lnum = h.line + 1 })
    end
  end
  for l = after_start, after_end do
    add(' ' .. lines[l], { file = f.index, hunk = hi, lnum = l })
  end
  return delta + shown_new - #h.old, math.max(after_end, h.line + #h.old)
end

--- What runs on your machine is highlighted as a warning wherever the review says so.
local warn_ns = vim.api.nvim_create_namespace('channelcoder_review_hostrun')

function M.render(review)
  review.has_conflicts = false
  for fi, f in ipairs(review.files) do
    f.index = fi
    for _, h in ipairs(f.hunks) do
      review.has_conflicts = review.has_conflicts or h.conflict ~= nil
    end
  end
  local lines = { M.title(review) .. '  (job ' .. review.job_id .. ')', help(review), '' }
  local host_run = vim.tbl_filter(function(f)
    return f.host_run ~= nil
  end, review.files)
  if #host_run > 0 then
    table.insert(lines, 3, string.format('⚠ %d file%s here run%s on your machine (hooks, build, CI): review before you run them',
      #host_run, #host_run == 1 and '' or 's', #host_run == 1 and 's' or ''))
  end
  local map, headers = {}, {}
  local function add(line, item)
    table.insert(lines, line)
    map[#lines] = item
  end
  for fi, f in ipairs(review.files) do
    local header = letters[f.op] .. ' ' .. short(f.fname)
    if f.op == 'rename' then
      header = header .. '  (from ' .. short(f.source_fname) .. ')'
    elseif f.op ~= 'modify' then
      header = header .. '  (' .. op_names[f.op] .. ')'
    end
    if #f.hunks == 0 and f.op ~= 'modify' then
      header = header .. ' ' .. (marks[f.decision] or '[ ]')
    end
    if f.host_run then
      header = header .. '  ⚠ runs on your machine: ' .. f.host_run
    end
    add(header, { file = fi, lnum = 1 })
    if f.op == 'delete' then
      for _, old in ipairs(f.old_lines or {}) do
        add('-' .. old, { file = fi })
      end
    end
    local delta, shown_until = 0, 0
    for hi, h in ipairs(f.hunks) do
      table.insert(headers, #lines + 1)
      delta, shown_until = add_hunk(f, hi, h, delta, add, shown_until)
    end
    add('', nil)
  end
  review.map, review.headers = map, headers
  util.set_lines(review.bufnr, lines)
  vim.api.nvim_buf_clear_namespace(review.bufnr, warn_ns, 0, -1)
  for i, line in ipairs(lines) do
    local at = line:find('⚠', 1, true)
    if at then
      vim.api.nvim_buf_add_highlight(review.bufnr, warn_ns, 'WarningMsg', i - 1, at - 1, -1)
    end
  end
end

--- The review buffer of a job, or nil.
function M.find(job_id)
  for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_valid(bufnr) and vim.b[bufnr].channelcoder_review == job_id then
      return bufnr
    end
  end
  return nil
end

function M.close_windows(review)
  if not review.bufnr or not vim.api.nvim_buf_is_valid(review.bufnr) then
    return
  end
  for _, win in ipairs(vim.fn.win_findbuf(review.bufnr)) do
    if #vim.api.nvim_list_wins() > 1 then
      pcall(vim.api.nvim_win_close, win, true)
    end
  end
end

--- The first line at or after `from` holding something undecided.
function M.next_undecided(review, from)
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

local function jump_hunk(review, forward)
  local cursor = vim.api.nvim_win_get_cursor(0)[1]
  local headers = review.headers or {}
  local target
  if forward then
    for _, l in ipairs(headers) do
      if l > cursor then
        target = l
        break
      end
    end
  else
    for i = #headers, 1, -1 do
      if headers[i] < cursor then
        target = headers[i]
        break
      end
    end
  end
  if target then
    vim.api.nvim_win_set_cursor(0, { target, 0 })
  end
end

--- <CR>: the file at the line under the cursor, in a window of this tab.
function M.jump(review, lnum)
  local item = review.map and review.map[lnum]
  if not item then
    return
  end
  local f = review.files[item.file]
  local bufnr = vim.fn.bufadd(f.fname)
  vim.fn.bufload(bufnr)
  vim.bo[bufnr].buflisted = true
  local win = vim.fn.win_findbuf(bufnr)[1]
  local tab = vim.api.nvim_get_current_tabpage()
  if win and vim.api.nvim_win_get_tabpage(win) == tab then
    vim.api.nvim_set_current_win(win)
  else
    vim.cmd('aboveleft split')
    vim.api.nvim_win_set_buf(0, bufnr)
  end
  local last = vim.api.nvim_buf_line_count(bufnr)
  vim.api.nvim_win_set_cursor(0, { math.max(1, math.min(item.lnum or 1, last)), 0 })
end

--- Edit what a hunk puts in the file; `:w` accepts the edited text, closing without writing
--- leaves the hunk as it was.
function M.edit_hunk(review, lnum)
  local item = review.map and review.map[lnum]
  if not (item and item.hunk) then
    util.notify('put the cursor on a hunk to edit it', vim.log.levels.WARN)
    return
  end
  local f = review.files[item.file]
  local h = f.hunks[item.hunk]
  local name = string.format('Claude: edit hunk — %s:%d', vim.fn.fnamemodify(f.fname, ':t'), h.line + 1)
  local bufnr = vim.fn.bufnr(name)
  if bufnr == -1 then
    bufnr = vim.api.nvim_create_buf(false, true)
    vim.bo[bufnr].buftype = 'acwrite'
    vim.api.nvim_buf_set_name(bufnr, name)
  end
  vim.bo[bufnr].bufhidden = 'wipe'
  vim.bo[bufnr].swapfile = false
  local start = h.conflict and h.decision == nil and edit.marked_lines(h) or h.new
  vim.api.nvim_buf_set_lines(bufnr, 0, -1, false, start)
  vim.bo[bufnr].modified = false
  local ft = require('channelcoder.util').filetype(f.fname)
  if ft then
    vim.bo[bufnr].filetype = ft
  end
  vim.api.nvim_create_autocmd('BufWriteCmd', {
    buffer = bufnr,
    callback = function()
      local lines = vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
      vim.bo[bufnr].modified = false
      edit.set_new(h, lines)
      h.edited = true
      vim.schedule(function()
        for _, win in ipairs(vim.fn.win_findbuf(bufnr)) do
          pcall(vim.api.nvim_win_close, win, true)
        end
        local target = vim.fn.win_findbuf(review.bufnr)[1]
        if target then
          vim.api.nvim_set_current_win(target)
        end
        require('channelcoder.proposals').decide(review.job_id, 'accept', nil, { file = item.file, hunk = item.hunk })
      end)
    end,
  })
  vim.cmd('belowright ' .. math.max(3, math.min(#start + 2, 15)) .. 'split')
  vim.api.nvim_win_set_buf(0, bufnr)
  util.notify(':w accepts the hunk as edited; :q leaves it undecided')
end

function M.keymaps(review)
  local k = keys()
  local function map(lhs, fn, desc)
    if lhs and lhs ~= '' then
      vim.keymap.set('n', lhs, fn, { buffer = review.bufnr, nowait = true, desc = 'channelcoder: ' .. desc })
    end
  end
  local function decide(what, all, choice)
    return function()
      local lnum = not all and vim.api.nvim_win_get_cursor(0)[1] or nil
      require('channelcoder.proposals').decide(review.job_id, what, lnum, nil, choice)
    end
  end
  map(k.accept, decide('accept', false), 'accept')
  map(k.reject, decide('reject', false), 'reject')
  map(k.both, decide('accept', false, 'both'), 'keep both versions between markers')
  map(k.accept_all, decide('accept', true), 'accept everything left')
  map(k.reject_all, decide('reject', true), 'reject everything left')
  map(k.edit, function()
    M.edit_hunk(review, vim.api.nvim_win_get_cursor(0)[1])
  end, 'edit the hunk')
  map(k.next_hunk, function()
    jump_hunk(review, true)
  end, 'next hunk')
  map(k.prev_hunk, function()
    jump_hunk(review, false)
  end, 'previous hunk')
  map(k.jump, function()
    M.jump(review, vim.api.nvim_win_get_cursor(0)[1])
  end, 'go to the line in the file')
  map(k.side_by_side, function()
    local item = review.map[vim.api.nvim_win_get_cursor(0)[1]]
    require('channelcoder.sidebyside').open(review, item and item.file or 1)
  end, 'side-by-side diff')
  map(k.close, function()
    M.close_windows({ bufnr = vim.api.nvim_get_current_buf() })
  end, 'decide later')
end

function M.open(review)
  if not review.bufnr or not vim.api.nvim_buf_is_valid(review.bufnr) then
    review.bufnr = vim.api.nvim_create_buf(true, true)
    vim.bo[review.bufnr].buftype = 'nofile'
    vim.b[review.bufnr].channelcoder_review = review.job_id
    vim.api.nvim_buf_set_name(review.bufnr, buffer_name(review))
    vim.bo[review.bufnr].bufhidden = 'hide'
    vim.bo[review.bufnr].swapfile = false
    vim.bo[review.bufnr].filetype = 'diff'
    M.keymaps(review)
  end
  M.render(review)
  util.show(review.bufnr, config.options.review.split, true)
  local first = M.next_undecided(review, 1)
  if first then
    vim.api.nvim_win_set_cursor(0, { first, 0 })
  end
  if config.options.review.layout == 'side-by-side' then
    require('channelcoder.sidebyside').open(review, 1)
  end
end

return M
