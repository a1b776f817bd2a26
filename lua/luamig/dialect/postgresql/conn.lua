-- A PostgreSQL connection through libpq (luamig.core.pg_connect), with what the runner needs on top: the SQL
-- luamig and migrations write uses ? and :name placeholders where libpq wants $1, and --timeout's deadline is a
-- statement_timeout for what is left of the time.
local core = require("luamig.core")
local url = require("luamig.url")
local sql_text = require("luamig.sql_text")

local format, floor, ceil, max, setmetatable = string.format, math.floor, math.ceil, math.max, setmetatable

local PgConn = {}
PgConn.__index = PgConn

function PgConn:exec(sql, params)
  if params == nil then return self.raw:exec(sql) end
  local text, values, n = sql_text.numbered(sql, params)
  if not text then return nil, values, "22023", sql end
  return self.raw:exec(text, values, n)
end

function PgConn:query(sql, params)
  if params == nil then return self.raw:query(sql) end
  local text, values, n = sql_text.numbered(sql, params)
  if not text then return nil, values, "22023" end
  return self.raw:query(text, values, n)
end

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
  local ok, err = self.raw:exec(format("SET statement_timeout = %d", ms))
  if not ok then return nil, err end
  return true
end

function PgConn:in_transaction() return self.raw:in_transaction() end
function PgConn:close() return self.raw:close() end

-- connect(u, cfg, shown) -> { conn, url = shown }, or nil, message
local function connect(u, cfg, shown)
  local raw, msg = core.pg_connect(url.conninfo(u))
  if not raw then return nil, format("cannot connect to %s: %s", shown, url.mask(msg or "")) end
  local conn = setmetatable({ raw = raw, statement_timeout_ms = floor((cfg.statement_timeout or 0) * 1000) }, PgConn)
  if conn.statement_timeout_ms > 0 then
    local ok, serr = conn:exec(format("SET statement_timeout = %d", conn.statement_timeout_ms))
    if not ok then
      raw:close()
      return nil, format("cannot set statement_timeout on %s: %s", shown, serr)
    end
  end
  return { conn = conn, url = shown }
end

return { connect = connect }
