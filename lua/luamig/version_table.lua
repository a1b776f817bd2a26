-- luamig's own tables: the version table (Alembic's shape: version_num VARCHAR(32) PRIMARY KEY, one row per head)
-- and luamig_history (one row per applied, reverted or stamped revision with its checksum and duration).
-- Everything here returns statements; the runner executes them inside the migration's own transaction.
local core = require("luamig.core")

local format, ipairs, sort, concat = string.format, ipairs, table.sort, table.concat

local HISTORY = "luamig_history"

local function create_sql(d, vt)
  return {
    format("CREATE TABLE IF NOT EXISTS %s (\n\tversion_num VARCHAR(32) NOT NULL,\n\tCONSTRAINT %s PRIMARY KEY (version_num)\n)",
      d:quote(vt), d:quote(vt .. "_pkc")),
    format("CREATE TABLE IF NOT EXISTS %s (\n\tid %s,\n\tversion_table VARCHAR(63) NOT NULL,\n\trevision VARCHAR(32) NOT NULL,\n"
      .. "\tdown_revision VARCHAR(255),\n\tdirection VARCHAR(10) NOT NULL,\n\tstatus VARCHAR(12) NOT NULL,\n"
      .. "\tmessage VARCHAR(255),\n\tfilename VARCHAR(255),\n\tchecksum CHAR(64),\n\tapplied_at VARCHAR(32) NOT NULL,\n"
      .. "\tduration_ms INTEGER,\n\tluamig_version VARCHAR(32)\n)", d:quote(HISTORY), d.serial_pk),
  }
end

-- exists(conn, d, vt) -> true/false, or nil, message
local function exists(conn, d, vt)
  local rows, err = conn:query(d.table_exists_sql, { vt })
  if not rows then return nil, err end
  return #rows > 0
end

-- read(conn, d, vt) -> sorted list of version_num values ({} when the table does not exist), or nil, message
local function read(conn, d, vt)
  local ok, err = exists(conn, d, vt)
  if ok == nil then return nil, err end
  if not ok then return {}, false end
  local rows, qerr = conn:query(format("SELECT version_num FROM %s", d:quote(vt)))
  if not rows then return nil, qerr end
  local out = {}
  for i, r in ipairs(rows) do out[i] = r.version_num end
  sort(out)
  return out, true
end

-- change_sql(d, vt, old, new) -> statements moving the rows from the set old to the set new: UPDATE where a row
-- is replaced, DELETE where one goes, INSERT where one comes. Each UPDATE and DELETE must touch exactly one row
-- (expect = 1): anything else means the table changed under us.
local function change_sql(d, vt, old, new)
  local in_old, in_new = {}, {}
  for _, v in ipairs(old) do in_old[v] = true end
  for _, v in ipairs(new) do in_new[v] = true end
  local removed, added = {}, {}
  for _, v in ipairs(old) do if not in_new[v] then removed[#removed + 1] = v end end
  for _, v in ipairs(new) do if not in_old[v] then added[#added + 1] = v end end
  local out = {}
  local q = d:quote(vt)
  local n = math.min(#removed, #added)
  for i = 1, n do
    out[#out + 1] = { sql = format("UPDATE %s SET version_num = ? WHERE version_num = ?", q), params = { added[i], removed[i] }, expect = 1 }
  end
  for i = n + 1, #removed do
    out[#out + 1] = { sql = format("DELETE FROM %s WHERE version_num = ?", q), params = { removed[i] }, expect = 1 }
  end
  for i = n + 1, #added do
    out[#out + 1] = { sql = format("INSERT INTO %s (version_num) VALUES (?)", q), params = { added[i] } }
  end
  return out
end

-- history_sql(d, row) -> the INSERT of one luamig_history row
local HISTORY_COLUMNS = { "version_table", "revision", "down_revision", "direction", "status", "message", "filename",
  "checksum", "applied_at", "duration_ms", "luamig_version" }

local function history_sql(d, row)
  local marks, params = {}, {}
  for i, c in ipairs(HISTORY_COLUMNS) do
    marks[i] = "?"
    local v = row[c]
    if v == nil then v = core.NULL end
    params[i] = v
  end
  return { sql = format("INSERT INTO %s (%s) VALUES (%s)", d:quote(HISTORY), concat(HISTORY_COLUMNS, ", "), concat(marks, ", ")),
    params = params }
end

-- history(conn, d, vt) -> rows of luamig_history for this version table, newest first ({} without the table)
local function history(conn, d, vt)
  local ok, err = exists(conn, d, HISTORY)
  if ok == nil then return nil, err end
  if not ok then return {} end
  return conn:query(format("SELECT * FROM %s WHERE version_table = ? ORDER BY id DESC", d:quote(HISTORY)), { vt })
end

return { create_sql = create_sql, exists = exists, read = read, change_sql = change_sql, history_sql = history_sql,
  history = history, HISTORY = HISTORY }
