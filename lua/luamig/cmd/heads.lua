-- luamig heads: the revisions nothing follows. Needs no database.
local exitcodes = require("luamig.exitcodes")
local json = require("luamig.json")

return {
  summary = "show the heads of the revision graph",
  usage = "luamig heads [-v]",
  max_args = 0,
  run = function(ctx)
    local graph, err = ctx:graph()
    if not graph then return nil, err, exitcodes.FAILED end
    local items = {}
    for _, h in ipairs(graph:heads()) do
      local r = graph:get(h)
      items[#items + 1] = { revision = h, message = r.message, path = r.shown, down_revisions = json.array(r.down_revisions) }
    end
    if ctx.json then
      ctx:out(json.encode({ heads = json.array(items) }))
      return true
    end
    for _, it in ipairs(items) do
      if ctx.verbose then
        ctx:out(string.format("Rev: %s (head)\nParent: %s\nPath: %s\n\n    %s\n", it.revision,
          #it.down_revisions == 0 and "<base>" or table.concat(it.down_revisions, ", "), it.path, it.message))
      else
        ctx:out(it.revision .. " (head)")
      end
    end
    return true
  end,
}
