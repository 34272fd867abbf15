-- Every difference between Neovim 0.7.2 and 0.11 the plugin depends on, in one place.
-- Features are detected, not version numbers compared, except where the API only differs in
-- its signature.
local M = {}

local has = function(feature)
  return vim.fn.has(feature) == 1
end

M.nvim_0_10 = has('nvim-0.10')
M.uv = vim.uv or vim.loop

--- Start (or reuse) the client for `config` and attach `bufnr` (nil: attach nothing).
--- Returns the client id or nil.
--- 0.11: vim.lsp.start reuses a client with the same name and root_dir.
--- 0.7: start_client once per root_dir, then buf_attach_client.
local started = {} -- root_dir -> client id (0.7 only)
function M.start(config, bufnr)
  if vim.lsp.start and M.nvim_0_10 then
    if bufnr == nil then
      return vim.lsp.start(config, { attach = false })
    end
    return vim.lsp.start(config, { bufnr = bufnr })
  end
  local id = started[config.root_dir]
  if not id or not vim.lsp.get_client_by_id(id) then
    id = vim.lsp.start_client(config)
    if not id then
      return nil
    end
    started[config.root_dir] = id
  end
  if bufnr then
    vim.lsp.buf_attach_client(bufnr, id)
  end
  return id
end

--- Every running client called `name`.
function M.clients(name)
  local all = vim.lsp.get_clients and vim.lsp.get_clients({ name = name }) or vim.lsp.get_active_clients()
  local out = {}
  for _, client in ipairs(all) do
    if client.name == name then
      table.insert(out, client)
    end
  end
  return out
end

--- Is `bufnr` attached to `client`?
function M.is_attached(client, bufnr)
  if vim.lsp.buf_is_attached then
    return vim.lsp.buf_is_attached(bufnr, client.id)
  end
  return client.attached_buffers and client.attached_buffers[bufnr] or false
end

-- Client methods: 0.11 wants method syntax (client:request); 0.7 only has fields.
function M.request(client, method, params, handler, bufnr)
  if M.nvim_0_10 then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

function M.request_sync(client, method, params, timeout_ms, bufnr)
  if M.nvim_0_10 then
    return client:request_sync(method, params, timeout_ms, bufnr)
  end
  return client.request_sync(method, params, timeout_ms, bufnr)
end

function M.notify(client, method, params)
  if M.nvim_0_10 then
    return client:notify(method, params)
  end
  return client.notify(method, params)
end

function M.stop(client, force)
  if M.nvim_0_10 then
    return client:stop(force)
  end
  return client.stop(force)
end

function M.is_stopped(client)
  if M.nvim_0_10 then
    return client:is_stopped()
  end
  return client.is_stopped()
end

--- The version Neovim sends servers for `bufnr` (0.7: nil when no client tracks it; 0.11: 0
--- until the first change).
function M.buf_version(bufnr)
  return vim.lsp.util.buf_versions[bufnr]
end

--- Call `fn(client_id, token, value)` for every $/progress notification, through the
--- version-appropriate event: `LspProgress` (0.10+) or `User LspProgressUpdate` (0.7), which
--- carries no data, so the client's progress table is diffed instead.
function M.on_progress(group, fn)
  if vim.fn.exists('##LspProgress') == 1 then
    vim.api.nvim_create_autocmd('LspProgress', {
      group = group,
      callback = function(ev)
        local params = ev.data and ev.data.params or {}
        fn(ev.data.client_id, params.token, params.value or {})
      end,
    })
    return
  end
  local seen = {} -- client id -> token -> last state key
  vim.api.nvim_create_autocmd('User', {
    group = group,
    pattern = 'LspProgressUpdate',
    callback = function()
      for _, client in ipairs(vim.lsp.get_active_clients()) do
        local progress = client.messages and client.messages.progress or {}
        seen[client.id] = seen[client.id] or {}
        for token, state in pairs(progress) do
          local key = table.concat({ tostring(state.title), tostring(state.message), tostring(state.done) }, '\0')
          if state.title ~= nil and seen[client.id][token] ~= key then
            local kind = state.done and 'end' or (seen[client.id][token] and 'report' or 'begin')
            seen[client.id][token] = key
            fn(client.id, token, { kind = kind, title = state.title, message = state.message })
          end
        end
      end
    end,
  })
end

--- Health report functions: vim.health.start/ok/warn/error/info (0.10+) or require('health').report_*.
function M.health()
  if vim.health and vim.health.start then
    return vim.health
  end
  local h = require('health')
  return {
    start = h.report_start,
    ok = h.report_ok,
    warn = h.report_warn,
    error = h.report_error,
    info = h.report_info,
  }
end

--- Byte column -> character offset in `encoding` ('utf-8', 'utf-16', 'utf-32').
function M.char_index(line, byte_col, encoding)
  if encoding == 'utf-8' then
    return byte_col
  end
  byte_col = math.min(byte_col, #line)
  if M.nvim_0_10 then
    return vim.str_utfindex(line, encoding, byte_col, false)
  end
  local utf32, utf16 = vim.str_utfindex(line, byte_col)
  return encoding == 'utf-32' and utf32 or utf16
end

--- Character offset in `encoding` -> byte column.
function M.byte_index(line, index, encoding)
  if encoding == 'utf-8' then
    return math.min(index, #line)
  end
  if M.nvim_0_10 then
    return vim.str_byteindex(line, encoding, index, false)
  end
  local ok, byte = pcall(vim.str_byteindex, line, index, encoding == 'utf-16')
  return ok and byte or #line
end

--- 0.10+ sends a server only its own diagnostics in a code-action request; 0.7 sends every
--- diagnostic on the line. Give `client` (channelcoder) the 0.7 behaviour: `collect(bufnr,
--- first, last)` fills an empty context.diagnostics.
function M.code_action_diagnostics(client, collect)
  if not M.nvim_0_10 then
    return
  end
  local request = client.request
  client.request = function(self, method, params, handler, bufnr)
    if type(self) == 'string' then -- called with the old dot syntax
      self, method, params, handler, bufnr = client, self, method, params, handler
    end
    if method == 'textDocument/codeAction' and type(params) == 'table' and type(params.context) == 'table'
      and #(params.context.diagnostics or {}) == 0 and params.range then
      local target = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
      params.context.diagnostics = collect(target, params.range.start.line, params.range['end'].line)
    end
    return request(self, method, params, handler, bufnr)
  end
end

--- vim.diff (0.6+) was renamed vim.text.diff (0.12).
M.diff = (vim.text and vim.text.diff) or vim.diff

--- Can a server request's handler answer later? 0.10+ runs it in a coroutine it may yield;
--- 0.7 sends whatever the handler returns at once.
function M.can_defer_reply()
  return coroutine.running() ~= nil and coroutine.isyieldable and coroutine.isyieldable() or false
end

return M
