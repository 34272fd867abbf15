-- When the language server dies under the user (a crash, an OOM kill, `kill -9`): say so in one
-- line, mark the jobs it was running as lost, and start it again — at most MAX_RESTARTS times in
-- WINDOW_MS, then stop and say how to start it by hand (:ClaudeRestart). The restarted server
-- removes the dead one's sandboxes and offers again the proposals it had saved.
local compat = require('channelcoder.compat')
local util = require('channelcoder.util')

local M = {}

M.MAX_RESTARTS = 3
M.WINDOW_MS = 180000
M.DELAY_MS = 300 -- Neovim forgets the dead client on the next turns of the event loop

M.restarts = {} -- root -> start times (ms) of the restarts in the window
M.stopping = {} -- client id -> true: stopped on purpose (by :ClaudeRestart), not a crash
M.events = {} -- { kind = 'died' | 'restarted' | 'gave-up', root, lost, client_id } (for tests)

local function now_ms()
  return compat.uv.hrtime() / 1e6
end

--- Did the server end on its own? Not when Neovim is quitting, not after a clean shutdown
--- (exit code 0) and not when Neovim stopped it (SIGTERM, or a stop the plugin asked for).
function M.crashed(code, signal, client_id)
  if M.stopping[client_id] or (vim.v.exiting ~= nil and vim.v.exiting ~= vim.NIL) then
    return false
  end
  return (code ~= 0 or signal ~= 0) and signal ~= 15
end

local function cause(code, signal)
  if signal ~= 0 then
    return string.format('signal %d', signal)
  end
  return string.format('exit code %d', code)
end

--- Neovim's own "Client channelcoder quit with exit code …" (scheduled after on_exit) would be a
--- second message for the same event, in words about LSP clients; ours says it all.
local function swallow_core_message(client_id)
  local original = vim.notify
  local wrapper
  wrapper = function(message, level, opts)
    if type(message) == 'string' and (message:find('^Client channelcoder quit with exit code')
        or message:find('^Client ' .. client_id .. ' quit with exit code')) then
      if vim.notify == wrapper then
        vim.notify = original
      end
      return
    end
    return original(message, level, opts)
  end
  vim.notify = wrapper
  vim.defer_fn(function()
    if vim.notify == wrapper then
      vim.notify = original
    end
  end, 3000)
end

--- The buffers attached to `client_id` right now (before Neovim detaches them).
function M.attached(client_id)
  local client = vim.lsp.get_client_by_id(client_id)
  local out = {}
  for bufnr in pairs(client and client.attached_buffers or {}) do
    table.insert(out, bufnr)
  end
  return out
end

local function in_window(root)
  local kept, now = {}, now_ms()
  for _, at in ipairs(M.restarts[root] or {}) do
    if now - at < M.WINDOW_MS then
      table.insert(kept, at)
    end
  end
  M.restarts[root] = kept
  return kept
end

--- The client's on_exit: `start(root, buffers)` starts a server for `root` again.
function M.on_exit(root, code, signal, client_id, start)
  if not M.crashed(code, signal, client_id) then
    M.stopping[client_id] = nil
    return
  end
  local buffers = M.attached(client_id)
  swallow_core_message(client_id)
  vim.schedule(function()
    -- every line fits an 80-column command line: a longer one wraps into a hit-enter prompt
    local reason = 'the server died (' .. cause(code, signal) .. ')'
    local lost = require('channelcoder.jobs').lose(client_id, reason)
    require('channelcoder.progress').lose(client_id, lost)
    require('channelcoder.proposals').lose(client_id)
    local what = #lost == 0 and '' or string.format('; %d job%s lost', #lost, #lost == 1 and '' or 's')
    local recent = in_window(root)
    if #recent >= M.MAX_RESTARTS then
      table.insert(M.events, { kind = 'gave-up', root = root, lost = #lost, client_id = client_id })
      -- a warning, not an error: 0.7 writes errors with nvim_err_writeln (v:errmsg, and a
      -- hit-enter prompt after another message)
      util.notify(string.format('the server died again (%s), left stopped: :ClaudeRestart', cause(code, signal)),
        vim.log.levels.WARN)
      return
    end
    table.insert(recent, now_ms())
    table.insert(M.events, { kind = 'died', root = root, lost = #lost, client_id = client_id })
    util.notify(string.format('%s%s; restarting it (%d of %d)', reason, what, #recent, M.MAX_RESTARTS),
      vim.log.levels.WARN)
    local function again()
      if vim.lsp.get_client_by_id(client_id) ~= nil then
        vim.defer_fn(again, M.DELAY_MS) -- not forgotten yet: vim.lsp.start would reuse it
        return
      end
      local id = start(root, buffers)
      table.insert(M.events, { kind = id and 'restarted' or 'failed', root = root, client_id = id })
    end
    vim.defer_fn(again, M.DELAY_MS)
  end)
end

--- :ClaudeRestart — start the server again by hand (its restart count starts over); a running
--- one is stopped first.
function M.restart(start, roots)
  M.restarts = {}
  local clients = compat.clients('channelcoder')
  local waiting = {}
  for _, client in ipairs(clients) do
    M.stopping[client.id] = true
    roots[client.config.root_dir] = roots[client.config.root_dir] or M.attached(client.id)
    table.insert(waiting, client)
    compat.stop(client)
  end
  vim.wait(10000, function()
    for _, client in ipairs(waiting) do
      if vim.lsp.get_client_by_id(client.id) ~= nil and not compat.is_stopped(client) then
        return false
      end
    end
    return true
  end, 50)
  local function go()
    for _, client in ipairs(waiting) do
      if vim.lsp.get_client_by_id(client.id) ~= nil then
        vim.defer_fn(go, M.DELAY_MS)
        return
      end
    end
    for root, buffers in pairs(roots) do
      start(root, buffers)
    end
    util.notify('language server started again')
  end
  go()
end

return M
