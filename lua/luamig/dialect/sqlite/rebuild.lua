-- SQLite's "move and copy": what ALTER TABLE cannot do (change a column's type, nullability or default; add or
-- drop a constraint; drop a column an index or constraint uses) is done by building the table anew, inside the
-- migration's transaction:
--   CREATE TABLE _luamig_tmp_<t> (the new definition); INSERT INTO it SELECT ... FROM <t>; DROP TABLE <t>;
--   ALTER TABLE _luamig_tmp_<t> RENAME TO <t>; the indexes and triggers of <t> again; PRAGMA foreign_key_check.
-- The definition comes from reflecting the live table, so columns keep their declared types, defaults and CHECKs.
-- Views name the table, not its storage, and keep working. A failure anywhere rolls back with the migration's
-- transaction: no temporary table is left behind. The runner keeps PRAGMA foreign_keys off while it migrates (the
-- pragma cannot change inside a transaction, and with it on, dropping the old table would fire ON DELETE actions).
local sqlite_reflect = require("luamig.dialect.sqlite.reflect")
local types = require("luamig.types")
local schema = require("luamig.schema")

local format, concat, ipairs, pairs, error, tostring, type = string.format, table.concat, ipairs, pairs, error, tostring,
  type

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

-- enum_check(expr, col) -> the quoted-literal list when expr is the CHECK an enum type writes for column col
-- (`col IN ('a', 'b')`), else nil: that CHECK belongs to the type, goes when the type changes and follows a rename
local function enum_check(expr, col)
  local labels, list = sqlite_reflect.enum_check(expr, col)
  return labels and list or nil
end

-- rename_ident(d, sql, old, new) -> sql with the identifier old (quoted or bare, outside string literals) as new
local function rename_ident(d, sql, old, new)
  local out, pos = {}, 1
  while pos <= #sql do
    local a = sql:find("'", pos, true)
    local part = sql:sub(pos, (a or #sql + 1) - 1)
    part = part:gsub('"' .. old:gsub("%p", "%%%0") .. '"', (d:quote(new):gsub("%%", "%%%%")))
    if old:match("^[%a_][%w_]*$") then
      part = part:gsub("%f[%w_]" .. old .. "%f[^%w_]", (d:quote(new):gsub("%%", "%%%%")))
    end
    out[#out + 1] = part
    if not a then break end
    local b = a + 1
    while true do
      local q = sql:find("'", b, true)
      if not q then b = #sql + 1 break end
      if sql:sub(q + 1, q + 1) == "'" then b = q + 2 else b = q break end
    end
    out[#out + 1] = sql:sub(a, b)
    pos = b + 1
  end
  return concat(out)
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

-- apply(d, def, o, src): changes def to the definition after op o, and src, the source expression of each new
-- column ({ [new name] = SQL over the old table }), with it
local function apply(d, def, o, src)
  local k = o.op
  if k == "alter_column" then
    local c = find_col(def, o.column)
    if not c then error(format("alter_column('%s', '%s'): no such column", o.table, o.column), 0) end
    local ch = o.changes
    if ch.type ~= nil then
      c.type = ch.type
      -- the CHECK of the old type (an enum's) goes with it; the new type writes its own
      local keep = {}
      for _, ck in ipairs(c.checks or {}) do if not enum_check(ck.expr, c.name) then keep[#keep + 1] = ck end end
      c.checks = keep
    end
    if ch.nullable ~= nil then c.nullable = ch.nullable and true or false end
    if ch.server_default ~= nil then
      if ch.server_default == schema.NULL then c.server_default = nil else c.server_default = ch.server_default end
    end
    if ch.using then src[c.name] = tostring(ch.using) end
    if ch.new_column_name and ch.new_column_name ~= c.name then
      local old, new = c.name, ch.new_column_name
      src[new], src[old] = src[old], nil
      c.name = new
      -- CHECKs naming the column follow it (an enum's is written anew for the new name)
      for _, ck in ipairs(c.checks or {}) do
        local list = enum_check(ck.expr, old)
        ck.expr = list and (d:quote(new) .. " IN (" .. list .. ")") or rename_ident(d, ck.expr, old, new)
      end
      for _, ck in ipairs(def.checks) do ck.expr = rename_ident(d, ck.expr, old, new) end
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
  elseif k == "create_index" then
    def.indexes[#def.indexes + 1] = { name = o.name, columns = o.columns, unique = o.unique, where = o.where }
  elseif k == "drop_index" then
    if not remove_named(def.indexes, o.name) then
      error(format("drop_index('%s'): the table %s has no such index", o.name, o.table), 0)
    end
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
    error(format("%s: not a table rebuild (it cannot be part of batch_alter_table)", k), 0)
  end
  if def.primary_key then
    for _, c in ipairs(def.columns) do
      c.primary_key = has(def.primary_key.columns, c.name)
      if c.primary_key then c.nullable = false end
    end
  end
end

-- name_unnamed(def, convention): gives the reflected constraints without a name one from a batch's naming
-- convention, so that the batch can drop or keep them by that name (as Alembic's batch naming_convention does)
local function name_unnamed(def, nc)
  local t = def.name
  if def.primary_key and not def.primary_key.name and nc.pk then
    def.primary_key.name = schema.conv_name(nc, "pk", { table = t, columns = def.primary_key.columns })
  end
  for _, fk in ipairs(def.foreign_keys) do
    if not fk.name and nc.fk then
      fk.name = schema.conv_name(nc, "fk", { table = t, columns = fk.columns, reftable = fk.reftable })
    end
  end
  for _, u in ipairs(def.uniques) do
    if not u.name and nc.uq then u.name = schema.conv_name(nc, "uq", { table = t, columns = u.columns }) end
  end
end

-- in_use(conn, tbl, col, vt) -> whether ALTER TABLE DROP COLUMN cannot drop col (an index or constraint uses it)
local function in_use(conn, tbl, col, vt)
  local found = sqlite_reflect.tables(conn, vt, nil, tbl)[1]
  return not found or not find_col(found, col) or column_in_use(found, col)
end

-- statements(conn, d, tbl, list, vt, opts) -> the statements of one rebuild of tbl for the ops of list, in order
-- (or of a plain ALTER TABLE DROP COLUMN when that is the one op and enough), and the table to check foreign keys
-- for afterwards. opts: naming_convention (names for unnamed reflected constraints), sqlite_autoincrement (true or
-- false to change it; nil keeps what the table has).
local function statements(conn, d, tbl, list, vt, opts)
  opts = opts or {}
  local found = sqlite_reflect.tables(conn, vt, nil, tbl)[1]
  if not found then error(format("%s('%s'): no such table", list[1] and list[1].op or "batch_alter_table", tbl), 0) end
  local o = list[1]
  if #list == 1 and o.op == "drop_column" and not opts.force and find_col(found, o.column)
    and not column_in_use(found, o.column) then
    return { format("ALTER TABLE %s DROP COLUMN %s", d:quote(tbl), d:quote(o.column)) }
  end
  if opts.naming_convention then name_unnamed(found, opts.naming_convention) end
  -- unchanged columns keep their declared type text
  for _, c in ipairs(found.columns) do
    c.declared_type = c.declared ~= "" and types.raw(c.declared) or types.raw("")
    c.type_before = c.type
    c.type = c.declared_type
    -- the CHECK of an enum column is written again with the declared type (unless an op changes the type)
    if c.type_check then
      local checks = { c.type_check }
      for _, ck in ipairs(c.checks or {}) do checks[#checks + 1] = ck end
      c.checks, c.type_check = checks, nil
    end
  end
  local src = {}
  for _, c in ipairs(found.columns) do src[c.name] = d:quote(c.name) end
  for _, op in ipairs(list) do apply(d, found, op, src) end
  local autoinc = found.sqlite_autoincrement
  if opts.sqlite_autoincrement ~= nil then autoinc = opts.sqlite_autoincrement and true or false end
  local tmp = "_luamig_tmp_" .. tbl
  local new = { name = tmp, columns = found.columns, primary_key = found.primary_key, uniques = found.uniques,
    foreign_keys = found.foreign_keys, checks = found.checks, indexes = {}, sqlite_autoincrement = autoinc }
  for _, c in ipairs(found.columns) do c.autoincrement = nil end
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
      d:quote(tbl))
  end
  -- the highest id AUTOINCREMENT has given, which a copy of the rows alone would lower after deletes
  local seq
  if autoinc then
    local has_seq = conn:query("SELECT 1 AS present FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'")
    local rows = has_seq and has_seq[1] and conn:query("SELECT seq FROM sqlite_sequence WHERE name = ?", { tbl })
    seq = rows and rows[1] and math.tointeger(rows[1].seq)
  end
  local triggers = conn:query("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ? AND sql IS NOT NULL "
    .. "ORDER BY name", { tbl })
  out[#out + 1] = format("DROP TABLE %s", d:quote(tbl))
  out[#out + 1] = "PRAGMA legacy_alter_table = ON"
  out[#out + 1] = format("ALTER TABLE %s RENAME TO %s", d:quote(tmp), d:quote(tbl))
  out[#out + 1] = "PRAGMA legacy_alter_table = OFF"
  if seq then
    local name = d:string_literal(tbl)
    out[#out + 1] = format("UPDATE sqlite_sequence SET seq = MAX(seq, %d) WHERE name = %s", seq, name)
    out[#out + 1] = format("INSERT INTO sqlite_sequence (name, seq) SELECT %s, %d WHERE NOT EXISTS "
      .. "(SELECT 1 FROM sqlite_sequence WHERE name = %s)", name, seq, name)
  end
  for _, ix in ipairs(found.indexes) do
    out[#out + 1] = ix.sql or d:index_sql(ix, tbl)
  end
  for _, tr in ipairs(triggers or {}) do out[#out + 1] = tr.sql end
  return out, tbl
end

-- foreign_key_state(conn, tbl) -> for tbl and the tables referring to it, the rows that break a foreign key:
-- { [child .. " -> " .. parent] = { count =, first = description } }
local function foreign_key_state(conn, tbl)
  local tables = conn:query("SELECT m.name FROM sqlite_master m WHERE m.type = 'table' AND (m.name = ? OR EXISTS "
    .. "(SELECT 1 FROM pragma_foreign_key_list(m.name) f WHERE f.\"table\" = ?))", { tbl, tbl })
  local state = {}
  for _, t in ipairs(tables or {}) do
    for _, r in ipairs(conn:query("SELECT * FROM pragma_foreign_key_check(?)", { t.name }) or {}) do
      local key = r.table .. " -> " .. r.parent
      local e = state[key]
      if not e then
        e = { count = 0, child = r.table, parent = r.parent,
          first = format("row %s of %s has no matching row in %s", tostring(r.rowid), r.table, r.parent) }
        state[key] = e
      end
      e.count = e.count + 1
    end
  end
  return state
end

-- foreign_key_change(before, after) -> a description of a foreign key the rebuild broke (more rows without a match
-- than before), or nil; and the lines describing what was broken already before
local function foreign_key_change(before, after)
  local problem
  for key, e in pairs(after) do
    local was = before[key] and before[key].count or 0
    if e.count > was and not problem then
      problem = was == 0 and format("%s (%d row(s) in all)", e.first, e.count)
        or format("%s (%d row(s) in all, %d before the rebuild)", e.first, e.count, was)
    end
  end
  local old = {}
  for _, e in pairs(before) do
    old[#old + 1] = format("%d row(s) of %s had no matching row in %s before the rebuild already; left as they were",
      e.count, e.child, e.parent)
  end
  table.sort(old)
  return problem, old
end

-- run(d, x, tbl, list, opts, warn): ops SQLite's ALTER TABLE cannot do, as one rebuild of the live table (or, for
-- a single drop_column that allows it, ALTER TABLE DROP COLUMN) through the executor x; then the foreign keys of
-- and to the table are checked: the rebuild fails if it left rows without a match that were not so before, and
-- says how many were.
local function run(d, x, tbl, list, opts, warn)
  local conn = x.conn
  local before = foreign_key_state(conn, tbl)
  local stmts, checked = statements(conn, d, tbl, list, x.cfg.version_table, opts)
  for _, st in ipairs(stmts) do x:exec(st) end
  if checked then
    local problem, old = foreign_key_change(before, foreign_key_state(conn, checked))
    if problem then
      require("luamig.executor").sql_error("PRAGMA foreign_key_check", format("after rebuilding %s: %s", checked,
        problem), 0)
    end
    for _, line in ipairs(old) do warn(format("rebuilding %s: %s", checked, line)) end
  end
end

-- batch(d, x, o, warn): a batch_alter_table. When ALTER TABLE can do each of its ops (and recreate is not
-- "always"), their statements in order; else one table rebuild for all of them, refused with recreate = "never".
local function batch(d, x, o, warn)
  local label = require("luamig.ops").label
  local plain, needs = {}, nil
  for _, inner in ipairs(o.ops) do
    if inner.table ~= o.table then
      error(format("batch_alter_table('%s'): %s is for another table", o.table, label(inner)), 0)
    end
    for _, st in ipairs(d:compile(inner)) do
      if type(st) == "table" and st.warn then
        warn(st.warn)
      elseif type(st) == "table" and st.rebuild then
        if st.try_alter and not x:column_in_use(o.table, inner.column) then
          plain[#plain + 1] = format("ALTER TABLE %s DROP COLUMN %s", d:quote(o.table), d:quote(inner.column))
        else
          needs = needs or inner
        end
      else
        plain[#plain + 1] = st
      end
    end
  end
  if needs and o.recreate == "never" then
    error(format("batch_alter_table('%s', recreate = \"never\"): %s needs a table rebuild on SQLite", o.table,
      label(needs)), 0)
  end
  if not needs and o.recreate ~= "always" and o.sqlite_autoincrement == nil then
    for _, st in ipairs(plain) do
      if type(st) == "string" then x:exec(st) else x:exec(st.sql, st.params) end
    end
    return
  end
  if o.recreate == "never" then
    error(format("batch_alter_table('%s', recreate = \"never\"): sqlite_autoincrement needs a table rebuild on SQLite",
      o.table), 0)
  end
  x:rebuild(o.table, o.ops, { force = true, naming_convention = o.naming_convention,
    sqlite_autoincrement = o.sqlite_autoincrement }, warn)
end

return { statements = statements, in_use = in_use, run = run, batch = batch }
