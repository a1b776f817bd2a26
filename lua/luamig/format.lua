-- How revisions are shown, after Alembic's cmd_format and log_entry: "a -> b (label) (head), message" lines and
-- "Rev: / Parent: / Path:" blocks.
local format, concat = string.format, table.concat

local function parents_text(r)
  return #r.down_revisions == 0 and "<base>" or concat(r.down_revisions, ", ")
end

-- line(g, r, opts) -> one line. opts: parents, branches, doc, head (default true), tree (default true), current (set)
local function line(g, r, opts)
  opts = opts or {}
  local text = r.revision
  if opts.parents then
    if #r.dependencies > 0 then
      text = format("%s (%s) -> %s", parents_text(r), concat(r.dependencies, ", "), text)
    else
      text = parents_text(r) .. " -> " .. text
    end
  end
  if opts.branches and #r.all_labels > 0 then text = text .. " (" .. concat(r.all_labels, ", ") .. ")" end
  if opts.head ~= false and not g.children[r.revision] then text = text .. " (head)" end
  if opts.current and opts.current[r.revision] then text = text .. " (current)" end
  if opts.tree ~= false then
    if g:is_branch_point(r.revision) then text = text .. " (branchpoint)" end
    if g:is_merge_point(r.revision) then text = text .. " (mergepoint)" end
  end
  if opts.doc then text = text .. ", " .. r.message end
  return text
end

-- entry(g, r, current) -> the verbose block for one revision (ends with a blank line)
local function entry(g, r, current)
  local out = {}
  out[1] = format("Rev: %s%s%s%s%s", r.revision, g.children[r.revision] and "" or " (head)",
    g:is_branch_point(r.revision) and " (branchpoint)" or "", g:is_merge_point(r.revision) and " (mergepoint)" or "",
    current and current[r.revision] and " (current)" or "")
  out[#out + 1] = (g:is_merge_point(r.revision) and "Merges: " or "Parent: ") .. parents_text(r)
  if #r.dependencies > 0 then out[#out + 1] = "Also depends on: " .. concat(r.dependencies, ", ") end
  if g:is_branch_point(r.revision) then out[#out + 1] = "Branches into: " .. concat(g.children[r.revision], ", ") end
  if #r.all_labels > 0 then out[#out + 1] = "Branch names: " .. concat(r.all_labels, ", ") end
  out[#out + 1] = "Path: " .. r.shown
  out[#out + 1] = ""
  out[#out + 1] = "    " .. r.message
  out[#out + 1] = ""
  return concat(out, "\n")
end

-- record(g, r, current) -> the JSON-ready table for one revision
local function record(g, r, current)
  local json = require("luamig.json")
  return { revision = r.revision, down_revisions = json.array(r.down_revisions), depends_on = json.array(r.dependencies),
    branch_labels = json.array(r.all_labels), message = r.message, path = r.shown,
    is_head = not g.children[r.revision], is_branch_point = g:is_branch_point(r.revision),
    is_merge_point = g:is_merge_point(r.revision), is_current = current and current[r.revision] or false }
end

return { line = line, entry = entry, record = record }
