-- luamig show REV: one revision in full. Needs no database.
local exitcodes = require("luamig.exitcodes")
local json = require("luamig.json")
local fmt = require("luamig.format")
local runtime = require("luamig.runtime")

return {
  summary = "show a revision in full",
  usage = "luamig show REV",
  description = "REV: a revision id or unique prefix, head, heads, base+N, label@head.",
  args_help = "one REV",
  min_args = 1,
  max_args = 1,
  run = function(ctx, args)
    local graph, err = ctx:graph()
    if not graph then return nil, err, exitcodes.FAILED end
    local r = runtime.new({ graph = graph, cfg = ctx:config() })
    local ids, rerr = r:resolve_upgrade(args[1], {})
    if not ids then return nil, rerr, exitcodes.FAILED end
    if #ids == 0 then return nil, "show: base is not a revision", exitcodes.FAILED end
    if ctx.json then
      local out = {}
      for i, id in ipairs(ids) do out[i] = fmt.record(graph, graph:get(id)) end
      ctx:out(json.encode({ revisions = json.array(out) }))
      return true
    end
    for _, id in ipairs(ids) do ctx:out(fmt.entry(graph, graph:get(id))) end
    return true
  end,
}
