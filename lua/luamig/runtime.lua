-- The migration runner: resolves a target, plans the steps between the database's heads and it, and applies each
-- step in a transaction that holds the migration's statements, the version-table change and the luamig_history
-- row, so a step commits whole or not at all. On SQLite, BEGIN IMMEDIATE plus re-reading the heads inside the
-- transaction makes concurrent runners apply each migration exactly once.
--
-- Offline (--sql) the same steps are written out as SQL instead: no connection, the heads kept in memory, bound
-- values written as literals, BEGIN/COMMIT around each migration (or the whole run).
local core = require("luamig.core")
local op_api = require("luamig.op")
local schema = require("luamig.schema")
local sql_text = require("luamig.sql_text")
local revision_plan = require("luamig.revision_plan")
local vt = require("luamig.version_table")

local format, concat, ipairs, type, tostring, setmetatable = string.format, table.concat, ipairs, type, tostring, setmetatable
local xpcall, getinfo, traceback, floor, sort = xpcall, debug.getinfo, debug.traceback, math.floor, table.sort
local getmetatable = getmetatable

local SqlErrorMT = { __tostring = function(e) return e.msg end }

local Runner = {}
Runner.__index = Runner

-- new(opts) -> runner
-- opts: conn (driver connection; nil offline), dialect, graph, cfg (settings), progress (function(line)), warn
-- (function(line), for what a run goes on after but a user should know; progress when absent), verbose,
-- emit (offline: function(text) that writes SQL), heads (offline: the heads the database is assumed to be at),
-- locked (the caller holds the PostgreSQL migration lock for the whole run)
local function new(opts)
  local r = setmetatable({ conn = opts.conn, dialect = opts.dialect, graph = opts.graph, cfg = opts.cfg,
    progress = opts.progress or function() end, warn = opts.warn or opts.progress or function() end,
    verbose = opts.verbose, emit = opts.emit,
    offline_heads = opts.heads or {}, tables_ready = opts.emit ~= nil and opts.heads ~= nil,
    sqlite = opts.emit == nil and opts.dialect ~= nil and opts.dialect.name == "sqlite", locked = opts.locked }, Runner)
  local dialect = opts.dialect
  r.literal = dialect and function(v) return dialect:literal(v) end
  return r
end

local function one_line(s, max)
  s = tostring(s):gsub("%s+", " "):gsub("^ ", ""):gsub(" $", "")
  if max and #s > max then s = s:sub(1, max - 3) .. "..." end
  return s
end

local function same_set(a, b)
  if #a ~= #b then return false end
  if #a == 1 then return a[1] == b[1] end
  local s = {}
  for _, v in ipairs(a) do s[v] = true end
  for _, v in ipairs(b) do if not s[v] then return false end end
  return true
end

local function sorted_copy(t)
  local out = {}
  for i, v in ipairs(t) do out[i] = v end
  sort(out)
  return out
end

local function sql_error(sql, msg, code)
  error(setmetatable({ sql = sql, msg = msg, code = code }, SqlErrorMT))
end

-- exec(sql, params, expect, plain): runs one statement (or writes it, offline); raises a SQL error keeping the
-- statement. expect: the number of rows the statement must change. plain: the SQL is luamig's own, with only ?
-- placeholders and no quotes or comments.
function Runner:exec(sql, params, expect, plain)
  if self.emit then
    if params then
      local text, err
      if plain then
        text = sql_text.inline_plain(sql, params, self.literal)
      else
        text, err = sql_text.inline(sql, params, self.literal)
        if not text then sql_error(sql, err, 0) end
      end
      sql = text
    end
    self.emit(sql)
    self.emit(";\n")
    return 0
  end
  local ok, msg, code, failing = self.conn:exec(sql, params)
  if not ok then sql_error(failing or sql, msg, code) end
  if expect and msg ~= expect then
    sql_error(sql, format("expected to change %d row(s) of the version table, changed %d: another process changed it",
      expect, msg), 0)
  end
  return msg
end

-- Transaction control; nil, message on failure (online), always fine offline.
function Runner:tx(word)
  if self.emit then
    self.emit(word == "BEGIN" and "BEGIN;\n\n" or (word .. ";\n\n"))
    return true
  end
  local sql = word == "BEGIN" and self.dialect.begin_sql or word
  local ok, msg = self.conn:exec(sql)
  if not ok then return nil, msg end
  return true
end

-- heads() -> the version rows of the database (sorted), or nil, message
function Runner:heads()
  if self.emit then return self.offline_heads end
  local rows, err = vt.read(self.conn, self.dialect, self.cfg.version_table, self.tables_ready)
  if not rows then return nil, format("cannot read the version table %s: %s", self.cfg.version_table, err) end
  return rows
end

-- The `op` executor: compiles an op value and runs (or writes) its statements.
function Runner:run_op(o)
  if o.op == "bulk_insert" then
    if #o.rows == 0 then return end
    local sql, cols = self.dialect:bulk_insert_sql(o)
    if self.emit then
      for _, row in ipairs(o.rows) do self:exec(sql, schema.values_of(row, cols)) end
      return
    end
    local ok, msg, code, row = self.conn:bulk_insert(sql, cols, o.rows)
    if not ok then sql_error(sql, format("%s (row %s)", msg, tostring(row)), code) end
    return
  end
  for _, st in ipairs(self.dialect:compile(o)) do
    if type(st) == "string" then
      self:exec(st)
    elseif st.rebuild then
      self:rebuild(st.rebuild.table, { st.rebuild }, { try_alter = st.try_alter })
    elseif st.batch then
      self:batch(st.batch)
    else
      self:exec(st.sql, st.params)
    end
  end
end

local function op_label(o)
  local what = o.column and (type(o.column) == "table" and o.column.name or o.column) or o.name
  return what and format("%s('%s', '%s')", o.op, o.table, what) or format("%s('%s')", o.op, o.table)
end

-- batch(o): a batch_alter_table on SQLite. When ALTER TABLE can do each of its ops (and recreate is not "always"),
-- their statements in order; else one table rebuild for all of them, refused with recreate = "never".
function Runner:batch(o)
  local d, vt = self.dialect, self.cfg.version_table
  local rebuild = require("luamig.sqlite_rebuild")
  local plain, needs = {}, nil
  for _, inner in ipairs(o.ops) do
    if inner.table ~= o.table then
      error(format("batch_alter_table('%s'): %s is for another table", o.table, op_label(inner)), 0)
    end
    for _, st in ipairs(d:compile(inner)) do
      if type(st) == "table" and st.rebuild then
        if st.try_alter and (self.emit or not rebuild.in_use(self.conn, o.table, inner.column, vt)) then
          plain[#plain + 1] = format("ALTER TABLE %s DROP COLUMN %s", d:quote(o.table), d:quote(inner.column))
        else
          needs = needs or inner
        end
      else
        plain[#plain + 1] = st
      end
    end
  end
  if needs and o.recreate == "never" then
    error(format("batch_alter_table('%s', recreate = \"never\"): %s needs a table rebuild on SQLite", o.table,
      op_label(needs)), 0)
  end
  if not needs and o.recreate ~= "always" and o.sqlite_autoincrement == nil then
    for _, st in ipairs(plain) do
      if type(st) == "string" then self:exec(st) else self:exec(st.sql, st.params) end
    end
    return
  end
  if o.recreate == "never" then
    error(format("batch_alter_table('%s', recreate = \"never\"): sqlite_autoincrement needs a table rebuild on SQLite",
      o.table), 0)
  end
  self:rebuild(o.table, o.ops, { force = true, naming_convention = o.naming_convention,
    sqlite_autoincrement = o.sqlite_autoincrement })
end

-- rebuild(tbl, list, opts): ops SQLite's ALTER TABLE cannot do, as one table rebuild of the live table (or, for a
-- single drop_column that allows it, ALTER TABLE DROP COLUMN); then the foreign keys of and to the table are
-- checked: the rebuild fails if it left rows without a match that were not so before, and says how many were.
function Runner:rebuild(tbl, list, opts)
  local d = self.dialect
  if self.emit then
    if opts.try_alter then
      self:exec(format("ALTER TABLE %s DROP COLUMN %s", d:quote(tbl), d:quote(list[1].column)))
      return
    end
    error(format("%s: SQLite needs a table rebuild for this, which reads the live table; it cannot be written "
      .. "with --sql", #list == 1 and op_label(list[1]) or format("batch_alter_table('%s')", tbl)), 0)
  end
  local rebuild = require("luamig.sqlite_rebuild")
  local before = rebuild.foreign_key_state(self.conn, tbl)
  local stmts, checked = rebuild.statements(self.conn, d, tbl, list, self.cfg.version_table, opts)
  for _, st in ipairs(stmts) do self:exec(st) end
  if checked then
    local problem, old = rebuild.foreign_key_change(before, rebuild.foreign_key_state(self.conn, checked))
    if problem then sql_error("PRAGMA foreign_key_check", format("after rebuilding %s: %s", checked, problem), 0) end
    for _, line in ipairs(old) do self.warn(format("rebuilding %s: %s", checked, line)) end
  end
end

-- The connection a migration sees through op.get_bind(): failures raise with the statement attached.
function Runner:bind()
  if self.emit then return nil end
  local runner = self
  return {
    dialect = self.dialect.name,
    query = function(_, sql, params)
      local rows, msg, code = runner.conn:query(sql, params)
      if not rows then sql_error(sql, msg, code) end
      return rows
    end,
    exec = function(_, sql, params) return runner:exec(sql, params) end,
  }
end

local function join_heads(list)
  return #list == 0 and "<base>" or concat(list, ", ")
end

-- The `op` object migrations receive: one per runner, its statements going through this runner.
function Runner:op()
  if not self.op_object then
    self.op_object = op_api.new({
      dialect = self.dialect,
      run = function(o) return self:run_op(o) end,
      bind = self:bind(),
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

local function ids_of(recs)
  local out = {}
  for i, r in ipairs(recs) do out[i] = r.revision end
  return out
end

-- resolve_upgrade(spec, current) -> list of target ids ({} = base), or nil, message
function Runner:resolve_upgrade(spec, current)
  local recs, err = self:planner():upgrade_targets(spec, current)
  if not recs then return nil, err end
  return ids_of(recs)
end

-- resolve_downgrade(spec, current) -> target record (a base marker for base), branch (or nil); or nil, message
function Runner:resolve_downgrade(spec, current)
  local target, branch = self:planner():downgrade_target(spec, current)
  if not target then return nil, branch end
  return target, branch
end

-- Running steps ----------------------------------------------------------------------------------------------

-- The file of the migration running now, for error_handler.
local running_chunk

-- Where in the migration file an error happened: the innermost stack level running that file.
local function error_handler(e)
  local line
  for level = 2, 200 do
    local info = getinfo(level, "Sl")
    if not info then break end
    if info.source == running_chunk then
      line = info.currentline
      break
    end
  end
  return { err = e, line = line, traceback = traceback(require("luamig.script_dir").error_text(e), 2) }
end

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

function Runner:ensure_tables()
  if self.tables_ready then return end
  for _, sql in ipairs(vt.create_sql(self.dialect, self.cfg.version_table)) do self:exec(sql) end
  self.tables_ready = true
end

-- The version-table change and the luamig_history row of one step (or stamp). A step that left its transaction
-- (self.detached) already has its 'running' row: that row becomes 'applied'.
function Runner:record(old, new, row)
  local table_name = self.cfg.version_table
  row.version_table = table_name
  row.luamig_version = core.version
  if self.emit then
    self.emit(vt.change_text(self.dialect, table_name, old, new))
    self.emit(vt.history_text(self.dialect, table_name, row))
    return
  end
  for _, st in ipairs(vt.change_sql(self.dialect, table_name, old, new)) do
    self:exec(st.sql, st.params, st.expect, true)
  end
  if self.detached then
    local f = vt.finish_sql(self.dialect, table_name, row.revision, "applied", row.duration_ms)
    self:exec(f.sql, f.params, f.expect, true)
    return
  end
  if self.step and self.step.resume then
    -- a resumed migration that this time stayed in its transaction settles the row it left behind
    local st = vt.settle_sql(self.dialect, table_name)
    self:exec(st.sql, st.params, nil, true)
  end
  row.applied_at = os.date("!%Y-%m-%d %H:%M:%S")
  local h = vt.history_sql(self.dialect, row)
  self:exec(h.sql, h.params, nil, true)
end

-- Unfinished migrations ----------------------------------------------------------------------------------------

local function run_by()
  -- the form mark_live reads back
  return format("pid %d on %s", core.getpid(), core.hostname() or "?")
end

-- unfinished() -> rows of migrations that ran outside a transaction and did not finish, each with .live set when
-- its runner is still at work; or nil, message. PostgreSQL: the caller holds the migration lock, so nobody else is
-- at work. SQLite: a runner on this machine whose process still exists is.
function Runner:unfinished()
  local rows, err = vt.unfinished(self.conn, self.dialect, self.cfg.version_table, self.tables_ready)
  if not rows then return nil, format("cannot read %s: %s", vt.HISTORY, err) end
  if #rows == 0 or self.dialect.name ~= "sqlite" then return rows end
  return vt.mark_live(rows)
end

-- interrupted_error(row) -> the error that stops a run at an unfinished migration
function Runner:interrupted_error(row)
  local r = self.graph:get(row.revision)
  local what = row.status == "failed" and "failed" or "was interrupted"
  return { msg = format("%s %s (%s) %s outside a transaction: it may be partly applied", row.direction, row.revision,
    r and r.shown or row.filename or "no file defines it", what),
    details = { format("It started at %s (%s).", tostring(row.applied_at), tostring(row.run_by or "?")),
      "Check the database, then `luamig upgrade --resume` runs it again (make it safe to re-run first), or undo "
        .. "what it did and settle the version by hand with `luamig stamp`." } }
end

-- waiting_line(row) -> what a runner waiting for a live unfinished migration says
local function waiting_line(row)
  return format("waiting: %s %s is running outside a transaction (%s)", row.direction, row.revision,
    tostring(row.run_by))
end

-- detach(): commits the step's transaction with its 'running' row, so what follows runs outside a transaction
-- and an interruption is seen by the next run.
function Runner:detach()
  local step = self.step
  if self.outer_tx then
    error(format("%s cannot leave the transaction of a --single-transaction run (autocommit_block)", step.id), 0)
  end
  if self.emit then
    self.emit("COMMIT;\n\n")
    self.detached = true
    return
  end
  local r = step.r
  local h = vt.history_sql(self.dialect, { version_table = self.cfg.version_table, revision = step.id,
    down_revision = concat(r.down_revisions, ","), direction = step.direction, status = "running",
    message = r.message:sub(1, 255), filename = r.shown:sub(-255), checksum = r.checksum,
    applied_at = os.date("!%Y-%m-%d %H:%M:%S"), luamig_version = core.version, run_by = run_by() })
  if step.resume then
    local st = vt.settle_sql(self.dialect, self.cfg.version_table)
    self:exec(st.sql, st.params, nil, true)
  end
  self:exec(h.sql, h.params, nil, true)
  local ok, msg = self.conn:exec("COMMIT")
  if not ok then sql_error("COMMIT", msg, 0) end
  self.detached = true
end

-- op.autocommit_block(fn): the statements of fn run outside a transaction (CREATE INDEX CONCURRENTLY, VACUUM).
-- In a transactional migration the work before it commits first, with the migration recorded as running.
function Runner:autocommit_block(fn)
  local step = self.step
  if not step then error("autocommit_block outside a migration", 0) end
  if not step.r.transactional then return fn() end
  if not self.detached then
    self:detach()
  elseif self.emit then
    self.emit("COMMIT;\n\n")
  else
    local ok, msg = self.conn:exec("COMMIT")
    if not ok then sql_error("COMMIT", msg, 0) end
  end
  fn()
  if self.emit then
    self.emit("BEGIN;\n\n")
  else
    local ok, msg = self.conn:exec(self.dialect.begin_sql)
    if not ok then sql_error(self.dialect.begin_sql, msg, 0) end
  end
end

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

-- Ends a failed step: rolls its transaction back (online, when the step owns it) and returns nil, error. A step
-- that had left its transaction marks its 'running' row 'failed'.
function Runner:step_failed(msg, details)
  if not self.outer_tx and not self.emit then
    if not self.detached or self.conn:in_transaction() then
      local rok, rmsg = self.conn:exec("ROLLBACK")
      if not rok then
        details = details or {}
        details[#details + 1] = "ROLLBACK failed too: " .. tostring(rmsg)
      end
    end
    if self.detached then
      local step = self.step
      local f = vt.finish_sql(self.dialect, self.cfg.version_table, step.id, "failed", nil)
      local fok, fmsg = self.conn:exec(f.sql, f.params)
      if not fok then
        details = details or {}
        details[#details + 1] = "Recording the failure failed too: " .. tostring(fmsg)
      end
    end
  end
  self.detached, self.step = false, nil
  return nil, { msg = msg, details = details }
end

local function ensure_tables_of(self) self:ensure_tables() end
local function error_text(e) return e end

-- run_step(id, direction, expected, resume) -> new heads; or "replan", heads_now; or "wait", unfinished row;
-- or nil, error {msg, details}. resume: the step re-runs an unfinished one, whose row it settles.
function Runner:run_step(id, direction, expected, resume)
  local r = self.graph:get(id)
  local outer, emit = self.outer_tx, self.emit
  local label = step_label(direction, id, r)
  local t0 = core.clock()
  local transactional = r.transactional
  if emit then emit(format("-- %s, %s\n\n", label, r.message)) end
  if not outer and (transactional or not emit) then
    local ok, msg = self:tx("BEGIN")
    if not ok then
      if self.sqlite and tostring(msg):find("locked", 1, true) then
        msg = format("%s (another process kept it longer than lock_timeout = %g s)", msg, self.cfg.lock_timeout or 60)
      end
      return nil, { msg = format("cannot start a transaction for %s: %s", label, msg) }
    end
  end
  self.step = { id = id, r = r, direction = direction, resume = resume }
  self.detached = false
  if not self.tables_ready then
    local tok, terr = xpcall(ensure_tables_of, error_text, self)
    if not tok then
      return self:step_failed(format("cannot create the version table %s: %s", self.cfg.version_table, tostring(terr)))
    end
  end
  local heads_now = expected
  -- inside the run's one transaction nobody else can move the database (it read the heads after BEGIN), nor can
  -- anyone while this runner holds the PostgreSQL migration lock
  if not emit and not outer and not self.locked then
    -- another runner may have moved the database since the plan was made: re-read inside the transaction
    local herr
    heads_now, herr = self:heads()
    if not heads_now then return self:step_failed(herr) end
    if not same_set(heads_now, expected) then
      if not outer then self.conn:exec("ROLLBACK") end
      self.step = nil
      return "replan", heads_now
    end
    if self.sqlite and not outer and not resume then
      -- on SQLite another runner may be running a migration outside a transaction: wait for it, or stop
      local rows, uerr = self:unfinished()
      if not rows then return self:step_failed(uerr) end
      if #rows > 0 then
        self.conn:exec("ROLLBACK")
        self.step = nil
        if rows[1].live then return "wait", rows[1] end
        return nil, self:interrupted_error(rows[1])
      end
    end
  end
  local fn = direction == "upgrade" and r.module.upgrade or r.module.downgrade
  local ok, e = true, nil
  if not transactional and not emit then
    ok, e = xpcall(self.detach, error_handler, self)
  end
  if ok then
    running_chunk = r.chunkname or ("@" .. r.shown)
    local deadline = self.timeout and not emit and core.clock() + self.timeout
    if deadline then self:arm(deadline) end
    ok, e = xpcall(fn, error_handler, self:op())
    if deadline then
      self:disarm()
      if not ok and core.clock() > deadline then
        -- whatever stopped it (the hook, or SQLite / PostgreSQL interrupting a statement), say why
        local why = format("exceeded --timeout of %g s", self.timeout)
        if getmetatable(e.err) == SqlErrorMT then e.err.msg = why else e.err = why end
      end
    end
    running_chunk = nil
  end
  local new_heads
  if ok and self.detached and not emit and not self.conn:in_transaction() then
    local bok, bmsg = self:tx("BEGIN")
    if not bok then ok, e = false, { err = "cannot start the transaction that records it: " .. tostring(bmsg) } end
  end
  if ok then
    -- Alembic's version-row rules; where they do not fit the rows (Alembic itself fails there), the general rule
    new_heads = self:planner():rows_after(heads_now, id, direction) or self.graph:heads_after(heads_now, id, direction)
    ok, e = xpcall(self.record, error_handler, self, heads_now, new_heads, { revision = id,
      down_revision = #r.down_revisions == 1 and r.down_revisions[1] or concat(r.down_revisions, ","),
      direction = direction, status = "applied",
      message = #r.message > 255 and r.message:sub(1, 255) or r.message,
      filename = #r.shown > 255 and r.shown:sub(-255) or r.shown, checksum = r.checksum,
      duration_ms = not emit and floor((core.clock() - t0) * 1000 + 0.5) or nil,
      version_table = false, luamig_version = false, applied_at = false })
  end
  if not ok then
    local details
    if emit then
      details = nil
    elseif self.detached then
      details = { format("%s ran outside a transaction (%s): what it did before the failure stays applied, and "
        .. "it is recorded as failed.", id, transactional and "autocommit_block" or "transactional = false"),
        "Fix it and make it safe to re-run, then `luamig upgrade --resume`; or undo what it did and settle the "
        .. "version by hand with `luamig stamp`." }
    else
      details = { outer and "The whole run was rolled back; the database is as it was before it."
        or format("Rolled back: the database is as it was before %s.", id) }
    end
    if self.verbose and details then details[#details + 1] = e.traceback end
    return self:step_failed(describe_failure(label, r, e), details)
  end
  if not outer and (transactional or not emit) then
    local cok, cmsg = self:tx("COMMIT")
    if not cok then return self:step_failed(format("%s: COMMIT failed: %s", label, cmsg)) end
  elseif emit and not transactional then
    emit("\n")
  end
  self.step, self.detached = nil, false
  if emit then
    self.offline_heads = new_heads
    self.progress(label .. ", " .. r.message)
  else
    self.progress(format("%s, %s (%d ms)", label, r.message, floor((core.clock() - t0) * 1000 + 0.5)))
  end
  return new_heads
end

-- plan(direction, spec, current) -> steps, replan(current) -> steps; or nil, message
function Runner:plan(direction, spec, current)
  local p = self:planner()
  if direction == "upgrade" then
    local targets, err = self:resolve_upgrade(spec, current)
    if not targets then return nil, err end
    local function replan(cur) return p:upgrade_steps(cur, targets) end
    local steps, perr = replan(current)
    if not steps then return nil, perr end
    return steps, replan
  end
  local target, branch = self:resolve_downgrade(spec, current)
  if not target then return nil, branch end
  local function replan(cur) return p:downgrade_steps(cur, target, branch) end
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

-- resume_step(row, current) -> true when the unfinished row's step can run again from the heads current, or
-- nil, error
function Runner:check_resumable(row, current)
  local g = self.graph
  local r = g:get(row.revision)
  if not r then
    return nil, { msg = format("cannot resume %s: no migration file defines it; settle the version with `luamig stamp`",
      row.revision) }
  end
  local fits
  if row.direction == "downgrade" then
    for _, h in ipairs(current) do if h == row.revision then fits = true end end
  else
    local steps = self:planner():upgrade_steps(current, { row.revision })
    fits = steps and #steps == 1 and steps[1] == row.revision
  end
  if not fits then
    return nil, { msg = format("cannot resume %s %s: the database is at %s, where that step does not apply; settle the "
      .. "version with `luamig stamp`", row.direction, row.revision, join_heads(current)) }
  end
  return true
end

-- await_unfinished(opts) -> the unfinished row to resume (or false); or nil, error. Waits (SQLite) while another
-- runner on this machine is still running one, up to lock_timeout.
function Runner:await_unfinished(opts)
  local deadline = core.clock() + (self.cfg.lock_timeout or 60)
  local told, delay = false, 0.02
  while true do
    local rows, err = self:unfinished()
    if not rows then return nil, { msg = err } end
    local row = rows[1]
    if not row then return false end
    if not row.live then
      if not opts.resume then return nil, self:interrupted_error(row) end
      return row
    end
    if core.clock() >= deadline then
      return nil, { msg = format("%s %s is still running outside a transaction (%s) after %g s", row.direction,
        row.revision, tostring(row.run_by), self.cfg.lock_timeout or 60) }
    end
    if not told then
      self.progress(waiting_line(row))
      told = true
    end
    core.sleep(delay)
    delay = math.min(delay * 2, 0.5)
  end
end

-- arm(deadline) / disarm(): --timeout around a migration's own code. A count hook stops its Lua code once the
-- deadline (a core.clock() time) has passed; SQLite interrupts a statement running past it, PostgreSQL one running
-- longer than what was left of the time when it started (statement_timeout).
local TIMEOUT_TICK = 10000

function Runner:arm(deadline)
  local clock = core.clock
  debug.sethook(function()
    if clock() > deadline then error("exceeded --timeout", 2) end
  end, "", TIMEOUT_TICK)
  if self.sqlite then
    self.conn:set_deadline(deadline)
  elseif self.dialect.name == "postgresql" then
    self.conn:exec(format("SET statement_timeout = %d", math.max(1, floor((deadline - clock()) * 1000))))
  end
end

function Runner:disarm()
  debug.sethook()
  if self.sqlite then
    self.conn:set_deadline(nil)
  elseif self.dialect.name == "postgresql" then
    -- (in a transaction the failure aborted, this fails, and the rollback undoes arm's SET anyway)
    self.conn:exec(format("SET statement_timeout = %d", floor((self.cfg.statement_timeout or 0) * 1000)))
  end
end

-- migrate(direction, spec, opts): see migrate_steps. On SQLite, foreign-key enforcement is off while migrating, as
-- SQLite's own procedure for schema changes requires (a table rebuild drops the old table; with enforcement on,
-- that would fire ON DELETE actions), and back on afterwards; rebuilds check the foreign keys they touch.
-- A database in SQLite's default rollback-journal mode (DELETE) is migrated in PERSIST mode: each commit zeroes and
-- syncs the journal's header instead of deleting the file, as durable and one file-system operation fewer per
-- migration; going back to DELETE at the end removes the journal (SQLite takes the write lock to do so, so another
-- writer's journal is never touched). WAL and other modes are left as they are.
function Runner:migrate(direction, spec, opts)
  self.timeout = opts and opts.timeout
  if not self.sqlite then return self:migrate_steps(direction, spec, opts) end
  local conn = self.conn
  conn:exec("PRAGMA foreign_keys = OFF")
  local mode = conn:query("PRAGMA journal_mode")
  local persist = mode and mode[1] and mode[1].journal_mode == "delete"
  if persist then persist = conn:query("PRAGMA journal_mode = PERSIST") end
  local n, err = self:migrate_steps(direction, spec, opts)
  if persist then conn:query("PRAGMA journal_mode = DELETE") end
  conn:exec("PRAGMA foreign_keys = ON")
  return n, err
end

-- migrate_steps(direction, spec, opts) -> number of steps applied, or nil, error {msg, details}
-- opts.single_transaction: one transaction around the whole run. opts.resume: run an unfinished migration (one
-- that ran outside a transaction and was interrupted or failed) again first. opts.before_changes: called once
-- before the first step when there is one (the backup); returns true, or nil, message to stop.
function Runner:migrate_steps(direction, spec, opts)
  opts = opts or {}
  local current, err = self:heads()
  if not current then return nil, { msg = err } end
  local kok, kerr = self:check_known(current)
  if not kok then return nil, kerr end
  local single_tx = opts.single_transaction or not self.cfg.transaction_per_migration
  local applied = 0
  local before = opts.before_changes
  if not self.emit then
    local row, uerr = self:await_unfinished(opts)
    if row == nil then return nil, uerr end
    if row then
      if before then
        local bok, berr = before()
        if not bok then return nil, { msg = berr } end
        before = nil
      end
      if single_tx then return nil, { msg = "--resume cannot be combined with --single-transaction" } end
      current, err = self:heads()
      if not current then return nil, { msg = err } end
      local rok, rerr = self:check_resumable(row, current)
      if not rok then return nil, rerr end
      rok, rerr = self:prepare({ row.revision })
      if not rok then return nil, rerr end
      self.progress(format("resuming %s %s", row.direction, row.revision))
      local res, info = self:run_step(row.revision, row.direction, current, row)
      if res == nil then return nil, info end
      if res == "replan" or res == "wait" then
        return nil, { msg = format("cannot resume %s: another runner changed the database meanwhile", row.revision) }
      end
      current, applied = res, 1
    end
  end
  local plan, replan = self:plan(direction, spec, current)
  if not plan then return nil, { msg = replan } end
  -- every file a run may apply is compiled first (a replan only ever needs revisions on the way to the target)
  local pok, perr = self:prepare(plan)
  if not pok then return nil, perr end
  if before and #plan > 0 then
    local bok, berr = before()
    if not bok then return nil, { msg = berr } end
  end
  if single_tx then
    for _, id in ipairs(plan) do
      if not self.graph:get(id).transactional then
        return nil, { msg = format("%s (%s) is not transactional (transactional = false): it cannot run inside "
          .. "--single-transaction", id, self.graph:get(id).shown) }
      end
    end
    local ok, msg = self:tx("BEGIN")
    if not ok then return nil, { msg = "cannot start a transaction: " .. tostring(msg) } end
    self.outer_tx = true
    if not self.emit then
      -- inside the transaction the heads are final: plan again from them
      current, err = self:heads()
      if not current then
        self.conn:exec("ROLLBACK")
        self.outer_tx = false
        return nil, { msg = err }
      end
      plan, err = replan(current)
      local perr2
      if plan then pok, perr2 = self:prepare(plan) end
      if not plan or not pok then
        self.conn:exec("ROLLBACK")
        self.outer_tx = false
        return nil, perr2 or { msg = err }
      end
    end
  end
  local i = 1
  while i <= #plan do
    local res, info = self:run_step(plan[i], direction, current)
    if res == nil then
      if single_tx and not self.emit then self.conn:exec("ROLLBACK") end
      self.outer_tx = false
      return nil, info
    elseif res == "wait" then
      local row, uerr = self:await_unfinished({})
      if row == nil then return nil, uerr end
      current, err = self:heads()
      if not current then return nil, { msg = err } end
      plan, err = replan(current)
      if not plan then return nil, { msg = err } end
      local ok, merr = self:prepare(plan)
      if not ok then return nil, merr end
      i = 1
    elseif res == "replan" then
      current = info
      local rerr
      plan, rerr = replan(current)
      if not plan then return nil, { msg = rerr } end
      local ok, merr = self:prepare(plan)
      if not ok then return nil, merr end
      i = 1
    else
      current = res
      applied = applied + 1
      i = i + 1
    end
  end
  if single_tx then
    self.outer_tx = false
    local ok, msg = self:tx("COMMIT")
    if not ok then
      self.conn:exec("ROLLBACK")
      return nil, { msg = "COMMIT of the run failed: " .. tostring(msg) }
    end
  end
  return applied
end

-- stamp(specs, purge) -> the new version rows, or nil, error {msg}
-- Sets the version table to the given revisions without running migrations; --purge empties it first.
function Runner:stamp(specs, purge)
  local g, p = self.graph, self:planner()
  local targets = {}
  local is_base = false
  for _, spec in ipairs(specs) do
    local recs, err = p:revisions(spec, {})
    if not recs then return nil, { msg = err } end
    if #recs == 0 then is_base = true end
    for _, r in ipairs(recs) do targets[#targets + 1] = r.revision end
  end
  if is_base and #targets > 0 then return nil, { msg = "stamp: base cannot be combined with other revisions" } end
  local ok, msg = self:tx("BEGIN")
  if not ok then return nil, { msg = "cannot start a transaction: " .. tostring(msg) } end
  local new_heads
  local sok, e = xpcall(function()
    self:ensure_tables()
    local old
    if purge then
      self:exec(format("DELETE FROM %s", self.dialect:quote(self.cfg.version_table)))
      old = {}
    else
      local h, herr = self:heads()
      if not h then error(herr, 0) end
      for _, id in ipairs(h) do
        if not g:get(id) then
          error(format("the database is at revision %s, which no migration file defines; use stamp --purge", id), 0)
        end
      end
      old = h
    end
    if not self.emit then
      -- stamping settles migrations left unfinished outside a transaction: the user has decided where the database is
      local rows, uerr = self:unfinished()
      if not rows then error(uerr, 0) end
      for _, row in ipairs(rows) do
        if row.live then error(waiting_line(row):gsub("^waiting: ", "stamp: ") .. "; try again when it ends", 0) end
      end
      if #rows > 0 then
        local st = vt.settle_sql(self.dialect, self.cfg.version_table)
        self:exec(st.sql, st.params, nil, true)
        for _, row in ipairs(rows) do
          self.progress(format("settled %s: %s %s is no longer pending", row.status == "failed" and "failed" or "interrupted",
            row.direction, row.revision))
        end
      end
    end
    if purge then
      new_heads = sorted_copy(targets)
    else
      local rows, serr = p:stamp_rows(old, specs)
      if not rows then error(serr, 0) end
      new_heads = rows
    end
    if same_set(old, new_heads) then return end
    local added = {}
    local was = {}
    for _, o in ipairs(old) do was[o] = true end
    for _, n in ipairs(new_heads) do if not was[n] then added[#added + 1] = n end end
    local first = added[1] or ""
    local r = g:get(first)
    self:record(old, new_heads, { revision = first ~= "" and first or "base", down_revision = concat(old, ","),
      direction = "stamp", status = "stamped", message = r and r.message:sub(1, 255) or nil,
      filename = r and r.shown:sub(-255) or nil, checksum = r and r.checksum or nil, duration_ms = 0 })
    self.progress(format("stamp %s -> %s", join_heads(old), join_heads(new_heads)))
  end, function(err) return err end)
  if not sok then
    if not self.emit then self.conn:exec("ROLLBACK") end
    local m = getmetatable(e) == SqlErrorMT and format("stamp failed: %s; statement: %s", one_line(e.msg), one_line(e.sql, 240))
      or require("luamig.script_dir").error_text(e)
    return nil, { msg = m }
  end
  local cok, cmsg = self:tx("COMMIT")
  if not cok then return nil, { msg = "stamp: COMMIT failed: " .. tostring(cmsg) } end
  if self.emit then self.offline_heads = new_heads end
  return new_heads
end

return { new = new, SqlErrorMT = SqlErrorMT, one_line = one_line }
