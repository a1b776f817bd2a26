-- luamig history: the revisions, newest first. Needs the database only for -i.
local exitcodes = require("luamig.exitcodes")
local json = require("luamig.json")

local format, concat = string.format, table.concat

return {
  summary = "list the revisions, newest first",
  usage = "luamig history [-v] [-i]",
  max_args = 0,
  options = {
    { short = "-i", long = "--indicate-current", key = "indicate_current", help = "mark the database's current revision(s)" },
  },
  run = function(ctx)
    local graph, err = ctx:graph()
    if not graph then return nil, err, exitcodes.FAILED end
    local current = {}
    if ctx.options.indicate_current then
      local heads, herr = ctx:db_heads()
      if not heads then return nil, herr, exitcodes.FAILED end
      for _, h in ipairs(heads) do current[h] = true end
    end
    local is_head = {}
    for _, h in ipairs(graph:heads()) do is_head[h] = true end
    local items = {}
    local order = graph.order
    for i = #order, 1, -1 do
      local r = graph:get(order[i])
      items[#items + 1] = { revision = r.revision, down_revisions = json.array(r.down_revisions), message = r.message,
        path = r.shown, is_head = is_head[r.revision] or false, is_current = current[r.revision] or false,
        branch_labels = json.array(r.branch_labels) }
    end
    if ctx.json then
      ctx:out(json.encode({ history = json.array(items) }))
      return true
    end
    for _, it in ipairs(items) do
      local marks = {}
      if it.is_head then marks[#marks + 1] = "head" end
      if it.is_current then marks[#marks + 1] = "current" end
      local mark = #marks > 0 and (" (" .. concat(marks, ") (") .. ")") or ""
      local parent = #it.down_revisions == 0 and "<base>" or concat(it.down_revisions, ", ")
      if ctx.verbose then
        ctx:out(format("Rev: %s%s\nParent: %s\nPath: %s\n\n    %s\n", it.revision, mark, parent, it.path, it.message))
      else
        ctx:out(format("%s -> %s%s, %s", parent, it.revision, mark, it.message))
      end
    end
    return true
  end,
}
