-- A PostgreSQL connection through libpq (luamig.core.pg_connect), with what the runner needs on top: the SQL
-- luamig and migrations write uses ? and :name placeholders where libpq wants $1, and --timeout's deadline is a
-- statement_timeout for what is left of the time.
--
-- At connect it learns what it is talking to in one query (luamig.dialect.postgresql.server): whether the server
-- is a read-only standby, which engine it is, and whether a transaction pooler stands between (libpq's backend
-- pid against the server's, and, when the lock mode is auto, the server's in two transactions). Behind a pooler
-- nothing is set for the session, which the pooler would hand to other clients: statement_timeout and the
-- search_path of --schema go with SET LOCAL into every transaction (begin_sql), and a statement outside one gets a
-- transaction of its own for them.
local core = require("luamig.core")
local url = require("luamig.url")
local sql_text = require("luamig.sql_text")
local wait = require("luamig.wait")

local format, floor, ceil, max, setmetatable = string.format, math.floor, math.ceil, math.max, setmetatable

local PgConn = {}
PgConn.__index = PgConn

-- send(raw, sql, values, n, kind) -> what raw:exec / raw:query return, the result waited for in a fleet's worker
-- without blocking the other targets
local function send(raw, sql, values, n, kind)
  if not wait.cooperative() then
    if kind == "exec" then return raw:exec(sql, values, n) end
    return raw:query(sql, values, n)
  end
  local ok, err = raw:send(sql, values, n)
  if not ok then return nil, err, "08000", sql end
  while raw:busy() do wait.readable(raw:socket()) end
  if kind == "exec" then return raw:exec_result(sql) end
  return raw:query_result()
end

-- run(self, sql, params, kind): one statement; behind a pooler with SET LOCALs to make, a statement outside a
-- transaction runs in one of its own
function PgConn:run(sql, params, kind)
  local text, values, n = sql, nil, nil
  if params ~= nil then
    text, values, n = sql_text.numbered(sql, params)
    if not text then return nil, values, "22023", sql end
  end
  local raw = self.raw
  if self.local_sets and not raw:in_transaction() then
    local ok, err, code = send(raw, self.begin_sql, nil, nil, "exec")
    if not ok then return nil, err, code, sql end
    local a, b, c, d = send(raw, text, values, n, kind)
    local ok2, err2 = send(raw, a and "COMMIT" or "ROLLBACK", nil, nil, "exec")
    if a and not ok2 then return nil, err2, "08000", "COMMIT" end
    return a, b, c, d
  end
  return send(raw, text, values, n, kind)
end

function PgConn:exec(sql, params) return self:run(sql, params, "exec") end
function PgConn:query(sql, params) return self:run(sql, params, "query") end

function PgConn:bulk_insert(sql, columns, rows)
  local k = 0
  local text = sql:gsub("%?", function()
    k = k + 1
    return "$" .. k
  end)
  return self.raw:bulk_insert(text, columns, rows)
end

-- set_deadline(t): a statement running past core.clock() time t is cancelled by the server (statement_timeout set
-- to what is left of the time); nil restores the configured statement_timeout. true, or nil, message. (In a
-- transaction a failure aborted, the restore fails, and the rollback undoes the SET anyway.)
function PgConn:set_deadline(t)
  -- (rounded up, and a millisecond more: the server never cancels before t, so the runner, seeing the clock past
  -- t, can tell that the deadline ended the statement)
  local ms = t and max(1, ceil((t - core.clock()) * 1000) + 1) or self.statement_timeout_ms
  local scope = ""
  if self.pooled then
    -- a session setting would stay with the pooler's server connection: only a transaction's own
    if not self.raw:in_transaction() then return true end
    scope = "LOCAL "
  end
  local ok, err = self.raw:exec(format("SET %sstatement_timeout = %d", scope, ms))
  if not ok then return nil, err end
  return true
end

function PgConn:in_transaction() return self.raw:in_transaction() end
function PgConn:close() return self.raw:close() end

-- lost(code) -> whether a failure with this SQLSTATE means the session is gone or the server cannot take writes
-- any more (a failover demoted it): the connection class 08, the server shutting down or restarting (57P01 to
-- 57P03), a read-only transaction (25006); or a connection libpq knows is broken
function PgConn:lost(code)
  if self.raw:broken() then return true end
  if type(code) ~= "string" then return false end
  return code:sub(1, 2) == "08" or code == "57P01" or code == "57P02" or code == "57P03" or code == "25006"
end

-- connect(u, cfg, shown) -> { conn, url = shown, server = what luamig.dialect.postgresql.server learned }, or nil,
-- message
local function connect(u, cfg, shown)
  local info = url.conninfo(u)
  local raw, msg = core.pg_connect(info)
  if not raw then return nil, format("cannot connect to %s: %s", shown, url.mask(msg or "")) end
  local conn = setmetatable({ raw = raw, statement_timeout_ms = floor((cfg.statement_timeout or 0) * 1000),
    conninfo = info, begin_sql = "BEGIN" }, PgConn)
  local server, serr = require("luamig.dialect.postgresql.server").probe(conn, cfg)
  if not server then
    raw:close()
    return nil, format("cannot read what %s is: %s", shown, serr)
  end
  conn.pooled = server.pooled
  local sets = {}
  if conn.statement_timeout_ms > 0 then sets[#sets + 1] = format("statement_timeout = %d", conn.statement_timeout_ms) end
  if cfg.schema then
    local rows, qerr = conn:query("SELECT 1 AS present FROM pg_catalog.pg_namespace WHERE nspname = ?", { cfg.schema })
    if not rows or not rows[1] then
      raw:close()
      return nil, rows and format("schema %s does not exist on %s", cfg.schema, shown)
        or format("cannot look for schema %s on %s: %s", cfg.schema, shown, qerr)
    end
    sets[#sets + 1] = "search_path TO " .. format('"%s"', (cfg.schema:gsub('"', '""')))
  end
  if #sets > 0 then
    if conn.pooled then
      local locals = {}
      for i, set in ipairs(sets) do locals[i] = "SET LOCAL " .. set end
      conn.begin_sql = "BEGIN; " .. table.concat(locals, "; ")
      conn.local_sets = true
    else
      for _, set in ipairs(sets) do
        local ok, err = conn:exec("SET " .. set)
        if not ok then
          raw:close()
          return nil, format("cannot SET %s on %s: %s", set, shown, err)
        end
      end
    end
  end
  return { conn = conn, url = shown, server = server }
end

return { connect = connect }
