-- The plugin's options: defaults, validation, and where the server command comes from.
local M = {}

M.defaults = {
  -- The server command. nil: `channelcoder lsp` when `channelcoder` is on PATH, else
  -- `python3 -m channelcoder lsp`.
  cmd = nil,
  -- Extra environment for the server process (it also inherits Neovim's).
  cmd_env = nil,
  -- The `channelcoder` settings section (the run options in camelCase, docs/lsp.md), sent as
  -- initializationOptions and answered to workspace/configuration.
  settings = {},
  -- Attach to buffers of these filetypes only; nil attaches to every file buffer.
  filetypes = nil,
  -- Files or directories that mark a project root (searched upwards from the buffer).
  root_markers = { '.channelcoder', '.git' },
  -- Echo progress in the command line as it changes.
  progress = { echo = true },
  -- Proposal reviews: where they open, 'unified' or 'side-by-side' (a diff-mode tab per file,
  -- also on the side_by_side key), lines of context around a hunk, and the review's keys.
  review = {
    split = 'tabnew',
    layout = 'unified',
    context = 3,
    keys = {
      accept = 'a', reject = 'r', both = 'm', edit = 'e', accept_all = 'A', reject_all = 'R',
      next_hunk = ']c', prev_hunk = '[c', jump = '<CR>', side_by_side = 'd', close = 'q',
    },
  },
  -- The transcript: one window reused by every job, opened when a job starts (open = false:
  -- only on :ClaudeTranscript); style 'split' (the Ex command in split) or 'float'.
  transcript = { open = true, split = 'botright 12split', style = 'split' },
  -- Called as on_attach(client, bufnr) after the server attaches to a buffer.
  on_attach = nil,
}

M.options = vim.deepcopy(M.defaults)

local types = {
  cmd = 'table', cmd_env = 'table', settings = 'table', filetypes = 'table',
  root_markers = 'table', transcript = 'table', progress = 'table', review = 'table',
  on_attach = 'function',
}
local required = { settings = true, root_markers = true, transcript = true, progress = true, review = true }

local function check(opts)
  for key, value in pairs(opts) do
    local want = types[key]
    if not want then
      local names = vim.tbl_keys(types)
      table.sort(names)
      return nil, string.format("unknown option '%s' (known: %s)", key, table.concat(names, ', '))
    end
    if type(value) ~= want then
      return nil, string.format("option '%s' must be a %s, got %s", key, want, type(value))
    end
  end
  for key in pairs(required) do
    if opts[key] == nil then
      return nil, string.format("option '%s' is required", key)
    end
  end
  local layouts = { unified = true, ['side-by-side'] = true }
  if not layouts[opts.review.layout] then
    return nil, "option 'review.layout' must be 'unified' or 'side-by-side'"
  end
  if type(opts.review.keys) ~= 'table' or type(opts.review.context) ~= 'number' then
    return nil, "option 'review.keys' must be a table and 'review.context' a number"
  end
  if opts.transcript.style ~= 'split' and opts.transcript.style ~= 'float' then
    return nil, "option 'transcript.style' must be 'split' or 'float'"
  end
  if opts.cmd and (#opts.cmd == 0 or type(opts.cmd[1]) ~= 'string') then
    return nil, "option 'cmd' must be a list of strings, e.g. { 'channelcoder', 'lsp' }"
  end
  return opts
end

--- Merge `opts` over the defaults. Returns the options, or nil and a message for bad input.
function M.set(opts)
  local merged = vim.tbl_deep_extend('force', vim.deepcopy(M.defaults), opts or {})
  -- Lists replace, they do not merge index by index.
  for _, key in ipairs({ 'cmd', 'filetypes', 'root_markers' }) do
    if opts and opts[key] ~= nil then
      merged[key] = opts[key]
    end
  end
  local checked, err = check(merged)
  if not checked then
    return nil, err
  end
  M.options = checked
  return checked
end

--- The command that starts the server, and whether its program was found.
function M.server_cmd()
  local cmd = M.options.cmd
  if cmd then
    return cmd, vim.fn.executable(cmd[1]) == 1
  end
  if vim.fn.executable('channelcoder') == 1 then
    return { 'channelcoder', 'lsp' }, true
  end
  for _, python in ipairs({ 'python3', 'python' }) do
    if vim.fn.executable(python) == 1 then
      vim.fn.system({ python, '-c', 'import channelcoder' })
      if vim.v.shell_error == 0 then
        return { python, '-m', 'channelcoder', 'lsp' }, true
      end
    end
  end
  return { 'channelcoder', 'lsp' }, false
end

M.install_hint = "install the server with 'pip install channelcoder' (or set cmd in "
  .. "require('channelcoder').setup{})"

return M
