-- luamig branches: the branch points and the branches they start. Needs no database.
local exitcodes = require("luamig.exitcodes")
local json = require("luamig.json")
local fmt = require("luamig.format")

return {
  summary = "show the branch points of the revision graph",
  usage = "luamig branches [-v]",
  max_args = 0,
  run = function(ctx)
    local graph, err = ctx:graph()
    if not graph then return nil, err, exitcodes.FAILED end
    local points = {}
    for _, id in ipairs(graph:range(nil, nil)) do
      if graph:is_branch_point(id) then points[#points + 1] = graph:get(id) end
    end
    if ctx.json then
      local out = {}
      for i, r in ipairs(points) do
        local rec = fmt.record(graph, r)
        rec.branches = json.array(graph.children[r.revision])
        out[i] = rec
      end
      ctx:out(json.encode({ branches = json.array(out) }))
      return true
    end
    for _, r in ipairs(points) do
      local lines = { ctx.verbose and fmt.entry(graph, r) or fmt.line(graph, r, { branches = true }) }
      local pad = string.rep(" ", #r.revision)
      for _, c in ipairs(graph.children[r.revision]) do
        lines[#lines + 1] = pad .. " -> " .. fmt.line(graph, graph:get(c), { branches = true, doc = ctx.verbose })
      end
      ctx:out(table.concat(lines, "\n") .. "\n")
    end
    return true
  end,
}
