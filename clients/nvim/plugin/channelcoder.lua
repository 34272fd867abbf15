-- Nothing starts until require('channelcoder').setup{} is called (see :help channelcoder).
if vim.g.loaded_channelcoder then
  return
end
vim.g.loaded_channelcoder = true

if vim.fn.has('nvim-0.7') == 0 then
  vim.api.nvim_err_writeln('channelcoder needs Neovim 0.7 or newer')
  return
end
