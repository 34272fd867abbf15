-- :ClaudeBuildImage resolves the sandbox image with progress and says which image is ready.
local T = require('helpers')
local E = require('e2e')

T.run({
  { ':ClaudeBuildImage reports the image with progress', function()
    E.setup()
    E.open('app.py')
    vim.cmd('ClaudeBuildImage')
    T.wait(function()
      return #E.notes('channelcoder-auto:') > 0
    end, 'the image notification', E.JOB_GUARD)
    local history = require('channelcoder.progress').history
    T.ok(#history >= 2, 'progress seen: ' .. vim.inspect(history))
    T.eq('begin', history[1].kind, 'begin')
    T.eq('end', history[#history].kind, 'end')
  end },
})
