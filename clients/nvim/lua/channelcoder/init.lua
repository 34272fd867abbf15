-- channelcoder: Claude Code in a Docker sandbox, driven from Neovim through the channelcoder
-- language server. `require('channelcoder').setup{}` starts it; `:help channelcoder`.
local config = require('channelcoder.config')
local util = require('channelcoder.util')

local M = {}

local group

local function wire()
  local lsp = require('channelcoder.lsp')
  local jobs = require('channelcoder.jobs')
  local transcript = require('channelcoder.transcript')
  local proposals = require('channelcoder.proposals')
  local actions = require('channelcoder.actions')
  local messages = require('channelcoder.messages')

  lsp.register_handler('workspace/applyEdit', proposals.handler)
  lsp.register_handler('channelcoder/event', function(_, params, ctx)
    jobs.on_event(params, ctx and ctx.client_id)
  end)
  lsp.register_handler('window/showMessage', messages.show_message)
  lsp.register_handler('window/showMessageRequest', messages.show_message_request)
  lsp.register_handler('window/showDocument', messages.show_document)
  for _, id in ipairs({ 'channelcoder.run', 'channelcoder.ask', 'channelcoder.fix' }) do
    lsp.register_command(id, actions.client_command)
  end
  jobs.subscribe(transcript.on_event)
end

--- Configure and start. Safe to call again (new settings are sent to running servers).
function M.setup(opts)
  local options, err = config.set(opts)
  if not options then
    util.error('setup: ' .. err, ':help channelcoder-setup')
    return false
  end
  if group then
    require('channelcoder.lsp').push_settings()
    return true
  end
  wire()
  group = vim.api.nvim_create_augroup('channelcoder', { clear = true })
  local lsp = require('channelcoder.lsp')
  vim.api.nvim_create_autocmd({ 'BufReadPost', 'BufNewFile', 'FileType' }, {
    group = group,
    callback = function(ev)
      lsp.attach(ev.buf)
    end,
  })
  require('channelcoder.progress').setup(group)
  require('channelcoder.commands').create()
  for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(bufnr) and lsp.attachable(bufnr) then
      lsp.attach(bufnr)
    end
  end
  return true
end

--- For the statusline: `%{v:lua.require'channelcoder'.statusline()}`.
function M.statusline()
  return require('channelcoder.progress').status()
end

--- Run a prompt (programmatic :Claude). opts: bufnr, range (LSP), options (run options).
function M.run(prompt, opts)
  opts = opts or {}
  local bufnr = opts.bufnr or vim.api.nvim_get_current_buf()
  local arg = { prompt = prompt, options = opts.options, range = opts.range }
  if require('channelcoder.lsp').attachable(bufnr) then
    arg.uri = vim.uri_from_bufnr(bufnr)
  end
  return require('channelcoder.actions').start_job('channelcoder.run', arg,
    { bufnr = bufnr, title = 'Claude: ' .. prompt:sub(1, 60), on_done = opts.on_done })
end

--- Jobs the plugin knows about (started here or reported by the server), oldest first.
function M.jobs()
  return require('channelcoder.jobs').list()
end

return M
