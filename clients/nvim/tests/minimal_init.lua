-- The smallest init for the plugin's headless tests: this checkout's plugin on the runtimepath,
-- nothing else, and every vim.notify / vim.deprecate call recorded for the tests to inspect.
local here = debug.getinfo(1, 'S').source:sub(2)
local root = vim.fn.fnamemodify(here, ':p:h:h')
vim.opt.runtimepath:prepend(root)
package.path = root .. '/tests/?.lua;' .. package.path
vim.opt.swapfile = false
vim.opt.shadafile = 'NONE'
vim.opt.more = false

_G.test_notes = {}
local notify = vim.notify
vim.notify = function(message, level, opts)
  table.insert(_G.test_notes, { message = tostring(message), level = level })
  return notify(message, level, opts)
end

_G.test_deprecations = {}
local deprecate = vim.deprecate
vim.deprecate = function(name, alternative, version, plugin, backtrace)
  table.insert(_G.test_deprecations, { name = name, trace = debug.traceback('', 2) })
  return deprecate(name, alternative, version, plugin, backtrace)
end

vim.cmd('runtime plugin/channelcoder.lua')
