-- luamig test: the stairway on a scratch database (default: in-memory SQLite). For every migration in order:
-- upgrade it, downgrade it, check that the schema is exactly what it was before, upgrade it again and check that
-- it is what the first upgrade made. Exit 3 naming the revision and the difference when a step does not return.
local exitcodes = require("luamig.exitcodes")

local format, concat, sort = string.format, table.concat, table.sort

-- snapshot(db, vt) -> the schema outside luamig's own tables, one line per object (the dialect's snapshot_sql)
local function snapshot(db, vt)
  local rows, err = db.conn:query(db.dialect.snapshot_sql, { vt, vt, vt })
  if not rows then return nil, err end
  local lines = {}
  for i, r in ipairs(rows) do lines[i] = r.line end
  sort(lines)
  return lines
end

-- difference(before, after) -> "left behind: ...; missing: ..." or nil when equal
local function difference(before, after)
  local b, a = {}, {}
  for _, l in ipairs(before) do b[l] = true end
  for _, l in ipairs(after) do a[l] = true end
  local extra, missing = {}, {}
  for _, l in ipairs(after) do if not b[l] then extra[#extra + 1] = l end end
  for _, l in ipairs(before) do if not a[l] then missing[#missing + 1] = l end end
  if #extra == 0 and #missing == 0 then return nil end
  local parts = {}
  if #extra > 0 then parts[#parts + 1] = "left behind: " .. concat(extra, "; ") end
  if #missing > 0 then parts[#parts + 1] = "missing: " .. concat(missing, "; ") end
  return concat(parts, "; ")
end

return {
  summary = "upgrade, downgrade and re-upgrade every migration on a scratch database (exit 3 if one does not return)",
  usage = "luamig test [--url URL]",
  description = "The default scratch database is in-memory SQLite; with --url it must be empty.",
  max_args = 0,
  run = function(ctx)
    if not ctx.options.url then ctx.options.url = "sqlite:///:memory:" end
    local runner, err = ctx:runner()
    if not runner then return nil, err, exitcodes.FAILED end
    local db, cfg, g = ctx:connection(), ctx:config(), ctx:graph()
    local tables = snapshot(db, cfg.version_table)
    local current = runner:heads()
    if not tables or #tables > 0 or (current and #current > 0) then
      return nil, format("luamig test needs an empty scratch database; %s is not empty", db.url), exitcodes.FAILED
    end
    local plan = g:plan_upgrade({}, g:heads())
    local heads = {}
    for _, id in ipairs(plan) do
      local r = g:get(id)
      local before = assert(snapshot(db, cfg.version_table))
      local up, uerr = runner:run_step(id, "upgrade", heads)
      if not up then return nil, uerr, exitcodes.FAILED end
      local after_up = assert(snapshot(db, cfg.version_table))
      local down, derr = runner:run_step(id, "downgrade", up)
      if not down then return nil, derr, exitcodes.FAILED end
      local diff = difference(before, assert(snapshot(db, cfg.version_table)))
      if diff then
        return nil, format("test: the downgrade of %s (%s) does not restore the schema: %s", id, r.shown, diff),
          exitcodes.DIFFERENCE
      end
      heads, uerr = runner:run_step(id, "upgrade", down)
      if not heads then return nil, uerr, exitcodes.FAILED end
      diff = difference(after_up, assert(snapshot(db, cfg.version_table)))
      if diff then
        return nil, format("test: upgrading %s (%s) again gives another schema: %s", id, r.shown, diff), exitcodes.DIFFERENCE
      end
    end
    ctx:info(format("test: %d migration(s) each upgraded, downgraded and upgraded again; every downgrade restored the schema",
      #plan))
    return true
  end,
}
