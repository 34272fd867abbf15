-- The user commands (:Claude, :ClaudeAsk, :ClaudeFix, :ClaudeCancel, :ClaudeJobs,
-- :ClaudeDoctor, :ClaudeBuildImage, :ClaudeReview, :ClaudeTranscript, :ClaudeToggle,
-- :ClaudeRestart).
local M = {}

local function actions()
  return require('channelcoder.actions')
end

local function job_ids()
  local ids = {}
  for _, job in ipairs(require('channelcoder.jobs').list()) do
    table.insert(ids, job.id)
  end
  return ids
end

local function complete_jobs(lead)
  return vim.tbl_filter(function(id)
    return id:sub(1, #lead) == lead
  end, job_ids())
end

function M.create()
  local create = vim.api.nvim_create_user_command
  create('Claude', function(cmd)
    actions().prompt_command('channelcoder.run', cmd)
  end, { nargs = '*', range = true, desc = 'Run Claude on this file (and the range) in the sandbox' })
  create('ClaudeAsk', function(cmd)
    actions().prompt_command('channelcoder.ask', cmd)
  end, { nargs = '*', range = true, desc = 'Ask Claude about this file or the range (read-only)' })
  create('ClaudeFix', function()
    actions().fix()
  end, { nargs = 0, desc = 'Fix the diagnostic under the cursor with Claude' })
  create('ClaudeCancel', function(cmd)
    actions().cancel(cmd.args)
  end, { nargs = '?', complete = complete_jobs, desc = 'Cancel a Claude job (default: the newest)' })
  create('ClaudeJobs', function()
    actions().jobs()
  end, { nargs = 0, desc = 'List Claude jobs and pending proposals' })
  create('ClaudeDoctor', function()
    actions().doctor()
  end, { nargs = 0, desc = 'Check Docker, the sandbox image and credentials' })
  create('ClaudeBuildImage', function(cmd)
    actions().build_image(cmd.bang)
  end, { nargs = 0, bang = true, desc = 'Build the sandbox image (! rebuilds without cache)' })
  create('ClaudeReview', function(cmd)
    require('channelcoder.proposals').review(cmd.args ~= '' and cmd.args or nil)
  end, { nargs = '?', complete = complete_jobs, desc = 'Review a pending Claude proposal' })
  create('ClaudeRestart', function()
    require('channelcoder.lsp').restart()
  end, { nargs = 0, desc = 'Start the Claude language server again' })
  create('ClaudeToggle', function()
    require('channelcoder.transcript').toggle()
  end, { nargs = 0, desc = 'Show or hide the Claude transcript window' })
  create('ClaudeTranscript', function(cmd)
    require('channelcoder.transcript').open(cmd.args)
  end, { nargs = '?', complete = complete_jobs, desc = "Open a Claude job's transcript" })
end

return M
