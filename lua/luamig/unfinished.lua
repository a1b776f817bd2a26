-- Migrations that run outside a transaction (transactional = false, or from an op.autocommit_block on): before
-- their first statement commits they are recorded as 'running'; the version change turns the row 'applied', a
-- failure 'failed'. An unfinished row stops later runs until `upgrade --resume` runs it again or `stamp` settles
-- it. These are the runner's methods for that protocol (installed into the runner's class by luamig.runtime).
local core = require("luamig.core")
local sql_error = require("luamig.executor").sql_error
local join_heads = require("luamig.version_table").shown

local format, ipairs, pairs, tostring, error = string.format, ipairs, pairs, tostring, error

local M = {}

-- waiting_line(row) -> what a runner waiting for a live unfinished migration says
function M.waiting_line(row)
  return format("waiting: %s %s is running outside a transaction (%s)", row.direction, row.revision,
    tostring(row.run_by))
end

local Methods = {}

-- interrupted_error(row) -> the error that stops a run at an unfinished migration
function Methods:interrupted_error(row)
  local r = self.graph:get(row.revision)
  local what = row.status == "failed" and "failed" or "was interrupted"
  return { msg = format("%s %s (%s) %s outside a transaction: it may be partly applied", row.direction, row.revision,
    r and r.shown or row.filename or "no file defines it", what),
    details = { format("It started at %s (%s).", tostring(row.applied_at), tostring(row.run_by or "?")),
      "Check the database, then `luamig upgrade --resume` runs it again (make it safe to re-run first), or undo "
        .. "what it did and settle the version by hand with `luamig stamp`." } }
end

-- detach(): the step leaves its transaction (committed with its 'running' row)
function Methods:detach()
  local step = self.step
  if self.outer_tx then
    error(format("%s cannot leave the transaction of a --single-transaction run (autocommit_block)", step.id), 0)
  end
  self.x:detach(step)
  step.detached = true
  -- statements outside a transaction wait for table locks no longer than inside one (ddl_lock_timeout)
  self.x:guard_locks(false)
end

-- op.autocommit_block(fn): the statements of fn run outside a transaction (CREATE INDEX CONCURRENTLY, VACUUM).
-- In a transactional migration the work before it commits first, with the migration recorded as running.
function Methods:autocommit_block(fn)
  local step = self.step
  if not step then error("autocommit_block outside a migration", 0) end
  if not step.r.transactional then return fn() end
  local x = self.x
  if not step.detached then
    self:detach()
  else
    local ok, msg = x:commit()
    if not ok then sql_error("COMMIT", msg, 0) end
  end
  fn()
  local ok, msg = x:begin()
  if not ok then sql_error(self.dialect.begin_sql, msg, 0) end
end

-- check_resumable(row, current) -> true when the unfinished row's step can run again from the heads current, or
-- nil, error
function Methods:check_resumable(row, current)
  local r = self.graph:get(row.revision)
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

-- await_unfinished(opts) -> the unfinished row to resume (or false); or nil, error. Waits while another runner
-- (SQLite: on this machine) is still running one, up to lock_timeout.
function Methods:await_unfinished(opts)
  local deadline = core.clock() + (self.cfg.lock_timeout or 60)
  local told, delay = false, 0.02
  while true do
    local rows, err = self.x:unfinished()
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
      self.progress(M.waiting_line(row))
      told = true
    end
    require("luamig.wait").sleep(delay)
    delay = math.min(delay * 2, 0.5)
  end
end

-- resume_unfinished(opts, single_tx) -> the heads after running an unfinished migration again (false when there is none); or nil, error
function Methods:resume_unfinished(opts, single_tx)
  local row, uerr = self:await_unfinished(opts)
  if row == nil then return nil, uerr end
  if not row then return false end
  if opts.before_changes then
    local bok, berr = opts.before_changes()
    if not bok then return nil, { msg = berr } end
    opts.before_changes = nil
  end
  if single_tx then return nil, { msg = "--resume cannot be combined with --single-transaction" } end
  local current, err = self.x:heads()
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
  return res
end

function M.install(Runner)
  for k, f in pairs(Methods) do Runner[k] = f end
end

return M
