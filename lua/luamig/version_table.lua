-- luamig's own tables: the version table (Alembic's shape: version_num VARCHAR(32) PRIMARY KEY, one row per head)
-- and luamig_history (one row per applied, reverted or stamped revision with its checksum and duration).
-- Everything here returns statements; the runner executes them inside the migration's own transaction.
local schema = require("luamig.schema")

local format, ipairs, sort, concat, find, gsub = string.format, ipairs, table.sort, table.concat, string.find, string.gsub
local tostring, tonumber = tostring, tonumber

local HISTORY = "luamig_history"

-- The SQL luamig writes about one version table in one dialect, made once: a run reads the version rows (and, on
-- SQLite, the unfinished migrations) at every step.
local UNFINISHED = "status IN ('running', 'failed')"
local cached_sql = {}

local function sql_of(d, vt)
  local key = d.name .. "\0" .. vt
  local c = cached_sql[key]
  if not c then
    c = {
      select = format("SELECT version_num FROM %s", d:quote(vt)),
      replace = format("UPDATE %s SET version_num = ? WHERE version_num = ?", d:quote(vt)),
      unfinished = format("SELECT id, revision, direction, status, applied_at, run_by, filename FROM %s "
        .. "WHERE version_table = ? AND %s ORDER BY id", d:quote(HISTORY), UNFINISHED),
    }
    cached_sql[key] = c
  end
  return c
end

local function create_sql(d, vt)
  return {
    format("CREATE TABLE IF NOT EXISTS %s (\n\tversion_num VARCHAR(32) NOT NULL,\n\tCONSTRAINT %s PRIMARY KEY (version_num)\n)",
      d:quote(vt), d:quote(vt .. "_pkc")),
    format("CREATE TABLE IF NOT EXISTS %s (\n\tid %s,\n\tversion_table VARCHAR(63) NOT NULL,\n\trevision VARCHAR(32) NOT NULL,\n"
      .. "\tdown_revision VARCHAR(255),\n\tdirection VARCHAR(10) NOT NULL,\n\tstatus VARCHAR(12) NOT NULL,\n"
      .. "\tmessage VARCHAR(255),\n\tfilename VARCHAR(255),\n\tchecksum CHAR(64),\n\tapplied_at VARCHAR(32) NOT NULL,\n"
      .. "\tduration_ms INTEGER,\n\tluamig_version VARCHAR(32),\n\trun_by VARCHAR(255)\n)", d:quote(HISTORY), d.serial_pk),
    -- the rows of migrations that ran outside a transaction and did not finish: few, looked up at every step
    format("CREATE INDEX IF NOT EXISTS %s ON %s (version_table) WHERE status IN ('running', 'failed')",
      d:quote(HISTORY .. "_unfinished"), d:quote(HISTORY)),
  }
end

-- exists(conn, d, vt) -> true/false, or nil, message
local function exists(conn, d, vt)
  local rows, err = conn:query(d.table_exists_sql, { vt })
  if not rows then return nil, err end
  return #rows > 0
end

-- read(conn, d, vt, known_to_exist) -> sorted list of version_num values ({} when the table does not exist), or
-- nil, message. known_to_exist skips asking sqlite_master, which SQLite scans row by row (a migration run reads the
-- version rows at every step, and that table grows with every migration).
-- try_query(conn, d, sql, params) -> rows, or false when the table is missing, or nil, message. Where a failed statement
-- does not spoil the transaction (SQLite; PostgreSQL outside one), asking is cheaper than looking the table up first.
local function try_query(conn, d, sql, params)
  if d.failure_aborts_transaction and conn:in_transaction() then return "ask" end
  local rows, err, code = conn:query(sql, params)
  if rows then return rows end
  if d:missing_table(err, code) then return false end
  return nil, err
end

local function read(conn, d, vt, known_to_exist)
  local sql = sql_of(d, vt).select
  local rows, qerr
  if known_to_exist then
    rows, qerr = conn:query(sql)
  else
    rows, qerr = try_query(conn, d, sql)
    if rows == "ask" then
      local ok, err = exists(conn, d, vt)
      if ok == nil then return nil, err end
      if not ok then return {}, false end
      rows, qerr = conn:query(sql)
    elseif rows == false then
      return {}, false
    end
  end
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
  if #old == 1 and #new == 1 then
    -- one row replaced by one: the step of a linear history
    if old[1] == new[1] then return {} end
    return { { sql = sql_of(d, vt).replace, params = { new[1], old[1] }, expect = 1 } }
  end
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
  "checksum", "applied_at", "duration_ms", "luamig_version", "run_by" }

local history_insert = {}

local function history_sql(d, row)
  local sql = history_insert[d]
  if not sql then
    local marks = {}
    for i = 1, #HISTORY_COLUMNS do marks[i] = "?" end
    sql = format("INSERT INTO %s (%s) VALUES (%s)", d:quote(HISTORY), concat(HISTORY_COLUMNS, ", "), concat(marks, ", "))
    history_insert[d] = sql
  end
  return { sql = sql, params = schema.values_of(row, HISTORY_COLUMNS) }
end

-- Offline (--sql) bookkeeping written as literal SQL in one concatenation each. q quotes a string.
local function q(v)
  if v == nil or v == false then return "NULL" end
  if find(v, "'", 1, true) then v = gsub(v, "'", "''") end
  return "'" .. v .. "'"
end

local function prefixes(d, vt)
  local p = sql_of(d, vt)
  if not p.update then
    p.update = format("UPDATE %s SET version_num = ", d:quote(vt))
    p.history = format("INSERT INTO %s (%s) VALUES (%s, ", d:quote(HISTORY), concat(HISTORY_COLUMNS, ", "), q(vt))
  end
  return p
end

-- change_text(d, vt, old, new) -> the statements of change_sql as literal SQL text (each ending in ";\n")
local function change_text(d, vt, old, new)
  if #old == 1 and #new == 1 then
    if old[1] == new[1] then return "" end
    return prefixes(d, vt).update .. q(new[1]) .. " WHERE version_num = " .. q(old[1]) .. ";\n"
  end
  local sql_text = require("luamig.sql_text")
  local out = {}
  for _, st in ipairs(change_sql(d, vt, old, new)) do
    out[#out + 1] = sql_text.inline_plain(st.sql, st.params, function(v) return d:literal(v) end) .. ";\n"
  end
  return concat(out)
end

-- history_text(d, vt, row) -> the luamig_history INSERT as literal SQL text, applied_at = CURRENT_TIMESTAMP
-- direction, status, checksum (hex) and the luamig version are luamig's own words: no quote to escape in them.
local function history_text(d, vt, row)
  return prefixes(d, vt).history .. q(row.revision) .. ", " .. q(row.down_revision) .. ", '" .. row.direction .. "', '"
    .. row.status .. "', " .. q(row.message) .. ", " .. q(row.filename) .. ", "
    .. (row.checksum and ("'" .. row.checksum .. "'") or "NULL")
    .. ", CURRENT_TIMESTAMP, " .. (row.duration_ms and tostring(row.duration_ms) or "NULL") .. ", '" .. row.luamig_version
    .. "', NULL);\n"
end

-- same_rows(a, b) -> whether two lists of version rows hold the same revisions
local function same_rows(a, b)
  if #a ~= #b then return false end
  if #a == 1 then return a[1] == b[1] end
  local s = {}
  for _, v in ipairs(a) do s[v] = true end
  for _, v in ipairs(b) do if not s[v] then return false end end
  return true
end

-- shown(rows) -> version rows as messages show them: "a, b", or "<base>" for none
local function shown(rows)
  return #rows == 0 and "<base>" or concat(rows, ", ")
end

-- history(conn, d, vt) -> rows of luamig_history for this version table, newest first ({} without the table)
local function history(conn, d, vt)
  local ok, err = exists(conn, d, HISTORY)
  if ok == nil then return nil, err end
  if not ok then return {} end
  return conn:query(format("SELECT * FROM %s WHERE version_table = ? ORDER BY id DESC", d:quote(HISTORY)), { vt })
end

-- Migrations that run outside a transaction (transactional = false, or from an autocommit_block on) are
-- recorded as 'running' before their first statement commits, and become 'applied' together with the version
-- change. 'failed' marks one whose error left part of it applied. Either blocks further runs until
-- `upgrade --resume` or `stamp` turns it into 'interrupted'.
-- unfinished(conn, d, vt, known_to_exist) -> rows (id, revision, direction, status, applied_at, run_by) of unfinished migrations
-- of this version table, oldest first; {} without the history table
local function unfinished(conn, d, vt, known_to_exist)
  local sql = sql_of(d, vt).unfinished
  if known_to_exist then return conn:query(sql, { vt }) end
  local rows, err = try_query(conn, d, sql, { vt })
  if rows == "ask" then
    local ok, eerr = exists(conn, d, HISTORY)
    if ok == nil then return nil, eerr end
    if not ok then return {} end
    return conn:query(sql, { vt })
  end
  if rows == false then return {} end
  return rows, err
end

-- mark_live(rows) -> rows, each 'running' one with .live set when its runner is a process that still exists on
-- this machine (SQLite, where no lock is held across a run; the caller's own process never counts)
local function mark_live(rows)
  local core = require("luamig.core")
  local me, host = core.getpid(), core.hostname()
  for _, row in ipairs(rows) do
    local pid, on = tostring(row.run_by or ""):match("^pid (%d+) on (.*)$")
    pid = tonumber(pid)
    row.live = row.status == "running" and pid ~= nil and pid ~= me and on == host and core.pid_alive(pid)
  end
  return rows
end

-- finish_sql(d, vt, revision, status, duration_ms) -> the statement that turns the 'running' row of revision into
-- status ('applied' or 'failed'); it must change exactly one row
local function finish_sql(d, vt, revision, status, duration_ms)
  return { sql = format("UPDATE %s SET status = ?, duration_ms = ? WHERE version_table = ? AND revision = ? AND "
    .. "status = 'running'", d:quote(HISTORY)), params = { status, duration_ms or schema.NULL, vt, revision }, expect = 1 }
end

-- settle_sql(d, vt) -> the statement that marks every unfinished row of the version table 'interrupted'
local function settle_sql(d, vt)
  return { sql = format("UPDATE %s SET status = 'interrupted' WHERE version_table = ? AND %s", d:quote(HISTORY),
    UNFINISHED), params = { vt } }
end

return { unfinished = unfinished, mark_live = mark_live, finish_sql = finish_sql, settle_sql = settle_sql, create_sql = create_sql, exists = exists, read = read, change_sql = change_sql, history_sql = history_sql,
  history_text = history_text, change_text = change_text,
  history = history, HISTORY = HISTORY, same_rows = same_rows, shown = shown }
