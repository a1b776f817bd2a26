-- Connecting to the database a URL names: the URL's dialect opens the driver's connection (exec, query,
-- bulk_insert, set_deadline, close). Every message shows the URL with its password masked.
local url = require("luamig.url")
local dialects = require("luamig.dialect")

local format = string.format

-- connect(cfg) -> { conn, dialect, url = masked url, path?, fresh? }, or nil, message
local function connect(cfg)
  local u, err = url.parse(cfg.url)
  if not u then return nil, err end
  local shown = url.mask(cfg.url)
  local d, derr = dialects.get(u.dialect)
  if not d then return nil, format("cannot use %s: %s", shown, derr) end
  local db, cerr = d:connect(u, cfg, shown)
  if not db then return nil, cerr end
  db.dialect = d
  return db
end

-- close(db): closes the connection; a database file this connection created and never wrote to is removed
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
