-- luamig current: the revision(s) the database is at.
local exitcodes = require("luamig.exitcodes")
local json = require("luamig.json")

local format = string.format

return {
  summary = "show the database's current revision(s)",
  usage = "luamig current [-v]",
  max_args = 0,
  run = function(ctx)
    local graph, err = ctx:graph()
    if not graph then return nil, err, exitcodes.FAILED end
    local heads, db = ctx:db_heads()
    if not heads then return nil, db, exitcodes.FAILED end
    local is_head = {}
    for _, h in ipairs(graph:heads()) do is_head[h] = true end
    local items = {}
    for _, h in ipairs(heads) do
      local r = graph:get(h)
      items[#items + 1] = { revision = h, is_head = is_head[h] or false, known = r ~= nil,
        message = r and r.message or json.null, path = r and r.shown or json.null }
    end
    if ctx.json then
      ctx:out(json.encode({ current = json.array(items), url = db.url }))
      return true
    end
    for _, it in ipairs(items) do
      local line = it.revision .. (it.is_head and " (head)" or "")
      if not it.known then line = line .. " (no migration file defines it)" end
      if ctx.verbose and it.known then
        line = format("%s, %s\n  Path: %s", line, it.message, it.path)
      end
      ctx:out(line)
    end
    if #items == 0 and ctx.verbose then ctx:info("no revision applied (base)") end
    return true
  end,
}
