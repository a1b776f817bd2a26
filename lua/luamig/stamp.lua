-- `stamp`: sets the version rows to the given revisions without running migrations, in one transaction with its
-- luamig_history row; --purge empties the version table first. Stamping settles migrations left unfinished
-- outside a transaction: the user has decided where the database is. A runner method (installed by
-- luamig.runtime).
local unfinished = require("luamig.unfinished")
local executor = require("luamig.executor")

local format, concat, ipairs, getmetatable, xpcall, error, sort, tostring = string.format, table.concat, ipairs,
  getmetatable, xpcall, error, table.sort, tostring
local one_line = executor.one_line
local vt = require("luamig.version_table")
local same_set, join_heads = vt.same_rows, vt.shown

local M = {}

local function sorted_copy(t)
  local out = {}
  for i, v in ipairs(t) do out[i] = v end
  sort(out)
  return out
end


-- targets(p, specs) -> the revision ids the specs name ({} for base), or nil, message
local function targets_of(p, specs)
  local targets, is_base = {}, false
  for _, spec in ipairs(specs) do
    local recs, err = p:revisions(spec, {})
    if not recs then return nil, err end
    if #recs == 0 then is_base = true end
    for _, r in ipairs(recs) do targets[#targets + 1] = r.revision end
  end
  if is_base and #targets > 0 then return nil, "stamp: base cannot be combined with other revisions" end
  return targets
end

-- settle(runner): unfinished rows become 'interrupted'; a live one (its runner still at work) stops the stamp
local function settle(runner)
  local rows, uerr = runner.x:unfinished()
  if not rows then error(uerr, 0) end
  for _, row in ipairs(rows) do
    if row.live then
      error(unfinished.waiting_line(row):gsub("^waiting: ", "stamp: ") .. "; try again when it ends", 0)
    end
  end
  if #rows == 0 then return end
  runner.x:settle()
  for _, row in ipairs(rows) do
    runner.progress(format("settled %s: %s %s is no longer pending", row.status == "failed" and "failed" or "interrupted",
      row.direction, row.revision))
  end
end

-- body(runner, specs, targets, purge) -> the new version rows (inside the stamp's transaction; raises)
local function body(runner, specs, targets, purge)
  local x, g = runner.x, runner.graph
  x:ensure_tables()
  local old
  if purge then
    x:exec(format("DELETE FROM %s", runner.dialect:quote(runner.cfg.version_table)))
    old = {}
  else
    local h, herr = x:heads()
    if not h then error(herr, 0) end
    for _, id in ipairs(h) do
      if not g:get(id) then
        error(format("the database is at revision %s, which no migration file defines; use stamp --purge", id), 0)
      end
    end
    old = h
  end
  settle(runner)
  local new_heads
  if purge then
    new_heads = sorted_copy(targets)
  else
    local rows, serr = runner:planner():stamp_rows(old, specs)
    if not rows then error(serr, 0) end
    new_heads = rows
  end
  if same_set(old, new_heads) then return new_heads end
  local was, added = {}, {}
  for _, o in ipairs(old) do was[o] = true end
  for _, n in ipairs(new_heads) do if not was[n] then added[#added + 1] = n end end
  local first = added[1] or ""
  local r = g:get(first)
  x:record(old, new_heads, { revision = first ~= "" and first or "base", down_revision = concat(old, ","),
    direction = "stamp", status = "stamped", message = r and r.message:sub(1, 255) or nil,
    filename = r and r.shown:sub(-255) or nil, checksum = r and r.checksum or nil, duration_ms = 0 })
  runner.progress(format("stamp %s -> %s", join_heads(old), join_heads(new_heads)))
  return new_heads
end

local function keep(e) return e end

-- Runner:stamp(specs, purge) -> the new version rows, or nil, error {msg}
local function stamp(self, specs, purge)
  local targets, terr = targets_of(self:planner(), specs)
  if not targets then return nil, { msg = terr } end
  local x = self.x
  local ok, msg = x:begin()
  if not ok then return nil, { msg = "cannot start a transaction: " .. tostring(msg) } end
  local sok, res = xpcall(body, keep, self, specs, targets, purge)
  if not sok then
    local m = getmetatable(res) == executor.SqlErrorMT
      and format("stamp failed: %s; statement: %s", one_line(res.msg), one_line(res.sql, 240))
      or require("luamig.script_dir").error_text(res)
    local details = x:rollback_into(nil)
    return nil, { msg = m, details = details }
  end
  local cok, cmsg = x:commit()
  if not cok then
    return nil, { msg = "stamp: COMMIT failed: " .. tostring(cmsg), details = x:rollback_into(nil) }
  end
  return res
end

function M.install(Runner)
  Runner.stamp = stamp
end

return M
