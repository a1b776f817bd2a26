-- Connecting to the database a URL names. Returns the driver's connection (exec, query, bulk_insert, close) and
-- what the runner needs to know about it; every message shows the URL with its password masked.
local core = require("luamig.core")
local url = require("luamig.url")
local dialects = require("luamig.dialect")

local format, floor, setmetatable = string.format, math.floor, setmetatable

-- PostgreSQL through libpq: the SQL luamig and migrations write uses ? and :name placeholders, libpq wants $1.
local PgConn = {}
PgConn.__index = PgConn

function PgConn:exec(sql, params)
  if params == nil then return self.raw:exec(sql) end
  local text, values, n = require("luamig.sql_text").numbered(sql, params)
  if not text then return nil, values, "22023", sql end
  return self.raw:exec(text, values, n)
end

function PgConn:query(sql, params)
  local text, values, n = require("luamig.sql_text").numbered(sql, params or {})
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

function PgConn:in_transaction() return self.raw:in_transaction() end
function PgConn:close() return self.raw:close() end

-- connect(cfg) -> { conn, dialect, url = masked url, path? }, or nil, message
local function connect(cfg)
  local u, err = url.parse(cfg.url)
  if not u then return nil, err end
  local shown = url.mask(cfg.url)
  local d, derr = dialects.get(u.dialect)
  if not d then return nil, format("cannot use %s: %s", shown, derr) end
  if u.dialect == "sqlite" then
    -- SQLite creates a missing file on open: remember that, so that a run that ends without writing to it can
    -- remove it again (a failed command leaves no empty database behind)
    local fresh = u.path ~= ":memory:" and u.path ~= "" and not core.filetype(u.path)
    local conn, msg = core.sqlite_open(u.path, floor((cfg.lock_timeout or 60) * 1000))
    if not conn then return nil, format("cannot open SQLite database %s: %s", u.path, msg) end
    return { conn = conn, dialect = d, url = shown, path = u.path, fresh = fresh }
  end
  local raw, msg = core.pg_connect(url.conninfo(u))
  if not raw then return nil, format("cannot connect to %s: %s", shown, url.mask(msg or "")) end
  local conn = setmetatable({ raw = raw }, PgConn)
  if (cfg.statement_timeout or 0) > 0 then
    local ok, serr = conn:exec(format("SET statement_timeout = %d", floor(cfg.statement_timeout * 1000)))
    if not ok then
      raw:close()
      return nil, format("cannot set statement_timeout on %s: %s", shown, serr)
    end
  end
  return { conn = conn, dialect = d, url = shown }
end

-- close(db): closes the connection; a SQLite file this connection created and never wrote to is removed
local function close(db)
  db.conn:close()
  if db.fresh then
    local f = io.open(db.path, "rb")
    local size = f and f:seek("end")
    if f then f:close() end
    if size == 0 then os.remove(db.path) end
  end
end

return { connect = connect, close = close }
