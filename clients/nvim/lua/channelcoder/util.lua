-- Small helpers shared by the plugin's modules.
local compat = require('channelcoder.compat')

local M = {}

local levels = vim.log.levels

--- Tell the user something, with the server's hint on its own line when there is one.
function M.notify(message, level, hint)
  local text = message
  if hint and hint ~= '' and hint ~= vim.NIL and not message:find(hint, 1, true) then
    text = text .. '\nhint: ' .. hint
  end
  text = text:gsub('^channelcoder: ', '')
  vim.notify('channelcoder: ' .. text, level or levels.INFO)
end

function M.error(message, hint)
  M.notify(message, levels.ERROR, hint)
end

--- A JSON-RPC error (or anything with a message) -> message, hint.
function M.describe_error(err)
  if type(err) ~= 'table' then
    return tostring(err), nil
  end
  local data = type(err.data) == 'table' and err.data or {}
  local message = err.message or data.message or vim.inspect(err)
  return message, data.hint or err.hint
end

local counter = 0
--- A short job id (e.g. nvim-3fa9c01b), unique to this Neovim process and moment; shown the
--- same way everywhere (transcript, review, :ClaudeJobs, notifications).
function M.new_id(prefix)
  counter = counter + 1
  local seed = (vim.fn.getpid() * 7919 + math.floor(compat.uv.hrtime() / 1000) + counter * 104729) % 0x100000000
  return string.format('%s%08x', prefix or 'nvim-', seed)
end

--- A scratch buffer named `name` (reused when it exists), not backed by a file.
function M.scratch(name, filetype)
  local bufnr = vim.fn.bufnr(name)
  if bufnr == -1 or not vim.api.nvim_buf_is_valid(bufnr) then
    bufnr = vim.api.nvim_create_buf(true, true)
    vim.api.nvim_buf_set_name(bufnr, name)
  end
  vim.bo[bufnr].buftype = 'nofile'
  vim.bo[bufnr].bufhidden = 'hide'
  vim.bo[bufnr].swapfile = false
  if filetype then
    vim.bo[bufnr].filetype = filetype
  end
  return bufnr
end

--- Replace a scratch buffer's lines (it stays unmodifiable for the user).
function M.set_lines(bufnr, lines, first, last)
  vim.bo[bufnr].modifiable = true
  vim.api.nvim_buf_set_lines(bufnr, first or 0, last or -1, false, lines)
  vim.bo[bufnr].modifiable = false
end

--- Show `bufnr` in a window opened with `split` (an Ex command), keeping focus unless `focus`.
function M.show(bufnr, split, focus)
  local wins = vim.fn.win_findbuf(bufnr)
  if #wins > 0 then
    if focus then
      vim.api.nvim_set_current_win(wins[1])
    end
    return wins[1]
  end
  local previous = vim.api.nvim_get_current_win()
  vim.cmd(split)
  local win = vim.api.nvim_get_current_win()
  vim.api.nvim_win_set_buf(win, bufnr)
  if not focus and vim.api.nvim_win_is_valid(previous) then
    vim.api.nvim_set_current_win(previous)
  end
  return win
end

--- Split text on newlines (a trailing newline gives no empty last line).
function M.lines(text)
  if text == nil or text == vim.NIL or text == '' then
    return {}
  end
  local out = vim.split(text, '\n', { plain = true })
  if out[#out] == '' then
    table.remove(out)
  end
  return out
end

function M.path_exists(path)
  return compat.uv.fs_stat(path) ~= nil
end

--- The nearest directory above `path` holding one of `markers`, else nil.
function M.find_root(path, markers)
  local dir = vim.fn.fnamemodify(path, ':p:h')
  while dir and dir ~= '' do
    for _, marker in ipairs(markers) do
      if M.path_exists(dir .. '/' .. marker) then
        return dir
      end
    end
    local parent = vim.fn.fnamemodify(dir, ':h')
    if parent == dir then
      break
    end
    dir = parent
  end
  return nil
end

function M.format_duration(ms)
  if type(ms) ~= 'number' then
    return '?'
  end
  if ms < 1000 then
    return string.format('%d ms', ms)
  end
  if ms < 60000 then
    return string.format('%.1f s', ms / 1000)
  end
  return string.format('%dm%02ds', math.floor(ms / 60000), math.floor(ms / 1000) % 60)
end

--- The filetype of a file name, or nil (0.7's vim.filetype.match takes other arguments).
function M.filetype(fname)
  if vim.fn.has('nvim-0.8') == 1 then
    local ok, ft = pcall(vim.filetype.match, { filename = fname })
    return ok and ft or nil
  end
  local ok, ft = pcall(vim.filetype.match, fname)
  return ok and type(ft) == 'string' and ft or nil
end

function M.nonempty(value)
  return value ~= nil and value ~= vim.NIL and value ~= ''
end

return M
