-- luamig heads: the revisions nothing follows. Needs no database.
local exitcodes = require("luamig.exitcodes")
local json = require("luamig.json")
local fmt = require("luamig.format")

return {
  summary = "show the heads of the revision graph",
  usage = "luamig heads [-v]",
  max_args = 0,
  run = function(ctx)
    local graph, err = ctx:graph()
    if not graph then return nil, err, exitcodes.FAILED end
    local items = {}
    for _, h in ipairs(graph:heads()) do items[#items + 1] = graph:get(h) end
    if ctx.json then
      local out = {}
      for i, r in ipairs(items) do out[i] = fmt.record(graph, r) end
      ctx:out(json.encode({ heads = json.array(out) }))
      return true
    end
    for _, r in ipairs(items) do
      if ctx.verbose then
        ctx:out(fmt.entry(graph, r))
      else
        ctx:out(fmt.line(graph, r, { branches = true, tree = false }))
      end
    end
    return true
  end,
}
