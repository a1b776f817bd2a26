-- The SQLite dialect: types per SPEC 4.1 and the ALTER TABLE forms SQLite has (RENAME TO, ADD COLUMN,
-- DROP COLUMN, RENAME COLUMN). Changes that need a table rebuild come out as { rebuild = op } for the runner.
local Base = require("luamig.dialect.base")
local schema = require("luamig.schema")

local format, concat, ipairs, pairs, error, tostring = string.format, table.concat, ipairs, pairs, error, tostring

local SQLite = Base:extend({ name = "sqlite", TRUE = "1", FALSE = "0" })

SQLite.SIMPLE = { integer = "INTEGER", biginteger = "BIGINT", smallinteger = "SMALLINT", float = "FLOAT",
  text = "TEXT", boolean = "BOOLEAN", date = "DATE", time = "TIME", datetime = "DATETIME", json = "JSON",
  blob = "BLOB", uuid = "CHAR(32)", ulid = "VARCHAR(26)" }

-- An enum is a VARCHAR as long as its longest value (column_type_constraint adds the CHECK).
function SQLite:special_type_sql(ty)
  if ty.kind ~= "enum" then return nil end
  local n = 1
  for _, v in ipairs(ty.values) do if #v > n then n = #v end end
  return format("VARCHAR(%d)", n)
end

-- An enum is a VARCHAR with a CHECK listing its values.
function SQLite:column_type_constraint(col)
  if col.type.kind ~= "enum" or col.type.create_constraint == false then return nil end
  local vals = {}
  for i, v in ipairs(col.type.values) do vals[i] = self:string_literal(v) end
  return format("CHECK (%s IN (%s))", self:quote(col.name), concat(vals, ", "))
end

-- What SQLite's ALTER TABLE cannot do becomes a table rebuild, which the runner carries out against the live table
-- (luamig.dialect.sqlite.rebuild).
local function rebuild(o) return { { rebuild = o } } end

local C = setmetatable({}, { __index = Base.compilers })

-- sqlite_autoincrement: the key is written on its column, INTEGER PRIMARY KEY AUTOINCREMENT (SQLite allows
-- AUTOINCREMENT there only), so that ids are never reused; sqlite_sequence keeps the highest one given.
function C.create_table(d, o)
  local t = o.table
  if not t.sqlite_autoincrement then return Base.compilers.create_table(d, o) end
  local pk = t.primary_key
  if not pk or #pk.columns ~= 1 then
    error(format("create_table('%s'): sqlite_autoincrement needs a primary key of one INTEGER column", t.name), 0)
  end
  local copy, cols = {}, {}
  for k, v in pairs(t) do copy[k] = v end
  for i, c in ipairs(t.columns) do
    if c.name == pk.columns[1] then
      local ty = d:type_sql(c.type)
      if ty:upper() ~= "INTEGER" then
        error(format("create_table('%s'): sqlite_autoincrement needs an INTEGER key, %s is %s", t.name, c.name, ty), 0)
      end
      local cc = {}
      for k, v in pairs(c) do cc[k] = v end
      cc.inline_primary_key = { name = pk.name, sql = "PRIMARY KEY AUTOINCREMENT" }
      cc.nullable = false
      cols[i] = cc
    else
      cols[i] = c
    end
  end
  copy.columns, copy.primary_key = cols, nil
  return Base.compilers.create_table(d, { op = o.op, table = copy, if_not_exists = o.if_not_exists })
end

function C.add_column(d, o)
  local col = o.column
  if col.primary_key or (col.unique and not col.index) then return rebuild(o) end
  local s = format("ALTER TABLE %s ADD COLUMN %s", d:quote(o.table), d:column_sql(col))
  if col.ref_table then
    local name = schema.conv_name(o.naming_convention, "fk", { table = o.table, columns = { col.name }, reftable = col.ref_table })
    s = s .. " " .. d:named(name, format("REFERENCES %s (%s)", d:quote(col.ref_table), d:quote(col.ref_column)))
    if col.ondelete then s = s .. " ON DELETE " .. d:action("ondelete", col.ondelete) end
    if col.onupdate then s = s .. " ON UPDATE " .. d:action("onupdate", col.onupdate) end
  end
  local out = { s }
  if col.index then
    out[#out + 1] = d:index_sql({ name = schema.conv_name(o.naming_convention, "ix", { table = o.table, columns = { col.name } }),
      columns = { col.name }, unique = col.unique }, o.table)
  end
  return out
end

function C.alter_column(d, o)
  local ch = o.changes
  if ch.nullable ~= nil or ch.server_default ~= nil or ch.type ~= nil then return rebuild(o) end
  if ch.new_column_name then
    return { format("ALTER TABLE %s RENAME COLUMN %s TO %s", d:quote(o.table), d:quote(o.column), d:quote(ch.new_column_name)) }
  end
  return {}
end

-- (not_valid and using_index are PostgreSQL's ways around a long lock: here the rebuild adds the constraint as
-- usual, checking every row, and says so)
for _, k in ipairs({ "create_unique_constraint", "create_foreign_key", "create_check_constraint", "create_primary_key",
  "drop_constraint" }) do
  C[k] = function(_d, o)
    local out = rebuild(o)
    local what = o.not_valid and "not_valid" or o.using_index and "using_index"
    if what then
      table.insert(out, 1, { warn = format("%s('%s', '%s'): %s is PostgreSQL's; SQLite adds the constraint with a "
        .. "table rebuild that checks every row", k, o.table, o.name, what) })
    end
    return out
  end
end

-- a SQLite constraint is checked when it is added: nothing is left to validate
function C.validate_constraint() return {} end

-- A column an index or constraint uses cannot be dropped with ALTER TABLE: the runner looks and rebuilds then.
function C.drop_column(_d, o)
  return { { rebuild = o, try_alter = true } }
end

-- Enum types are PostgreSQL's: nothing to do here (an enum is a VARCHAR with a CHECK)
function C.create_enum() return {} end
function C.drop_enum() return {} end

-- A batch is the runner's to plan: one rebuild for all its ops when any needs one (or recreate = "always").
function C.batch_alter_table(_d, o)
  return { { batch = o } }
end

SQLite.compilers = C

-- Bookkeeping SQL: how this dialect asks whether a table exists and spells an auto-numbered key.
SQLite.table_exists_sql = "SELECT 1 AS present FROM sqlite_master WHERE type = 'table' AND name = ?"
SQLite.serial_pk = "INTEGER NOT NULL PRIMARY KEY"
SQLite.begin_sql = "BEGIN IMMEDIATE"
-- the schema outside luamig's own tables (? = the version table), one line per object: what `luamig test` compares
SQLite.snapshot_sql = "SELECT type || ' ' || name || ': ' || coalesce(sql, '') AS line FROM sqlite_master "
  .. "WHERE name NOT LIKE 'sqlite_%' AND tbl_name NOT IN (?, 'luamig_history')"

-- Run-time capabilities ---------------------------------------------------------------------------------------

-- connect(u, cfg, shown) -> { conn, url, path, fresh }, or nil, message. SQLite creates a missing file on open:
-- fresh remembers that, so that a run that ends without writing to it can remove it again (a failed command
-- leaves no empty database behind).
function SQLite.connect(_, u, cfg, shown)
  local core = require("luamig.core")
  local fresh = u.path ~= ":memory:" and u.path ~= "" and not core.filetype(u.path)
  local conn, msg = core.sqlite_open(u.path, math.floor((cfg.lock_timeout or 60) * 1000))
  if not conn then return nil, format("cannot open SQLite database %s: %s", u.path, msg) end
  return { conn = conn, url = shown, path = u.path, fresh = fresh }
end

local rebuild_mod = function() return require("luamig.dialect.sqlite.rebuild") end

-- A failed statement leaves SQLite's transaction open and usable: trying a table is cheaper than looking it up.
SQLite.failure_aborts_transaction = false
-- --backup copies the database file with SQLite's online backup API (conn:backup)
SQLite.backs_up = true
function SQLite.missing_table(_, err) return tostring(err):find("^no such table") ~= nil end

-- BEGIN IMMEDIATE waits lock_timeout for another writer, then fails with "database is locked"
function SQLite.busy_hint(_, msg, cfg)
  if tostring(msg):find("locked", 1, true) then
    return format("%s (another process kept it longer than lock_timeout = %g s)", msg, cfg.lock_timeout or 60)
  end
  return msg
end

-- No lock is held across a run: a runner on this machine whose process still exists is at work.
function SQLite.mark_live(_, rows) return require("luamig.version_table").mark_live(rows) end

-- type_key(sql): the text types are one (VARCHAR(32) and CHAR(32) are alike, VARCHAR and TEXT too) but a length or
-- a precision counts, as Alembic compares them
local TEXT_FAMILY = { VARCHAR = true, TEXT = true, CHAR = true, CHARACTER = true, NVARCHAR = true, CLOB = true,
  ["CHARACTER VARYING"] = true, NCHAR = true }

function SQLite.type_key(_, sql)
  local base, args = sql:match("^([%a ]-) ?(%b())")
  base = (base or sql):gsub(" $", "")
  args = args and args:gsub("%s", "") or ""
  if TEXT_FAMILY[base] then return "TEXT" .. args end
  return base .. args
end

-- updated_at_trigger_sql(tbl, name) -> the statements that make the trigger keeping updated_at current, and those
-- that drop it
function SQLite:updated_at_trigger_sql(tbl, name)
  local qt, trg = self:quote(tbl), self:quote(name)
  return { format("CREATE TRIGGER %s AFTER UPDATE ON %s FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at BEGIN "
      .. "UPDATE %s SET updated_at = CURRENT_TIMESTAMP WHERE rowid = NEW.rowid; END", trg, qt, qt) },
    { format("DROP TRIGGER IF EXISTS %s", trg) }
end

function SQLite.reflect_tables(_, conn, vt, include, only)
  return require("luamig.dialect.sqlite.reflect").tables(conn, vt, include, only)
end

function SQLite.column_in_use(_, conn, tbl, col, vt) return rebuild_mod().in_use(conn, tbl, col, vt) end
function SQLite:rebuild(x, tbl, list, opts, warn) return rebuild_mod().run(self, x, tbl, list, opts, warn) end
function SQLite:batch(x, o, warn) return rebuild_mod().batch(self, x, o, warn) end

-- begin_run(conn) / end_run(conn, state): foreign-key enforcement is off while migrating, as SQLite's own procedure
-- for schema changes requires (a table rebuild drops the old table; with enforcement on, that would fire ON DELETE
-- actions), and back on afterwards; rebuilds check the foreign keys they touch. A database in SQLite's default
-- rollback-journal mode (DELETE) is migrated in PERSIST mode: each commit zeroes and syncs the journal's header
-- instead of deleting the file, as durable and one file-system operation fewer per migration; going back to
-- DELETE at the end removes the journal (SQLite takes the write lock to do so, so another writer's journal is
-- never touched). WAL and other modes are left as they are. Every setting is read back: a restore that did not
-- take fails the run.
function SQLite.begin_run(_, conn)
  local ok, err = conn:exec("PRAGMA foreign_keys = OFF")
  if not ok then return nil, "cannot turn foreign_keys off for the run: " .. tostring(err) end
  local state = { persist = false }
  -- (a file that is not a database fails here: the run then says so when it reads the version table)
  local mode = conn:query("PRAGMA journal_mode")
  if mode and mode[1] and mode[1].journal_mode == "delete" then
    local now = conn:query("PRAGMA journal_mode = PERSIST")
    -- PERSIST only saves time: where it does not take, the run goes on in DELETE mode
    state.persist = now ~= nil and now[1] ~= nil and now[1].journal_mode == "persist"
  end
  return state
end

function SQLite.end_run(_, conn, state)
  local problems = {}
  if state.persist then
    local now, err = conn:query("PRAGMA journal_mode = DELETE")
    if not now then
      problems[#problems + 1] = "cannot restore journal_mode = DELETE: " .. tostring(err)
    elseif not now[1] or now[1].journal_mode ~= "delete" then
      problems[#problems + 1] = format("cannot restore journal_mode = DELETE: the database stayed in %s mode",
        tostring(now[1] and now[1].journal_mode))
    end
  end
  local ok, err = conn:exec("PRAGMA foreign_keys = ON")
  if not ok then
    problems[#problems + 1] = "cannot restore foreign_keys = ON: " .. tostring(err)
  else
    local fk = conn:query("PRAGMA foreign_keys")
    if not fk or not fk[1] or fk[1].foreign_keys ~= 1 then
      problems[#problems + 1] = "cannot restore foreign_keys = ON: it stayed off"
    end
  end
  if #problems > 0 then return nil, table.concat(problems, "; ") end
  return true
end

return SQLite
