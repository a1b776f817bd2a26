-- Model definitions: Entity (the seed framework's base: id, created_at, updated_at, tags appended), Table (exactly
-- the given columns) and MetaData registries. In models `nullable` defaults to false.
-- create_ops / drop_ops turn a table definition into the op values that create or drop it, with every name and
-- every nullability written out: the same op values helpers run and autogenerate compares and renders.
local schema = require("luamig.schema")
local ops = require("luamig.ops")
local types = require("luamig.types")

local format, ipairs, type, error, setmetatable = string.format, ipairs, type, error, setmetatable

local MetaDataMT = {}
MetaDataMT.__index = MetaDataMT

-- MetaData(opts) -> a registry of table definitions; opts.naming_convention overrides the default names.
local function MetaData(opts)
  opts = opts or {}
  return setmetatable({ tables = {}, by_name = {}, naming_convention = opts.naming_convention }, MetaDataMT)
end

function MetaDataMT:add(def)
  if self.by_name[def.name] then error(format("model table '%s' is defined twice", def.name), 0) end
  self.tables[#self.tables + 1] = def
  self.by_name[def.name] = def
end

function MetaDataMT:get(name)
  return self.by_name[name]
end

local metadata = MetaData()

local function define(name, items, opts)
  opts = opts or {}
  local md = opts.metadata or metadata
  local def = schema.table_def(name, items, { nullable_default = false, naming_convention = md.naming_convention,
    comment = opts.comment, where = "model '" .. tostring(name) .. "'" })
  def.updated_at_trigger = opts.updated_at_trigger and true or false
  if opts.sqlite_autoincrement then def.sqlite_autoincrement = true end
  md:add(def)
  return { __table = def, name = name, metadata = md }
end

-- Table(name, items, opts) -> a model with exactly the given columns and constraints
local function Table(name, items, opts)
  return define(name, items, opts)
end

-- Entity(name, columns, opts) -> a model with id, created_at, updated_at and tags after its own columns
local function Entity(name, cols, opts)
  if type(cols) ~= "table" then error(format("Entity('%s', columns): columns must be a list", tostring(name)), 0) end
  local items = {}
  for i, c in ipairs(cols) do items[i] = c end
  items[#items + 1] = { "id", types.ulid, primary_key = true }
  items[#items + 1] = { "created_at", types.datetime, server_default = schema.text("(CURRENT_TIMESTAMP)") }
  items[#items + 1] = { "updated_at", types.datetime, server_default = schema.text("(CURRENT_TIMESTAMP)") }
  items[#items + 1] = { "tags", types.json, server_default = "[]" }
  return define(name, items, opts)
end

local function def_of(m)
  return type(m) == "table" and (m.__table or (m.columns and m)) or error("expected a model or a table definition", 0)
end

-- The trigger that keeps updated_at current (Entity's updated_at_trigger): its name, and the statements that make
-- and drop it in each dialect. On PostgreSQL each table has its own trigger function, dropped with it.
local function trigger_name(tbl) return "trg_" .. tbl .. "_updated_at" end

local function trigger_sql(tbl, dialect_name)
  local d = require("luamig.dialect").get(dialect_name)
  return d:updated_at_trigger_sql(tbl, trigger_name(tbl))
end

-- trigger_ops(tbl, dialect_name) -> the execute ops that create the trigger, each knowing the one that undoes it
local function trigger_ops(tbl, dialect_name)
  local make, drop = trigger_sql(tbl, dialect_name)
  local up = {}
  for i, sql in ipairs(make) do
    up[i] = ops.execute(sql)
    up[i].reverse = ops.execute(drop[#drop - i + 1])
  end
  return up
end

-- a name the naming convention leaves alone (nil stays nil: a constraint the database has no name for)
local function final(name) return name and schema.f(name) or nil end

-- create_ops(model, dialect_name) -> the op values that create the table of a model (or a table definition): the
-- table with its columns and constraints, its indexes, and with a dialect an Entity's updated_at trigger
local function create_ops(m, dialect_name)
  local def = def_of(m)
  local items = {}
  for _, c in ipairs(def.columns) do
    items[#items + 1] = { c.name, c.type, nullable = c.nullable, server_default = c.server_default, comment = c.comment,
      autoincrement = c.autoincrement }
  end
  if def.primary_key then
    items[#items + 1] = schema.primary_key({ name = final(def.primary_key.name), table.unpack(def.primary_key.columns) })
  end
  for _, fk in ipairs(def.foreign_keys) do
    items[#items + 1] = schema.foreign_key(fk.columns, fk.reftable, fk.refcolumns,
      { name = final(fk.name), ondelete = fk.ondelete, onupdate = fk.onupdate, deferrable = fk.deferrable })
  end
  for _, uq in ipairs(def.uniques) do
    items[#items + 1] = schema.unique({ name = final(uq.name), table.unpack(uq.columns) })
  end
  for _, ck in ipairs(def.checks) do
    items[#items + 1] = schema.check(ck.expr, { name = final(ck.name) })
  end
  -- (names the definition has are final; one it lacks stays unnamed here, and the op that runs it names it)
  local list = { ops.create_table(def.name, items, { naming_convention = false,
    sqlite_autoincrement = def.sqlite_autoincrement }) }
  for _, ix in ipairs(def.indexes) do
    local opts
    if ix.unique or ix.where then
      opts = { unique = ix.unique or nil, where = ix.where and (schema.is_text(ix.where) and ix.where or schema.text(ix.where)) }
    end
    list[#list + 1] = ops.create_index(final(ix.name), def.name, ix.columns, opts)
  end
  if def.updated_at_trigger and dialect_name then
    for _, o in ipairs(trigger_ops(def.name, dialect_name)) do list[#list + 1] = o end
  end
  return list
end

-- reversed(list) -> the ops that undo a list of ops: ops.reverse of each, last first
local function reversed(list)
  local out = {}
  for i = #list, 1, -1 do
    local r = ops.reverse(list[i])
    if not r then error(format("%s cannot be reversed", ops.label(list[i])), 0) end
    out[#out + 1] = r
  end
  return out
end

-- drop_ops(model, dialect_name) -> the ops that undo create_ops: the trigger, the indexes, then the table
local function drop_ops(m, dialect_name) return reversed(create_ops(m, dialect_name)) end

-- run_ops(op, list): runs each op value through a migration's op
local function run_ops(op, list)
  for _, o in ipairs(list) do op.apply(o) end
end

return {
  MetaData = MetaData, metadata = metadata, Entity = Entity, Table = Table,
  primary_key = schema.primary_key, unique = schema.unique, foreign_key = schema.foreign_key, check = schema.check,
  index = schema.index, text = schema.text, f = schema.f,
  create_ops = create_ops, drop_ops = drop_ops, run_ops = run_ops, reversed = reversed, trigger_name = trigger_name,
  trigger_ops = trigger_ops,
  -- the names of 0.x, kept for helpers written against them: apply_calls(op, create_calls(m, op.dialect))
  create_calls = create_ops, drop_calls = drop_ops, apply_calls = run_ops,
}
