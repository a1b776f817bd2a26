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
-- (luamig.sqlite_rebuild).
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

for _, k in ipairs({ "create_unique_constraint", "create_foreign_key", "create_check_constraint", "create_primary_key",
  "drop_constraint" }) do
  C[k] = function(_d, o) return rebuild(o) end
end

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

return SQLite
