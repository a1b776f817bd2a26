-- The migration runner: plans the steps between the database's heads and a target, and applies each step in a
-- transaction that holds the migration's statements, the version-table change and the luamig_history row, so a
-- step commits whole or not at all. On SQLite, BEGIN IMMEDIATE plus re-reading the heads inside the transaction
-- makes concurrent runners apply each migration exactly once.
local core = require("luamig.core")
local op_api = require("luamig.op")
local target_grammar = require("luamig.target")
local vt = require("luamig.version_table")

local format, concat, ipairs, type, tostring, setmetatable = string.format, table.concat, ipairs, type, tostring, setmetatable
local xpcall, getinfo, traceback, floor = xpcall, debug.getinfo, debug.traceback, math.floor

local SqlErrorMT = { __tostring = function(e) return e.msg end }

local Runner = {}
Runner.__index = Runner

-- new(opts) -> runner
-- opts: conn (driver connection), dialect, graph, cfg (settings), progress (function(line) or nil), verbose
local function new(opts)
  return setmetatable({ conn = opts.conn, dialect = opts.dialect, graph = opts.graph, cfg = opts.cfg,
    progress = opts.progress or function() end, verbose = opts.verbose, tables_ready = false }, Runner)
end

local function one_line(s, max)
  s = tostring(s):gsub("%s+", " "):gsub("^ ", ""):gsub(" $", "")
  if max and #s > max then s = s:sub(1, max - 3) .. "..." end
  return s
end

local function same_set(a, b)
  if #a ~= #b then return false end
  local s = {}
  for _, v in ipairs(a) do s[v] = true end
  for _, v in ipairs(b) do if not s[v] then return false end end
  return true
end

local function sorted_copy(t)
  local out = {}
  for i, v in ipairs(t) do out[i] = v end
  table.sort(out)
  return out
end

-- exec(sql, params) on the connection, raising a SQL error object that keeps the statement.
function Runner:exec(sql, params, expect)
  local ok, msg, code, failing = self.conn:exec(sql, params)
  if not ok then
    error(setmetatable({ sql = failing or sql, msg = msg, code = code }, SqlErrorMT))
  end
  if expect and msg ~= expect then
    error(setmetatable({ sql = sql, msg = format("expected to change %d row(s) of the version table, changed %d: "
      .. "another process changed it", expect, msg), code = 0 }, SqlErrorMT))
  end
  return msg
end

-- heads() -> the version rows of the database (sorted), or nil, message
function Runner:heads()
  local rows, err = vt.read(self.conn, self.dialect, self.cfg.version_table)
  if not rows then return nil, format("cannot read the version table %s: %s", self.cfg.version_table, err) end
  return rows
end

-- The `op` executor: compiles an op value and runs its statements.
function Runner:run_op(o)
  if o.op == "bulk_insert" then
    if #o.rows == 0 then return end
    local sql, cols = self.dialect:bulk_insert_sql(o)
    local ok, msg, code, row = self.conn:bulk_insert(sql, cols, o.rows)
    if not ok then
      error(setmetatable({ sql = sql, msg = format("%s (row %s)", msg, tostring(row)), code = code }, SqlErrorMT))
    end
    return
  end
  for _, st in ipairs(self.dialect:compile(o)) do
    if type(st) == "string" then self:exec(st) else self:exec(st.sql, st.params) end
  end
end

-- The connection a migration sees through op.get_bind(): failures raise with the statement attached.
function Runner:bind()
  local runner = self
  return {
    dialect = self.dialect.name,
    query = function(_, sql, params)
      local rows, msg, code = runner.conn:query(sql, params)
      if not rows then error(setmetatable({ sql = sql, msg = msg, code = code }, SqlErrorMT)) end
      return rows
    end,
    exec = function(_, sql, params) return runner:exec(sql, params) end,
  }
end

-- resolve(spec, current, direction) -> list of target ids ({} = base), or nil, message
function Runner:resolve(spec, current, direction)
  local g = self.graph
  local t, err = target_grammar.parse(spec)
  if not t then return nil, err end
  if t.label then
    return nil, format("'%s': branch targets (label@...) are not supported by this version of luamig", spec)
  end
  local start
  local a = t.anchor
  if a == "heads" then
    if t.delta then return nil, format("'%s': heads takes no relative step", spec) end
    return sorted_copy(g:heads())
  elseif a == "head" then
    local hs = g:heads()
    if #hs > 1 then
      return nil, format("Multiple heads are present (%s); merge them with `luamig merge heads`, or name one "
        .. "(or `heads` for all)", concat(sorted_copy(hs), ", "))
    end
    start = hs[1] or ""
  elseif a == "base" then
    start = ""
  elseif a == "rev" then
    local r, rerr = g:resolve_id(t.id)
    if not r then return nil, rerr end
    start = r.revision
  else -- "current" or a bare +N / -N: relative to what the database has
    if #current > 1 then
      return nil, format("Ambiguous %s from multiple current revisions (%s); name a revision", direction,
        concat(current, ", "))
    end
    start = current[1] or ""
    if a == nil then
      if direction == "upgrade" and t.delta < 0 then
        return nil, format("'%s' is a step back: use `luamig downgrade %s`", spec, spec)
      elseif direction == "downgrade" and t.delta > 0 then
        return nil, format("'%s' is a step forward: use `luamig upgrade %s`", spec, spec)
      end
    end
  end
  if t.delta and t.delta ~= 0 then
    local reached, werr = g:walk(start, t.delta, spec)
    if not reached then return nil, werr end
    start = reached
  end
  if start == "" then return {} end
  return { start }
end

-- Where in the migration file an error happened: the innermost stack level running that file.
local function error_handler(rev)
  local chunk = "@" .. rev.shown
  return function(e)
    local line
    for level = 2, 200 do
      local info = getinfo(level, "Sl")
      if not info then break end
      if info.source == chunk then
        line = info.currentline
        break
      end
    end
    return { err = e, line = line, traceback = traceback(type(e) == "string" and e or tostring(e), 2) }
  end
end

-- describe(direction, from_heads, rev) -> "upgrade <base> -> a1b2c3d4e5f6" style labels
local function step_label(direction, id, r)
  local function show(list) return #list == 0 and "<base>" or concat(list, ", ") end
  if direction == "upgrade" then
    return format("upgrade %s -> %s", show(r.down_revisions), id)
  end
  return format("downgrade %s -> %s", id, show(r.down_revisions))
end

-- run_step(id, direction, expected) -> new heads; or "replan", heads_now; or nil, error {msg, details}
function Runner:run_step(id, direction, expected)
  local r = self.graph:get(id)
  local conn = self.conn
  local outer = self.outer_tx
  local t0 = core.clock()
  if not outer then
    local ok, msg = conn:exec(self.dialect.begin_sql)
    if not ok then
      return nil, { msg = format("cannot start a transaction for %s: %s", step_label(direction, id, r), msg) }
    end
  end
  local function fail(msg, details)
    if not outer then
      local rok, rmsg = conn:exec("ROLLBACK")
      if not rok then
        details = details or {}
        details[#details + 1] = "ROLLBACK failed too: " .. tostring(rmsg)
      end
    end
    return nil, { msg = msg, details = details }
  end
  if not self.tables_ready then
    for _, sql in ipairs(vt.create_sql(self.dialect, self.cfg.version_table)) do
      local ok, msg = conn:exec(sql)
      if not ok then return fail(format("cannot create the version table %s: %s", self.cfg.version_table, msg)) end
    end
  end
  local heads_now, herr = self:heads()
  if not heads_now then return fail(herr) end
  if not same_set(heads_now, expected) then
    if not outer then conn:exec("ROLLBACK") end
    return "replan", heads_now
  end
  local label = step_label(direction, id, r)
  local op = op_api.new({
    dialect = self.dialect,
    run = function(o) return self:run_op(o) end,
    bind = self:bind(),
    naming_convention = self.cfg.naming_convention,
  })
  local fn = direction == "upgrade" and r.module.upgrade or r.module.downgrade
  local ok, e = xpcall(fn, error_handler(r), op)
  local new_heads
  if ok then
    ok, e = xpcall(function()
      new_heads = self.graph:heads_after(heads_now, id, direction)
      for _, st in ipairs(vt.change_sql(self.dialect, self.cfg.version_table, heads_now, new_heads)) do
        self:exec(st.sql, st.params, st.expect)
      end
      local elapsed = floor((core.clock() - t0) * 1000 + 0.5)
      local h = vt.history_sql(self.dialect, {
        version_table = self.cfg.version_table, revision = id, down_revision = concat(r.down_revisions, ","),
        direction = direction, status = "applied", message = r.message:sub(1, 255), filename = r.shown:sub(-255),
        checksum = r.checksum, applied_at = os.date("!%Y-%m-%d %H:%M:%S"), duration_ms = elapsed,
        luamig_version = core.version,
      })
      self:exec(h.sql, h.params)
    end, function(err) return { err = err, traceback = traceback(tostring(err), 2) } end)
  end
  if not ok then
    local err = e.err
    local where = r.shown .. (e.line and (":" .. e.line) or "")
    local msg
    if getmetatable(err) == SqlErrorMT then
      msg = format("%s failed at %s: %s; statement: %s", label, where, one_line(err.msg), one_line(err.sql, 240))
    else
      local text = one_line(type(err) == "string" and err or tostring(err), 400)
      -- a Lua error raised in the file already starts with "file:line:"
      if text:sub(1, #r.shown + 1) == r.shown .. ":" then
        msg = format("%s failed at %s", label, text)
      else
        msg = format("%s failed at %s: %s", label, where, text)
      end
    end
    local details = { outer and "The whole run was rolled back; the database is as it was before it."
      or format("Rolled back: the database is as it was before %s.", id) }
    if self.verbose then details[#details + 1] = e.traceback end
    return fail(msg, details)
  end
  if not outer then
    local cok, cmsg = conn:exec("COMMIT")
    if not cok then return fail(format("%s: COMMIT failed: %s", label, cmsg)) end
  end
  self.tables_ready = true
  local ms = floor((core.clock() - t0) * 1000 + 0.5)
  self.progress(format("%s, %s (%d ms)", label, r.message, ms))
  return sorted_copy(new_heads)
end

-- migrate(direction, spec, opts) -> number of steps applied, or nil, error {msg, details}
-- opts.single_transaction: one transaction around the whole run.
function Runner:migrate(direction, spec, opts)
  opts = opts or {}
  local current, err = self:heads()
  if not current then return nil, { msg = err } end
  for _, h in ipairs(current) do
    if not self.graph:get(h) then
      return nil, { msg = format("the database is at revision %s, which no migration file defines", h),
        details = { "Restore the missing file, or settle the version by hand with `luamig stamp`." } }
    end
  end
  local target, terr = self:resolve(spec, current, direction)
  if not target then return nil, { msg = terr } end
  local plan_fn = direction == "upgrade" and self.graph.plan_upgrade or self.graph.plan_downgrade
  if direction == "downgrade" then
    local have = self.graph:ancestors(current)
    for _, t in ipairs(target) do
      if not have[t] then
        return nil, { msg = format("Destination %s is not a valid downgrade target from the current revision(s) %s",
          t, #current == 0 and "<base>" or concat(current, ", ")) }
      end
    end
  end
  local single = opts.single_transaction or not self.cfg.transaction_per_migration
  local applied = 0
  if single then
    local ok, msg = self.conn:exec(self.dialect.begin_sql)
    if not ok then return nil, { msg = "cannot start a transaction: " .. tostring(msg) } end
    self.outer_tx = true
    current, err = self:heads()
    if not current then
      self.conn:exec("ROLLBACK")
      self.outer_tx = false
      return nil, { msg = err }
    end
  end
  local plan = plan_fn(self.graph, current, target)
  local i = 1
  while i <= #plan do
    local res, info = self:run_step(plan[i], direction, current)
    if res == nil then
      if single then
        self.conn:exec("ROLLBACK")
        self.outer_tx = false
      end
      return nil, info
    elseif res == "replan" then
      current = info
      plan = plan_fn(self.graph, current, target)
      i = 1
    else
      current = res
      applied = applied + 1
      i = i + 1
    end
  end
  if single then
    self.outer_tx = false
    local ok, msg = self.conn:exec("COMMIT")
    if not ok then
      self.conn:exec("ROLLBACK")
      return nil, { msg = "COMMIT of the run failed: " .. tostring(msg) }
    end
  end
  return applied
end

return { new = new, SqlErrorMT = SqlErrorMT, one_line = one_line }
