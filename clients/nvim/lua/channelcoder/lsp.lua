-- Starting the language server, attaching buffers, and calling its commands.
local compat = require('channelcoder.compat')
local config = require('channelcoder.config')
local util = require('channelcoder.util')

local M = {}

M.name = 'channelcoder'

local warned_missing = false
local handlers = {} -- filled by register_handler before the first start
local commands = {} -- client-side commands (server command ids intercepted from code actions)

function M.register_handler(method, fn)
  handlers[method] = fn
end

function M.register_command(id, fn)
  commands[id] = fn
end

--- The settings as the server receives them at start: the section contents plus streamEvents.
local function init_options()
  local options = vim.deepcopy(config.options.settings)
  options.streamEvents = true
  return options
end

local function attachable(bufnr)
  if not vim.api.nvim_buf_is_valid(bufnr) or vim.bo[bufnr].buftype ~= '' or vim.b[bufnr].channelcoder_document then
    return false
  end
  local name = vim.api.nvim_buf_get_name(bufnr)
  if name == '' or name:match('^%a[%w+.-]*://') then
    return false
  end
  local filetypes = config.options.filetypes
  return filetypes == nil or vim.tbl_contains(filetypes, vim.bo[bufnr].filetype)
end

function M.root_dir(bufnr)
  local name = vim.api.nvim_buf_get_name(bufnr)
  local start = name ~= '' and name or (vim.fn.getcwd() .. '/.')
  return util.find_root(start, config.options.root_markers) or vim.fn.getcwd()
end

local function client_config(root)
  local cmd = config.server_cmd()
  local capabilities = vim.lsp.protocol.make_client_capabilities()
  -- Every workspace/applyEdit from this server goes through the plugin's review, which is
  -- what change annotations with needsConfirmation ask for.
  capabilities.workspace.workspaceEdit.documentChanges = true
  capabilities.workspace.workspaceEdit.changeAnnotationSupport = { groupsOnLabel = false }
  -- Answers and reports open through the plugin's own showDocument handler on every version.
  capabilities.window.showDocument = { support = true }
  return {
    name = M.name,
    cmd = cmd,
    cmd_env = config.options.cmd_env,
    root_dir = root,
    workspace_folders = { { uri = vim.uri_from_fname(root), name = root } },
    init_options = init_options(),
    settings = { channelcoder = config.options.settings },
    capabilities = capabilities,
    handlers = handlers,
    commands = commands,
    on_init = function(client)
      compat.code_action_diagnostics(client, function(bufnr, first, last)
        return require('channelcoder.diagnostics').on_lines(bufnr, first, last, client.offset_encoding or 'utf-16')
      end)
    end,
    on_attach = function(client, bufnr)
      if config.options.on_attach then
        config.options.on_attach(client, bufnr)
      end
    end,
    on_exit = function(code, signal, client_id)
      require('channelcoder.recovery').on_exit(root, code, signal, client_id, M.start_root)
    end,
  }
end

--- Start the server for `root` again and attach `buffers` (those still loaded). The client id.
function M.start_root(root, buffers)
  local id
  for _, bufnr in ipairs(buffers or {}) do
    if vim.api.nvim_buf_is_loaded(bufnr) and attachable(bufnr) then
      id = compat.start(client_config(root), bufnr) or id
    end
  end
  if not id then
    id = compat.start(client_config(root), nil)
  end
  return id
end

--- :ClaudeRestart — stop the running servers (if any) and start them again; with none, start
--- one for each project of the loaded buffers (else the working directory).
function M.restart()
  local roots = {}
  if #compat.clients(M.name) == 0 then
    for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
      if vim.api.nvim_buf_is_loaded(bufnr) and attachable(bufnr) then
        local root = M.root_dir(bufnr)
        roots[root] = roots[root] or {}
        table.insert(roots[root], bufnr)
      end
    end
    if next(roots) == nil then
      roots[vim.fn.getcwd()] = {}
    end
  end
  require('channelcoder.recovery').restart(M.start_root, roots)
end

--- Start the server for `bufnr`'s project (once) and attach the buffer. Returns the client id.
function M.attach(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  if not attachable(bufnr) then
    return nil
  end
  local _, found = config.server_cmd()
  if not found then
    if not warned_missing then
      warned_missing = true
      -- attach runs in buffer autocommands: an error there would abort the user's :edit
      vim.schedule(function()
        util.error("the language server 'channelcoder' was not found", config.install_hint)
      end)
    end
    return nil
  end
  return compat.start(client_config(M.root_dir(bufnr)), bufnr)
end

--- The channelcoder client serving `bufnr` (attaching it when needed), else any running one.
function M.client(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local clients = compat.clients(M.name)
  for _, client in ipairs(clients) do
    if compat.is_attached(client, bufnr) then
      return client
    end
  end
  local id = M.attach(bufnr)
  if id then
    return vim.lsp.get_client_by_id(id)
  end
  local root = M.root_dir(bufnr)
  for _, client in ipairs(clients) do
    if client.config.root_dir == root then
      return client
    end
  end
  return clients[1]
end

--- Start a client for the current working directory when no buffer can be attached (e.g. an
--- empty Neovim running :ClaudeDoctor). Says why when there is none.
function M.ensure_client(bufnr)
  local client = M.client(bufnr)
  if client then
    return client
  end
  local cmd, found = config.server_cmd()
  if not found then
    util.error("the language server 'channelcoder' was not found", config.install_hint)
    return nil
  end
  local root = vim.fn.getcwd()
  local conf = client_config(root)
  conf.cmd = cmd
  local id = compat.start(conf, nil)
  return id and vim.lsp.get_client_by_id(id) or nil
end

--- Wait (processing events) until the client finished initializing.
function M.wait_ready(client, timeout_ms)
  return vim.wait(timeout_ms or 10000, function()
    return client.initialized or compat.is_stopped(client)
  end, 20) and not compat.is_stopped(client)
end

--- workspace/executeCommand `command` with one object argument (or none).
--- opts: bufnr, token (workDoneToken), quiet (do not report errors).
--- on_reply(err, result) runs after errors were reported to the user.
function M.execute(command, argument, opts, on_reply)
  opts = opts or {}
  local client = M.client(opts.bufnr)
  if not client then
    local err = { message = 'no channelcoder language server is running', data = { hint = config.install_hint } }
    if not opts.quiet then
      util.error(err.message, err.data.hint)
    end
    if on_reply then
      on_reply(err, nil)
    end
    return nil
  end
  local params = { command = command, arguments = argument ~= nil and { argument } or {} }
  if opts.token then
    params.workDoneToken = opts.token
  end
  compat.request(client, 'workspace/executeCommand', params, function(err, result)
    if err and not opts.quiet then
      local message, hint = util.describe_error(err)
      util.error(command .. ': ' .. message, hint)
    end
    if on_reply then
      on_reply(err, result)
    end
  end, opts.bufnr)
  return client
end

--- Send changed settings to every running client.
function M.push_settings()
  for _, client in ipairs(compat.clients(M.name)) do
    client.config.settings = { channelcoder = config.options.settings }
    compat.notify(client, 'workspace/didChangeConfiguration', { settings = client.config.settings })
  end
end

function M.attachable(bufnr)
  return attachable(bufnr)
end

return M
