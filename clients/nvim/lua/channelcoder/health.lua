-- :checkhealth channelcoder — the server is found and answers, Docker is reachable (through
-- channelcoder.doctor), and the plugin is set up.
local compat = require('channelcoder.compat')
local config = require('channelcoder.config')

local M = {}

--- The host[:port] of a URL, never its path, query or credentials.
local function host_of(url)
  if type(url) ~= 'string' or url == '' then
    return nil
  end
  local host = url:match('^%a[%w+.-]*://([^/?#]+)') or url
  return (host:gsub('^.*@', ''))
end

local function env(name)
  local extra = config.options.cmd_env or {}
  local value = extra[name]
  if value == nil then
    value = vim.env[name]
  end
  return value ~= nil and value ~= '' and value or nil
end

--- A setting as this Neovim sends it, or, when the server did not accept it (a problem names it
--- as written, e.g. 'docker.network'), that value and the default the server uses instead.
local function in_effect(problems, name, value, default)
  for _, problem in ipairs(problems) do
    if problem:find("'" .. name .. "'", 1, true) then
      return string.format('%s (not accepted: %s)', vim.inspect(value), default)
    end
  end
  return value == nil and default or tostring(value)
end

--- The settings in effect (what this Neovim sends the server, and the environment it passes
--- on): sandbox, network, image, model, apply mode, the API host, the standby. No secrets.
function M.settings(health)
  local s = config.options.settings or {}
  local problems = require('channelcoder.messages').settings_problems
  local docker = s.docker
  if docker == false then
    health.info('sandbox: none (docker = false): the host\'s claude, tools ' .. table.concat(s.tools or {}, ', '))
  else
    local d = type(docker) == 'table' and docker or {}
    local network = d.network == nil and "proxy (the default: only through channelcoder's egress proxy)"
      or in_effect(problems, 'docker.network', d.network, 'proxy')
    health.info(string.format('sandbox: docker · image %s · network %s',
      in_effect(problems, 'docker.image', d.image, "the workspace's or the bundled one"), network))
  end
  health.info(string.format('apply: %s · model: %s · max jobs: %s', in_effect(problems, 'apply', s.apply, 'propose'),
    in_effect(problems, 'model', s.model, "the CLI's default"), in_effect(problems, 'maxJobs', s.maxJobs, '2')))
  local base = env('ANTHROPIC_BASE_URL')
  local credentials = env('ANTHROPIC_API_KEY') and 'ANTHROPIC_API_KEY is set'
    or (env('CLAUDE_CODE_OAUTH_TOKEN') and 'CLAUDE_CODE_OAUTH_TOKEN is set') or 'from a claude login, if any'
  health.info(string.format('API: %s · credentials: %s', base and ('base URL host ' .. host_of(base)) or 'api.anthropic.com',
    credentials))
  local standby = s.standby ~= false and docker ~= false
  health.info('standby sandbox (setting): ' .. (standby and 'on' or 'off'))
  if #problems == 0 then
    health.ok('the server accepted every setting')
  end
  for _, problem in ipairs(problems) do
    health.warn('setting problem: ' .. problem)
  end
end

function M.check()
  local health = compat.health()
  health.start('channelcoder')
  health.info(string.format('Neovim %s', tostring(vim.version and vim.version() and
    string.format('%d.%d.%d', vim.version().major, vim.version().minor, vim.version().patch) or '?')))

  local cmd, found = config.server_cmd()
  if not found then
    health.error(string.format("server command not found: '%s'", table.concat(cmd, ' ')), { config.install_hint })
    return
  end
  health.ok(string.format("server command: '%s' (%s)", table.concat(cmd, ' '), vim.fn.exepath(cmd[1])))

  if vim.fn.exists(':Claude') ~= 2 then
    health.warn('setup() has not run: no :Claude commands', { "call require('channelcoder').setup{} in your init.lua" })
    return
  end

  M.settings(health)

  local lsp = require('channelcoder.lsp')
  local client = lsp.ensure_client()
  if not client or not lsp.wait_ready(client, 20000) then
    health.error('the server did not start', { 'run the server command in a terminal to see why; :LspLog' })
    return
  end
  local info = client.server_info or {}
  health.ok(string.format('server running: %s %s (client id %d, root %s)', tostring(info.name or 'channelcoder'),
    tostring(info.version or ''), client.id, tostring(client.config.root_dir)))

  require('channelcoder.messages').swallow_document = 'doctor.md'
  local reply = compat.request_sync(client, 'workspace/executeCommand', { command = 'channelcoder.doctor', arguments = {} },
    120000)
  if not reply then
    health.error('channelcoder.doctor did not answer within 120 s')
    return
  end
  if reply.err then
    local data = type(reply.err.data) == 'table' and reply.err.data or {}
    health.error('channelcoder.doctor failed: ' .. tostring(reply.err.message), data.hint and { data.hint } or nil)
    return
  end
  for _, check in ipairs((reply.result or {}).checks or {}) do
    local line = string.format('%s: %s', tostring(check.name), tostring(check.detail))
    if check.ok then
      health.ok(line)
    else
      local hint = check.hint
      health.error(line, (hint ~= nil and hint ~= vim.NIL and hint ~= '') and { hint } or nil)
    end
  end
end

return M
