-- PostgreSQL's migration lock: one luamig run at a time per database, schema and version table, in one of four
-- modes (luamig.dialect.postgresql.server.lock_mode picks one for auto).
--
-- session: a session-level pg_try_advisory_lock on a 64-bit key the server derives from (database, schema,
--   version table), polled in autocommit with back-off up to lock_timeout (never a blocking call inside an open
--   transaction, which a CREATE INDEX CONCURRENTLY in the running one would wait for). The server drops it when the
--   session ends, even by a kill. Behind a transaction pooler it does not hold: the unlock then answers false,
--   which release() reports.
-- transaction: pg_try_advisory_xact_lock on the same key, polled inside each migration's own transaction, after
--   which the runner re-reads the version rows; a migration that runs outside a transaction holds the lease for
--   its time instead, and the others wait for it.
-- lease: a row of luamig_lock (in the version table's schema) taken with one upsert and held while
--   owner = me AND expires_at > clock_timestamp(); a heartbeat renews it on a connection of its own (a thread of
--   the C core); every version-row change renews it in its own transaction on the same condition (the fence), so
--   a runner whose lease lapsed aborts instead of applying twice.
-- none: no lock.
local core = require("luamig.core")
local wait = require("luamig.wait")

local format, min, random, tostring = string.format, math.min, math.random, tostring

local KEY = "hashtextextended(current_database() || '.' || coalesce(current_schema(), '') || '.' || ?, 0)"

-- holder(conn, vt) -> pid of the session holding the session lock, or nil
local function holder(conn, vt)
  local rows = conn:query("SELECT l.pid FROM pg_catalog.pg_locks l WHERE l.locktype = 'advisory' AND l.granted "
    .. "AND l.classid::bigint = ((" .. KEY .. ") >> 32) & 4294967295 AND l.objid::bigint = (" .. KEY .. ") & 4294967295 "
    .. "AND l.objsubid = 1 AND l.pid <> pg_backend_pid() LIMIT 1", { vt, vt })
  return rows and rows[1] and rows[1].pid
end

local function quote(name) return '"' .. name:gsub('"', '""') .. '"' end

-- poll(cfg, try, busy, cap) -> true, or nil, message: try() -> true when taken, or nil, message when it failed, or
-- false; busy(first, last) says who holds it (first: once, for the waiting line; last: for the failure). The
-- waits double from 25 ms up to cap seconds (default 1).
local function poll(cfg, try, busy, cap)
  local deadline = core.clock() + (cfg.lock_timeout or 60)
  local delay, told = 0.025, false
  while true do
    local got, err = try()
    if got then return true end
    if got == nil then return nil, err end
    local now = core.clock()
    if now >= deadline then return nil, busy(false) end
    if not told then
      busy(true)
      told = true
    end
    -- (jitter, so that runners that started together do not poll in step)
    wait.sleep(min(delay * (0.75 + random() * 0.5), deadline - now))
    delay = min(delay * 2, cap or 1)
  end
end

-- lease_cap(cfg) -> the longest wait between two looks at a lease held by another run: half a heartbeat (at most
-- 1 s), so that a lease left behind by a run that died is taken within TTL + heartbeat of its last renewal
local function lease_cap(cfg) return min(1, (cfg.lease_heartbeat or 5) / 2) end

local function session(db, cfg, say)
  local conn, vt = db.conn, cfg.version_table
  local ok, err = poll(cfg, function()
    local rows, qerr = conn:query("SELECT pg_try_advisory_lock(" .. KEY .. ") AS locked", { vt })
    if not rows then return nil, format("cannot take the migration lock on %s: %s", db.url, qerr) end
    return rows[1].locked
  end, function(first)
    local pid = holder(conn, vt)
    local who = pid and format(" (server pid %d)", pid) or ""
    if first then
      if say then say(format("waiting for the migration lock on %s, held by another luamig run%s", db.url, who)) end
      return
    end
    return format("could not get the migration lock on %s within %g s: another luamig run%s is migrating it",
      db.url, cfg.lock_timeout or 60, who)
  end)
  if not ok then return nil, err end
  return { mode = "session", locked = true, release = function(lost)
    if lost then return true end
    local res, uerr = conn:query("SELECT pg_advisory_unlock(" .. KEY .. ") AS unlocked", { vt })
    if not res then return nil, format("could not release the migration lock on %s: %s", db.url, uerr) end
    if not res[1].unlocked then
      return nil, format("the migration lock on %s was not held by this session when luamig released it: is a "
        .. "connection pooler in transaction mode between luamig and the server? Then the lock did not keep "
        .. "other runs out; use lock = auto (a lease behind a pooler) or connect directly", db.url)
    end
    return true
  end }
end

-- The lease ----------------------------------------------------------------------------------------------------

-- owner_id() -> this process's lease owner, host:pid:random (one per process: a run that reconnects takes its
-- own lease back at once rather than waiting for it to run out)
local my_owner
local function owner_id()
  if not my_owner then my_owner = format("%s:%d:%08x", core.hostname() or "?", core.getpid(), random(0, 0x7fffffff)) end
  return my_owner
end

-- lease_place(db, cfg) -> the quoted lease table, the lease's name (schema.version_table); or nil, message.
-- The table is made when missing, under a transaction-level advisory lock (which a pooler keeps with its
-- transaction) so that runners starting together do not race on CREATE TABLE.
local function lease_place(db, cfg)
  local conn = db.conn
  local rows, err = conn:query("SELECT current_schema() AS s, to_regclass(quote_ident(current_schema()) || "
    .. "'.luamig_lock') IS NOT NULL AS present")
  if not rows then return nil, format("cannot look for luamig_lock on %s: %s", db.url, err) end
  local schema = rows[1].s
  if not schema then
    return nil, format("%s: no schema of the search_path exists, so there is nowhere to keep the migration lease",
      db.url)
  end
  local tbl = quote(schema) .. ".luamig_lock"
  if not rows[1].present then
    local sql = format("%s; SET LOCAL lock_timeout = %d; SELECT pg_advisory_xact_lock(%s); CREATE TABLE IF NOT "
      .. "EXISTS %s (name TEXT PRIMARY KEY, owner TEXT NOT NULL, acquired_at TIMESTAMPTZ NOT NULL, expires_at "
      .. "TIMESTAMPTZ NOT NULL); COMMIT", conn.begin_sql, math.floor((cfg.lock_timeout or 60) * 1000),
      KEY:gsub("%?", function() return "'" .. cfg.version_table:gsub("'", "''") .. "'" end), tbl)
    local ok, cerr = conn.raw:exec(sql)
    if not ok then
      if conn.raw:in_transaction() then conn.raw:exec("ROLLBACK") end
      return nil, format("cannot create %s on %s: %s", tbl, db.url, cerr)
    end
  end
  return tbl, schema .. "." .. cfg.version_table
end

local function renew_sql(tbl)
  return format("UPDATE %s SET expires_at = clock_timestamp() + make_interval(secs => $3::float8) WHERE name = $1 "
    .. "AND owner = $2 AND expires_at > clock_timestamp()", tbl)
end

-- take_lease(db, cfg, say) -> a lease { tbl, name, owner, heartbeat, fence(x), release() }, or nil, message
local function take_lease(db, cfg, say, tbl, name)
  local conn = db.conn
  local ttl = cfg.lease_ttl or 30
  local me = owner_id()
  local upsert = format("INSERT INTO %s (name, owner, acquired_at, expires_at) VALUES (?, ?, clock_timestamp(), "
    .. "clock_timestamp() + make_interval(secs => ?::float8)) ON CONFLICT (name) DO UPDATE SET owner = "
    .. "excluded.owner, acquired_at = excluded.acquired_at, expires_at = excluded.expires_at WHERE %s.expires_at "
    .. "<= clock_timestamp() OR %s.owner = excluded.owner RETURNING owner", tbl, tbl, tbl)
  local ok, err = poll(cfg, function()
    local rows, qerr = conn:query(upsert, { name, me, ttl })
    if not rows then return nil, format("cannot take the migration lease on %s: %s", db.url, qerr) end
    return rows[1] ~= nil
  end, function(first)
    local rows = conn:query(format("SELECT owner, ceil(extract(epoch FROM expires_at - clock_timestamp()))::int "
      .. "AS secs FROM %s WHERE name = ?", tbl), { name })
    local who = rows and rows[1] and format(" (%s, for %d s more unless renewed)", rows[1].owner, rows[1].secs) or ""
    if first then
      if say then say(format("waiting for the migration lease on %s, held by another luamig run%s", db.url, who)) end
      return
    end
    return format("could not get the migration lease on %s within %g s: another luamig run%s is migrating it",
      db.url, cfg.lock_timeout or 60, who)
  end, lease_cap(cfg))
  if not ok then return nil, err end
  local renew = renew_sql(tbl)
  local fence_sql = renew:gsub("%$%d", "?")
  local hb, herr = core.pg_heartbeat(conn.conninfo, renew, { name, me, tostring(ttl) }, cfg.lease_heartbeat or 5)
  if not hb then
    conn:exec(format("DELETE FROM %s WHERE name = ? AND owner = ?", tbl), { name, me })
    return nil, format("cannot start the migration lease's heartbeat on %s: %s", db.url, herr)
  end
  local lease = { tbl = tbl, name = name, owner = me, heartbeat = hb }
  -- fence(x): inside the transaction of a version-row change: the lease is still ours, and renewed; raises
  -- (through x:exec) when it is not, so the change is rolled back
  lease.fence = function(x)
    local changed = x:exec(fence_sql, { ttl, name, me })
    if changed ~= 1 then
      local state, why = hb:status()
      require("luamig.executor").sql_error("UPDATE luamig_lock",
        format("the migration lease on %s lapsed (%s), so another luamig run may have taken over: this change was "
          .. "not committed", db.url, state == "lost" and why or format("not renewed within %g s", ttl)), "LEASE")
    end
  end
  lease.release = function(lost)
    hb:stop()
    -- (the connection is gone: the lease runs out by itself, or this process takes it back when it reconnects)
    if lost then return true end
    local rows, derr = conn:query(format("DELETE FROM %s WHERE name = ? AND owner = ? RETURNING "
      .. "(expires_at > clock_timestamp()) AS live", tbl), { name, me })
    if not rows then return nil, format("could not release the migration lease on %s: %s", db.url, derr) end
    if not rows[1] or not rows[1].live then
      return nil, format("the migration lease on %s was %s when luamig released it: another luamig run may have "
        .. "migrated meanwhile", db.url, rows[1] and "expired" or "not ours any more")
    end
    return true
  end
  return lease
end

local function lease(db, cfg, say)
  local tbl, name = lease_place(db, cfg)
  if not tbl then return nil, name end
  local l, err = take_lease(db, cfg, say, tbl, name)
  if not l then return nil, err end
  return { mode = "lease", locked = true, release = l.release, fence = l.fence, lease = l }
end

-- transaction: the advisory lock of each migration's transaction; a migration outside a transaction takes the
-- lease, which the others' transactions wait for
local function transaction(db, cfg, say)
  local tbl, name = lease_place(db, cfg)
  if not tbl then return nil, name end
  local vt = cfg.version_table
  local lock = { mode = "transaction", locked = false, release = function() return true end }
  local held
  local others = format("SELECT owner FROM %s WHERE name = ? AND expires_at > clock_timestamp()", tbl)
  -- in_step(x): right after BEGIN: the transaction's advisory lock, and no lease of another run; true, or nil, msg
  -- in_step(x, begin, rollback): begin() opens the transaction again after rollback() ended it for a wait
  lock.in_step = function(x, begin, rollback)
    local told = false
    -- (a run holding the lease records its migration in a transaction of its own: the others wait for the lease)
    if held then return true end
    return poll(cfg, function()
      local bok, berr = begin()
      if not bok then return nil, format("cannot start a transaction on %s: %s", db.url, berr) end
      local rows, err = x.conn:query("SELECT pg_try_advisory_xact_lock(" .. KEY .. ") AS locked", { vt })
      if not rows then return nil, format("cannot take the migration lock on %s: %s", db.url, err) end
      local free = rows[1].locked
      if free then
        local l, lerr = x.conn:query(others, { name })
        if not l then return nil, format("cannot read %s on %s: %s", tbl, db.url, lerr) end
        free = l[1] == nil
      end
      if free then return true end
      rollback()
      return false
    end, function(first)
      if first then
        if say and not told then say(format("waiting for the migration lock on %s, held by another luamig run", db.url)) end
        told = true
        return
      end
      return format("could not get the migration lock on %s within %g s: another luamig run is migrating it",
        db.url, cfg.lock_timeout or 60)
    end, lease_cap(cfg))
  end
  -- lease_live(x) -> whether another run holds the lease (its migration outside a transaction is running)
  lock.lease_live = function(x)
    if held then return false end
    local l = x.conn:query(others, { name })
    return l ~= nil and l[1] ~= nil
  end
  -- detaching(): a migration about to leave its transaction holds the lease until attached()
  lock.detaching = function()
    local l, err = take_lease(db, cfg, say, tbl, name)
    if not l then error(err, 0) end
    held = l
    lock.fence = l.fence
  end
  lock.attached = function(lost)
    if not held then return true end
    local l = held
    held, lock.fence = nil, nil
    return l.release(lost)
  end
  lock.release = function(lost) return lock.attached(lost) end
  return lock
end

local MODES = { session = session, lease = lease, transaction = transaction,
  none = function() return { mode = "none", locked = false, release = function() return true end } end }

-- acquire(db, cfg, say, mode) -> the lock { mode, locked, release(), fence?, in_step?, detaching?, attached? },
-- or nil, message. say(line) reports waiting, once.
local function acquire(db, cfg, say, mode)
  return MODES[mode](db, cfg, say)
end

-- held_by(db, cfg) -> the server pid of another session holding the session lock, or nil
local function held_by(db, cfg)
  return holder(db.conn, cfg.version_table)
end

return { acquire = acquire, held_by = held_by, MODES = MODES }
