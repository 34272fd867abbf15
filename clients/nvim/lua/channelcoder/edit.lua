-- A WorkspaceEdit as a list of files and hunks the user can decide on one by one, the version
-- check that refuses a stale edit, and the filtered edit built from the decisions.
local compat = require('channelcoder.compat')

local M = {}

local function null(value)
  return value == nil or value == vim.NIL
end

--- The loaded buffer for a file, without creating one.
function M.find_buf(fname)
  for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(bufnr) and vim.api.nvim_buf_get_name(bufnr) == fname then
      return bufnr
    end
  end
  return nil
end

--- A file's lines as the user has them: the buffer when loaded, else the disk.
local function current_lines(fname)
  local bufnr = M.find_buf(fname)
  if bufnr then
    return vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
  end
  if vim.fn.filereadable(fname) == 1 then
    return vim.fn.readfile(fname)
  end
  return {}
end

local function strip_cr(lines)
  local out = {}
  for i, line in ipairs(lines) do
    out[i] = (line:gsub('\r$', ''))
  end
  return out
end

--- The lines one TextEdit replaces and the lines it puts there (for display and matching).
function M.hunk_lines(lines, text_edit, encoding)
  local s, e = text_edit.range.start, text_edit.range['end']
  local first_text = lines[s.line + 1] or ''
  local last_text = lines[e.line + 1] or ''
  local sb = compat.byte_index(first_text, s.character, encoding)
  local eb = compat.byte_index(last_text, e.character, encoding)
  local old, new = {}, nil
  local ends_at_line_start = e.character == 0 and e.line > s.line
  if s.line == e.line and sb == eb and s.character == 0 then
    -- pure insertion before line s.line
    new = vim.split(text_edit.newText, '\n', { plain = true })
    if new[#new] == '' then
      table.remove(new)
    end
    return old, strip_cr(new), s.line
  end
  local last = ends_at_line_start and e.line - 1 or e.line
  for i = s.line + 1, math.min(last + 1, #lines) do
    table.insert(old, lines[i])
  end
  local suffix = ends_at_line_start and '' or last_text:sub(eb + 1)
  new = vim.split(first_text:sub(1, sb) .. text_edit.newText .. suffix, '\n', { plain = true })
  if new[#new] == '' and (ends_at_line_start or s.line >= #lines) then
    table.remove(new)
  end
  return strip_cr(old), strip_cr(new), s.line
end

--- The two sides of a conflict the server marked (<<<<<<< yours … ======= … >>>>>>> Claude),
--- or nil when `new` is an ordinary hunk.
function M.conflict(new)
  if #new < 3 or not new[1]:match('^<<<<<<< ') or not new[#new]:match('^>>>>>>> ') then
    return nil
  end
  local yours, claude, side = {}, {}, nil
  for i = 2, #new - 1 do
    if new[i] == '=======' and side == nil then
      side = claude
    else
      table.insert(side or yours, new[i])
    end
  end
  if side == nil then
    return nil
  end
  return { yours = yours, claude = claude, marked = vim.deepcopy(new) }
end

--- A conflict hunk's lines with both versions between the markers.
function M.marked_lines(h)
  return vim.deepcopy(h.conflict and h.conflict.marked or h.new)
end

--- Replace what a hunk puts in the file by `lines` (whole lines, as the hunk's own lines).
function M.set_new(h, lines)
  local r = h.edit.range
  local eol = (h.original or ''):find('\r\n', 1, true) and '\r\n' or '\n'
  local whole_lines = r['end'].character == 0 and r['end'].line >= r.start.line
  local trailing = whole_lines or (h.original or ''):sub(-1) == '\n'
  local text = table.concat(lines, eol)
  if trailing and #lines > 0 then
    text = text .. eol
  end
  h.edit.newText = text
  h.new = vim.deepcopy(lines)
end

--- Split a WorkspaceEdit into files with hunks.
--- file = { uri, fname, version (nil when unversioned), op ('modify'|'create'|'delete'|'rename'),
---          resource (the CreateFile/DeleteFile/RenameFile), hunks = { {edit, old, new, line, key} } }
function M.parse(workspace_edit, encoding)
  local files, by_uri = {}, {}
  local function file(uri)
    local f = by_uri[uri]
    if not f then
      f = { uri = uri, fname = vim.uri_to_fname(uri), op = 'modify', hunks = {} }
      by_uri[uri] = f
      table.insert(files, f)
    end
    return f
  end
  local function add_edits(f, edits)
    local lines = f.op == 'create' and {} or current_lines(f.source_fname or f.fname)
    f.lines = strip_cr(lines)
    for _, text_edit in ipairs(edits) do
      local old, new, line = M.hunk_lines(lines, text_edit, encoding)
      table.insert(f.hunks, {
        edit = text_edit,
        old = old,
        new = new,
        line = line,
        original = text_edit.newText,
        conflict = M.conflict(new),
        key = f.fname .. '\0' .. table.concat(old, '\n') .. '\0' .. table.concat(new, '\n'),
      })
    end
  end
  if workspace_edit.documentChanges then
    for _, change in ipairs(workspace_edit.documentChanges) do
      if change.kind == 'create' then
        local f = file(change.uri)
        f.op, f.resource = 'create', change
      elseif change.kind == 'delete' then
        local f = file(change.uri)
        f.op, f.resource = 'delete', change
        f.old_lines = strip_cr(current_lines(f.fname))
      elseif change.kind == 'rename' then
        local f = file(change.newUri)
        f.op, f.resource = 'rename', change
        f.source_fname = vim.uri_to_fname(change.oldUri)
      elseif change.textDocument then
        local f = file(change.textDocument.uri)
        if not null(change.textDocument.version) then
          f.version = change.textDocument.version
        end
        add_edits(f, change.edits or {})
      end
    end
  end
  if workspace_edit.changes then
    local uris = vim.tbl_keys(workspace_edit.changes)
    table.sort(uris)
    for _, uri in ipairs(uris) do
      add_edits(file(uri), workspace_edit.changes[uri])
    end
  end
  for _, f in ipairs(files) do
    if f.op ~= 'modify' then
      f.key = f.op .. '\0' .. f.fname
    end
  end
  M.mark_host_run(workspace_edit, by_uri)
  return files
end

--- Files the host runs later (git hooks, Makefile, CI…) come with an annotation of their own:
--- `f.host_run` is what runs it.
function M.mark_host_run(workspace_edit, by_uri)
  local annotations = workspace_edit.changeAnnotations or {}
  local function mark(uri, id)
    local note = id and tostring(id):match('^channelcoder%-hostrun:') and annotations[id]
    local f = by_uri[uri]
    if note and f then
      f.host_run = tostring(note.label or ''):match('%((.-)%)$') or 'runs on your machine'
    end
  end
  for _, change in ipairs(workspace_edit.documentChanges or {}) do
    local uri = change.newUri or change.uri or (change.textDocument and change.textDocument.uri)
    mark(uri, change.annotationId)
    for _, text_edit in ipairs(change.edits or {}) do
      mark(uri, text_edit.annotationId)
    end
  end
end

--- Why applying `files` now would clobber something, or nil when every document is as the
--- server saw it: versioned documents must be loaded at exactly that version; an unversioned
--- file must not have unsaved changes the server never saw.
function M.stale_reason(files)
  for _, f in ipairs(files) do
    local fname = f.source_fname or f.fname
    local bufnr = M.find_buf(fname)
    local name = vim.fn.fnamemodify(fname, ':~:.')
    if f.version ~= nil then
      local now = bufnr and compat.buf_version(bufnr)
      if not bufnr then
        return string.format('%s was closed after the job started', name)
      elseif now ~= f.version then
        return string.format('%s changed since the job started', name)
      end
    elseif bufnr and vim.bo[bufnr].modified and (#f.hunks > 0 or f.op ~= 'modify') then
      return string.format('%s has unsaved changes the server has not seen', name)
    end
  end
  return nil
end

--- The WorkspaceEdit holding only what was accepted (same order as the original).
--- accepted(file, hunk) -> bool; a file's resource operation is its own decision (hunk = nil).
function M.filter(workspace_edit, files, accepted)
  local by_uri = {}
  for _, f in ipairs(files) do
    by_uri[f.uri] = f
  end
  local kept_edits = {} -- text edit table -> true
  local any_edit = {} -- uri -> true
  for _, f in ipairs(files) do
    for _, h in ipairs(f.hunks) do
      if accepted(f, h) then
        kept_edits[h.edit] = true
        any_edit[f.uri] = true
      end
    end
  end
  local function resource_kept(f)
    -- creating or renaming is implied by accepting content of the new file
    return accepted(f, nil) or any_edit[f.uri]
  end
  local out = { documentChanges = {} }
  if workspace_edit.documentChanges then
    for _, change in ipairs(workspace_edit.documentChanges) do
      if change.kind == 'create' or change.kind == 'delete' then
        if resource_kept(by_uri[change.uri]) then
          table.insert(out.documentChanges, change)
        end
      elseif change.kind == 'rename' then
        if resource_kept(by_uri[change.newUri]) then
          table.insert(out.documentChanges, change)
        end
      elseif change.textDocument then
        local edits = {}
        for _, text_edit in ipairs(change.edits or {}) do
          if kept_edits[text_edit] then
            table.insert(edits, text_edit)
          end
        end
        if #edits > 0 then
          table.insert(out.documentChanges, { textDocument = change.textDocument, edits = edits })
        end
      end
    end
  end
  if workspace_edit.changes then
    for uri, edits in pairs(workspace_edit.changes) do
      local kept = {}
      for _, text_edit in ipairs(edits) do
        if kept_edits[text_edit] then
          table.insert(kept, text_edit)
        end
      end
      if #kept > 0 then
        table.insert(out.documentChanges, { textDocument = { uri = uri }, edits = kept })
      end
    end
  end
  return out
end

return M
