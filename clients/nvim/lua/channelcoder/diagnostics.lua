-- Diagnostics from any source (linters, other language servers) as LSP Diagnostics in the
-- channelcoder server's position encoding, for "Fix with Claude".
local compat = require('channelcoder.compat')

local M = {}

local function position(bufnr, lnum, byte, encoding)
  local line = vim.api.nvim_buf_get_lines(bufnr, lnum, lnum + 1, false)[1] or ''
  return { line = lnum, character = compat.char_index(line, byte or 0, encoding) }
end

--- A vim.diagnostic entry -> an LSP Diagnostic (positions recomputed from the byte columns, as
--- the original may come from a server with another encoding).
function M.to_lsp(bufnr, d, encoding)
  local original = type(d.user_data) == 'table' and type(d.user_data.lsp) == 'table' and d.user_data.lsp or {}
  return {
    range = {
      start = position(bufnr, d.lnum, d.col, encoding),
      ['end'] = position(bufnr, d.end_lnum or d.lnum, d.end_col or d.col, encoding),
    },
    severity = d.severity,
    message = d.message,
    source = d.source or original.source,
    code = original.code,
  }
end

--- Every diagnostic on lines first..last (0-based, inclusive) of `bufnr`.
function M.on_lines(bufnr, first, last, encoding)
  local out = {}
  for _, d in ipairs(vim.diagnostic.get(bufnr)) do
    if d.lnum >= first and d.lnum <= last then
      table.insert(out, M.to_lsp(bufnr, d, encoding))
    end
  end
  return out
end

--- The diagnostic under the cursor (or the first on its line), or nil.
function M.at_cursor(encoding)
  local bufnr = vim.api.nvim_get_current_buf()
  local row, col = unpack(vim.api.nvim_win_get_cursor(0))
  local found = vim.diagnostic.get(bufnr, { lnum = row - 1 })
  if #found == 0 then
    return nil
  end
  local pick = found[1]
  for _, d in ipairs(found) do
    if d.col <= col and col <= (d.end_col or d.col) then
      pick = d
      break
    end
  end
  return M.to_lsp(bufnr, pick, encoding)
end

return M
