-- SQLite's "move and copy": what ALTER TABLE cannot do (change a column's type, nullability or default; add or
-- drop a constraint; drop a column an index or constraint uses) is done by building the table anew, inside the
-- migration's transaction:
--   CREATE TABLE _luamig_tmp_<t> (the new definition); INSERT INTO it SELECT ... FROM <t>; DROP TABLE <t>;
--   ALTER TABLE _luamig_tmp_<t> RENAME TO <t>; the indexes and triggers of <t> again; PRAGMA foreign_key_check.
-- The definition comes from reflecting the live table, so columns keep their declared types, defaults and CHECKs.
-- Views name the table, not its storage, and keep working. A failure anywhere rolls back with the migration's
-- transaction: no temporary table is left behind. The runner keeps PRAGMA foreign_keys off while it migrates (the
-- pragma cannot change inside a transaction, and with it on, dropping the old table would fire ON DELETE actions).
local reflect = require("luamig.reflect")
local types = require("luamig.types")
local schema = require("luamig.schema")

local format, concat, ipairs, error, tostring = string.format, table.concat, ipairs, error, tostring

local function find_col(def, name)
  for i, c in ipairs(def.columns) do if c.name == name then return c, i end end
  return nil
end

local function has(list, v)
  for _, x in ipairs(list) do if x == v then return true end end
  return false
end

local function remove_named(list, name)
  for i, x in ipairs(list) do
    if x.name == name then
      table.remove(list, i)
      return true
    end
  end
  return false
end

local function rename_in(list, old, new)
  for i, c in ipairs(list) do if c == old then list[i] = new end end
end

-- needs(def, o) -> whether a drop_column can be a plain ALTER TABLE DROP COLUMN (SQLite refuses one an index,
-- the primary key, a unique or a foreign key uses)
local function column_in_use(def, col)
  if def.primary_key and has(def.primary_key.columns, col) then return true end
  for _, ix in ipairs(def.indexes) do if has(ix.columns, col) then return true end end
  for _, u in ipairs(def.uniques) do if has(u.columns, col) then return true end end
  for _, fk in ipairs(def.foreign_keys) do if has(fk.columns, col) then return true end end
  return false
end

-- apply(def, o) -> source expressions for the new columns ({ [new name] = SQL }); changes def to the new definition
local function apply(d, def, o)
  local src = {}
  for _, c in ipairs(def.columns) do src[c.name] = d:quote(c.name) end
  local k = o.op
  if k == "alter_column" then
    local c = find_col(def, o.column)
    if not c then error(format("alter_column('%s', '%s'): no such column", o.table, o.column), 0) end
    local ch = o.changes
    if ch.type ~= nil then c.type = ch.type end
    if ch.nullable ~= nil then c.nullable = ch.nullable and true or false end
    if ch.server_default ~= nil then
      if ch.server_default == schema.NULL then c.server_default = nil else c.server_default = ch.server_default end
    end
    if ch.using then src[c.name] = tostring(ch.using) end
    if ch.new_column_name and ch.new_column_name ~= c.name then
      local old, new = c.name, ch.new_column_name
      src[new], src[old] = src[old], nil
      c.name = new
      if def.primary_key then rename_in(def.primary_key.columns, old, new) end
      for _, ix in ipairs(def.indexes) do
        if has(ix.columns, old) then
          rename_in(ix.columns, old, new)
          ix.sql = nil
        end
      end
      for _, u in ipairs(def.uniques) do rename_in(u.columns, old, new) end
      for _, fk in ipairs(def.foreign_keys) do rename_in(fk.columns, old, new) end
    end
  elseif k == "add_column" then
    if find_col(def, o.column.name) then error(format("add_column('%s'): column '%s' exists", o.table, o.column.name), 0) end
    local col = o.column
    def.columns[#def.columns + 1] = col
    if col.primary_key then
      def.primary_key = def.primary_key or { name = schema.conv_name(o.naming_convention, "pk", { table = o.table }), columns = {} }
      def.primary_key.columns[#def.primary_key.columns + 1] = col.name
    end
    if col.unique and not col.index then
      def.uniques[#def.uniques + 1] = { name = schema.conv_name(o.naming_convention, "uq", { table = o.table, columns = { col.name } }),
        columns = { col.name } }
    end
    if col.ref_table then
      def.foreign_keys[#def.foreign_keys + 1] = { name = schema.conv_name(o.naming_convention, "fk",
        { table = o.table, columns = { col.name }, reftable = col.ref_table }), columns = { col.name },
        reftable = col.ref_table, refcolumns = { col.ref_column }, ondelete = col.ondelete, onupdate = col.onupdate }
    end
  elseif k == "drop_column" then
    local _, i = find_col(def, o.column)
    if not i then error(format("drop_column('%s', '%s'): no such column", o.table, o.column), 0) end
    table.remove(def.columns, i)
    src[o.column] = nil
    local keep = {}
    for _, ix in ipairs(def.indexes) do if not has(ix.columns, o.column) then keep[#keep + 1] = ix end end
    def.indexes = keep
    keep = {}
    for _, u in ipairs(def.uniques) do if not has(u.columns, o.column) then keep[#keep + 1] = u end end
    def.uniques = keep
    keep = {}
    for _, fk in ipairs(def.foreign_keys) do if not has(fk.columns, o.column) then keep[#keep + 1] = fk end end
    def.foreign_keys = keep
    if def.primary_key and has(def.primary_key.columns, o.column) then def.primary_key = nil end
  elseif k == "create_unique_constraint" then
    def.uniques[#def.uniques + 1] = { name = o.name, columns = o.columns }
  elseif k == "create_foreign_key" then
    def.foreign_keys[#def.foreign_keys + 1] = { name = o.name, columns = o.columns, reftable = o.reftable,
      refcolumns = o.refcolumns, ondelete = o.ondelete, onupdate = o.onupdate, deferrable = o.deferrable }
  elseif k == "create_check_constraint" then
    def.checks[#def.checks + 1] = { name = o.name, expr = o.expr }
  elseif k == "create_primary_key" then
    def.primary_key = { name = o.name, columns = o.columns }
  elseif k == "drop_constraint" then
    local t = o.type
    local done = ((not t or t == "foreignkey") and remove_named(def.foreign_keys, o.name))
      or ((not t or t == "unique") and remove_named(def.uniques, o.name))
      or ((not t or t == "check") and remove_named(def.checks, o.name))
    if not done then
      for _, c in ipairs(def.columns) do
        if (not t or t == "check") and remove_named(c.checks, o.name) then done = true end
      end
    end
    if not done and (not t or t == "primary") and def.primary_key and def.primary_key.name == o.name then
      def.primary_key, done = nil, true
    end
    if not done then error(format("drop_constraint('%s', '%s'): the table has no such constraint", o.name, o.table), 0) end
  else
    error(format("%s: not a table rebuild", k), 0)
  end
  if def.primary_key then
    for _, c in ipairs(def.columns) do
      c.primary_key = has(def.primary_key.columns, c.name)
      if c.primary_key then c.nullable = false end
    end
  end
  return src
end

-- statements(conn, d, o, vt) -> the statements of the rebuild (or of a plain ALTER TABLE when that is enough),
-- and the table to check foreign keys for afterwards
local function statements(conn, d, o, vt)
  local found = reflect.tables(conn, "sqlite", { only = o.table, version_table = vt })[1]
  if not found then error(format("%s('%s'): no such table", o.op, o.table), 0) end
  if o.op == "drop_column" and find_col(found, o.column) and not column_in_use(found, o.column) then
    return { format("ALTER TABLE %s DROP COLUMN %s", d:quote(o.table), d:quote(o.column)) }
  end
  -- unchanged columns keep their declared type text
  for _, c in ipairs(found.columns) do
    c.declared_type = c.declared ~= "" and types.raw(c.declared) or types.raw("")
    c.type_before = c.type
    c.type = c.declared_type
  end
  local src = apply(d, found, o)
  local tmp = "_luamig_tmp_" .. o.table
  local new = { name = tmp, columns = found.columns, primary_key = found.primary_key, uniques = found.uniques,
    foreign_keys = found.foreign_keys, checks = found.checks, indexes = {} }
  local out = d:compile({ op = "create_table", table = new })
  local cols, exprs = {}, {}
  for _, c in ipairs(found.columns) do
    if src[c.name] then
      cols[#cols + 1] = d:quote(c.name)
      exprs[#exprs + 1] = src[c.name]
    end
  end
  if #cols > 0 then
    out[#out + 1] = format("INSERT INTO %s (%s) SELECT %s FROM %s", d:quote(tmp), concat(cols, ", "), concat(exprs, ", "),
      d:quote(o.table))
  end
  local triggers = conn:query("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ? AND sql IS NOT NULL "
    .. "ORDER BY name", { o.table })
  out[#out + 1] = format("DROP TABLE %s", d:quote(o.table))
  out[#out + 1] = "PRAGMA legacy_alter_table = ON"
  out[#out + 1] = format("ALTER TABLE %s RENAME TO %s", d:quote(tmp), d:quote(o.table))
  out[#out + 1] = "PRAGMA legacy_alter_table = OFF"
  for _, ix in ipairs(found.indexes) do
    out[#out + 1] = ix.sql or d:index_sql(ix, o.table)
  end
  for _, tr in ipairs(triggers or {}) do out[#out + 1] = tr.sql end
  return out, o.table
end

-- foreign_key_problem(conn, tbl) -> a description of the first row that breaks a foreign key of tbl or of a table
-- referring to it, or nil
local function foreign_key_problem(conn, tbl)
  local tables = conn:query("SELECT m.name FROM sqlite_master m WHERE m.type = 'table' AND (m.name = ? OR EXISTS "
    .. "(SELECT 1 FROM pragma_foreign_key_list(m.name) f WHERE f.\"table\" = ?))", { tbl, tbl })
  for _, t in ipairs(tables or {}) do
    local rows = conn:query("SELECT * FROM pragma_foreign_key_check(?)", { t.name })
    if rows and rows[1] then
      local r = rows[1]
      return format("row %s of %s has no matching row in %s (%d row(s) in all)", tostring(r.rowid), r.table, r.parent, #rows)
    end
  end
  return nil
end

return { statements = statements, foreign_key_problem = foreign_key_problem }
