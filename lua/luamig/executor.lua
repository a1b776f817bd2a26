-- The two faces a runner works through, with one interface: the live connection, and the SQL writer of --sql.
-- Both take statements, transaction control, the version rows, the record of a step, table rebuilds and the
-- --timeout deadline; the runner never asks which one it has.
--
-- Live: every BEGIN, COMMIT and ROLLBACK goes through begin/commit/rollback, which return nil, message on failure;
-- a failed ROLLBACK is added to the failing step's details. Writer: statements and bookkeeping are written as SQL
-- text with bound values inlined, and the version rows are kept in memory.
local core = require("luamig.core")
local schema = require("luamig.schema")
local sql_text = require("luamig.sql_text")
local vt = require("luamig.version_table")

local format, concat, ipairs, tostring, setmetatable, error, type = string.format, table.concat, ipairs,
  tostring, setmetatable, error, type
local floor = math.floor

local SqlErrorMT = { __tostring = function(e) return e.msg end }

-- sql_error(sql, msg, code): raises a SQL error that keeps its statement
local function sql_error(sql, msg, code)
  error(setmetatable({ sql = sql, msg = msg, code = code }, SqlErrorMT))
end

-- one_line(s, max) -> s on one line (whitespace runs as one space), cut to max characters
local function one_line(s, max)
  s = tostring(s):gsub("%s+", " "):gsub("^ ", ""):gsub(" $", "")
  if max and #s > max then s = s:sub(1, max - 3) .. "..." end
  return s
end

local function now_utc() return os.date("!%Y-%m-%d %H:%M:%S") end

local function run_by()
  -- the form version_table.mark_live reads back
  return format("pid %d on %s", core.getpid(), core.hostname() or "?")
end

-- running_row(cfg, step) -> the luamig_history row of a step about to leave its transaction
local function running_row(cfg, step)
  local r = step.r
  return { version_table = cfg.version_table, revision = step.id, down_revision = concat(r.down_revisions, ","),
    direction = step.direction, status = "running", message = r.message:sub(1, 255), filename = r.shown:sub(-255),
    checksum = r.checksum, applied_at = now_utc(), luamig_version = core.version, run_by = run_by() }
end

-- The live connection -----------------------------------------------------------------------------------------

local Live = {}
Live.__index = Live

-- live(conn, dialect, cfg, lock) -> executor over a driver connection, under the migration lock (the dialect's
-- acquire_lock: its hooks run after each step's BEGIN, in each version-row change, and around a migration that
-- leaves its transaction)
local function live(conn, dialect, cfg, lock)
  -- (the connection's own BEGIN when it has one: SET LOCALs behind a pooler)
  local begin_sql = conn.begin_sql or dialect.begin_sql
  -- (ddl_lock_timeout: the statement that bounds a step's lock waits, made once; nil where there is none)
  local guard = (cfg.ddl_lock_timeout or 0) > 0 and dialect:lock_guard_sql(cfg.ddl_lock_timeout, true) or nil
  return setmetatable({ conn = conn, dialect = dialect, cfg = cfg, tables_ready = false, session_guard = false,
    begin_sql = begin_sql, begin_guarded = guard and (begin_sql .. "; " .. guard), lock = lock or {} }, Live)
end

-- exec(sql, params, expect) -> rows changed; raises a SQL error. expect: the number of rows the statement must
-- change (luamig's own version-table statements).
function Live:exec(sql, params, expect)
  local ok, msg, code, failing = self.conn:exec(sql, params)
  if not ok then sql_error(failing or sql, msg, code) end
  if expect and msg ~= expect then
    sql_error(sql, format("expected to change %d row(s) of the version table, changed %d: another process changed it",
      expect, msg), 0)
  end
  return msg
end

function Live:query(sql, params)
  local rows, msg, code = self.conn:query(sql, params)
  if not rows then sql_error(sql, msg, code) end
  return rows
end

function Live:bulk_insert(sql, cols, rows)
  local ok, msg, code, row = self.conn:bulk_insert(sql, cols, rows)
  if not ok then sql_error(sql, format("%s (row %s)", msg, tostring(row)), code) end
end

-- Transaction control: true, or nil, message.
function Live:begin()
  local ok, msg = self.conn:exec(self.begin_sql)
  if not ok then return nil, self.dialect:busy_hint(msg, self.cfg) end
  return self:locked_in(self.begin_sql)
end

-- locked_in(begin_sql): the lock's part of a transaction just begun (the transaction mode's advisory lock); true,
-- or nil, message with the transaction rolled back. The lock waits outside a transaction (rolled back, begun again
-- with begin_sql), so that a waiting run holds no pooled server connection and no lock meanwhile.
function Live:locked_in(begin_sql)
  local in_step = self.lock.in_step
  if not in_step then return true end
  local conn = self.conn
  local ok, err = in_step(self, function()
    if conn:in_transaction() then return true end
    return conn:exec(begin_sql)
  end, function() conn:exec("ROLLBACK") end)
  if ok then return true end
  self:rollback()
  return nil, err
end

function Live:commit()
  local ok, msg = self.conn:exec("COMMIT")
  if not ok then return nil, msg end
  return true
end

function Live:rollback()
  local ok, msg = self.conn:exec("ROLLBACK")
  if not ok then return nil, msg end
  return true
end

-- rollback_into(details) -> details, with a line added when the ROLLBACK fails
function Live:rollback_into(details)
  local ok, msg = self:rollback()
  -- (a lost connection's transaction went with it: there was nothing to roll back)
  if ok or self:connection_lost(nil) then return details end
  details = details or {}
  details[#details + 1] = "ROLLBACK failed too: " .. tostring(msg)
  return details
end

-- A step: BEGIN before it (every step, so that the version rows are re-read inside it), COMMIT after. Where the
-- statements' lock waits are bounded (ddl_lock_timeout), the SET LOCAL goes with the BEGIN, in one round trip.
function Live:begin_step()
  local ok, msg = self.conn:exec(self.begin_guarded or self.begin_sql)
  if not ok then return nil, self.dialect:busy_hint(msg, self.cfg) end
  return self:locked_in(self.begin_guarded or self.begin_sql)
end
function Live:end_step() return self:commit() end

-- ensure_tx(): a step that ran outside its transaction records itself in a new one
function Live:ensure_tx()
  if self.conn:in_transaction() then return true end
  return self:begin()
end

function Live:in_transaction() return self.conn:in_transaction() end

-- heads() -> the version rows (sorted), or nil, message
function Live:heads()
  local rows, err = vt.read(self.conn, self.dialect, self.cfg.version_table, self.tables_ready)
  if not rows then return nil, format("cannot read the version table %s: %s", self.cfg.version_table, err) end
  return rows
end

-- unfinished() -> the rows of migrations that ran outside a transaction and did not finish, each with .live set
-- when its runner is still at work (as the dialect can tell); or nil, message
function Live:unfinished()
  local rows, err = vt.unfinished(self.conn, self.dialect, self.cfg.version_table, self.tables_ready)
  if not rows then return nil, format("cannot read %s: %s", vt.HISTORY, err) end
  if #rows == 0 then return rows end
  rows = self.dialect:mark_live(rows)
  -- (a run without a lock across it: a row is live while another run holds the lease it runs under)
  local leased = self.lock.lease_live
  if leased and leased(self) then
    for _, row in ipairs(rows) do
      if row.status == "running" then row.live = true end
    end
  end
  return rows
end

function Live:ensure_tables()
  if self.tables_ready then return end
  for _, sql in ipairs(vt.create_sql(self.dialect, self.cfg.version_table)) do self:exec(sql) end
  self.tables_ready = true
end

-- record(old, new, row, step): the version-table change and the luamig_history row of a step (or stamp). A step
-- that left its transaction (step.detached) already has its 'running' row: that row becomes 'applied'; a resumed
-- one that stayed in its transaction settles the row it left behind.
function Live:record(old, new, row, step)
  local d, table_name = self.dialect, self.cfg.version_table
  -- (the lease's fence: raises, so the change rolls back, when the lease is not this run's any more)
  local fence = self.lock.fence
  if fence then fence(self) end
  row.version_table = table_name
  row.luamig_version = core.version
  for _, st in ipairs(vt.change_sql(d, table_name, old, new)) do self:exec(st.sql, st.params, st.expect) end
  if step and step.detached then
    local f = vt.finish_sql(d, table_name, row.revision, "applied", row.duration_ms)
    self:exec(f.sql, f.params, f.expect)
    return
  end
  if step and step.resume then self:settle() end
  row.applied_at = now_utc()
  local h = vt.history_sql(d, row)
  self:exec(h.sql, h.params)
end

-- settle(): every unfinished row of the version table becomes 'interrupted'
function Live:settle()
  local st = vt.settle_sql(self.dialect, self.cfg.version_table)
  self:exec(st.sql, st.params)
end

-- detach(step): commits the step's transaction with its 'running' row, so that what follows runs outside a
-- transaction and an interruption is seen by the next run
function Live:detach(step)
  if step.resume then self:settle() end
  if self.lock.detaching then self.lock.detaching(self) end
  local h = vt.history_sql(self.dialect, running_row(self.cfg, step))
  self:exec(h.sql, h.params)
  local ok, msg = self:commit()
  if not ok then sql_error("COMMIT", msg, 0) end
end

-- abandon_step(step, details) -> details: rolls a failed step back (when its transaction is still open) and marks
-- the 'running' row of a step that had left its transaction 'failed'; what fails on the way is added to details
function Live:abandon_step(step, details)
  if not step.detached or self.conn:in_transaction() then details = self:rollback_into(details) end
  if step.detached then
    local f = vt.finish_sql(self.dialect, self.cfg.version_table, step.id, "failed", nil)
    local ok, msg = self.conn:exec(f.sql, f.params)
    if not ok then
      details = details or {}
      details[#details + 1] = "Recording the failure failed too: " .. tostring(msg)
    end
  end
  return details
end

-- attached() -> true, or nil, message: a migration that had left its transaction is recorded; what the lock
-- held for it is given back
function Live:attached()
  if not self.lock.attached then return true end
  return self.lock.attached()
end

-- connection_lost(err) -> whether a failure means the session is gone (or the server cannot take writes any
-- more): what a reconnect may cure
function Live:connection_lost(err)
  if not self.conn.lost then return false end
  return self.conn:lost(type(err) == "table" and err.code or nil)
end

function Live:elapsed_ms(t0) return floor((core.clock() - t0) * 1000 + 0.5) end

-- set_deadline(t): statements still running at core.clock() time t are stopped (nil: no deadline); true, or
-- nil, message
function Live:set_deadline(t) return self.conn:set_deadline(t) end

-- The connection a migration sees through op.get_bind(): failures raise with the statement attached.
function Live:bind()
  local x = self
  return {
    dialect = self.dialect.name,
    query = function(_, sql, params) return x:query(sql, params) end,
    exec = function(_, sql, params) return x:exec(sql, params) end,
  }
end

-- column_in_use(tbl, col) -> whether an index, constraint or trigger uses the column (a drop needs a rebuild)
function Live:column_in_use(tbl, col)
  return self.dialect:column_in_use(self.conn, tbl, col, self.cfg.version_table)
end

-- rebuild(tbl, list, opts, warn): the ops as one rebuild of the live table (the dialect's), then the foreign keys
-- of and to the table are checked
function Live:rebuild(tbl, list, opts, warn)
  self.dialect:rebuild(self, tbl, list, opts, warn)
end

-- Lock queues (ddl_lock_timeout): guard_locks(in_transaction) bounds the lock waits of the statements that follow
-- (SET LOCAL in a transaction; a session setting outside one, which unguard() lifts); whether the executor can
-- (guards_locks), whether an error is a lock wait given up (lock_timed_out), and who holds locks on tables
-- (blockers).
function Live:guards_locks() return self.begin_guarded ~= nil end

function Live:guard_locks(in_transaction)
  if not self:guards_locks() then return end
  self:exec(self.dialect:lock_guard_sql(self.cfg.ddl_lock_timeout, in_transaction))
  if not in_transaction then self.session_guard = true end
end

function Live:unguard()
  if not self.session_guard then return true end
  self.session_guard = false
  local ok, msg = self.conn:exec(self.dialect.lock_unguard_sql)
  if not ok then return nil, msg end
  return true
end

function Live:lock_timed_out(err) return self.dialect:lock_timed_out(err) end
function Live:blockers(tables, older_than) return self.dialect:blockers(self.conn, tables, older_than) end
function Live:oldest_transaction() return self.dialect:oldest_transaction(self.conn) end
function Live:clean_after_lock_timeout(o) return self.dialect:clean_after_lock_timeout(self.conn, o) end

-- begin_run() / end_run(state): the dialect's session settings for a run, and their restore; nil, message when a
-- setting cannot be made or restored
function Live:begin_run() return self.dialect:begin_run(self.conn) end
function Live:end_run(state) return self.dialect:end_run(self.conn, state) end

-- comment(label, message): the line that names a step in the written SQL
function Live.comment() end

-- The SQL writer (--sql) ------------------------------------------------------------------------------------------

local Writer = {}
Writer.__index = Writer

-- writer(emit, dialect, cfg, heads) -> executor writing SQL through emit(text), the database assumed at heads
-- (its version tables assumed to exist unless heads is empty)
local function writer(emit, dialect, cfg, heads)
  local w = setmetatable({ emit = emit, dialect = dialect, cfg = cfg, heads_now = heads or {},
    tables_ready = heads ~= nil and #heads > 0, in_tx = false }, Writer)
  w.literal = function(v) return dialect:literal(v) end
  return w
end

-- exec(sql, params, _, plain): writes the statement with its values inlined. plain: luamig's own SQL, with only ?
-- placeholders and no quotes or comments.
function Writer:exec(sql, params, _, plain)
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
  local emit = self.emit
  emit(sql)
  emit(";\n")
  return 0
end

function Writer:bulk_insert(sql, cols, rows)
  for _, row in ipairs(rows) do self:exec(sql, schema.values_of(row, cols)) end
end

function Writer:begin()
  self.emit("BEGIN;\n\n")
  self.in_tx = true
  return true
end

function Writer:commit()
  self.emit("COMMIT;\n\n")
  self.in_tx = false
  return true
end

-- nothing ran: nothing to roll back
function Writer.rollback() return true end
function Writer.rollback_into(_, details) return details end

-- A step is written inside BEGIN/COMMIT when it is transactional; the SQL of one that is not stands on its own.
function Writer:begin_step(transactional)
  if transactional then return self:begin() end
  return true
end

function Writer:end_step()
  if self.in_tx then return self:commit() end
  self.emit("\n")
  return true
end

function Writer.ensure_tx() return true end
function Writer:in_transaction() return self.in_tx end

local NONE = setmetatable({}, { __newindex = function() error("read-only", 2) end })

function Writer:heads() return self.heads_now end
function Writer.unfinished() return NONE end

function Writer:ensure_tables()
  if self.tables_ready then return end
  for _, sql in ipairs(vt.create_sql(self.dialect, self.cfg.version_table)) do self:exec(sql) end
  self.tables_ready = true
end

function Writer:record(old, new, row)
  local d, table_name = self.dialect, self.cfg.version_table
  row.version_table = table_name
  row.luamig_version = core.version
  self.emit(vt.change_text(d, table_name, old, new))
  self.emit(vt.history_text(d, table_name, row))
  self.heads_now = new
end

function Writer.settle() end

function Writer:detach()
  if self.in_tx then self:commit() end
end

-- the written SQL has no rollback to report
function Writer.abandon_step() return nil end
function Writer.elapsed_ms() return nil end
function Writer.set_deadline() return true end
function Writer.bind() return nil end
function Writer.column_in_use() return false end

-- rebuild: a table rebuild reads the live table; only a drop_column that ALTER TABLE can do is written
function Writer:rebuild(tbl, list, opts)
  local d = self.dialect
  if opts.try_alter then
    self:exec(format("ALTER TABLE %s DROP COLUMN %s", d:quote(tbl), d:quote(list[1].column)))
    return
  end
  local what = #list == 1 and require("luamig.ops").label(list[1]) or format("batch_alter_table('%s')", tbl)
  error(format("%s: SQLite needs a table rebuild for this, which reads the live table; it cannot be written "
    .. "with --sql", what), 0)
end

function Writer.attached() return true end
function Writer.connection_lost() return false end
function Writer.guards_locks() return false end
function Writer.guard_locks() end
function Writer.unguard() return true end
function Writer.lock_timed_out() return false end
function Writer.blockers() return NONE end
function Writer.oldest_transaction() return nil end
function Writer.clean_after_lock_timeout() end
function Writer.begin_run() return {} end
function Writer.end_run() return true end

function Writer:comment(label, message) self.emit(format("-- %s, %s\n\n", label, message)) end

return { live = live, writer = writer, SqlErrorMT = SqlErrorMT, sql_error = sql_error, one_line = one_line }
