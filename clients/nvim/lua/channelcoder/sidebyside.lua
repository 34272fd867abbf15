-- A side-by-side view of one file of a proposal: your text on the left, the text with Claude's
-- hunks (as decided so far; undecided ones included) on the right, in Neovim's diff mode.
local util = require('channelcoder.util')

local M = {}

--- The file's lines with the hunks applied (rejected ones left out), and for each line of the
--- result the hunk it came from.
function M.proposed(f)
  local out, owner, cursor = {}, {}, 0
  local lines = f.lines or {}
  for hi, h in ipairs(f.hunks) do
    for l = cursor + 1, h.line do
      table.insert(out, lines[l])
    end
    local new = h.new
    if h.decision == 'reject' then
      new = h.old
    elseif h.conflict and h.decision == nil then
      new = h.conflict.claude
    end
    for _, line in ipairs(new) do
      table.insert(out, line)
      owner[#out] = hi
    end
    if #new == 0 then
      owner[#out + 1] = owner[#out + 1] or hi
    end
    cursor = h.line + #h.old
  end
  for l = cursor + 1, #lines do
    table.insert(out, lines[l])
  end
  return out, owner
end

local function scratch(name, lines, ft)
  local bufnr = vim.fn.bufnr(name)
  if bufnr == -1 then
    bufnr = vim.api.nvim_create_buf(false, true)
    vim.bo[bufnr].buftype = 'nofile'
    vim.api.nvim_buf_set_name(bufnr, name)
  end
  vim.bo[bufnr].bufhidden = 'wipe'
  vim.bo[bufnr].swapfile = false
  util.set_lines(bufnr, lines)
  if ft then
    vim.bo[bufnr].filetype = ft
  end
  return bufnr
end

--- The hunk of the line under the cursor in the right-hand buffer (nearest one above).
local function hunk_at(owner, lnum)
  for l = lnum, 1, -1 do
    if owner[l] then
      return owner[l]
    end
  end
  return nil
end

--- Open file number `fi` of `review` side by side in a new tab.
function M.open(review, fi)
  local f = review.files[fi]
  if not f or #f.hunks == 0 then
    util.notify('nothing to compare for this file', vim.log.levels.WARN)
    return
  end
  local base = require('channelcoder.review').title(review)
  local ft = require('channelcoder.util').filetype(f.fname) or nil
  local proposed, owner = M.proposed(f)
  local tail = vim.fn.fnamemodify(f.fname, ':t')
  local left = scratch(string.format('%s (yours: %s)', base, tail), f.lines or {}, ft)
  local right = scratch(string.format('%s (Claude: %s)', base, tail), proposed, ft)
  vim.cmd('tabnew')
  local tab_scratch = vim.api.nvim_get_current_buf()
  vim.api.nvim_win_set_buf(0, left)
  vim.cmd('diffthis')
  vim.cmd('rightbelow vsplit')
  vim.api.nvim_win_set_buf(0, right)
  vim.cmd('diffthis')
  if vim.api.nvim_buf_is_valid(tab_scratch) and tab_scratch ~= left and tab_scratch ~= right then
    pcall(vim.api.nvim_buf_delete, tab_scratch, { force = true })
  end
  local keys = require('channelcoder.config').options.review.keys
  local proposals = require('channelcoder.proposals')
  local function close()
    pcall(vim.cmd, 'tabclose')
    local win = review.bufnr and vim.fn.win_findbuf(review.bufnr)[1]
    if win then
      vim.api.nvim_set_current_win(win)
    end
  end
  local function decide(what, whole)
    return function()
      local hi = not whole and hunk_at(owner, vim.api.nvim_win_get_cursor(0)[1]) or nil
      close()
      if whole then
        proposals.decide(review.job_id, what, nil, { file = fi })
      elseif hi then
        proposals.decide(review.job_id, what, nil, { file = fi, hunk = hi })
      end
    end
  end
  for _, bufnr in ipairs({ left, right }) do
    local opts = { buffer = bufnr, nowait = true }
    vim.keymap.set('n', keys.close, close, opts)
    vim.keymap.set('n', keys.accept, decide('accept', false), opts)
    vim.keymap.set('n', keys.reject, decide('reject', false), opts)
    vim.keymap.set('n', keys.accept_all, decide('accept', true), opts)
    vim.keymap.set('n', keys.reject_all, decide('reject', true), opts)
  end
  return left, right
end

return M
