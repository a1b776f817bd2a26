-- What upgrade and downgrade share: load, connect, run the plan, report.
local exitcodes = require("luamig.exitcodes")

local function run(ctx, direction, spec, opts)
  local runner, err = ctx:runner()
  if not runner then return nil, err, exitcodes.FAILED end
  local n, rerr = runner:migrate(direction, spec, opts)
  if not n then return nil, rerr, exitcodes.FAILED end
  if ctx.json then
    local json = require("luamig.json")
    local heads = runner:heads() or {}
    ctx:out(json.encode({ command = direction, applied = n, current = json.array(heads) }))
  elseif n == 0 and ctx.verbose then
    ctx:info(string.format("nothing to %s: the database is already at %s", direction, spec))
  end
  return true
end

return { run = run }
