-- Plugin behaviour that needs no job: setup, position encodings, the applyEdit handler's version
-- check and the review, against real buffers attached to the real server (no model is called).
-- Env: CHANNELCODER_NVIM_WORKDIR (an empty directory), CHANNELCODER_NVIM_SERVER (JSON argv).
local T = require('helpers')
local compat = require('channelcoder.compat')
local proposals = require('channelcoder.proposals')

local workdir = assert(os.getenv('CHANNELCODER_NVIM_WORKDIR'), 'CHANNELCODER_NVIM_WORKDIR is not set')
local server = vim.json.decode(assert(os.getenv('CHANNELCODER_NVIM_SERVER')))

local function write(name, lines)
  local path = workdir .. '/' .. name
  vim.fn.writefile(lines, path)
  return path
end

local function client()
  return compat.clients('channelcoder')[1]
end

--- Open `path` and wait for the server to have it (didOpen sent, version tracked).
local function open(path)
  vim.cmd('edit ' .. vim.fn.fnameescape(path))
  local bufnr = vim.api.nvim_get_current_buf()
  T.wait(function()
    local c = client()
    return c and c.initialized and compat.is_attached(c, bufnr) and compat.buf_version(bufnr) ~= nil
  end, 'the server to attach ' .. path)
  return bufnr
end

local function line_edit(line, new_text)
  return { range = { start = { line = line, character = 0 }, ['end'] = { line = line + 1, character = 0 } }, newText = new_text }
end

local function versioned(bufnr, version, edits)
  return {
    label = 'Claude: test',
    edit = {
      documentChanges = {
        { textDocument = { uri = vim.uri_from_bufnr(bufnr), version = version }, edits = edits },
      },
      changeAnnotations = { ['channelcoder:job-1'] = { label = 'Claude: test', needsConfirmation = true } },
    },
  }
end

--- Run the handler as 0.10+ runs it: inside a coroutine that may yield until decided.
local function handle_deferred(params)
  local box = {}
  coroutine.wrap(function()
    box.reply = proposals.handler(nil, params, { client_id = client().id, method = 'workspace/applyEdit' })
  end)()
  return box
end

local function review_buf(job)
  return require('channelcoder.review').find(job) or -1
end

local function press_on(bufnr, pattern, keys)
  local win = vim.fn.win_findbuf(bufnr)[1]
  T.ok(win, 'the review is shown')
  vim.api.nvim_set_current_win(win)
  local lines = vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
  for i, line in ipairs(lines) do
    if line:find(pattern, 1, true) then
      vim.api.nvim_win_set_cursor(win, { i, 0 })
      vim.cmd('normal ' .. keys)
      return
    end
  end
  T.fail('no line ' .. pattern .. ' in the review:\n' .. table.concat(lines, '\n'))
end

local function reset()
  proposals.reviews, proposals.decisions, proposals.answers = {}, {}, {}
  vim.cmd('silent! %bwipeout!')
end

T.run({
  { 'a missing server is one notification with the install hint', function()
    T.eq(true, require('channelcoder').setup({ cmd = { workdir .. '/no-such-channelcoder', 'lsp' } }), 'setup')
    vim.cmd('edit ' .. workdir .. '/first.txt')
    vim.cmd('edit ' .. workdir .. '/second.txt')
    local function missing_notes()
      return vim.tbl_filter(function(note)
        return note.message:find('was not found', 1, true) ~= nil
      end, _G.test_notes)
    end
    T.wait(function()
      return #missing_notes() > 0
    end, 'the notification')
    local missing = missing_notes()
    T.eq(1, #missing, 'one notification for two buffers')
    T.contains(missing[1].message, 'pip install channelcoder')
    T.eq(0, #compat.clients('channelcoder'), 'no client')
    pcall(vim.cmd, 'Claude do something') -- asked explicitly: said again
    T.eq(2, #missing_notes(), 'a command says it again')
    vim.cmd('silent! %bwipeout!')
  end },

  { 'setup rejects bad options with a message, not a traceback', function()
    T.eq(false, require('channelcoder').setup({ filetypes = 'python' }), 'setup result')
    T.contains(_G.test_notes[#_G.test_notes].message, "option 'filetypes' must be a table")
    T.eq(true, require('channelcoder').setup({ cmd = server, settings = { docker = false },
      transcript = { open = false } }), 'setup result')
    T.eq(2, vim.fn.exists(':Claude'), ':Claude exists')
    T.eq(2, vim.fn.exists(':ClaudeCancel'), ':ClaudeCancel exists')
  end },

  { 'the help file has valid, unique tags', function()
    local docs = workdir .. '/doc'
    vim.fn.mkdir(docs, 'p')
    local source = vim.api.nvim_get_runtime_file('doc/channelcoder.txt', false)[1]
    T.ok(source, 'doc/channelcoder.txt on the runtimepath')
    vim.fn.writefile(vim.fn.readfile(source), docs .. '/channelcoder.txt')
    vim.cmd('helptags ' .. vim.fn.fnameescape(docs))
    local tags = vim.fn.readfile(docs .. '/tags')
    for _, tag in ipairs({ 'channelcoder', ':Claude', ':ClaudeCancel', ':ClaudeReview', 'channelcoder-review' }) do
      T.ok(vim.tbl_contains(vim.tbl_map(function(line)
        return vim.split(line, '\t')[1]
      end, tags), tag), 'tag ' .. tag)
    end
    vim.fn.delete(docs, 'rf')
  end },

  { 'the server starts and attaches to a file buffer', function()
    local bufnr = open(write('a.txt', { 'one', 'two' }))
    local c = client()
    T.ok(c.server_capabilities.executeCommandProvider ~= nil, 'executeCommandProvider advertised')
    T.eq(workdir, c.config.root_dir, 'root dir falls back to the cwd')
    T.ok(compat.is_attached(c, bufnr), 'attached')
  end },

  { 'positions convert between bytes and the negotiated encoding', function()
    local line = 'aé𝄞b'
    T.eq(7, compat.char_index(line, 7, 'utf-8'), 'utf-8 is bytes')
    T.eq(4, compat.char_index(line, 7, 'utf-16'), 'a(1) é(1) 𝄞(2)')
    T.eq(3, compat.char_index(line, 7, 'utf-32'), 'code points')
    T.eq(7, compat.byte_index(line, 4, 'utf-16'), 'back to bytes')
    T.eq(3, compat.byte_index(line, 2, 'utf-16'), 'after é')
  end },

  { 'a stale versioned edit is refused: ours answers applied=false, the built-in says true', function()
    reset()
    local bufnr = open(write('stale.txt', { 'alpha', 'beta' }))
    vim.api.nvim_buf_set_lines(bufnr, 1, 2, false, { 'beta' }) -- a first change: version > 0
    local sent = compat.buf_version(bufnr)
    T.ok(sent > 0, 'a version the built-in handler checks')
    vim.api.nvim_buf_set_lines(bufnr, 0, 1, false, { 'ALPHA (edited by the user)' })
    T.ok(compat.buf_version(bufnr) > sent, 'the version moved')
    local params = versioned(bufnr, sent, { line_edit(1, 'gamma\n') })
    local reply = proposals.handler(nil, params, { client_id = client().id })
    T.eq(false, reply.applied, 'our answer')
    T.contains(reply.failureReason, 'changed since the job started')
    T.eq({ 'ALPHA (edited by the user)', 'beta' }, vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), 'untouched')
    T.eq(-1, review_buf('job-1'), 'no review for a stale edit')
    -- Neovim's own handler: skips the stale edit, yet reports success.
    local builtin = vim.lsp.handlers['workspace/applyEdit'](nil, params, { client_id = client().id, method = 'workspace/applyEdit' })
    T.eq(true, builtin.applied, "the built-in handler's answer")
    T.eq({ 'ALPHA (edited by the user)', 'beta' }, vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), 'still untouched')
  end },

  { 'an unversioned edit of a buffer with unsaved changes is refused', function()
    reset()
    local bufnr = open(write('dirty.txt', { 'x' }))
    vim.api.nvim_buf_set_lines(bufnr, 0, -1, false, { 'unsaved' })
    local params = versioned(bufnr, nil, { line_edit(0, 'y\n') })
    local reply = proposals.handler(nil, params, { client_id = client().id })
    T.eq(false, reply.applied, 'answer')
    T.contains(reply.failureReason, 'unsaved changes')
    T.eq({ 'unsaved' }, vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), 'untouched')
  end },

  { 'review per hunk: accept one, reject the other, the answer waits (0.10+ style)', function()
    reset()
    local bufnr = open(write('review.txt', { 'l1', 'l2', 'l3', 'l4' }))
    local params = versioned(bufnr, compat.buf_version(bufnr), { line_edit(0, 'L1\n'), line_edit(3, 'L4\nL5\n') })
    local box = handle_deferred(params)
    T.eq(nil, box.reply, 'no answer before the user decides')
    local rb = review_buf('job-1')
    T.ok(rb ~= -1, 'review buffer')
    local text = T.buf_text(rb)
    T.contains(text, 'M review.txt')
    T.contains(text, '@@ -1,3 +1,3 @@ [ ]\n-l1\n+L1\n l2\n l3\n', 'three context lines at most, up to the next hunk')
    T.contains(text, ' l3\n@@ -4,1 +4,2 @@ [ ]\n-l4\n+L4\n+L5', 'context lines are not repeated')
    press_on(rb, '@@ -1,3', 'a')
    T.eq(nil, box.reply, 'one hunk still undecided')
    T.contains(T.buf_text(rb), '@@ -1,3 +1,3 @@ [✓]')
    press_on(rb, '+L5', 'r')
    T.eq({ applied = true }, box.reply, 'answered after the last decision')
    T.eq({ 'L1', 'l2', 'l3', 'l4' }, vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), 'only the accepted hunk')
    T.eq({}, vim.fn.win_findbuf(rb), 'the review closed')
  end },

  { 'the buffer changing during the review makes the answer applied=false', function()
    reset()
    local bufnr = open(write('during.txt', { 'a', 'b' }))
    local box = handle_deferred(versioned(bufnr, compat.buf_version(bufnr), { line_edit(1, 'B\n') }))
    vim.api.nvim_buf_set_lines(bufnr, 0, 1, false, { 'a (typed while reviewing)' })
    press_on(review_buf('job-1'), 'M during.txt', 'a')
    T.eq(false, box.reply.applied, 'answer')
    T.contains(box.reply.failureReason, 'changed since the job started')
    T.eq({ 'a (typed while reviewing)', 'b' }, vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), 'not clobbered')
  end },

  { 'rejecting everything asks for a reason and answers applied=false', function()
    reset()
    local bufnr = open(write('reject.txt', { 'keep' }))
    T.stub_input('') -- no reason given
    local sent = {}
    local execute = require('channelcoder.lsp').execute
    require('channelcoder.lsp').execute = function(command, arg)
      table.insert(sent, { command, arg })
    end
    local box = handle_deferred(versioned(bufnr, compat.buf_version(bufnr), { line_edit(0, 'drop\n') }))
    press_on(review_buf('job-1'), 'M reject.txt', 'R')
    T.eq({ applied = false, failureReason = proposals.REJECTED }, box.reply, 'answer')
    T.wait(function() return #sent == 1 end, 'rejectProposal')
    require('channelcoder.lsp').execute = execute
    T.eq({ 'channelcoder.rejectProposal', { jobId = 'job-1' } }, sent[1], 'sent without a reason')
    T.eq(1, #T.prompts, 'asked for a reason once')
    T.eq({ 'keep' }, vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), 'untouched')
  end },

  { 'review keys come from setup(); the transcript window can float', function()
    reset()
    T.ok(require('channelcoder').setup({ cmd = server, settings = { docker = false },
      transcript = { open = false, style = 'float' }, review = { keys = { accept = 'y' } } }), 'setup')
    local bufnr = open(write('keys.txt', { 'one' }))
    local box = handle_deferred(versioned(bufnr, compat.buf_version(bufnr), { line_edit(0, 'ONE\n') }))
    local rb = review_buf('job-1')
    T.contains(T.buf_text(rb), 'y accept · r reject', 'the help line names the configured key')
    T.eq('', vim.fn.maparg('a', 'n'), "the default 'a' is not mapped")
    press_on(rb, '+ONE', 'y')
    T.eq(true, box.reply.applied, 'accepted with the configured key')
    T.eq({ 'ONE' }, vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), 'applied')
    local transcript = require('channelcoder.transcript')
    local win = transcript.show(vim.api.nvim_create_buf(false, true), false)
    T.eq('editor', vim.api.nvim_win_get_config(win).relative, 'a floating window')
    T.ok(vim.api.nvim_get_current_win() ~= win, 'without the focus')
    transcript.toggle()
    T.ok(not vim.api.nvim_win_is_valid(win), ':ClaudeToggle hides it')
    T.ok(require('channelcoder').setup({ cmd = server, settings = { docker = false },
      transcript = { open = false } }), 'setup back to the defaults')
  end },

  { 'answering at once (0.7 style): held, re-offered, then applied with the decisions', function()
    reset()
    local bufnr = open(write('held.txt', { 'one', 'two', 'three' }))
    local reoffered = {}
    local reoffer = proposals.reoffer
    proposals.reoffer = function(job)
      table.insert(reoffered, job)
    end
    local params = versioned(bufnr, compat.buf_version(bufnr), { line_edit(0, 'ONE\n'), line_edit(2, 'THREE\n') })
    local reply = proposals.handler(nil, params, { client_id = client().id })
    T.eq({ applied = false, failureReason = proposals.HELD }, reply, 'held while the user reviews')
    local rb = review_buf('job-1')
    press_on(rb, '+ONE', 'r')
    press_on(rb, '+THREE', 'a')
    proposals.reoffer = reoffer
    T.eq({ 'job-1' }, reoffered, 'applyProposal requested once')
    -- the server re-offers the same hunks (rebased onto the current text)
    local again = proposals.handler(nil, versioned(bufnr, compat.buf_version(bufnr),
      { line_edit(0, 'ONE\n'), line_edit(2, 'THREE\n') }), { client_id = client().id })
    T.eq({ applied = true }, again, 'applied without asking again')
    T.eq({ 'one', 'two', 'THREE' }, vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), 'decisions kept')
  end },

  { 'file creation, deletion and rename are reviewed per file', function()
    reset()
    local gone = write('gone.txt', { 'bye' })
    local old = write('old.txt', { 'same' })
    open(write('anchor.txt', { 'x' }))
    local new_uri = vim.uri_from_fname(workdir .. '/new.txt')
    local params = {
      label = 'Claude: files',
      edit = {
        documentChanges = {
          { kind = 'create', uri = new_uri, options = { overwrite = false, ignoreIfExists = false } },
          { textDocument = { uri = new_uri }, edits = { { range = { start = { line = 0, character = 0 },
            ['end'] = { line = 0, character = 0 } }, newText = 'fresh\n' } } },
          { kind = 'delete', uri = vim.uri_from_fname(gone) },
          { kind = 'rename', oldUri = vim.uri_from_fname(old), newUri = vim.uri_from_fname(workdir .. '/renamed.txt') },
        },
        changeAnnotations = { ['channelcoder:job-2'] = { label = 'files', needsConfirmation = true } },
      },
    }
    local box = handle_deferred(params)
    local rb = review_buf('job-2')
    local text = T.buf_text(rb)
    T.contains(text, 'A new.txt  (new file)')
    T.contains(text, '+fresh')
    T.contains(text, 'D gone.txt  (delete) [ ]\n-bye')
    T.contains(text, 'R renamed.txt  (from old.txt) [ ]')
    press_on(rb, 'A new.txt', 'a')
    press_on(rb, 'D gone.txt', 'r')
    press_on(rb, 'R renamed.txt', 'a')
    T.eq({ applied = true }, box.reply, 'answer')
    T.eq({ 'fresh' }, vim.fn.getbufline(vim.fn.bufnr(workdir .. '/new.txt'), 1, '$'), 'created with content')
    T.eq(1, vim.fn.filereadable(gone), 'deletion rejected')
    T.eq(1, vim.fn.filereadable(workdir .. '/renamed.txt'), 'renamed')
    T.eq(0, vim.fn.filereadable(old), 'old name gone')
  end },
})
