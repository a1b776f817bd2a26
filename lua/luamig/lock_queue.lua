-- Lock queues on a server database (ddl_lock_timeout, ddl_lock_retries): a migration statement waits for a table
-- lock at most ddl_lock_timeout, so that it never stands for long in a table's lock queue where every later
-- reader and writer of the table would wait behind it. A step rolled back by a lock timeout runs again after a
-- back-off; a statement outside a transaction is tried again on its own; and before a migration's first
-- statement, a transaction holding a lock on one of its tables for longer than ddl_lock_timeout is waited for
-- instead of queued behind. These are the runner's methods for it (installed into its class by luamig.runtime);
-- the executor says whether it can (guards_locks) and who holds locks (blockers).
local core = require("luamig.core")
local lock_plan = require("luamig.lock_plan")

local format, concat, ipairs, tostring, pcall, error = string.format, table.concat, ipairs, tostring, pcall, error
local floor, random, pairs = math.floor, math.random, pairs

local Methods = {}

-- exec_statement(sql, params): one statement of an op. Outside a transaction (a migration that left it), a
-- statement that gave up waiting for a table lock is tried again after a back-off, up to ddl_lock_retries times.
function Methods:exec_statement(sql, params)
  local x, step = self.x, self.step
  if not (step and step.detached) or x:in_transaction() then return x:exec(sql, params) end
  while true do
    local ok, err = pcall(x.exec, x, sql, params)
    if ok then return err end
    step.lock_tries = step.lock_tries or 0
    if not x:lock_timed_out(err) or step.lock_tries >= self:lock_retries() then error(err, 0) end
    step.lock_tries = step.lock_tries + 1
    local wait, o = self:backoff(step.lock_tries), self.last_op
    local tables = lock_plan.tables(o)
    self.warn(format("%s: lock timeout on %s (%s); retry %d of %d of the statement in %.1f s%s",
      step.direction .. " " .. step.id, self:tables_text(tables), o.op == "execute" and "execute"
      or require("luamig.ops").label(o), step.lock_tries, self:lock_retries(), wait, self:blocked_by(tables, "; ")))
    require("luamig.wait").sleep(wait)
    x:clean_after_lock_timeout(self.last_op)
  end
end

-- Lock queues ---------------------------------------------------------------------------------------------------

function Methods:lock_retries() return floor(self.cfg.ddl_lock_retries or 5) end

-- backoff(k) -> seconds before retry k: from 1 s, doubling, at most 30 s, with +-25% jitter
function Methods.backoff(_, k)
  local base = 2 ^ (k - 1)
  if base > 30 then base = 30 end
  return base * (0.75 + 0.5 * random())
end

function Methods.tables_text(_, tables)
  if #tables == 0 then return "its tables" end
  return concat(tables, ", ")
end

-- blocked_by(tables, prefix) -> "prefix" .. who holds locks on the tables (pid, state, time in the transaction,
-- application_name, query), or ""
function Methods:blocked_by(tables, prefix)
  local ok, list = pcall(self.x.blockers, self.x, tables, 0)
  if not ok or #list == 0 then return "" end
  local parts = {}
  for i, b in ipairs(list) do
    if i > 3 then
      parts[#parts + 1] = format("and %d more", #list - 3)
      break
    end
    parts[#parts + 1] = format("pid %s (%s, %s s in a transaction, application_name '%s', on %s): %s", tostring(b.pid),
      tostring(b.state), tostring(b.secs), tostring(b.application_name or ""), tostring(b.relname), tostring(b.query))
  end
  return prefix .. "blocked by " .. concat(parts, "; ")
end

-- touched_tables(r, direction) -> the tables a migration's ops lock (its op values, recorded without running them)
function Methods:touched_tables(r, direction)
  -- (a migration whose code fails without a database still names the tables of the ops it got to)
  local entries, _, partial = require("luamig.lint").record(r, direction, self.dialect, self.cfg)
  entries = entries or partial
  local seen, out = {}, {}
  for _, e in ipairs(entries or {}) do
    for _, t in ipairs(lock_plan.tables(e.o)) do
      if not seen[t] then
        seen[t] = true
        out[#out + 1] = t
      end
    end
  end
  return out
end

-- guarded_step(...): run_step under ddl_lock_timeout. Before the first statement, a transaction that has held a lock
-- on one of the migration's tables longer than ddl_lock_timeout is waited for (with the retries' back-off) instead of
-- queued behind; a step rolled back by a lock timeout runs again after a back-off, ddl_lock_retries times in all.
function Methods:guarded_step(id, direction, expected, resume)
  local x, cfg = self.x, self.cfg
  if self.outer_tx or not x:guards_locks() then return self:run_step(id, direction, expected, resume) end
  local r = self.graph:get(id)
  local label = self:step_label(direction, id, r)
  local timeout, retries = cfg.ddl_lock_timeout, self:lock_retries()
  -- held_long() -> whether a session holds a lock on one of the migration's tables in a transaction open longer
  -- than ddl_lock_timeout. The cheap look first (the oldest transaction of any other session; from its age, until
  -- when no transaction can be that old: no look is needed before then); the migration's tables, known from its op
  -- values (its code run a second time), only when some transaction is old enough.
  local tables
  local function held_long()
    local now = core.clock()
    if self.no_old_transaction_until and now < self.no_old_transaction_until then return false end
    local ok, age = pcall(x.oldest_transaction, x)
    if not ok then return false end
    if not age or age <= timeout then
      self.no_old_transaction_until = now + timeout - (age or 0)
      return false
    end
    tables = tables or self:touched_tables(r, direction)
    local list
    ok, list = pcall(x.blockers, x, tables, timeout)
    return ok and #list > 0
  end
  local tries, runs = 0, 0
  while true do
    while tries < retries do
      if not held_long() then break end
      tries = tries + 1
      local wait = self:backoff(tries)
      self.warn(format("%s: %s is locked by a transaction open longer than ddl_lock_timeout (%g s): waiting %.1f s "
        .. "instead of queueing (retry %d of %d)%s", label, self:tables_text(tables), timeout, wait, tries, retries,
        self:blocked_by(tables, "; ")))
      require("luamig.wait").sleep(wait)
    end
    runs = runs + 1
    local res, info = self:run_step(id, direction, expected, resume)
    if res ~= nil or not info or not info.lock_timeout then return res, info end
    tables = tables or self:touched_tables(r, direction)
    local failed_on = info.op and lock_plan.tables(info.op) or tables
    if #failed_on == 0 then failed_on = tables end
    if tries >= retries then
      info.msg = format("%s failed: lock timeout on %s after %d attempt(s) (ddl_lock_timeout = %g s, ddl_lock_retries "
        .. "= %d)%s", label, self:tables_text(failed_on), runs, timeout, retries,
        self:blocked_by(failed_on, "; "))
      return nil, info
    end
    tries = tries + 1
    local wait = self:backoff(tries)
    self.warn(format("%s: lock timeout on %s, rolled back; retry %d of %d in %.1f s%s", label,
      self:tables_text(failed_on), tries, retries, wait, self:blocked_by(failed_on, "; ")))
    require("luamig.wait").sleep(wait)
  end
end

local function install(Runner)
  for k, f in pairs(Methods) do Runner[k] = f end
end

return { install = install }
