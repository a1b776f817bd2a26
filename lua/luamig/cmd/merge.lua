-- luamig merge REVS... -m MSG: a revision whose parents are the given revisions (`heads`: every head).
local exitcodes = require("luamig.exitcodes")
local revision = require("luamig.cmd.revision")
local runtime = require("luamig.runtime")

local format, concat = string.format, table.concat

return {
  summary = "write a merge revision joining several revisions (`heads`: all heads)",
  usage = "luamig merge REVS... [-m MSG] [--branch-label L] [--rev-id ID]",
  args_help = "the revisions to merge",
  min_args = 1,
  options = {
    { short = "-m", long = "--message", arg = "MSG", key = "message", help = "what the merge is (default: merge)" },
    { long = "--branch-label", arg = "L", key = "branch_label", help = "a branch label for the merge revision" },
    { long = "--rev-id", arg = "ID", key = "rev_id", help = "the revision id instead of a random one" },
  },
  run = function(ctx, args)
    local graph, err = ctx:graph()
    if not graph then return nil, err, exitcodes.FAILED end
    local r = runtime.new({ graph = graph, cfg = ctx:config() })
    local ids, seen = {}, {}
    for _, spec in ipairs(args) do
      local got, rerr = r:resolve_upgrade(spec, {})
      if not got then return nil, rerr, exitcodes.FAILED end
      for _, id in ipairs(got) do
        if not seen[id] then
          seen[id] = true
          ids[#ids + 1] = id
        end
      end
    end
    if #ids < 2 then
      return nil, format("merge needs at least two revisions; %s is %s", concat(args, " "),
        #ids == 0 and "nothing" or ("only " .. ids[1])), exitcodes.FAILED
    end
    for _, a in ipairs(ids) do
      for _, b in ipairs(ids) do
        if a ~= b and graph:reaches(b, a) then
          return nil, format("revision %s is an ancestor of %s: there is nothing to merge", a, b), exitcodes.FAILED
        end
      end
    end
    local o = ctx.options
    if o.branch_label and graph.labels[o.branch_label] then
      return nil, format("Branch name '%s' is already used by revision %s", o.branch_label,
        graph.labels[o.branch_label].revision), exitcodes.FAILED
    end
    return revision.write(ctx, { message = o.message or "merge " .. concat(ids, ", "), rev = o.rev_id, down_revision = ids,
      branch_labels = o.branch_label and { o.branch_label } or nil })
  end,
}
