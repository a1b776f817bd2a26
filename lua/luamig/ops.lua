-- Operations as plain data (Alembic's central idea): each constructor checks its arguments and returns an op
-- value { op = "create_table", ... }. Dialects compile op values to SQL; nothing here touches a database.
local schema = require("luamig.schema")
local types = require("luamig.types")

local type, error, format, ipairs, pairs = type, error, string.format, ipairs, pairs

local function need_name(v, what)
  local n = schema.name_of(v)
  if type(n) ~= "string" or n == "" then error(format("%s must be a name", what), 0) end
  return n
end

local function column_list(v, what)
  if type(v) == "string" then return { v } end
  if type(v) ~= "table" or #v == 0 then error(format("%s must be a list of column names", what), 0) end
  for i, c in ipairs(v) do
    if type(c) ~= "string" then error(format("%s: entry %d is not a column name", what, i), 0) end
  end
  return v
end

---An operation as plain data: { op = "create_table", ... }, what op.* builds, dialects compile, autogenerate
---compares and renders, and ops.reverse undoes.
---@class luamig.OpValue
---@field op string the kind: "create_table", "add_column", ...

---A column: name, type, then its options by key.
---@class luamig.ColumnSpec
---@field [1] string the name
---@field [2] luamig.Type the type (luamig.types: t.integer, t.string(80), ...)
---@field nullable? boolean
---@field server_default? string|number|boolean|luamig.Text
---@field primary_key? boolean
---@field unique? boolean
---@field index? boolean
---@field references? string "table.column"
---@field ondelete? string
---@field onupdate? string
---@field comment? string
---@field autoincrement? boolean

---A create_table item: a column, or a table constraint (op.primary_key, op.unique, op.foreign_key, op.check,
---op.index).
---@alias luamig.Item luamig.ColumnSpec|table

---@class luamig.TableOpts
---@field if_not_exists? boolean
---@field comment? string
---@field sqlite_autoincrement? boolean
---@field naming_convention? table<string, string>

---@class luamig.ColumnChanges
---@field nullable? boolean
---@field server_default? string|number|boolean|luamig.Text|false
---@field new_column_name? string
---@field type? luamig.Type
---@field existing_type? luamig.Type
---@field existing_nullable? boolean
---@field existing_server_default? string|number|boolean|luamig.Text
---@field using? string
---@field comment? string|false
---@field autoincrement? boolean

---@alias luamig.Type table a type from luamig.types
---@alias luamig.Text table literal SQL (op.text("now()"))

---@class luamig.ops
local M = {}

---Creates a table.
---@param name string the table's name
---@param items luamig.Item[] its columns (`{ "id", t.integer, primary_key = true }`) and table constraints
---@param opts? luamig.TableOpts
---@return luamig.OpValue
function M.create_table(name, items, opts)
  opts = opts or {}
  local def = schema.table_def(need_name(name, "create_table: the table name"), items,
    { nullable_default = true, naming_convention = opts.naming_convention, comment = opts.comment,
      where = "create_table('" .. tostring(name) .. "')" })
  if opts.sqlite_autoincrement then def.sqlite_autoincrement = true end
  return { op = "create_table", table = def, if_not_exists = opts.if_not_exists and true or false }
end

---Drops a table.
---@param name string
---@param opts? { if_exists?: boolean }
---@return luamig.OpValue
function M.drop_table(name, opts)
  opts = opts or {}
  return { op = "drop_table", name = need_name(name, "drop_table: the table name"), if_exists = opts.if_exists and true or false }
end

---Renames a table.
---@param old string
---@param new string
---@return luamig.OpValue
function M.rename_table(old, new)
  return { op = "rename_table", old = need_name(old, "rename_table: the old name"), new = need_name(new, "rename_table: the new name") }
end

---Adds a column.
---@param tbl string the table
---@param colspec luamig.ColumnSpec
---@param opts? { naming_convention?: table<string, string> }
---@return luamig.OpValue
function M.add_column(tbl, colspec, opts)
  local t = need_name(tbl, "add_column: the table name")
  local col = schema.column(colspec, true, "add_column('" .. t .. "')")
  opts = opts or {}
  return { op = "add_column", table = t, column = col, naming_convention = opts.naming_convention }
end

---Drops a column (on SQLite a table rebuild when an index or constraint uses it).
---@param tbl string the table
---@param col string the column
---@return luamig.OpValue
function M.drop_column(tbl, col)
  return { op = "drop_column", table = need_name(tbl, "drop_column: the table name"),
    column = need_name(col, "drop_column: the column name") }
end

-- autoincrement is accepted as Alembic does (it changes nothing on SQLite and PostgreSQL)
local ALTER_KEYS = { nullable = true, server_default = true, new_column_name = true, type = true, existing_type = true,
  existing_nullable = true, existing_server_default = true, using = true, comment = true, autoincrement = true }

---Changes a column: its nullability, default, type, name or comment.
---@param tbl string the table
---@param col string the column
---@param changes luamig.ColumnChanges
---@return luamig.OpValue
function M.alter_column(tbl, col, changes)
  changes = changes or {}
  for k in pairs(changes) do
    if not ALTER_KEYS[k] then error(format("alter_column: unknown option '%s'", tostring(k)), 0) end
  end
  if changes.type ~= nil and not types.is_type(changes.type) then error("alter_column: type must be from luamig.types", 0) end
  return { op = "alter_column", table = need_name(tbl, "alter_column: the table name"),
    column = need_name(col, "alter_column: the column name"), changes = changes }
end

---Creates an index.
---@param name string the index's name
---@param tbl string the table
---@param cols string|string[] its columns
---@param opts? { unique?: boolean, where?: string, concurrently?: boolean, if_not_exists?: boolean }
---@return luamig.OpValue
function M.create_index(name, tbl, cols, opts)
  opts = opts or {}
  return { op = "create_index", name = need_name(name, "create_index: the index name"),
    table = need_name(tbl, "create_index: the table name"), columns = column_list(cols, "create_index"),
    unique = opts.unique and true or false, where = opts.where, concurrently = opts.concurrently and true or false,
    if_not_exists = opts.if_not_exists and true or false }
end

---Drops an index.
---@param name string
---@param tbl? string the table (for messages and SQLite's batch)
---@param opts? { if_exists?: boolean, concurrently?: boolean }
---@return luamig.OpValue
function M.drop_index(name, tbl, opts)
  opts = opts or {}
  return { op = "drop_index", name = need_name(name, "drop_index: the index name"), table = tbl and schema.name_of(tbl),
    if_exists = opts.if_exists and true or false, concurrently = opts.concurrently and true or false }
end

---Adds a UNIQUE constraint.
---@param name string|false the constraint's name (false: the database names it)
---@param tbl string the table
---@param cols string|string[]
---@param opts? { using_index?: string } using_index: PostgreSQL makes the constraint of that unique index (built
---before with concurrently = true) instead of building one under ACCESS EXCLUSIVE
---@return luamig.OpValue
function M.create_unique_constraint(name, tbl, cols, opts)
  return { op = "create_unique_constraint", name = need_name(name, "create_unique_constraint: the name"),
    table = need_name(tbl, "create_unique_constraint: the table name"), columns = column_list(cols, "create_unique_constraint"),
    using_index = opts and opts.using_index and need_name(opts.using_index, "create_unique_constraint: using_index") or nil }
end

---Adds a foreign key.
---@param name string|false the constraint's name (false: the database names it)
---@param src string the table that refers
---@param dst string the table referred to
---@param local_cols string|string[] the columns of src
---@param remote_cols string|string[] the columns of dst
---@param opts? { ondelete?: string, onupdate?: string, deferrable?: boolean, not_valid?: boolean } not_valid:
---PostgreSQL adds it without checking the rows there (no scan under the lock); op.validate_constraint checks them later
---@return luamig.OpValue
function M.create_foreign_key(name, src, dst, local_cols, remote_cols, opts)
  opts = opts or {}
  return { op = "create_foreign_key", name = need_name(name, "create_foreign_key: the name"),
    table = need_name(src, "create_foreign_key: the source table"), reftable = need_name(dst, "create_foreign_key: the referred table"),
    columns = column_list(local_cols, "create_foreign_key"), refcolumns = column_list(remote_cols, "create_foreign_key"),
    ondelete = opts.ondelete, onupdate = opts.onupdate, deferrable = opts.deferrable,
    not_valid = opts.not_valid and true or nil }
end

---Adds a CHECK constraint.
---@param name string|false the constraint's name (false: the database names it)
---@param tbl string the table
---@param expr string the condition, in SQL
---@param opts? { not_valid?: boolean } not_valid: PostgreSQL adds it without checking the rows there;
---op.validate_constraint checks them later
---@return luamig.OpValue
function M.create_check_constraint(name, tbl, expr, opts)
  if type(expr) ~= "string" then error("create_check_constraint: the condition must be a SQL string", 0) end
  return { op = "create_check_constraint", name = need_name(name, "create_check_constraint: the name"),
    table = need_name(tbl, "create_check_constraint: the table name"), expr = expr,
    not_valid = opts and opts.not_valid and true or nil }
end

---Checks the rows against a constraint added with not_valid = true (PostgreSQL: VALIDATE CONSTRAINT, which takes a
---lock that lets reads and writes go on; nothing on SQLite, whose constraints are always checked).
---@param name string the constraint
---@param tbl string the table
---@return luamig.OpValue
function M.validate_constraint(name, tbl)
  return { op = "validate_constraint", name = need_name(name, "validate_constraint: the name"),
    table = need_name(tbl, "validate_constraint: the table name") }
end

---Adds a primary key.
---@param name string|false the constraint's name (false: the database names it)
---@param tbl string the table
---@param cols string|string[]
---@param opts? { using_index?: string } using_index: PostgreSQL makes the key of that unique index (built before
---with concurrently = true)
---@return luamig.OpValue
function M.create_primary_key(name, tbl, cols, opts)
  return { op = "create_primary_key", name = need_name(name, "create_primary_key: the name"),
    table = need_name(tbl, "create_primary_key: the table name"), columns = column_list(cols, "create_primary_key"),
    using_index = opts and opts.using_index and need_name(opts.using_index, "create_primary_key: using_index") or nil }
end

local CONSTRAINT_TYPES = { foreignkey = true, unique = true, check = true, primary = true }

---Drops a constraint.
---@param name string
---@param tbl string the table
---@param opts? { type?: "foreignkey"|"unique"|"check"|"primary" }
---@return luamig.OpValue
function M.drop_constraint(name, tbl, opts)
  opts = opts or {}
  if opts.type ~= nil and not CONSTRAINT_TYPES[opts.type] then
    error("drop_constraint: type must be \"foreignkey\", \"unique\", \"check\" or \"primary\"", 0)
  end
  return { op = "drop_constraint", name = need_name(name, "drop_constraint: the name"),
    table = need_name(tbl, "drop_constraint: the table name"), type = opts.type }
end

---Runs a SQL statement (? or :name placeholders bind params).
---@param sql string|luamig.Text
---@param params? table
---@return luamig.OpValue
function M.execute(sql, params)
  if type(sql) ~= "string" and not schema.is_text(sql) then error("execute: the SQL must be a string", 0) end
  if params ~= nil and type(params) ~= "table" then error("execute: params must be a table", 0) end
  return { op = "execute", sql = tostring(sql), params = params }
end

---Inserts rows, one prepared INSERT for all of them.
---@param tbl string the table
---@param rows table[] one table per row, keyed by column
---@return luamig.OpValue
function M.bulk_insert(tbl, rows)
  local t = need_name(tbl, "bulk_insert: the table name")
  if type(rows) ~= "table" then error("bulk_insert: rows must be a list of tables", 0) end
  return { op = "bulk_insert", table = t, rows = rows }
end

-- create_enum(name, labels, opts) / drop_enum(name, opts): a PostgreSQL enum type of its own (the
-- sa.Enum(...).create(bind, checkfirst=True) idiom with if_not_exists); nothing on SQLite
---Creates a PostgreSQL enum type (nothing on SQLite).
---@param name string the type's name
---@param labels string[]
---@param opts? { if_not_exists?: boolean }
---@return luamig.OpValue
function M.create_enum(name, labels, opts)
  opts = opts or {}
  local n = need_name(name, "create_enum: the type name")
  if type(labels) ~= "table" or #labels == 0 then error(format("create_enum('%s'): the labels must be a list of strings", n), 0) end
  local values = {}
  for i, v in ipairs(labels) do
    if type(v) ~= "string" then error(format("create_enum('%s'): label %d is not a string", n, i), 0) end
    values[i] = v
  end
  return { op = "create_enum", name = n, values = values, if_not_exists = opts.if_not_exists and true or false }
end

---Drops a PostgreSQL enum type (nothing on SQLite).
---@param name string
---@param opts? { if_exists?: boolean }
---@return luamig.OpValue
function M.drop_enum(name, opts)
  opts = opts or {}
  return { op = "drop_enum", name = need_name(name, "drop_enum: the type name"), if_exists = opts.if_exists and true or false }
end

local RECREATE = { auto = true, always = true, never = true }

-- batch_alter_table(table, ops, opts): the ops a batch collected, run together (on SQLite one table rebuild for all
-- of them when any needs one); opts.recreate = "auto" | "always" | "never", opts.sqlite_autoincrement
function M.batch_alter_table(tbl, list, opts)
  opts = opts or {}
  local t = need_name(tbl, "batch_alter_table: the table name")
  local recreate = opts.recreate or "auto"
  if not RECREATE[recreate] then
    error(format("batch_alter_table('%s'): recreate must be \"auto\", \"always\" or \"never\"", t), 0)
  end
  if opts.naming_convention ~= nil and type(opts.naming_convention) ~= "table" then
    error(format("batch_alter_table('%s'): naming_convention must be a table ({ fk = \"fk_%%(table_name)s_...\" })", t), 0)
  end
  return { op = "batch_alter_table", table = t, ops = list, recreate = recreate,
    sqlite_autoincrement = opts.sqlite_autoincrement, naming_convention = opts.naming_convention }
end

-- label(o) -> how messages name an op: "drop_column('t', 'c')", "create_index('t', 'ix_t_a')"
function M.label(o)
  local what = o.column and (type(o.column) == "table" and o.column.name or o.column) or o.name
  local t = type(o.table) == "table" and o.table.name or o.table or o.old
  if o.op == "drop_table" or o.op == "create_enum" or o.op == "drop_enum" then t, what = o.name, nil end
  if t == nil then return what and format("%s('%s')", o.op, what) or o.op end
  return what and format("%s('%s', '%s')", o.op, t, what) or format("%s('%s')", o.op, t)
end

-- reverse(o) -> the op that undoes o, or nil when o cannot be reversed from its own data. An op may carry the op
-- that undoes it as o.reverse (the reflected facts a drop needs: the table, column, index or constraint it drops);
-- the op reverse returns carries o the same way, so that reversing twice gives o back.
local CONSTRAINT_TYPE = { create_unique_constraint = "unique", create_foreign_key = "foreignkey",
  create_check_constraint = "check", create_primary_key = "primary" }

local function undo_of(o)
  local k = o.op
  if k == "create_table" then return M.drop_table(o.table.name) end
  if k == "rename_table" then return M.rename_table(o.new, o.old) end
  if k == "add_column" then return M.drop_column(o.table, o.column.name) end
  if k == "create_index" then return M.drop_index(o.name, o.table) end
  if k == "create_enum" then return M.drop_enum(o.name) end
  if CONSTRAINT_TYPE[k] then
    -- (a constraint the database named has no name here: "?" until the user writes it)
    return { op = "drop_constraint", name = o.name, table = o.table, type = CONSTRAINT_TYPE[k] }
  end
  if k == "alter_column" then
    local ch, back = o.changes, {}
    for key in pairs(ch) do
      if key ~= "type" and key ~= "existing_type" and key ~= "nullable" and key ~= "existing_nullable"
        and key ~= "server_default" and key ~= "existing_server_default" and key ~= "new_column_name" then
        return nil
      end
    end
    if ch.type ~= nil then
      if ch.existing_type == nil then return nil end
      back.type, back.existing_type = ch.existing_type, ch.type
    end
    if ch.nullable ~= nil then back.nullable = not ch.nullable
    elseif ch.existing_nullable ~= nil then back.existing_nullable = ch.existing_nullable end
    if ch.server_default ~= nil then
      back.server_default = ch.existing_server_default == nil and schema.NULL or ch.existing_server_default
      back.existing_server_default = ch.server_default ~= schema.NULL and ch.server_default or nil
    end
    local column = o.column
    if ch.new_column_name then column, back.new_column_name = ch.new_column_name, o.column end
    return { op = "alter_column", table = o.table, column = column, changes = back }
  end
  return nil
end

function M.reverse(o)
  local r
  if o.reverse then
    r = {}
    for k, v in pairs(o.reverse) do r[k] = v end
  else
    r = undo_of(o)
    if not r then return nil end
  end
  r.reverse = o
  return r
end

return M
