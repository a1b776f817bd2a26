-- luamig history: the revisions, newest first. Needs the database only for -i or a range naming `current`.
local exitcodes = require("luamig.exitcodes")
local json = require("luamig.json")
local fmt = require("luamig.format")
local runtime = require("luamig.runtime")

local format = string.format

return {
  summary = "list the revisions, newest first",
  usage = "luamig history [-r RANGE] [-v] [-i]",
  description = "RANGE: FROM:TO, FROM: or :TO, each a revision, head, heads, base, current or label@head.",
  max_args = 0,
  options = {
    { short = "-r", long = "--rev-range", arg = "RANGE", key = "range", help = "only the revisions between FROM and TO" },
    { short = "-i", long = "--indicate-current", key = "indicate_current", help = "mark the database's current revision(s)" },
  },
  run = function(ctx)
    local graph, err = ctx:graph()
    if not graph then return nil, err, exitcodes.FAILED end
    local range = ctx.options.range
    if range and not range:find(":", 1, true) then
      return nil, format("-r %s: a range is FROM:TO, FROM: or :TO", range), exitcodes.USAGE
    end
    local current, current_set = {}, {}
    if ctx.options.indicate_current or (range and range:find("current", 1, true)) then
      local heads, herr = ctx:version_rows()
      if not heads then return nil, herr, exitcodes.FAILED end
      current = heads
      if ctx.options.indicate_current then
        for _, h in ipairs(heads) do current_set[h] = true end
      end
    end
    local ids, rerr = graph:range(nil, nil), nil
    if range then
      ids, rerr = runtime.new({ graph = graph, cfg = ctx:config() }):range(range, current)
      if not ids then return nil, rerr, exitcodes.FAILED end
    end
    if ctx.json then
      local out = {}
      for i, id in ipairs(ids) do out[i] = fmt.record(graph, graph:get(id), current_set) end
      ctx:out(json.encode({ history = json.array(out) }))
      return true
    end
    for _, id in ipairs(ids) do
      local r = graph:get(id)
      if ctx.verbose then
        ctx:out(fmt.entry(graph, r, current_set))
      else
        ctx:out(fmt.line(graph, r, { parents = true, branches = true, doc = true, current = current_set }))
      end
    end
    return true
  end,
}
