-- A workspace whose .channelcoder/config.toml wants more than an untrusted workspace may have:
-- the server asks once (window/showMessageRequest), the plugin asks through vim.ui.select
-- (answered later, as pickers do), and the answer reaches the server.
local T = require('helpers')
local E = require('e2e')

T.run({
  { 'the trust question goes through vim.ui.select', function()
    T.stub_select('Trust workspace', true)
    E.setup()
    E.open('app.py')
    T.wait(function()
      return #T.offered > 0
    end, 'the trust question')
    T.eq({ 'Trust workspace', "Don't trust" }, T.offered, 'the choices')
    T.wait(function()
      return #E.notes('trust') > 0 or #E.notes('Trust') > 0
    end, "the server's confirmation")
  end },
})
