-- luamig current: the revision(s) the database is at.
local exitcodes = require("luamig.exitcodes")
local fmt = require("luamig.format")

local format, concat, ipairs, tostring = string.format, table.concat, ipairs, tostring

-- unfinished(ctx, db) -> migrations that ran outside a transaction and did not finish, each with .state:
-- "running" (its runner is still at work), "interrupted" or "failed"; or nil, message
local function unfinished(ctx, db)
  local vt = require("luamig.version_table")
  local cfg = ctx:config()
  local rows, err = vt.unfinished(db.conn, db.dialect, cfg.version_table)
  if not rows then return nil, format("cannot read %s of %s: %s", vt.HISTORY, db.url, err) end
  if #rows == 0 then return rows end
  -- live: its runner is at work, as the database can tell (SQLite: a process on this machine; PostgreSQL: another
  -- session holds the migration lock)
  rows = db.dialect:mark_live(rows)
  local locked = db.dialect:lock_holder(db, cfg) ~= nil
  for _, row in ipairs(rows) do
    local live = row.status == "running" and (row.live or locked)
    row.state = live and "running" or (row.status == "failed" and "failed" or "interrupted")
  end
  return rows
end

local function unfinished_line(row)
  local text = format("%s (%s: %s started %s by %s, outside a transaction", row.revision, row.state, row.direction,
    tostring(row.applied_at), tostring(row.run_by or "?"))
  if row.state == "running" then return text .. ")" end
  return text .. "; `luamig upgrade --resume` runs it again, `luamig stamp` settles the version)"
end

return require("luamig.fleet").readonly({
  summary = "show the database's current revision(s)",
  usage = "luamig current [-v] [--check-heads]",
  max_args = 0,
  options = {
    { long = "--check-heads", key = "check_heads", help = "exit 3 unless the database is at every head" },
  },
  run = function(ctx)
    local graph, err = ctx:graph()
    if not graph then return nil, err, exitcodes.FAILED end
    local heads, db = ctx:version_rows()
    if not heads then return nil, db, exitcodes.FAILED end
    local pending, perr = unfinished(ctx, db)
    if not pending then return nil, perr, exitcodes.FAILED end
    if ctx.json then
      local json = require("luamig.json")
      local items, at = {}, {}
      for _, h in ipairs(heads) do at[h] = true end
      for _, h in ipairs(heads) do
        local r = graph:get(h)
        local rec = r and fmt.record(graph, r, at) or { revision = h, path = json.null, message = json.null, is_head = false }
        rec.known = r ~= nil
        items[#items + 1] = rec
      end
      local unf = {}
      for i, row in ipairs(pending) do
        unf[i] = { revision = row.revision, direction = row.direction, state = row.state, started_at = row.applied_at,
          run_by = row.run_by or json.null }
      end
      ctx:out(json.encode({ current = json.array(items), unfinished = json.array(unf), url = db.url }))
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
      for _, row in ipairs(pending) do ctx:out(unfinished_line(row)) end
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
})
