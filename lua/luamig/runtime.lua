-- The migration runner: resolves a target, plans the steps between the database's heads and it, and applies each
-- step in a transaction that holds the migration's statements, the version-table change and the luamig_history
-- row, so a step commits whole or not at all. Without the migration lock (SQLite), BEGIN IMMEDIATE plus
-- re-reading the heads inside the transaction makes concurrent runners apply each migration exactly once.
--
-- The runner works through an executor (luamig.executor): the live connection, or the SQL writer of --sql, which
-- writes the same steps out as SQL. It never asks which one it has. The protocol of migrations that run outside a
-- transaction is luamig.unfinished; stamp is luamig.stamp.
local core = require("luamig.core")
local op_api = require("luamig.op")
local revision_plan = require("luamig.revision_plan")
local executor = require("luamig.executor")
local vt = require("luamig.version_table")

local format, concat, ipairs, type, setmetatable = string.format, table.concat, ipairs, type, setmetatable
local xpcall, traceback, floor = xpcall, debug.traceback, math.floor
local getmetatable, tostring, pcall = getmetatable, tostring, pcall

local SqlErrorMT, one_line = executor.SqlErrorMT, executor.one_line
local same_set, join_heads = vt.same_rows, vt.shown

local Runner = {}
Runner.__index = Runner
require("luamig.unfinished").install(Runner)
require("luamig.stamp").install(Runner)
require("luamig.lock_queue").install(Runner)

local function noop() end

-- new(opts) -> runner
-- opts: x (the executor: luamig.executor.live or .writer; a runner without one only resolves targets), dialect,
-- graph, cfg (settings), progress (function(line)), warn (function(line), for what a run goes on after but a user
-- should know; progress when absent), verbose, locked (nobody else can move the database during the run: the caller holds the migration lock, or the
-- run writes SQL for a database it does not touch)
local function new(opts)
  local r = setmetatable({ x = opts.x, dialect = opts.dialect, graph = opts.graph, cfg = opts.cfg,
    progress = opts.progress or noop, warn = opts.warn or opts.progress or noop, verbose = opts.verbose,
    locked = opts.locked, step = nil, outer_tx = false, running_chunk = nil, committed = {} }, Runner)
  -- an engine whose DDL does not roll back with its transaction runs each migration as one outside a transaction
  -- (each statement its own), recorded as running first; the limitation is said once
  local engine = opts.engine and require("luamig.dialect.postgresql.server").ENGINES[opts.engine]
  if engine and not engine.transactional_ddl then
    r.no_transactional_ddl = true
    r.warn(engine.note)
  elseif engine and engine.note then
    r.warn(engine.note)
  end
  -- Where in the migration file an error happened: the innermost stack level running that file.
  r.on_error = function(e)
    local script_dir = require("luamig.script_dir")
    return { err = e, line = script_dir.line_in(r.running_chunk), traceback = traceback(script_dir.error_text(e), 2) }
  end
  return r
end

-- heads() -> the version rows of the database (sorted), or nil, message
function Runner:heads() return self.x:heads() end

-- The `op` executor: compiles an op value and runs (or writes) its statements.
function Runner:run_op(o)
  local x, d = self.x, self.dialect
  if o.op == "bulk_insert" then
    if #o.rows == 0 then return end
    local sql, cols = d:bulk_insert_sql(o)
    x:bulk_insert(sql, cols, o.rows)
    return
  end
  self.last_op = o
  for _, st in ipairs(d:compile(o)) do
    if type(st) == "string" then
      self:exec_statement(st)
    elseif st.rebuild then
      x:rebuild(st.rebuild.table, { st.rebuild }, { try_alter = st.try_alter }, self.warn)
    elseif st.batch then
      d:batch(x, st.batch, self.warn)
    elseif st.warn then
      self.warn(st.warn)
    else
      self:exec_statement(st.sql, st.params)
    end
  end
end

-- The `op` object migrations receive: one per runner, its statements going through this runner.
function Runner:op()
  if not self.op_object then
    self.op_object = op_api.new({
      dialect = self.dialect,
      run = function(o) return self:run_op(o) end,
      bind = self.x:bind(),
      naming_convention = self.cfg.naming_convention,
      autocommit_block = function(fn) return self:autocommit_block(fn) end,
    })
  end
  return self.op_object
end

-- Target resolution (luamig.revision_plan: Alembic's semantics) ----------------------------------------------

function Runner:planner()
  if not self._planner then self._planner = revision_plan.planner(self.graph) end
  return self._planner
end

-- resolve_upgrade(spec, current) -> list of target ids ({} = base), or nil, message
function Runner:resolve_upgrade(spec, current)
  local recs, err = self:planner():upgrade_targets(spec, current)
  if not recs then return nil, err end
  local out = {}
  for i, r in ipairs(recs) do out[i] = r.revision end
  return out
end

-- range(text, current) -> the ids of a range "FROM:TO" ("FROM:", ":TO"; each end a target resolved as for upgrade
-- against the heads current), newest first, both ends included; or nil, message, true when text is no range at all
function Runner:range(text, current)
  local from, to = text:match("^([^:]*):(.*)$")
  if not from then return nil, "a range is FROM:TO, FROM: or :TO", true end
  local lower, upper
  if from ~= "" then
    local ids, err = self:resolve_upgrade(from, current)
    if not ids then return nil, err end
    if #ids > 0 then lower = ids end
  end
  if to ~= "" then
    local ids, err = self:resolve_upgrade(to, current)
    if not ids then return nil, err end
    if #ids == 0 then return {} end
    upper = ids
  end
  return self.graph:range(lower, upper)
end

-- resolve_downgrade(spec, current) -> target record (a base marker for base), branch (or nil); or nil, message
function Runner:resolve_downgrade(spec, current)
  return self:planner():downgrade_target(spec, current)
end

-- Running steps ----------------------------------------------------------------------------------------------

-- step_label(direction, id, r) -> "upgrade a -> b" / "downgrade b -> a", made once per revision and direction
local labels = { upgrade = setmetatable({}, { __mode = "k" }), downgrade = setmetatable({}, { __mode = "k" }) }

local function step_label(direction, id, r)
  local l = labels[direction][r]
  if not l then
    if direction == "upgrade" then
      l = format("upgrade %s -> %s", join_heads(r.down_revisions), id)
    else
      l = format("downgrade %s -> %s", id, join_heads(r.down_revisions))
    end
    labels[direction][r] = l
  end
  return l
end

function Runner.step_label(_, direction, id, r) return step_label(direction, id, r) end

-- Formats a failure inside a step as one line naming the step, the file and line, and the statement.
local function describe_failure(label, r, e)
  local err = e.err
  local where = r and (r.shown .. (e.line and (":" .. e.line) or "")) or nil
  if getmetatable(err) == SqlErrorMT then
    return format("%s failed%s: %s; statement: %s", label, where and (" at " .. where) or "", one_line(err.msg),
      one_line(err.sql, 240))
  end
  local text = one_line(require("luamig.script_dir").error_text(err), 400)
  -- a Lua error raised in the file already starts with "file:line:"
  if r and text:sub(1, #r.shown + 1) == r.shown .. ":" then return format("%s failed at %s", label, text) end
  return format("%s failed%s: %s", label, where and (" at " .. where) or "", text)
end

-- Ends a failed step: rolls its transaction back (when the step owns it) and returns nil, error. A step that had
-- left its transaction marks its 'running' row 'failed'.
function Runner:step_failed(msg, details)
  local step = self.step
  if step and not self.outer_tx then details = self.x:abandon_step(step, details) end
  if step and step.detached then
    local ok, err = self.x:attached()
    if not ok then self.warn(err) end
  end
  self.step = nil
  return nil, { msg = msg, details = details }
end

local function ensure_tables_of(x) x:ensure_tables() end
local function keep(e) return e end

-- start_step(id, direction, expected, resume) -> the heads the step starts from; or "replan", heads_now; or
-- "wait", unfinished row; or nil, error. Opens the step's transaction and, where another runner may have moved the
-- database since the plan was made, re-reads the heads inside it.
function Runner:start_step(id, r, direction, expected, resume, label)
  local x, outer = self.x, self.outer_tx
  if not outer then
    local ok, msg = x:begin_step(r.transactional)
    if not ok then
      return nil, { msg = format("cannot start a transaction for %s: %s", label, msg),
        connection_lost = x:connection_lost(nil) }
    end
  end
  self.step = { id = id, r = r, direction = direction, resume = resume, detached = false, lock_tries = nil }
  if not x.tables_ready then
    local tok, terr = xpcall(ensure_tables_of, keep, x)
    if not tok then
      return self:step_failed(format("cannot create the version table %s: %s", self.cfg.version_table, tostring(terr)))
    end
  end
  -- inside the run's one transaction nobody else can move the database (it read the heads after BEGIN), nor can
  -- anyone while this runner holds the migration lock
  if outer or self.locked then return expected end
  local heads_now, herr = x:heads()
  if not heads_now then return self:step_failed(herr) end
  if not same_set(heads_now, expected) then
    local _, info = self:step_failed("replan")
    if info.details then return nil, { msg = "cannot plan again: the database changed", details = info.details } end
    return "replan", heads_now
  end
  if not resume then
    -- another runner may be running a migration outside a transaction: wait for it, or stop
    local rows, uerr = x:unfinished()
    if not rows then return self:step_failed(uerr) end
    if #rows > 0 then
      local _, info = self:step_failed("unfinished")
      if info.details then return nil, { msg = "cannot wait for an unfinished migration", details = info.details } end
      if rows[1].live then return "wait", rows[1] end
      return nil, self:interrupted_error(rows[1])
    end
  end
  return heads_now
end

-- run_body(fn): the migration's own code, under --timeout's deadline when there is one -> ok, error info
function Runner:run_body(fn, r)
  local deadline = self.timeout and core.clock() + self.timeout
  if deadline then
    local ok, err = self:arm(deadline)
    if not ok then return false, { err = "cannot set the --timeout deadline: " .. tostring(err) } end
  end
  self.running_chunk = r.chunkname or ("@" .. r.shown)
  local ok, e = xpcall(fn, self.on_error, self:op())
  self.running_chunk = nil
  if deadline then
    local dok, derr = self:disarm()
    if ok and not dok then return false, { err = "cannot clear the --timeout deadline: " .. tostring(derr) } end
    if not ok and core.clock() > deadline then
      -- whatever stopped it (the hook, or the database interrupting a statement), say why
      local why = format("exceeded --timeout of %g s", self.timeout)
      if getmetatable(e.err) == SqlErrorMT then e.err.msg = why else e.err = why end
    end
  end
  return ok, e
end

-- failure_details(id, r) -> what a failed step's error says beyond its first line
function Runner:failure_details(id, r)
  if self.step and self.step.detached then
    return { format("%s ran outside a transaction (%s): what it did before the failure stays applied, and "
      .. "it is recorded as failed.", id, r.transactional and "autocommit_block" or "transactional = false"),
      "Fix it and make it safe to re-run, then `luamig upgrade --resume`; or undo what it did and settle the "
      .. "version by hand with `luamig stamp`." }
  end
  return { self.outer_tx and "The whole run was rolled back; the database is as it was before it."
    or format("Rolled back: the database is as it was before %s.", id) }
end

-- run_step(id, direction, expected, resume) -> new heads; or "replan", heads_now; or "wait", unfinished row;
-- or nil, error {msg, details}. resume: the step re-runs an unfinished one, whose row it settles.
function Runner:run_step(id, direction, expected, resume)
  local x, r = self.x, self.graph:get(id)
  local label = step_label(direction, id, r)
  local t0 = core.clock()
  x:comment(label, r.message)
  local heads_now, info = self:start_step(id, r, direction, expected, resume, label)
  if type(heads_now) ~= "table" then return heads_now, info end
  local ok, e = true, nil
  if not r.transactional or self.no_transactional_ddl then ok, e = xpcall(self.detach, self.on_error, self) end
  if ok then ok, e = self:run_body(direction == "upgrade" and r.module.upgrade or r.module.downgrade, r) end
  if ok and self.step.detached then
    local bok, bmsg = x:ensure_tx()
    if not bok then ok, e = false, { err = "cannot start the transaction that records it: " .. tostring(bmsg) } end
  end
  local new_heads
  if ok then
    -- Alembic's version-row rules; where they do not fit the rows (Alembic itself fails there), the general rule
    new_heads = self:planner():rows_after(heads_now, id, direction) or self.graph:heads_after(heads_now, id, direction)
    ok, e = xpcall(x.record, self.on_error, x, heads_now, new_heads, { revision = id,
      down_revision = #r.down_revisions == 1 and r.down_revisions[1] or concat(r.down_revisions, ","),
      direction = direction, status = "applied",
      message = #r.message > 255 and r.message:sub(1, 255) or r.message,
      filename = #r.shown > 255 and r.shown:sub(-255) or r.shown, checksum = r.checksum,
      duration_ms = x:elapsed_ms(t0),
      -- (fields the record fills in, named here so that the table is made at its full size)
      version_table = false, luamig_version = false, applied_at = false }, self.step)
  end
  if not ok then
    local details = self:failure_details(id, r)
    if self.verbose then details[#details + 1] = e.traceback end
    local again = not self.step.detached and getmetatable(e.err) == SqlErrorMT and x:lock_timed_out(e.err)
    local lost = x:connection_lost(e.err)
    local msg = describe_failure(label, r, e)
    if lost and not self.step.detached then
      -- the server rolled the transaction back with the session
      msg = format("%s was not applied: the connection to the server was lost, and its transaction rolled back "
        .. "with it (%s)", label, one_line(getmetatable(e.err) == SqlErrorMT and e.err.msg or tostring(e.err), 200))
      details = { format("The database is as it was before %s; run again (or use --reconnect N) to apply it.", id) }
    end
    local res, info = self:step_failed(msg, details)
    x:unguard()
    if again then info.lock_timeout, info.op = true, self.last_op end
    info.connection_lost, info.revision = lost, id
    return res, info
  end
  if not self.outer_tx then
    local cok, cmsg = x:end_step()
    if not cok then
      local lost = x:connection_lost(nil)
      local res, info = self:step_failed(lost and format("%s: the connection to the server was lost during its "
        .. "COMMIT (%s): whether it was applied is known when luamig reads the version rows again", label,
        one_line(cmsg, 200)) or format("%s: COMMIT failed: %s", label, cmsg))
      info.connection_lost, info.revision = lost, id
      return res, info
    end
  end
  if self.step.detached then
    local aok, aerr = x:attached()
    if not aok then self.warn(aerr) end
  end
  self.committed[#self.committed + 1] = { id = id, direction = direction, heads = new_heads }
  local uok, uerr = x:unguard()
  if not uok then return nil, { msg = format("%s: cannot lift ddl_lock_timeout again: %s", label, tostring(uerr)) } end
  self.step = nil
  local ms = x:elapsed_ms(t0)
  self.progress(ms and format("%s, %s (%d ms)", label, r.message, ms) or (label .. ", " .. r.message))
  return new_heads
end

-- plan(direction, spec, current) -> steps, replan(current) -> steps; or nil, message
function Runner:plan(direction, spec, current)
  local p = self:planner()
  local replan
  if direction == "upgrade" then
    local targets, err = self:resolve_upgrade(spec, current)
    if not targets then return nil, err end
    replan = function(cur) return p:upgrade_steps(cur, targets) end
  else
    local target, branch = self:resolve_downgrade(spec, current)
    if not target then return nil, branch end
    replan = function(cur) return p:downgrade_steps(cur, target, branch) end
  end
  local steps, perr = replan(current)
  if not steps then return nil, perr end
  return steps, replan
end

-- prepare(steps) -> true, or nil, error: compiles and runs the file of every revision a plan will apply, so that a
-- broken file stops the run before its first step
function Runner:prepare(steps)
  local script_dir = require("luamig.script_dir")
  for _, id in ipairs(steps) do
    local ok, err = script_dir.materialize(self.graph:get(id))
    if not ok then
      script_dir.save_code()
      return nil, { msg = err }
    end
  end
  script_dir.save_code()
  return true
end

-- replanned(replan, current) -> the steps from current, compiled; or nil, error
function Runner:replanned(replan, current)
  local plan, err = replan(current)
  if not plan then return nil, { msg = err } end
  local ok, perr = self:prepare(plan)
  if not ok then return nil, perr end
  return plan
end

-- check_known(heads) -> true, or nil, error when the database is at a revision no file defines
function Runner:check_known(heads)
  for _, h in ipairs(heads) do
    if not self.graph:get(h) then
      return nil, { msg = format("the database is at revision %s, which no migration file defines", h),
        details = { "Restore the missing file, or settle the version by hand with `luamig stamp`." } }
    end
  end
  return true
end

-- arm(deadline) / disarm(): --timeout around a migration's own code. A count hook stops its Lua code once the
-- deadline (a core.clock() time) has passed; the connection stops a statement running past it. Both return true,
-- or nil, message.
local TIMEOUT_TICK = 10000

function Runner:arm(deadline)
  local clock = core.clock
  debug.sethook(function()
    if clock() > deadline then error("exceeded --timeout", 2) end
  end, "", TIMEOUT_TICK)
  return self.x:set_deadline(deadline)
end

function Runner:disarm()
  debug.sethook()
  return self.x:set_deadline(nil)
end

-- migrate(direction, spec, opts) -> number of steps applied, or nil, error {msg, details}; the dialect's session
-- settings for a run (luamig.dialect.*.begin_run) are made before and restored after, and a failed restore fails
-- the run.
function Runner:migrate(direction, spec, opts)
  opts = opts or {}
  self.timeout = opts.timeout
  local x = self.x
  local state, serr = x:begin_run()
  if not state then return nil, { msg = serr } end
  local n, err = self:migrate_steps(direction, spec, opts)
  if not n and err.connection_lost == nil then err.connection_lost = x:connection_lost(nil) end
  local rok, rerr = x:end_run(state)
  if not rok then
    if not n then
      err.details = err.details or {}
      err.details[#err.details + 1] = "Restoring the session failed too: " .. tostring(rerr)
      return nil, err
    end
    return nil, { msg = rerr, details = { format("%d migration(s) were applied and committed before it.", n) } }
  end
  return n, err
end

-- single_transaction(plan, replan) -> the plan from the heads read inside the run's one transaction; or nil, error
function Runner:open_single_transaction(plan, replan)
  for _, id in ipairs(plan) do
    local r = self.graph:get(id)
    if not r.transactional then
      return nil, { msg = format("%s (%s) is not transactional (transactional = false): it cannot run inside "
        .. "--single-transaction", id, r.shown) }
    end
  end
  local x = self.x
  local ok, msg = x:begin()
  if not ok then return nil, { msg = "cannot start a transaction: " .. tostring(msg) } end
  -- the run's statements wait for a table lock at most ddl_lock_timeout (SET LOCAL: this transaction only)
  local gok, gerr = pcall(x.guard_locks, x, true)
  if not gok then
    return nil, { msg = "cannot set ddl_lock_timeout: " .. tostring(gerr), details = x:rollback_into(nil) }
  end
  self.outer_tx = true
  -- inside the transaction the heads are final: plan again from them
  local current, err = x:heads()
  local newplan, perr
  if current then newplan, perr = self:replanned(replan, current) else perr = { msg = err } end
  if not newplan then
    self.outer_tx = false
    perr.details = x:rollback_into(perr.details)
    return nil, perr
  end
  return newplan, current
end

-- migrate_steps(direction, spec, opts) -> number of steps applied, or nil, error {msg, details}
-- opts.single_transaction: one transaction around the whole run. opts.resume: run an unfinished migration (one
-- that ran outside a transaction and was interrupted or failed) again first. opts.before_changes: called once
-- before the first step when there is one (the backup); returns true, or nil, message to stop.
function Runner:migrate_steps(direction, spec, opts)
  local x = self.x
  local current, err = x:heads()
  if not current then return nil, { msg = err } end
  local kok, kerr = self:check_known(current)
  if not kok then return nil, kerr end
  local single_tx = opts.single_transaction or not self.cfg.transaction_per_migration
  local applied = 0
  local resumed, rerr = self:resume_unfinished(opts, single_tx)
  if resumed == nil then return nil, rerr end
  if resumed then current, applied = resumed, 1 end
  local plan, replan = self:plan(direction, spec, current)
  if not plan then return nil, { msg = replan } end
  -- every file a run may apply is compiled first (a replan only ever needs revisions on the way to the target)
  local pok, perr = self:prepare(plan)
  if not pok then return nil, perr end
  if opts.before_changes and #plan > 0 then
    local bok, berr = opts.before_changes()
    if not bok then return nil, { msg = berr } end
  end
  if single_tx then
    plan, current = self:open_single_transaction(plan, replan)
    if not plan then return nil, current end
  end
  local i = 1
  while i <= #plan do
    local res, info = self:guarded_step(plan[i], direction, current)
    if res == nil then
      if single_tx then
        self.outer_tx = false
        info.details = x:rollback_into(info.details)
      end
      return nil, info
    elseif res == "wait" or res == "replan" then
      if res == "wait" then
        local row, uerr = self:await_unfinished({})
        if row == nil then return nil, uerr end
        current, err = x:heads()
        if not current then return nil, { msg = err } end
      else
        current = info
      end
      local p2, perr2 = self:replanned(replan, current)
      if not p2 then return nil, perr2 end
      plan, i = p2, 1
    else
      current = res
      applied = applied + 1
      i = i + 1
    end
  end
  if single_tx then
    self.outer_tx = false
    local ok, msg = x:commit()
    if not ok then
      return nil, { msg = "COMMIT of the run failed: " .. tostring(msg), details = x:rollback_into(nil) }
    end
  end
  return applied
end

return { new = new, SqlErrorMT = SqlErrorMT, one_line = one_line }
