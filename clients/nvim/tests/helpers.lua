-- A tiny test runner for headless Neovim: `T.run{ {name, fn}, ... }` runs each test, prints
-- "ok <name>" or "FAIL <name>: <error>", writes a JSON summary to $CHANNELCODER_NVIM_RESULTS
-- when set, and exits with :cquit 1 when anything failed (0 otherwise).
local T = {}

local function out(line)
  io.stdout:write(line .. '\n')
  io.stdout:flush()
end
T.log = out

function T.fail(message)
  error(message, 2)
end

function T.ok(cond, message)
  if not cond then
    error(message or 'expected a true value', 2)
  end
  return cond
end

function T.eq(want, got, what)
  if not vim.deep_equal(want, got) then
    error(string.format('%s\nwant: %s\n got: %s', what or 'values differ', vim.inspect(want), vim.inspect(got)), 2)
  end
end

function T.contains(haystack, needle, what)
  if type(haystack) == 'table' then
    haystack = table.concat(haystack, '\n')
  end
  if not tostring(haystack):find(needle, 1, true) then
    error(string.format('%s: %q not found in:\n%s', what or 'missing text', needle, tostring(haystack)), 2)
  end
end

--- Wait (processing events) until cond() is true; a hang guard, not a timing assertion.
function T.wait(cond, what, timeout_ms)
  local ok = vim.wait(timeout_ms or 30000, function()
    local good, value = pcall(cond)
    return good and value
  end, 20)
  if not ok then
    error('timed out waiting for ' .. (what or 'a condition'), 2)
  end
end

function T.buf_text(bufnr)
  return table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), '\n')
end

--- Answer every vim.ui.select with the first item whose formatted text contains `pick`;
--- records what was offered. `later`: answer from the event loop, as pickers like telescope do.
function T.stub_select(pick, later)
  T.offered = {}
  vim.ui.select = function(items, opts, on_choice)
    local format = opts and opts.format_item or tostring
    local chosen, index = nil, nil
    for i, item in ipairs(items) do
      local text = format(item)
      table.insert(T.offered, text)
      if not chosen and text:find(pick, 1, true) then
        chosen, index = item, i
      end
    end
    if later then
      vim.schedule(function()
        on_choice(chosen, index)
      end)
    else
      on_choice(chosen, index)
    end
  end
end

--- Answer every vim.ui.input with `text` (nil: cancelled); records the prompts.
function T.stub_input(text)
  T.prompts = {}
  vim.ui.input = function(opts, on_confirm)
    table.insert(T.prompts, opts and opts.prompt or '')
    on_confirm(text)
  end
end

local function deprecations()
  local found = {}
  for _, d in ipairs(_G.test_deprecations or {}) do
    table.insert(found, d.name .. d.trace)
  end
  return found
end

function T.run(tests)
  local results, failed = {}, 0
  for _, test in ipairs(tests) do
    local name, fn = test[1], test[2]
    local started = (vim.uv or vim.loop).hrtime()
    local ok, err = xpcall(fn, debug.traceback)
    local ms = ((vim.uv or vim.loop).hrtime() - started) / 1e6
    if ok then
      out(string.format('ok %s (%.0f ms)', name, ms))
    else
      failed = failed + 1
      out(string.format('FAIL %s: %s', name, tostring(err)))
    end
    table.insert(results, { name = name, ok = ok, error = (not ok) and tostring(err) or nil, ms = ms })
  end
  local deprecated = deprecations()
  if #deprecated > 0 then
    failed = failed + 1
    out('FAIL deprecation warnings:\n' .. table.concat(deprecated, '\n'))
  end
  if failed > 0 then
    out('notifications:\n' .. vim.inspect(_G.test_notes))
  end
  local path = os.getenv('CHANNELCODER_NVIM_RESULTS')
  if path and path ~= '' then
    local file = io.open(path, 'w')
    file:write(vim.json.encode({ results = results, deprecations = deprecated, notes = _G.test_notes,
      version = vim.version and tostring(vim.version().minor) }))
    file:close()
  end
  for _, client in ipairs(vim.lsp.get_clients and vim.lsp.get_clients() or vim.lsp.get_active_clients()) do
    if vim.fn.has('nvim-0.10') == 1 then
      client:stop(true)
    else
      client.stop(true)
    end
  end
  vim.wait(3000, function()
    return #(vim.lsp.get_clients and vim.lsp.get_clients() or vim.lsp.get_active_clients()) == 0
  end, 20)
  if failed > 0 then
    vim.cmd('cquit 1')
  else
    vim.cmd('qa!')
  end
end

return T
