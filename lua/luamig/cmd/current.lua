-- luamig current: the revision(s) the database is at.
local exitcodes = require("luamig.exitcodes")
local json = require("luamig.json")
local fmt = require("luamig.format")

local format, concat = string.format, table.concat

return {
  summary = "show the database's current revision(s)",
  usage = "luamig current [-v] [--check-heads]",
  max_args = 0,
  options = {
    { long = "--check-heads", key = "check_heads", help = "exit 3 unless the database is at every head" },
  },
  run = function(ctx)
    local graph, err = ctx:graph()
    if not graph then return nil, err, exitcodes.FAILED end
    local heads, db = ctx:db_heads()
    if not heads then return nil, db, exitcodes.FAILED end
    if ctx.json then
      local items, at = {}, {}
      for _, h in ipairs(heads) do at[h] = true end
      for _, h in ipairs(heads) do
        local r = graph:get(h)
        local rec = r and fmt.record(graph, r, at) or { revision = h, path = json.null, message = json.null, is_head = false }
        rec.known = r ~= nil
        items[#items + 1] = rec
      end
      ctx:out(json.encode({ current = json.array(items), url = db.url }))
    else
      if ctx.verbose then ctx:out(format("Current revision(s) for %s:", db.url)) end
      for _, h in ipairs(heads) do
        local r = graph:get(h)
        if not r then
          ctx:out(h .. " (no migration file defines it)")
        elseif ctx.verbose then
          ctx:out(fmt.entry(graph, r))
        else
          ctx:out(fmt.line(graph, r))
        end
      end
      if #heads == 0 and ctx.verbose then ctx:info("no revision applied (base)") end
    end
    if ctx.options.check_heads then
      local want = graph:effective_heads()
      if concat(want, ",") ~= concat(heads, ",") then
        return nil, format("the database is at %s, not at every head (%s)", #heads == 0 and "<base>" or concat(heads, ", "),
          concat(want, ", ")), exitcodes.DIFFERENCE
      end
    end
    return true
  end,
}
