-- SQL compilation shared by the dialects: quoting, literals, column and table DDL, and one function per op kind.
-- A dialect is this table with overrides (type_sql, boolean literals, what ALTER TABLE can do).
local schema = require("luamig.schema")

local format, concat, type, ipairs, error, tostring = string.format, table.concat, type, ipairs, error, tostring
local gsub, find, upper, math_type = string.gsub, string.find, string.upper, math.type

local Base = {}
Base.__index = Base

-- Words that must be quoted when used as names (the union of SQLite's and PostgreSQL's reserved keywords).
local RESERVED = {}
for w in ([[abort action add after all alter always analyze and any array as asc attach authorization autoincrement
  before begin between both by cascade case cast check collate column commit conflict constraint create cross
  current current_date current_role current_time current_timestamp current_user database default deferrable
  deferred delete desc detach distinct do drop each else end escape except exclude exclusive exists explain fail
  false fetch filter first following for foreign freeze from full generated glob grant group groups having if
  ignore ilike immediate in index indexed initially inner insert instead intersect into is isnull join key last
  lateral leading left like limit localtime localtimestamp match materialized natural no not nothing notnull null
  nulls of offset on only or order others outer over partition plan pragma preceding primary query raise range
  recursive references regexp reindex release rename replace restrict returning right rollback row rows savepoint
  select session_user set similar some symmetric table temp temporary then ties to trailing transaction trigger
  true unbounded union unique update user using vacuum values variadic verbose view virtual when where window
  with without]]):gmatch("%a[%w_]*") do
  RESERVED[w] = true
end

function Base:extend(overrides)
  overrides.__index = overrides
  return setmetatable(overrides, self)
end

-- quote(name): the name as is when it is a plain lower-case identifier, else double-quoted with quotes doubled.
local needs_quotes = setmetatable({}, { __index = function(t, name)
  local v = find(name, "[^a-z0-9_]") ~= nil or find(name, "^[0-9]") ~= nil or RESERVED[name] == true
  t[name] = v
  return v
end })

function Base:quote(name)
  if type(name) ~= "string" then
    name = schema.name_of(name)
    if type(name) ~= "string" then error("a SQL name must be a string, got " .. type(name), 0) end
  end
  if not needs_quotes[name] then return name end
  return '"' .. gsub(name, '"', '""') .. '"'
end

function Base:quote_list(names)
  local out = {}
  for i, n in ipairs(names) do out[i] = self:quote(n) end
  return concat(out, ", ")
end

function Base:string_literal(s)
  if find(s, "'", 1, true) then s = gsub(s, "'", "''") end
  return "'" .. s .. "'"
end

-- literal(v): a SQL literal for a Lua value (op.inline_literal, server defaults, offline SQL).
function Base:literal(v)
  local tv = type(v)
  if tv == "string" then
    if find(v, "'", 1, true) then v = gsub(v, "'", "''") end
    return "'" .. v .. "'"
  end
  if v == nil or v == schema.NULL then return "NULL" end
  if tv == "boolean" then return v and self.TRUE or self.FALSE end
  if tv == "number" then
    if math_type(v) == "integer" then return tostring(v) end
    if v ~= v or v == math.huge or v == -math.huge then error("cannot write a NaN or infinite number as SQL", 0) end
    return format("%.17g", v)
  end
  if schema.is_text(v) then return v.sql end
  error("cannot write a " .. tv .. " as a SQL literal", 0)
end

function Base:default_sql(v)
  if schema.is_text(v) then return v.sql end
  return self:literal(v)
end

local ACTIONS = { CASCADE = true, ["SET NULL"] = true, ["SET DEFAULT"] = true, RESTRICT = true, ["NO ACTION"] = true }

function Base:action(kind, v)
  local a = upper(tostring(v))
  if not ACTIONS[a] then
    error(format("%s must be CASCADE, SET NULL, SET DEFAULT, RESTRICT or NO ACTION, got '%s'", kind, tostring(v)), 0)
  end
  return a
end

function Base:fk_clause(fk)
  local s = format("FOREIGN KEY(%s) REFERENCES %s (%s)", self:quote_list(fk.columns), self:quote(fk.reftable),
    self:quote_list(fk.refcolumns))
  if fk.ondelete then s = s .. " ON DELETE " .. self:action("ondelete", fk.ondelete) end
  if fk.onupdate then s = s .. " ON UPDATE " .. self:action("onupdate", fk.onupdate) end
  if fk.deferrable then s = s .. " DEFERRABLE INITIALLY DEFERRED" end
  return s
end

function Base:named(name, clause)
  if name then return "CONSTRAINT " .. self:quote(name) .. " " .. clause end
  return clause
end

-- column_sql(col, serial): "name TYPE DEFAULT x NOT NULL" (SQLAlchemy's order), plus what the type itself needs.
-- serial: the column is the table's autoincrementing key (see autoincrement_column).
function Base:column_sql(col, serial)
  local parts = { self:quote(col.name), serial and self:serial_type_sql(col.type) or self:type_sql(col.type) }
  if col.server_default ~= nil then parts[#parts + 1] = "DEFAULT " .. self:default_sql(col.server_default) end
  if not col.nullable then parts[#parts + 1] = "NOT NULL" end
  if col.inline_primary_key then parts[#parts + 1] = self:named(col.inline_primary_key.name, col.inline_primary_key.sql) end
  local extra = self:column_type_constraint(col)
  if extra then parts[#parts + 1] = extra end
  -- CHECKs written on the column itself, as reflection finds them (a table rebuild keeps them there)
  for _, ck in ipairs(col.checks or {}) do
    parts[#parts + 1] = self:named(ck.name, "CHECK (" .. ck.expr .. ")")
  end
  return concat(parts, " ")
end

-- type_sql(ty) -> the column type: the dialect's SIMPLE table for plain kinds, VARCHAR and NUMERIC here, and the
-- dialect's own special_type_sql for the rest (datetime with a time zone, enum).
function Base:type_sql(ty)
  local k = ty.kind
  local simple = self.SIMPLE[k]
  if simple then return simple end
  if k == "string" then return ty.length and format("VARCHAR(%d)", ty.length) or "VARCHAR" end
  if k == "numeric" then
    if ty.precision and ty.scale then return format("NUMERIC(%d, %d)", ty.precision, ty.scale) end
    if ty.precision then return format("NUMERIC(%d)", ty.precision) end
    return "NUMERIC"
  end
  if k == "raw" then
    if not ty.per then return ty.sql end
    local sql = ty.per[self.name]
    if not sql then error(format("%s: t.raw{ ... } names no type for %s", self.name, self.name), 0) end
    return sql
  end
  local special = self:special_type_sql(ty)
  if special then return special end
  error(self.name .. ": no SQL type for " .. tostring(ty), 0)
end

function Base:special_type_sql(_ty)
  return nil
end

-- autoincrement_column(t) -> the name of the column that gets its values from the database, as SQLAlchemy
-- decides: the table's only primary-key column, of an integer type, with autoincrement not false, no server
-- default and no foreign key. Dialects whose integer keys need no keyword (SQLite) return nil.
function Base:autoincrement_column(t)
  if not self.SERIAL or not t.primary_key or #t.primary_key.columns ~= 1 then return nil end
  local name = t.primary_key.columns[1]
  for _, col in ipairs(t.columns) do
    if col.name == name then
      if not self.SERIAL[col.type.kind] or col.autoincrement == false or col.server_default ~= nil
        or col.references then return nil end
      for _, fk in ipairs(t.foreign_keys) do
        for _, c in ipairs(fk.columns) do if c == name then return nil end end
      end
      return name
    end
  end
  return nil
end

function Base:serial_type_sql(ty)
  return self.SERIAL[ty.kind]
end

function Base:column_type_constraint(_col)
  return nil
end

function Base:index_sql(ix, tablename, if_not_exists)
  local s = format("CREATE %sINDEX %s%s ON %s (%s)", ix.unique and "UNIQUE " or "", if_not_exists and "IF NOT EXISTS " or "",
    self:quote(ix.name), self:quote(tablename), self:quote_list(ix.columns))
  if ix.where then s = s .. " WHERE " .. tostring(ix.where) end
  return s
end

-- Each compile function returns a list of statements: strings, or { sql = ..., params = ... }.
local C = {}

function C.create_table(d, o)
  local t = o.table
  local lines = {}
  local serial = d:autoincrement_column(t)
  for _, col in ipairs(t.columns) do lines[#lines + 1] = d:column_sql(col, col.name == serial) end
  if t.primary_key then
    lines[#lines + 1] = d:named(t.primary_key.name, "PRIMARY KEY (" .. d:quote_list(t.primary_key.columns) .. ")")
  end
  for _, fk in ipairs(t.foreign_keys) do lines[#lines + 1] = d:named(fk.name, d:fk_clause(fk)) end
  for _, uq in ipairs(t.uniques) do lines[#lines + 1] = d:named(uq.name, "UNIQUE (" .. d:quote_list(uq.columns) .. ")") end
  for _, ck in ipairs(t.checks) do lines[#lines + 1] = d:named(ck.name, "CHECK (" .. ck.expr .. ")") end
  local out = { format("CREATE TABLE %s%s (\n\t%s\n)", o.if_not_exists and "IF NOT EXISTS " or "", d:quote(t.name),
    concat(lines, ",\n\t")) }
  for _, ix in ipairs(t.indexes) do out[#out + 1] = d:index_sql(ix, t.name, o.if_not_exists) end
  d:table_comment_sql(t, out)
  return out
end

function C.drop_table(d, o)
  return { format("DROP TABLE %s%s", o.if_exists and "IF EXISTS " or "", d:quote(o.name)) }
end

function C.rename_table(d, o)
  return { format("ALTER TABLE %s RENAME TO %s", d:quote(o.old), d:quote(o.new)) }
end

function C.drop_column(d, o)
  return { format("ALTER TABLE %s DROP COLUMN %s", d:quote(o.table), d:quote(o.column)) }
end

function C.create_index(d, o)
  return { d:index_sql(o, o.table, o.if_not_exists) }
end

function C.drop_index(d, o)
  return { format("DROP INDEX %s%s", o.if_exists and "IF EXISTS " or "", d:quote(o.name)) }
end

function C.execute(_d, o)
  return { { sql = o.sql, params = o.params } }
end

-- A batch where ALTER TABLE can do everything: its ops' statements in order (recreate is SQLite's business).
function C.batch_alter_table(d, o)
  local out = {}
  for _, inner in ipairs(o.ops) do
    for _, st in ipairs(d:compile(inner)) do out[#out + 1] = st end
  end
  return out
end

Base.compilers = C

function Base:table_comment_sql(_t, _out) end

-- compile(o) -> list of statements for the op value o; raises a message when this dialect cannot do o.
function Base:compile(o)
  local f = self.compilers[o.op]
  if not f then error(format("%s: the %s dialect cannot run %s", o.op, self.name, o.op), 0) end
  return f(self, o)
end

-- bulk_insert_sql(o) -> sql, columns: one INSERT with a ? per column, the columns taken from the first row.
function Base:bulk_insert_sql(o)
  local cols, seen = {}, {}
  for _, row in ipairs(o.rows) do
    if type(row) ~= "table" then error("bulk_insert: every row must be a table of column = value", 0) end
    for k in pairs(row) do
      if type(k) == "string" and not seen[k] then
        seen[k] = true
        cols[#cols + 1] = k
      end
    end
  end
  table.sort(cols)
  local marks = {}
  for i = 1, #cols do marks[i] = "?" end
  return format("INSERT INTO %s (%s) VALUES (%s)", self:quote(o.table), self:quote_list(cols), concat(marks, ", ")), cols
end

-- Run-time capabilities: what a dialect does around a run and knows about its connections and errors. The
-- defaults suit a server database that a session lock guards (luamig.lock).

-- begin_run(conn) -> state for end_run, or nil, message: session settings for the time of a run
function Base.begin_run() return {} end
-- end_run(conn, state) -> true, or nil, message naming the setting that could not be restored
function Base.end_run() return true end
-- mark_live(rows) -> the unfinished rows, each with .live when its runner is still at work (under the lock: none)
function Base.mark_live(_, rows) return rows end
-- busy_hint(msg, cfg) -> a failed BEGIN's message, with what it means on this database
function Base.busy_hint(_, msg) return msg end
-- missing_table(err, code) -> whether a query failed only because its table does not exist (SQLSTATE 42P01)
function Base.missing_table(_, _err, code) return code == "42P01" end
-- a failed statement aborts the transaction around it, so luamig looks a table up instead of trying it
Base.failure_aborts_transaction = true
-- acquire_lock(db, cfg, say) -> the lock { mode, locked (held across the run), release(), and hooks the
-- executor calls: in_step(x) after each step's BEGIN, fence(x) in each version-row change, detaching(x) /
-- attached() around a migration outside a transaction }; or nil, message. The default holds none: each step's
-- transaction, with the version rows re-read inside it, serialises runners.
local function nothing_to_release() return true end
function Base.acquire_lock() return { mode = "transaction", locked = false, release = nothing_to_release } end
-- lock_mode(db, cfg) -> the lock mode a run on this connection uses, and why; writable(db) -> true, or nil,
-- message when the server cannot take a migration (a read-only standby)
function Base.lock_mode() return "transaction", "each migration's own transaction" end
function Base.writable() return true end
-- lock_holder(db, cfg) -> who holds the migration lock (a server pid), or nil
function Base.lock_holder() return nil end
-- type_key(sql) -> how autogenerate compares a rendered type (upper case, spaces collapsed): as it is
function Base.type_key(_, sql) return sql end
-- column_in_use(conn, tbl, col, vt) -> whether dropping the column needs more than ALTER TABLE
function Base.column_in_use() return false end
-- Lock queues (ddl_lock_timeout). lock_guard_sql(seconds, in_transaction) -> the statement that bounds how long a
-- migration statement waits for a table lock (nil: the database has no such queue to guard against);
-- lock_unguard_sql -> the statement that lifts a session-level bound again.
function Base.lock_guard_sql() return nil end
Base.lock_unguard_sql = nil
-- lock_timed_out(err) -> whether a failed statement gave up waiting for a lock (and may be tried again)
function Base.lock_timed_out() return false end
-- blockers(conn, tables, older_than) -> the other sessions holding a lock on one of the tables in a transaction
-- open longer than older_than seconds: { pid, state, secs, query, application_name, relname }
function Base.blockers() return {} end
-- oldest_transaction(conn) -> seconds the oldest transaction of another session has been open, or nil
function Base.oldest_transaction() return nil end
-- clean_after_lock_timeout(conn, o): what a statement of op value o that gave up waiting leaves behind, removed
-- before it is tried again
function Base.clean_after_lock_timeout() end

return Base
