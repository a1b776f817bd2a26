-- Connecting to the database a URL names. Returns the driver's connection (exec, query, bulk_insert, close)
-- and what the runner needs to know about it; every message shows the URL with its password masked.
local core = require("luamig.core")
local url = require("luamig.url")
local dialects = require("luamig.dialect")

local format, floor = string.format, math.floor

-- connect(cfg) -> { conn, dialect, url = masked url, path? }, or nil, message
local function connect(cfg)
  local u, err = url.parse(cfg.url)
  if not u then return nil, err end
  local shown = url.mask(cfg.url)
  if u.dialect == "postgresql" and not core.pg_connect then
    return nil, format("cannot connect to %s: this build of luamig has no PostgreSQL driver", shown)
  end
  local d, derr = dialects.get(u.dialect)
  if not d then return nil, format("cannot use %s: %s", shown, derr) end
  if u.dialect == "sqlite" then
    local conn, msg = core.sqlite_open(u.path, floor((cfg.lock_timeout or 60) * 1000))
    if not conn then return nil, format("cannot open SQLite database %s: %s", u.path, msg) end
    return { conn = conn, dialect = d, url = shown, path = u.path }
  end
  local conn, msg = core.pg_connect(url.conninfo(u))
  if not conn then return nil, format("cannot connect to %s: %s", shown, url.mask(msg or "")) end
  return { conn = conn, dialect = d, url = shown }
end

return { connect = connect }
