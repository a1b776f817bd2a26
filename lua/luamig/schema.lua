-- Table definitions as plain data, shared by op.create_table and the models: the item constructors
-- (primary_key, unique, foreign_key, check, index, text, f, NULL), column normalisation, and constraint names
-- from the naming convention.
local types = require("luamig.types")
local core = require("luamig.core")

local type, ipairs, pairs, error, format, concat = type, ipairs, pairs, error, string.format, table.concat
local setmetatable, getmetatable, tostring = setmetatable, getmetatable, tostring

-- op.text(sql) / model.text(sql): raw SQL used as given.
local TextMT = { __tostring = function(self) return self.sql end }
---Raw SQL, used as given (a default, a CHECK, an execute statement).
---@param sql string
---@return luamig.Text
local function text(sql)
  if type(sql) ~= "string" then error("text() takes a SQL string", 0) end
  return setmetatable({ sql = sql }, TextMT)
end
local function is_text(v) return type(v) == "table" and getmetatable(v) == TextMT end

-- op.f(name): a name that the naming convention must leave alone.
local FinalMT = { __tostring = function(self) return self.name end }
---A name the naming convention must leave as it is.
---@param name string
local function f(name)
  if type(name) ~= "string" then error("f() takes a name string", 0) end
  return setmetatable({ name = name }, FinalMT)
end
local function name_of(v)
  if type(v) == "table" and getmetatable(v) == FinalMT then return v.name, true end
  return v, false
end

local NULL = core.NULL

-- values_of(row, columns) -> the row's values in the order of columns, NULL where the row has none
local function values_of(row, columns)
  local out = {}
  for i, c in ipairs(columns) do
    local v = row[c]
    if v == nil then v = NULL end
    out[i] = v
  end
  return out
end

local function copy_columns(list, what)
  local cols = {}
  if type(list) == "string" then return { list } end
  if type(list) ~= "table" then error(format("%s takes a list of column names", what), 0) end
  for i, c in ipairs(list) do
    if type(c) ~= "string" then error(format("%s: column %d is not a name", what, i), 0) end
    cols[i] = c
  end
  if #cols == 0 then error(format("%s needs at least one column", what), 0) end
  return cols
end

---A table's primary key, as a create_table item: op.primary_key{ "a", "b", name = "pk_t" }.
---@param spec { [integer]: string, name?: string|false }
local function primary_key(spec)
  return { item = "primary_key", columns = copy_columns(spec, "primary_key"), name = name_of(spec.name) }
end

---A UNIQUE constraint, as a create_table item: op.unique{ "email", name = "uq_users_email" }.
---@param spec { [integer]: string, name?: string|false }
local function unique(spec)
  return { item = "unique", columns = copy_columns(spec, "unique"), name = name_of(spec.name) }
end

---A foreign key, as a create_table item.
---@param cols string|string[] the columns of this table
---@param reftable string the table referred to
---@param refcols string|string[] its columns
---@param opts? { name?: string|false, ondelete?: string, onupdate?: string, deferrable?: boolean }
local function foreign_key(cols, reftable, refcols, opts)
  opts = opts or {}
  if type(reftable) ~= "string" then error("foreign_key: the referred table must be a name", 0) end
  return { item = "foreign_key", columns = copy_columns(cols, "foreign_key"), reftable = reftable,
    refcolumns = copy_columns(refcols, "foreign_key"), name = name_of(opts.name), ondelete = opts.ondelete,
    onupdate = opts.onupdate, deferrable = opts.deferrable }
end

---A CHECK constraint, as a create_table item.
---@param expr string the condition, in SQL
---@param opts? { name?: string|false }
local function check(expr, opts)
  if type(expr) ~= "string" then error("check: the expression must be a SQL string", 0) end
  opts = opts or {}
  local n, final = name_of(opts.name)
  return { item = "check", expr = expr, name = n, final = final }
end

---An index, as a create_table item.
---@param name string|false the index's name (false: from the naming convention)
---@param cols string|string[]
---@param opts? { unique?: boolean, where?: string }
local function index(name, cols, opts)
  opts = opts or {}
  return { item = "index", name = name_of(name), columns = copy_columns(cols, "index"), unique = opts.unique and true or false,
    where = opts.where }
end

local DEFAULT_CONVENTION = {
  ix = "ix_%(table)s_%(columns)s",
  uq = "uq_%(table)s_%(columns)s",
  fk = "fk_%(table)s_%(columns)s_%(referred_table)s",
  ck = "ck_%(table)s_%(constraint_name)s",
  pk = "pk_%(table)s",
}

-- conv_name(convention, kind, fields) -> the name, filling %(table)s %(columns)s %(column_0_name)s
-- %(referred_table)s %(constraint_name)s (and SQLAlchemy's %(table_name)s, %(referred_table_name)s).
local function conv_name(convention, kind, fields)
  if convention == false then
    -- no convention: the database names constraints (SQLAlchemy's default convention names indexes only)
    if kind ~= "ix" then return nil end
    convention = nil
  end
  local tpl = convention and convention[kind]
  if not tpl then
    -- the default convention, spelled out (what the templates of DEFAULT_CONVENTION give)
    if kind == "pk" then return "pk_" .. fields.table end
    if kind == "ck" then return "ck_" .. fields.table .. "_" .. fields.name end
    local cols = #fields.columns == 1 and fields.columns[1] or concat(fields.columns, "_")
    if kind == "fk" then return "fk_" .. fields.table .. "_" .. cols .. "_" .. fields.reftable end
    return kind .. "_" .. fields.table .. "_" .. cols
  end
  local values = {
    table = fields.table, table_name = fields.table,
    columns = fields.columns and concat(fields.columns, "_"),
    column_0_name = fields.columns and fields.columns[1],
    column_0_N_name = fields.columns and concat(fields.columns, "_"),
    referred_table = fields.reftable, referred_table_name = fields.reftable,
    constraint_name = fields.name,
  }
  return (tpl:gsub("%%%(([%w_]+)%)s", function(k)
    local v = values[k]
    if v == nil then error(format("naming convention %s='%s': %%(%s)s has no value here", kind, tpl, k), 0) end
    return v
  end))
end

local COLUMN_KEYS = { nullable = true, server_default = true, primary_key = true, unique = true, index = true,
  references = true, ondelete = true, onupdate = true, comment = true, autoincrement = true }

-- column(spec, nullable_default, where) -> a column definition:
-- { name, type, nullable, server_default, primary_key, unique, index, references, ondelete, onupdate, comment }
local function column(spec, nullable_default, where)
  where = where or "column"
  if type(spec) ~= "table" then error(format("%s: a column is a table { name, type, ... }", where), 0) end
  local name, ty = spec[1], spec[2]
  if type(name) ~= "string" or name == "" then error(format("%s: a column needs a name as its first entry", where), 0) end
  if not types.is_type(ty) then
    error(format("%s: column '%s' needs a type from luamig.types as its second entry", where, name), 0)
  end
  for k in pairs(spec) do
    if type(k) == "string" and not COLUMN_KEYS[k] then
      error(format("%s: column '%s' has an unknown option '%s'", where, name, k), 0)
    end
  end
  local nullable = spec.nullable
  if nullable == nil then nullable = nullable_default end
  if spec.primary_key then nullable = false end
  local ref_table, ref_column
  if spec.references ~= nil then
    if type(spec.references) ~= "string" then error(format("%s: references must be \"table.column\"", where), 0) end
    ref_table, ref_column = spec.references:match("^(.+)%.([^.]+)$")
    if not ref_table then
      error(format("%s: column '%s': references must be \"table.column\", got '%s'", where, name, spec.references), 0)
    end
  end
  return {
    name = name, type = ty, nullable = nullable and true or false, server_default = spec.server_default,
    primary_key = spec.primary_key and true or false, unique = spec.unique and true or false,
    index = spec.index and true or false, ref_table = ref_table, ref_column = ref_column,
    ondelete = spec.ondelete, onupdate = spec.onupdate, comment = spec.comment, autoincrement = spec.autoincrement,
  }
end

-- table_def(name, items, opts) -> { name, columns, primary_key, uniques, foreign_keys, checks, indexes, comment }
-- opts: nullable_default (op: true, models: false), naming_convention, comment, where (for messages).
-- name_unnamed(def, convention) -> def, or a copy of it whose primary key, foreign keys and unique constraints
-- without a name have the one the convention gives (nil: the default; false: none), as table_def names them
local function name_unnamed(def, nc)
  local pk = def.primary_key
  local todo = pk and not pk.name
  for _, fk in ipairs(def.foreign_keys) do todo = todo or not fk.name end
  for _, u in ipairs(def.uniques) do todo = todo or not u.name end
  if not todo or nc == false then return def end
  local copy = {}
  for k, v in pairs(def) do copy[k] = v end
  local t = def.name
  if pk and not pk.name then
    copy.primary_key = { name = conv_name(nc, "pk", { table = t, columns = pk.columns }), columns = pk.columns }
  end
  copy.foreign_keys, copy.uniques = {}, {}
  for i, fk in ipairs(def.foreign_keys) do
    local f = fk
    if not fk.name then
      f = {}
      for k, v in pairs(fk) do f[k] = v end
      f.name = conv_name(nc, "fk", { table = t, columns = fk.columns, reftable = fk.reftable })
    end
    copy.foreign_keys[i] = f
  end
  for i, u in ipairs(def.uniques) do
    copy.uniques[i] = u.name and u or { name = conv_name(nc, "uq", { table = t, columns = u.columns }), columns = u.columns }
  end
  return copy
end

local function table_def(name, items, opts)
  opts = opts or {}
  local where = opts.where or ("table '" .. tostring(name) .. "'")
  if type(name) ~= "string" or name == "" then error("a table needs a name", 0) end
  if type(items) ~= "table" then error(format("%s: the second argument is the list of columns and constraints", where), 0) end
  local nc = opts.naming_convention
  -- an item's name: name = false leaves it to the database, none takes the convention's
  local function named(n, kind, fields)
    if n == false then return nil end
    return n or conv_name(nc, kind, fields)
  end
  local def = { name = name, columns = {}, uniques = {}, foreign_keys = {}, checks = {}, indexes = {},
    comment = opts.comment }
  local pk_cols = {}
  local seen = {}
  local pk_item
  for i, it in ipairs(items) do
    if type(it) == "table" and it.item then
      if it.item == "primary_key" then
        pk_item = it
      elseif it.item == "unique" then
        def.uniques[#def.uniques + 1] = { name = named(it.name, "uq", { table = name, columns = it.columns }),
          columns = it.columns }
      elseif it.item == "foreign_key" then
        def.foreign_keys[#def.foreign_keys + 1] = {
          name = named(it.name, "fk", { table = name, columns = it.columns, reftable = it.reftable }),
          columns = it.columns, reftable = it.reftable, refcolumns = it.refcolumns, ondelete = it.ondelete,
          onupdate = it.onupdate, deferrable = it.deferrable }
      elseif it.item == "check" then
        local cname = it.name or nil
        if cname and not it.final and nc ~= false then cname = conv_name(nc, "ck", { table = name, name = cname }) end
        def.checks[#def.checks + 1] = { name = cname, expr = it.expr }
      elseif it.item == "index" then
        def.indexes[#def.indexes + 1] = { name = it.name or conv_name(nc, "ix", { table = name, columns = it.columns }),
          columns = it.columns, unique = it.unique, where = it.where }
      else
        error(format("%s: item %d is not a column or constraint", where, i), 0)
      end
    else
      local col = column(it, opts.nullable_default, where)
      if seen[col.name] then error(format("%s: column '%s' appears twice", where, col.name), 0) end
      seen[col.name] = true
      def.columns[#def.columns + 1] = col
      if col.primary_key then pk_cols[#pk_cols + 1] = col.name end
      if col.unique and col.index then
        def.indexes[#def.indexes + 1] = { name = conv_name(nc, "ix", { table = name, columns = { col.name } }),
          columns = { col.name }, unique = true }
      elseif col.unique then
        def.uniques[#def.uniques + 1] = { name = conv_name(nc, "uq", { table = name, columns = { col.name } }),
          columns = { col.name } }
      elseif col.index then
        def.indexes[#def.indexes + 1] = { name = conv_name(nc, "ix", { table = name, columns = { col.name } }),
          columns = { col.name }, unique = false }
      end
      if col.ref_table then
        def.foreign_keys[#def.foreign_keys + 1] = {
          name = conv_name(nc, "fk", { table = name, columns = { col.name }, reftable = col.ref_table }),
          columns = { col.name }, reftable = col.ref_table, refcolumns = { col.ref_column },
          ondelete = col.ondelete, onupdate = col.onupdate }
      end
    end
  end
  if #def.columns == 0 then error(format("%s has no columns", where), 0) end
  if pk_item then
    if #pk_cols > 0 then error(format("%s: primary key given both on columns and as primary_key{}", where), 0) end
    for _, c in ipairs(pk_item.columns) do
      if not seen[c] then error(format("%s: primary key column '%s' is not a column of the table", where, c), 0) end
      for _, col in ipairs(def.columns) do if col.name == c then col.nullable = false end end
    end
    def.primary_key = { name = named(pk_item.name, "pk", { table = name }), columns = pk_item.columns }
  elseif #pk_cols > 0 then
    def.primary_key = { name = conv_name(nc, "pk", { table = name }), columns = pk_cols }
  end
  local function check_columns(group)
    for _, c in ipairs(group) do
      for _, cn in ipairs(c.columns) do
        if not seen[cn] then error(format("%s: constraint or index '%s' names unknown column '%s'", where, c.name, cn), 0) end
      end
    end
  end
  if #def.uniques > 0 then check_columns(def.uniques) end
  if #def.indexes > 0 then check_columns(def.indexes) end
  if #def.foreign_keys > 0 then check_columns(def.foreign_keys) end
  return def
end

return {
  text = text, is_text = is_text, f = f, name_of = name_of, NULL = NULL, values_of = values_of, name_unnamed = name_unnamed,
  primary_key = primary_key, unique = unique, foreign_key = foreign_key, check = check, index = index,
  column = column, table_def = table_def, conv_name = conv_name, DEFAULT_CONVENTION = DEFAULT_CONVENTION,
}
