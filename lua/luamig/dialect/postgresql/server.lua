-- What a PostgreSQL connection talks to, learned once at connect: a primary or a read-only standby, which engine
-- (PostgreSQL, or a distributed one speaking its protocol: CockroachDB, YugabyteDB, Citus), and whether a
-- transaction pooler stands between luamig and the server.
--
-- A pooler is seen two ways: the backend pid libpq was told at login (BackendKeyData, which PgBouncer makes up)
-- is not the pid of the server process answering; or, when the lock mode is auto, two transactions in a row are
-- answered by different server processes.
local format, find, lower = string.format, string.find, string.lower

local M = {}

-- The engines luamig knows, what their version() says, and what they lack. advisory_locks: session advisory
-- locks that really exclude (CockroachDB's functions have been stubs that always succeed; YugabyteDB has them only
-- from 2.25 behind a flag); transactional_ddl: DDL statements that commit or roll back with their transaction.
M.ENGINES = {
  postgresql = { name = "PostgreSQL", advisory_locks = true, transactional_ddl = true },
  citus = { name = "Citus", advisory_locks = true, transactional_ddl = true,
    note = "Citus: luamig's lock is the coordinator's; DDL that Citus does not propagate to the workers needs "
      .. "run_command_on_workers in the migration" },
  cockroachdb = { name = "CockroachDB", advisory_locks = false, transactional_ddl = false,
    note = "CockroachDB has no transactional DDL: each statement of a migration commits on its own, and a "
      .. "migration that fails half-way stays half-applied (recorded as failed; fix and `luamig upgrade --resume`)" },
  yugabytedb = { name = "YugabyteDB", advisory_locks = false, transactional_ddl = false,
    note = "YugabyteDB runs each DDL statement as a transaction of its own: a migration that fails half-way stays "
      .. "half-applied (recorded as failed; fix and `luamig upgrade --resume`)" },
}

-- detect(version, extensions) -> engine id: version() text and the installed extensions (comma separated)
function M.detect(version, extensions)
  local v = lower(version or "")
  if find(v, "cockroachdb", 1, true) then return "cockroachdb" end
  if find(v, "-yb-", 1, true) or find(v, "yugabyte", 1, true) then return "yugabytedb" end
  for ext in (extensions or ""):gmatch("[^,]+") do
    if ext == "citus" then return "citus" end
  end
  return "postgresql"
end

local PROBE = "SELECT pg_backend_pid() AS pid, pg_is_in_recovery() AS recovery, "
  .. "current_setting('transaction_read_only') AS read_only, version() AS version, "
  .. "(SELECT string_agg(extname, ',') FROM pg_catalog.pg_extension) AS extensions"

-- probe(conn, cfg) -> { pid, recovery, read_only, version, engine, pooled, pooled_why }, or nil, message
function M.probe(conn, cfg)
  local raw = conn.raw
  local rows, err = raw:query(PROBE)
  if not rows then
    -- an engine without pg_is_in_recovery() or pg_extension: what version() says is enough
    rows = raw:query("SELECT version() AS version")
    if not rows then return nil, err end
  end
  local r = rows[1]
  local s = { pid = r.pid, recovery = r.recovery == true, read_only = r.read_only == "on", version = r.version,
    engine = M.detect(r.version, r.extensions) }
  local told = raw:backend_pid()
  if r.pid and told ~= r.pid then
    s.pooled = true
    s.pooled_why = format("the connection's backend pid %d is not the server's %d", told, r.pid)
  elseif r.pid and (cfg.lock or "auto") == "auto" then
    local again = raw:query("SELECT pg_backend_pid() AS pid")
    if again and again[1] and again[1].pid ~= r.pid then
      s.pooled = true
      s.pooled_why = format("two transactions were answered by server pids %d and %d", r.pid, again[1].pid)
    end
  end
  return s
end

-- read_only_message(shown, server) -> why luamig will not migrate this server, or nil when it can
function M.read_only_message(shown, server)
  if server.recovery then
    return format("%s: the server is a read-only standby (in recovery); point luamig at the primary, e.g. with "
      .. "target_session_attrs=read-write", shown)
  end
  if server.read_only then
    return format("%s: the server is read-only (default_transaction_read_only is on); point luamig at a "
      .. "writable primary, e.g. with target_session_attrs=read-write", shown)
  end
  return nil
end

-- lock_mode(cfg, server) -> the lock mode a run uses, and why (what -v says): auto picks session on a direct
-- connection to an engine with advisory locks, else lease
function M.lock_mode(cfg, server)
  local mode = cfg.lock or "auto"
  if mode ~= "auto" then return mode, "lock = " .. mode end
  local e = M.ENGINES[server.engine]
  if not e.advisory_locks then
    return "lease", format("%s has no advisory locks luamig can trust", e.name)
  end
  if server.pooled then return "lease", "a transaction pooler: " .. server.pooled_why end
  return "session", "a direct connection"
end

return M
