-- luamig verify: do the applied migrations still match their files? Exit 3 when one was edited after it was
-- applied (its SHA-256, line endings normalised, differs from the one luamig_history recorded) or when an applied
-- revision has no file any more.
local exitcodes = require("luamig.exitcodes")
local json = require("luamig.json")
local vt = require("luamig.version_table")

local format, concat, sort = string.format, table.concat, table.sort

return require("luamig.fleet").readonly({
  summary = "check that applied migrations still match their files (exit 3 if not)",
  usage = "luamig verify",
  max_args = 0,
  run = function(ctx)
    local graph, err = ctx:graph()
    if not graph then return nil, err, exitcodes.FAILED end
    local heads, db = ctx:version_rows()
    if not heads then return nil, db, exitcodes.FAILED end
    local cfg = ctx:config()
    -- the checksum each revision had when it was last applied
    local recorded = {}
    local rows, herr = vt.history(db.conn, db.dialect, cfg.version_table)
    if not rows then return nil, format("cannot read luamig_history of %s: %s", db.url, herr), exitcodes.FAILED end
    for i = #rows, 1, -1 do -- oldest first, so the newest application wins
      local r = rows[i]
      if r.direction == "upgrade" and r.status == "applied" and r.checksum then recorded[r.revision] = r.checksum end
    end
    local problems, checked, unrecorded = {}, 0, 0
    local known = {}
    for _, h in ipairs(heads) do
      if graph:get(h) then
        known[#known + 1] = h
      else
        problems[#problems + 1] = { revision = h, problem = "missing",
          text = format("%s: applied, but no migration file defines it", h) }
      end
    end
    local applied = {}
    for id in pairs(graph:ancestors(known)) do applied[#applied + 1] = id end
    sort(applied, function(a, b) return graph:get(a).index < graph:get(b).index end)
    for _, id in ipairs(applied) do
      local r = graph:get(id)
      local want = recorded[id]
      if not want then
        unrecorded = unrecorded + 1
      elseif want ~= r.checksum then
        problems[#problems + 1] = { revision = id, path = r.shown, problem = "changed", recorded = want, now = r.checksum,
          text = format("%s: %s changed since it was applied (SHA-256 %s... then, %s... now)", id, r.shown, want:sub(1, 12),
            r.checksum:sub(1, 12)) }
      else
        checked = checked + 1
      end
    end
    if ctx.json then
      ctx:out(json.encode({ checked = checked, unrecorded = unrecorded, problems = json.array(problems) }))
    else
      for _, p in ipairs(problems) do ctx:out(p.text) end
      local tail = unrecorded > 0 and format(" (%d applied without a recorded checksum: stamped, or by another tool)", unrecorded) or ""
      ctx:info(format("%d applied migration(s) match their files%s", checked, tail))
    end
    if #problems > 0 then
      local ids = {}
      for i, p in ipairs(problems) do ids[i] = p.revision end
      return nil, format("%d applied migration(s) differ from their files: %s", #problems, concat(ids, ", ")),
        exitcodes.DIFFERENCE
    end
    return true
  end,
})
