-- PostgreSQL's migration lock: one luamig run at a time per database, schema and version table. A session-level pg_try_advisory_lock on a 64-bit key the server derives from (database, schema,
-- version table), polled with back-off up to lock_timeout. Polling in autocommit (never a blocking lock call
-- inside an open transaction) keeps a waiting runner from holding anything a CREATE INDEX CONCURRENTLY in the
-- running one would wait for, and the server drops the lock when a runner's session ends, even by a kill.
local core = require("luamig.core")

local format, min = string.format, math.min

local KEY = "hashtextextended(current_database() || '.' || current_schema() || '.' || ?, 0)"

-- holder(conn, vt) -> pid of the session holding the lock, or nil
local function holder(conn, vt)
  local rows = conn:query("SELECT l.pid FROM pg_catalog.pg_locks l WHERE l.locktype = 'advisory' AND l.granted "
    .. "AND l.classid::bigint = ((" .. KEY .. ") >> 32) & 4294967295 AND l.objid::bigint = (" .. KEY .. ") & 4294967295 "
    .. "AND l.objsubid = 1 AND l.pid <> pg_backend_pid() LIMIT 1", { vt, vt })
  return rows and rows[1] and rows[1].pid
end

-- acquire(db, cfg, say) -> a release function, or nil, message. say(line) reports waiting, once.
-- release() -> true, or nil, message: the message says the lock was not held by this session when it was given back
-- (the mark of a connection pooler handing luamig's statements to other server connections) or the unlock failed.
local function acquire(db, cfg, say)
  local conn, vt = db.conn, cfg.version_table
  local deadline = core.clock() + (cfg.lock_timeout or 60)
  local delay, told = 0.025, false
  while true do
    local rows, err = conn:query("SELECT pg_try_advisory_lock(" .. KEY .. ") AS locked", { vt })
    if not rows then return nil, format("cannot take the migration lock on %s: %s", db.url, err) end
    if rows[1].locked then
      return function()
        local res, uerr = conn:query("SELECT pg_advisory_unlock(" .. KEY .. ") AS unlocked", { vt })
        if not res then return nil, format("could not release the migration lock on %s: %s", db.url, uerr) end
        if not res[1].unlocked then
          return nil, format("the migration lock on %s was not held by this session when luamig released it: is a "
            .. "connection pooler in transaction mode between luamig and the server? Then the lock did not keep "
            .. "other runs out; connect directly for migrations", db.url)
        end
        return true
      end
    end
    local now = core.clock()
    if now >= deadline then
      local pid = holder(conn, vt)
      return nil, format("could not get the migration lock on %s within %g s: another luamig run%s is migrating it",
        db.url, cfg.lock_timeout or 60, pid and format(" (server pid %d)", pid) or "")
    end
    if not told and say then
      local pid = holder(conn, vt)
      say(format("waiting for the migration lock on %s, held by another luamig run%s", db.url,
        pid and format(" (server pid %d)", pid) or ""))
      told = true
    end
    core.sleep(min(delay, deadline - now))
    delay = min(delay * 2, 1)
  end
end

-- held_by(db, cfg) -> the server pid of another session holding the migration lock, or nil
local function held_by(db, cfg)
  return holder(db.conn, cfg.version_table)
end

return { acquire = acquire, held_by = held_by }
